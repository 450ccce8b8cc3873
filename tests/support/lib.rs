//! The test harness: starts the real `sagedeck` binary on 127.0.0.1:0 with a
//! fresh data directory, and a real moto server for AWS, and talks to both
//! over HTTP. Nothing here reaches into the server's private state.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `sagedeck` binary that scripts/build.sh made: SAGEDECK_BIN, or
/// the one beside this test executable's profile folder.
pub fn server_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("SAGEDECK_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    // <target>/debug/deps/<test>-<hash> → <target>/debug/sagedeck
    let bin = exe.parent().unwrap().parent().unwrap().join("sagedeck");
    assert!(
        bin.exists(),
        "{} is missing: build the console first (scripts/build.sh, or run scripts/test.sh)",
        bin.display()
    );
    bin
}

pub fn site_root() -> PathBuf {
    std::env::var("SAGEDECK_SITE_ROOT").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target/site"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether the server on `port` is a moto (its dashboard answers 200).
fn answers_as_moto(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9..12] == *b"200"
}

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// A moto that checks credentials (INITIAL_NO_AUTH_ACTION_COUNT=0), so the
    /// test keys are refused as AWS refuses unknown keys.
    pub fn start_checking_credentials() -> Moto {
        Self::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    /// Starts moto on a free port. The port is free when probed, not
    /// necessarily when moto binds it (another test may take it between): a
    /// moto that exits is started again on another port, and the port only
    /// counts as moto's once it answers moto's own dashboard.
    fn start_with(env: &[(&str, &str)]) -> Moto {
        let venv = repo_root().join(".venv/bin/moto_server");
        let program = if venv.exists() { venv } else { PathBuf::from("moto_server") };
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {} ({e}); run scripts/setup.sh test", program.display()));
            let mut moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = moto.child.try_wait() {
                    last = format!("moto_server on port {port} exited ({status}): the port was taken");
                    break;
                }
                if answers_as_moto(port) {
                    return moto;
                }
                assert!(Instant::now() < deadline, "moto_server did not answer on port {port} within 60 s");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto did not start in five tries; the last: {last}")
    }

    /// An SDK config for the test's own calls to moto (seeding data).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sagemaker::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// A SageMaker training job in moto (which marks it Completed at once,
    /// with a model artifact under s3://dogs/output).
    pub async fn create_completed_training_job(&self, name: &str) {
        use aws_sdk_sagemaker::types::*;
        let sm = aws_sdk_sagemaker::Client::new(&self.sdk_config().await);
        sm.create_training_job()
            .training_job_name(name)
            .role_arn("arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole")
            .algorithm_specification(
                AlgorithmSpecification::builder()
                    .training_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311")
                    .training_input_mode(TrainingInputMode::File)
                    .build(),
            )
            .output_data_config(OutputDataConfig::builder().s3_output_path("s3://dogs/output").build())
            .resource_config(
                ResourceConfig::builder().instance_type(TrainingInstanceType::MlM5Xlarge).instance_count(1).volume_size_in_gb(10).build(),
            )
            .stopping_condition(StoppingCondition::builder().max_runtime_in_seconds(3600).build())
            .send()
            .await
            .expect("moto CreateTrainingJob");
    }

    /// An S3 client for moto (path-style: `bucket.127.0.0.1` does not resolve).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A bucket (where jobs' code, datasets and models go).
    pub async fn create_bucket(&self, name: &str) {
        self.s3().await.create_bucket().bucket(name).send().await.expect("moto CreateBucket");
    }

    /// An IAM role that SageMaker may assume (the launch form lists these).
    pub async fn create_sagemaker_role(&self, name: &str) -> String {
        let iam = aws_sdk_iam::Client::new(&self.sdk_config().await);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role = iam.create_role().role_name(name).assume_role_policy_document(trust).send().await.expect("moto CreateRole");
        role.role().unwrap().arn().to_string()
    }

    /// Writes log lines as SageMaker would: group /aws/sagemaker/TrainingJobs,
    /// one stream per host. `lines` are (host, millis since the epoch, text).
    pub async fn seed_training_logs(&self, job: &str, lines: &[(&str, i64, &str)]) {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.sdk_config().await);
        let group = "/aws/sagemaker/TrainingJobs";
        let _ = logs.create_log_group().log_group_name(group).send().await;
        let mut hosts: Vec<&str> = lines.iter().map(|l| l.0).collect();
        hosts.sort();
        hosts.dedup();
        for host in hosts {
            let stream = format!("{job}/{host}");
            let _ = logs.create_log_stream().log_group_name(group).log_stream_name(&stream).send().await;
            let mut events: Vec<_> = lines
                .iter()
                .filter(|l| l.0 == host)
                .map(|l| aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(l.1).message(l.2).build().unwrap())
                .collect();
            events.sort_by_key(|e| e.timestamp());
            logs.put_log_events().log_group_name(group).log_stream_name(&stream).set_log_events(Some(events)).send().await.expect("moto PutLogEvents");
        }
    }

    /// Puts datapoints in moto's CloudWatch as SageMaker publishes them for
    /// a variant (namespace AWS/SageMaker, EndpointName and VariantName), at
    /// now minus `minutes_ago`: (metric, value, unit).
    pub async fn put_endpoint_metrics(&self, endpoint: &str, minutes_ago: i64, data: &[(&str, f64, &str)]) {
        self.put_metrics("AWS/SageMaker", &[("EndpointName", endpoint), ("VariantName", "AllTraffic")], minutes_ago, data).await;
    }

    /// Puts datapoints in moto's CloudWatch: (metric, value, unit) of
    /// `namespace` with `dimensions`, at now minus `minutes_ago`.
    pub async fn put_metrics(&self, namespace: &str, dimensions: &[(&str, &str)], minutes_ago: i64, data: &[(&str, f64, &str)]) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
        let cw = aws_sdk_cloudwatch::Client::new(&self.sdk_config().await);
        let at = std::time::SystemTime::now() - std::time::Duration::from_secs(60 * minutes_ago as u64);
        for (metric, value, unit) in data {
            let mut datum = MetricDatum::builder()
                .metric_name(*metric)
                .value(*value)
                .unit(StandardUnit::from(*unit))
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(at));
            for (name, value) in dimensions {
                datum = datum.dimensions(Dimension::builder().name(*name).value(*value).build());
            }
            cw.put_metric_data().namespace(namespace).metric_data(datum.build()).send().await.expect("moto PutMetricData");
        }
    }

    /// Sets the account up by hand, as a person would in the console and
    /// with boto3 (tests/fixtures/hand_made_account.py): returns what the
    /// script says it made.
    pub fn hand_made_account(&self) -> Value {
        let venv = repo_root().join(".venv/bin/python");
        let python = if venv.exists() { venv } else { PathBuf::from("python3") };
        let out = Command::new(python)
            .arg(repo_root().join("tests/fixtures/hand_made_account.py"))
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run the hand-made account script with boto3");
        assert!(out.status.success(), "hand_made_account.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the script's JSON summary")
    }

    /// Queues the body moto's InvokeEndpoint answers next (its static route).
    pub async fn queue_endpoint_result(&self, body: &str) {
        let queued = json!({ "results": [
            { "Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic", "CustomAttributes": "" }
        ], "region": "us-east-1" });
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/static/sagemaker/endpoint-results", self.url))
            .json(&queued)
            .send()
            .await
            .expect("moto's endpoint-results route");
        assert!(r.status().is_success(), "moto refused the canned result: {}", r.status());
    }

    /// Creates a notebook instance in moto and returns its name.
    pub async fn create_notebook(&self, name: &str, instance_type: &str) -> String {
        let sm = aws_sdk_sagemaker::Client::new(&self.sdk_config().await);
        sm.create_notebook_instance()
            .notebook_instance_name(name)
            .instance_type(instance_type.into())
            .role_arn("arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole")
            .volume_size_in_gb(5)
            .send()
            .await
            .expect("moto CreateNotebookInstance");
        name.to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a stand-in answers one request with: after how long, the status
/// line, the content type and the body.
pub type Answer = (Duration, &'static str, &'static str, String);

/// A local HTTP server playing AWS: `answer` gets each request, head and
/// body, lower-cased (the `x-amz-target` header names the operation); STS's
/// identity call is answered for it. Returns its URL.
pub async fn aws_stand_in(answer: impl Fn(&str) -> Option<Answer> + Send + Sync + 'static) -> String {
    let answer = std::sync::Arc::new(answer);
    serve_http(move |req: ProxiedRequest| {
        let answer = answer.clone();
        async move {
            let (delay, status, content_type, body) = answer(&req.as_text().to_lowercase()).unwrap_or_else(|| {
                (Duration::ZERO, "200 OK", "text/xml", "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/test</Arn><UserId>AIDTEST</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>".to_string())
            });
            tokio::time::sleep(delay).await;
            answer_with(status, content_type, body.into_bytes())
        }
    })
    .await
}

/// One request as a stand-in sees it: read whole by axum (hyper parses the
/// HTTP; keep-alive, chunked bodies and HEAD are its business).
pub struct ProxiedRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lower-cased, in the order they came.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ProxiedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The request as it went over the wire (request line, headers, body):
    /// what `aws_stand_in`'s answer functions match on.
    pub fn as_text(&self) -> String {
        let headers: String = self.headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        format!("{} {} HTTP/1.1\r\n{headers}\r\n{}", self.method, self.target, String::from_utf8_lossy(&self.body))
    }
}

/// An answer from a status line ("400 Bad Request", "200 OK"), a content
/// type and a body, with the request id AWS's answers carry.
pub fn answer_with(status: &str, content_type: &str, body: Vec<u8>) -> axum::response::Response {
    let code = status.split(' ').next().and_then(|c| c.parse::<u16>().ok()).unwrap_or(500);
    axum::response::Response::builder()
        .status(code)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "1")
        .body(axum::body::Body::from(body))
        .unwrap()
}

/// Serves `handle` on a local port (axum); returns its URL.
pub async fn serve_http<F, Fut>(handle: F) -> String
where
    F: Fn(ProxiedRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = axum::response::Response> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let handle = handle.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
            let headers = parts.headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
            let target = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
            handle(ProxiedRequest { method: parts.method.as_str().to_string(), target, headers, body }).await
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// moto behind a forwarding proxy that records each request the console
/// sends (a JSON-protocol operation's name and body: SageMaker, Application Auto Scaling…, or an S3 request's
/// method and path), and corrects two things moto gets wrong that these
/// tests depend on, answering as AWS does:
/// - moto replaces every training job's MetricDefinitions with its own
///   (`test:dcg`); DescribeTrainingJob answers here carry the definitions of
///   the recorded CreateTrainingJob, as AWS's do;
/// - moto names S3 ListParts' XML root `ListPartsResponse` where S3's
///   contract (and the SDK) has `ListPartsResult`;
/// - moto has no CreatePresignedNotebookInstanceUrl: it is answered here in
///   AWS's shape (`{"AuthorizedUrl": "https://NAME.notebook.REGION.sagemaker.aws?authToken=…"}`).
/// - `age_endpoints` makes endpoints older than moto made them (their
///   CreationTime in ListEndpoints and DescribeEndpoint), for idleness;
/// - moto has no Pricing API: once a test sets prices (`set_prices`),
///   AWSPriceListService.GetProducts is answered here in AWS's shape (one
///   JSON document per product in `PriceList`, as strings), filtered by the
///   request's `regionCode` and `instanceName` terms; before that it goes to
///   moto, which cannot answer it (an unreachable Pricing API).
/// Everything else is moto's answer as it came.
pub struct RecordingProxy {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    /// A SageMaker operation answered with AWS's refusal instead of moto's
    /// answer: (operation, HTTP status, `__type`, message).
    refusal: std::sync::Arc<std::sync::Mutex<Option<(String, u16, String, String)>>>,
    /// Products the Pricing API stand-in lists: (region, instance type, component, USD per hour).
    prices: std::sync::Arc<std::sync::Mutex<Option<Vec<(String, String, String, String)>>>>,
    /// Seconds taken off every endpoint's CreationTime in ListEndpoints and
    /// DescribeEndpoint answers: moto's endpoints are as old as the test,
    /// and idleness is judged over hours.
    endpoint_age: std::sync::Arc<std::sync::Mutex<i64>>,
    /// Fields laid over DescribeEndpoint's answer per endpoint: moto has no
    /// UpdateEndpoint, so the stand-in answers it (as AWS does: the
    /// endpoint's ARN) and the endpoint reads as Updating to the new
    /// configuration until the test moves it on (`overlay_endpoint`).
    endpoint_overlay: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Value>>>,
}

/// One SageMaker "ML Instance" product as GetProducts writes it in `PriceList`.
pub fn price_document(region: &str, instance_type: &str, component: &str, usd: &str) -> String {
    let prefix = if region == "us-east-1" { "USE1".to_string() } else { region.to_uppercase() };
    let usage = match component {
        "Notebook" => "Notebk",
        "Training" => "Train",
        _ => "Host",
    };
    let sku = format!("SKU{:X}", instance_type.len() * 7919 + component.len());
    json!({
        "product": {
            "productFamily": "ML Instance",
            "attributes": {
                "regionCode": region, "instanceName": instance_type, "component": component,
                "usagetype": format!("{prefix}-{usage}:{instance_type}"), "operation": "RunInstance",
                "servicecode": "AmazonSageMaker", "servicename": "Amazon SageMaker", "location": "US East (N. Virginia)",
                "locationType": "AWS Region", "vCpu": "2", "memory": "8 GiB"
            },
            "sku": sku
        },
        "serviceCode": "AmazonSageMaker",
        "terms": { "OnDemand": { format!("{sku}.JRTCKXETXF"): {
            "priceDimensions": { format!("{sku}.JRTCKXETXF.6YS6EN2CT7"): {
                "unit": "Hrs", "endRange": "Inf", "description": format!("${usd} per {component} {instance_type} hour"),
                "appliesTo": [], "rateCode": format!("{sku}.JRTCKXETXF.6YS6EN2CT7"), "beginRange": "0",
                "pricePerUnit": { "USD": usd }
            }},
            "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "JRTCKXETXF", "termAttributes": {}
        }}},
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z"
    })
    .to_string()
}

impl RecordingProxy {
    /// From now on endpoints read as created `hours` hours before moto made them.
    pub fn age_endpoints(&self, hours: i64) {
        *self.endpoint_age.lock().unwrap() = hours * 3600;
    }

    /// From now on the Pricing API stand-in answers with these products:
    /// (region, instance type, component, USD per hour as AWS writes it).
    pub fn set_prices(&self, products: &[(&str, &str, &str, &str)]) {
        *self.prices.lock().unwrap() =
            Some(products.iter().map(|(r, t, c, p)| (r.to_string(), t.to_string(), c.to_string(), p.to_string())).collect());
    }

    pub async fn start(upstream: &str) -> RecordingProxy {
        let requests: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>> = Default::default();
        let refusal: std::sync::Arc<std::sync::Mutex<Option<(String, u16, String, String)>>> = Default::default();
        let prices: std::sync::Arc<std::sync::Mutex<Option<Vec<(String, String, String, String)>>>> = Default::default();
        let endpoint_age: std::sync::Arc<std::sync::Mutex<i64>> = Default::default();
        let endpoint_overlay: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Value>>> = Default::default();
        let (upstream, recorded, refusing, pricing, aging, overlays) =
            (upstream.to_string(), requests.clone(), refusal.clone(), prices.clone(), endpoint_age.clone(), endpoint_overlay.clone());
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = serve_http(move |req: ProxiedRequest| {
            let (upstream, recorded, client, refusing, pricing, aging, overlays) =
                (upstream.clone(), recorded.clone(), client.clone(), refusing.clone(), pricing.clone(), aging.clone(), overlays.clone());
            async move {
                let ProxiedRequest { method, target, headers, body } = req;
                let operation = headers.iter().find(|(k, _)| k == "x-amz-target").map(|(_, v)| v.clone()).unwrap_or_default();
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Some((_, name)) = operation.rsplit_once('.') {
                    // SageMaker.CreateTrainingJob, AnyScaleFrontendService.DescribeScalingActivities…
                    recorded.lock().unwrap().push((name.to_string(), json.clone()));
                } else if operation.is_empty() {
                    recorded.lock().unwrap().push((format!("{method} {target}"), Value::Null));
                }
                // What the stand-ins answer here instead of moto: (status line, JSON body).
                let refused = refusing.lock().unwrap().clone().filter(|(op, ..)| operation == format!("SageMaker.{op}"));
                let products = pricing.lock().unwrap().clone();
                let stand_in: Option<(String, Value)> = if let Some((_, status, kind, message)) = refused {
                    Some((format!("{status} Refused"), json!({ "__type": kind, "message": message })))
                } else if let (true, Some(products)) = (operation == "AWSPriceListService.GetProducts", products) {
                    let term = |field: &str| {
                        json["Filters"].as_array().and_then(|f| f.iter().find(|f| f["Field"] == field)).and_then(|f| f["Value"].as_str()).map(str::to_string)
                    };
                    let (region, instance) = (term("regionCode"), term("instanceName"));
                    let list: Vec<String> = products
                        .iter()
                        .filter(|(r, t, ..)| region.as_deref().is_none_or(|x| x == r) && instance.as_deref().is_none_or(|x| x == t))
                        .map(|(r, t, c, p)| price_document(r, t, c, p))
                        .collect();
                    Some(("200 OK".into(), json!({ "FormatVersion": "aws_v1", "PriceList": list })))
                } else if operation == "SageMaker.UpdateEndpoint" {
                    let name = json["EndpointName"].as_str().unwrap_or_default().to_string();
                    let mut overlays = overlays.lock().unwrap();
                    let overlay = overlays.entry(name.clone()).or_insert_with(|| json!({}));
                    overlay["EndpointConfigName"] = json["EndpointConfigName"].clone();
                    overlay["EndpointStatus"] = json!("Updating");
                    Some(("200 OK".into(), json!({ "EndpointArn": format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}") })))
                } else if operation == "SageMaker.CreatePresignedNotebookInstanceUrl" {
                    let name = json["NotebookInstanceName"].as_str().unwrap_or_default();
                    Some(("200 OK".into(), json!({ "AuthorizedUrl": format!("https://{name}.notebook.us-east-1.sagemaker.aws?authToken=stand-in-token") })))
                } else {
                    None
                };
                if let Some((status, body)) = stand_in {
                    return answer_with(&status, "application/x-amz-json-1.1", body.to_string().into_bytes());
                }
                let mut request = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{upstream}{target}")).body(body);
                for (k, v) in &headers {
                    if !matches!(k.as_str(), "host" | "content-length" | "connection" | "expect") {
                        request = request.header(k, v);
                    }
                }
                let Ok(response) = request.send().await else {
                    return answer_with("502 Bad Gateway", "text/plain", b"moto did not answer".to_vec());
                };
                let status = response.status();
                let response_headers = response.headers().clone();
                let mut answer = response.bytes().await.unwrap_or_default().to_vec();
                let shift = *aging.lock().unwrap();
                if shift > 0 && status.is_success() && matches!(operation.as_str(), "SageMaker.ListEndpoints" | "SageMaker.DescribeEndpoint") {
                    if let Ok(mut v) = serde_json::from_slice::<Value>(&answer) {
                        let older = |t: &mut Value| {
                            if let Some(secs) = t.as_f64() {
                                *t = json!(secs - shift as f64);
                            }
                        };
                        older(&mut v["CreationTime"]);
                        if let Some(list) = v["Endpoints"].as_array_mut() {
                            list.iter_mut().for_each(|e| older(&mut e["CreationTime"]));
                        }
                        answer = serde_json::to_vec(&v).unwrap();
                    }
                }
                if operation == "SageMaker.DescribeEndpoint" && status.is_success() {
                    let overlay = json["EndpointName"].as_str().and_then(|n| overlays.lock().unwrap().get(n).cloned());
                    if let (Some(Value::Object(fields)), Ok(mut described)) = (overlay, serde_json::from_slice::<Value>(&answer)) {
                        for (k, v) in fields {
                            if v.is_null() {
                                described.as_object_mut().map(|o| o.remove(&k));
                            } else {
                                described[k] = v;
                            }
                        }
                        answer = serde_json::to_vec(&described).unwrap();
                    }
                }
                if operation == "SageMaker.DescribeTrainingJob" && status.is_success() {
                    let sent = recorded.lock().unwrap().iter().rev().find(|(op, b)| op == "CreateTrainingJob" && b["TrainingJobName"] == json["TrainingJobName"]).map(|(_, b)| b.clone());
                    if let (Some(sent), Ok(mut described)) = (sent, serde_json::from_slice::<Value>(&answer)) {
                        described["AlgorithmSpecification"]["MetricDefinitions"] =
                            sent["AlgorithmSpecification"].get("MetricDefinitions").cloned().unwrap_or(json!([]));
                        answer = serde_json::to_vec(&described).unwrap();
                    }
                }
                if method == "GET" && target.contains("uploadId=") && answer.starts_with(b"<?xml") {
                    let text = String::from_utf8_lossy(&answer).replace("ListPartsResponse", "ListPartsResult");
                    answer = text.into_bytes();
                }
                let mut out = axum::response::Response::builder().status(status.as_u16());
                for (k, v) in &response_headers {
                    if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
                        out = out.header(k.as_str(), v.as_bytes());
                    }
                }
                if method == "HEAD" {
                    // HEAD answers carry the object's length and no body.
                    if let Some(length) = response_headers.get("content-length") {
                        out = out.header("content-length", length.as_bytes());
                    }
                    answer.clear();
                }
                out.body(axum::body::Body::from(answer)).unwrap()
            }
        })
        .await;
        RecordingProxy { url, requests, refusal, prices, endpoint_age, endpoint_overlay }
    }

    /// Lays `fields` over endpoint `name`'s DescribeEndpoint answers (a null
    /// removes the field): how the test moves a rollout through the states
    /// SageMaker reports (Updating with a PendingDeploymentSummary, RollingBack, InService).
    pub fn overlay_endpoint(&self, name: &str, fields: Value) {
        let mut overlays = self.endpoint_overlay.lock().unwrap();
        let overlay = overlays.entry(name.to_string()).or_insert_with(|| json!({}));
        if let (Some(o), Value::Object(f)) = (overlay.as_object_mut(), fields) {
            o.extend(f);
        }
    }

    /// From now on, `operation` gets AWS's refusal (`kind`, `message`) instead of moto's answer.
    pub fn refuse(&self, operation: &str, status: u16, kind: &str, message: &str) {
        *self.refusal.lock().unwrap() = Some((operation.into(), status, kind.into(), message.into()));
    }

    /// Lets every operation through to moto again.
    pub fn clear_refusal(&self) {
        *self.refusal.lock().unwrap() = None;
    }

    /// The bodies of the recorded requests of one operation (`CreateTrainingJob`).
    pub fn sent(&self, operation: &str) -> Vec<Value> {
        self.requests.lock().unwrap().iter().filter(|(op, _)| op == operation).map(|(_, b)| b.clone()).collect()
    }
}

/// Where the console finds AWS.
pub enum AwsSetup<'a> {
    /// No credentials, no region, no config files: the embedded default.
    None,
    /// The standard chain pointed at a moto server through AWS_ENDPOINT_URL.
    Moto(&'a Moto),
    /// Credentials and a region, but an endpoint where nothing listens.
    Unreachable,
    /// Credentials and a region, and this endpoint (a test's own stand-in).
    Endpoint(String),
}

/// A running `sagedeck` with its own data directory, stopped on drop.
pub struct App {
    child: Option<Child>,
    pub url: String,
    pub data_dir: tempfile::TempDir,
    log_path: PathBuf,
    http: reqwest::Client,
    /// The session the helpers call with, once `use_session` set one.
    session: std::sync::Mutex<Option<Session>>,
}

/// The password of the users `App::spawn_with_users` creates.
pub const PASSWORD: &str = "a long test password";

/// A signed-in browser session: its cookie and the CSRF token to echo.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// Adds a user to the database in `data_dir` with `sagedeck user add`.
pub fn add_user(data_dir: &Path, name: &str, role: &str) {
    use std::io::Write;
    let mut child = Command::new(server_binary())
        .args(["user", "add", name, "--role", role, "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sagedeck user add");
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Puts the child in a clean AWS environment: nothing from the developer's
/// machine (profiles, keys, instance metadata) can leak into a test.
pub fn clean_aws_env(cmd: &mut Command, aws: &AwsSetup<'_>) {
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    let nowhere = "/nonexistent/sagedeck-tests";
    cmd.env("AWS_CONFIG_FILE", nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", nowhere)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let endpoint = match aws {
        AwsSetup::None => return,
        AwsSetup::Moto(moto) => moto.url.clone(),
        AwsSetup::Unreachable => format!("http://127.0.0.1:{}", free_port()),
        AwsSetup::Endpoint(url) => url.clone(),
    };
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
}

impl App {
    pub fn spawn(aws: AwsSetup<'_>) -> App {
        Self::spawn_with(aws, &[])
    }

    pub fn spawn_with(aws: AwsSetup<'_>, extra_args: &[&str]) -> App {
        Self::spawn_in(tempfile::tempdir().unwrap(), aws, extra_args)
    }

    /// Starts the server on an existing data folder (its database, datasets and jobs).
    pub fn spawn_in(data_dir: tempfile::TempDir, aws: AwsSetup<'_>, extra_args: &[&str]) -> App {
        let log_path = data_dir.path().join("server.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let mut cmd = Command::new(server_binary());
        if !extra_args.contains(&"--bind") {
            cmd.args(["--bind", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir")
            .arg(data_dir.path())
            .arg("--site-root")
            .arg(site_root())
            .args(extra_args)
            .env("SAGEDECK_LOG", "info,sagedeck=debug")
            .stdout(Stdio::piped())
            .stderr(log);
        clean_aws_env(&mut cmd, &aws);
        let mut child = cmd.spawn().expect("start sagedeck");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("sagedeck listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("sagedeck did not start within 60 s; its log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
        };
        // Redirects are answers to check (the sign-in form's 303), not to follow.
        // Idle connections are dropped before the server's header timeout
        // (10 s) closes them: a request sent on one just as the server closes
        // it fails with "IncompleteMessage" (seen once in CI after a long step).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        App { child: Some(child), url, data_dir, log_path, http, session: std::sync::Mutex::new(None) }
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }

    /// Kills the server with SIGKILL, as a crash or power cut would, and
    /// starts a new one on the same data folder.
    pub fn crash_and_restart(self) -> App {
        self.crash_and_restart_with(AwsSetup::None)
    }

    /// SIGKILL, then a new process on the same data folder with `aws`.
    pub fn crash_and_restart_with(self, aws: AwsSetup<'_>) -> App {
        self.down_for(std::time::Duration::ZERO, aws)
    }

    /// SIGKILL, `down` with no server, then a new process on the same data folder.
    pub fn down_for(mut self, down: std::time::Duration, aws: AwsSetup<'_>) -> App {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        std::thread::sleep(down);
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        let app = App::spawn_in(data_dir, aws, &[]);
        // Sessions live in SQLite: the same cookie works after the restart.
        app.use_session(self.session.lock().unwrap().take());
        app
    }

    /// Calls a server function that takes a JSON body.
    pub async fn call_json(&self, endpoint: &str, body: &Value) -> (u16, Value) {
        Self::answer(self.api(endpoint).json(body)).await
    }

    fn api(&self, endpoint: &str) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}/api/{endpoint}", self.url)).header("accept", "application/json");
        match self.session.lock().unwrap().as_ref() {
            Some(s) => request.header("cookie", &s.cookie).header("x-sagedeck-csrf", &s.csrf).header("origin", &self.url),
            None => request,
        }
    }

    /// Starts a console with sign-in on and three users, `admin`, `operator`
    /// and `viewer` (their role as name, password [`PASSWORD`]).
    pub fn spawn_with_users(aws: AwsSetup<'_>, extra_args: &[&str]) -> App {
        let dir = tempfile::tempdir().unwrap();
        for role in ["admin", "operator", "viewer"] {
            add_user(dir.path(), role, role);
        }
        App::spawn_in(dir, aws, extra_args)
    }

    /// Signs in through the login form as a browser would (GET the form for
    /// its CSRF cookie, POST it back); `Err((status, page))` when refused.
    pub async fn sign_in(&self, name: &str, password: &str) -> Result<Session, (u16, String)> {
        let form = self.http.get(format!("{}/login", self.url)).send().await.expect("GET /login");
        let csrf = set_cookies(form.headers()).into_iter().find(|(k, _)| k == "sagedeck_csrf").map(|(_, v)| v).expect("a CSRF cookie");
        let res = self
            .http
            .post(format!("{}/auth/login", self.url))
            .header("origin", &self.url)
            .header("cookie", format!("sagedeck_csrf={csrf}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&[("name", name), ("password", password), ("csrf", &csrf), ("next", "/")]))
            .send()
            .await
            .expect("POST /auth/login");
        let status = res.status().as_u16();
        let cookies = set_cookies(res.headers());
        if status != 303 {
            return Err((status, res.text().await.unwrap_or_default()));
        }
        let get = |name: &str| cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).expect(name);
        let (session, csrf) = (get("sagedeck_session"), get("sagedeck_csrf"));
        Ok(Session { cookie: format!("sagedeck_session={session}; sagedeck_csrf={csrf}"), csrf })
    }

    /// Makes the helpers (`call`, `call_json`, …) act as this session.
    pub fn use_session(&self, session: Option<Session>) {
        *self.session.lock().unwrap() = session;
    }

    /// Any request, exactly as given: status, headers, body text.
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", self.url)).body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let res = request.send().await.expect("request to sagedeck");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap_or_default())
    }

    /// The status and the decoded JSON (or the raw text when it is not JSON).
    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let res = request.send().await.expect("POST");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text));
        (status, value)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The server's resident memory now and at its peak (VmRSS, VmHWM), in MB.
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// `host:port` of the server, for requests written by hand.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Sends SIGTERM and says how long the process took to exit (`None`
    /// after `limit`; it is then killed).
    pub fn terminate_within(mut self, limit: Duration) -> Option<Duration> {
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                return Some(started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET a page; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self.http.get(format!("{}{path}", self.url)).send().await.expect("GET");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    }

    /// Calls a server function the way the browser does (form-encoded POST,
    /// JSON answer); returns status and the decoded JSON.
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let request = self.api(endpoint).header("content-type", "application/x-www-form-urlencoded").body(form_encode(form));
        Self::answer(request).await
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sagedeck did not stop within 20 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failing test's server log goes with its data folder; its warnings,
        // errors and last lines go to the test's output instead, so that a
        // 500 "the server log says why" can be read after the fact.
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let problems: Vec<&str> = lines.iter().copied().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
            eprintln!(
                "--- the server's warnings and errors ({} of {} lines) ---\n{}\n--- its last 30 lines ---\n{}",
                problems.len(),
                lines.len(),
                problems[problems.len().saturating_sub(40)..].join("\n"),
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
    }
}

/// Runs the sagedeck binary with a subcommand (train, demo-data…) and returns its output.
pub fn sagedeck_cli(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(server_binary());
    cmd.args(args);
    clean_aws_env(&mut cmd, &AwsSetup::None);
    let out = cmd.output().expect("run sagedeck");
    if !out.status.success() {
        panic!(
            "sagedeck {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// The name=value pairs of a response's Set-Cookie headers.
pub fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(super::form_encode(&[("name", "a b&c/d")]), "name=a+b%26c%2Fd");
    }
}

impl App {
    /// Deploys moto's completed `training_job` as SageMaker endpoint `name`
    /// (one ml.m5.large) through the console; returns the endpoint's detail.
    pub async fn deploy_sagemaker_endpoint(&self, name: &str, training_job: &str) -> Value {
        let spec = json!({ "spec": { "name": name, "training_job": training_job, "image": "", "role_arn": "",
            "instance_type": "ml.m5.large", "instance_count": 1 } });
        let (code, detail) = self.call_json("endpoints/sagemaker/deploy", &spec).await;
        assert_eq!(code, 200, "{detail}");
        detail
    }

    /// The seeds' situation: endpoint `endpoint`'s Lambda set up by the
    /// console as `function`, whose role (`FUNCTION-role`) then gets
    /// AmazonSageMakerFullAccess in place of the scoped policy.
    pub async fn over_privileged_lambda(&self, moto: &Moto, endpoint: &str, function: &str) {
        let setup = json!({ "spec": { "endpoint": endpoint, "function_name": function, "memory_mb": 256, "timeout_s": 30 } });
        let (code, report) = self.call_json("lambda/setup", &setup).await;
        assert_eq!(code, 200, "{report}");
        let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
        let role = format!("{function}-role");
        iam.delete_role_policy().role_name(&role).policy_name("invoke-one-endpoint").send().await.unwrap();
        iam.attach_role_policy().role_name(&role).policy_arn("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess").send().await.unwrap();
    }

    /// Deploys local job `job` as endpoint `name`: one replica, batches of up
    /// to `max_batch` with `max_wait_ms` of wait, a queue of `queue`.
    pub async fn deploy_local_endpoint(&self, name: &str, job: i64, max_batch: u32, max_wait_ms: u32, queue: u32) -> Value {
        let spec = json!({ "spec": { "name": name, "job_id": job, "instances": 1,
            "batching": { "max_batch": max_batch, "max_wait_ms": max_wait_ms, "queue_capacity": queue } } });
        let (code, detail) = self.call_json("endpoints/local/deploy", &spec).await;
        assert_eq!(code, 200, "deploying {name}: {detail}");
        detail
    }

    /// POSTs raw bytes (an invocation): status, headers and body text.
    pub async fn post_bytes(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.http.post(format!("{}{path}", self.url)).body(body);
        if let Some(s) = self.session.lock().unwrap().as_ref() {
            request = request.header("cookie", &s.cookie).header("x-sagedeck-csrf", &s.csrf).header("origin", &self.url);
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("request to sagedeck");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap_or_default())
    }

    /// Trains a small job (5 shape classes × 60 images, 32 px, 2 epochs)
    /// through the console and returns its id and its demo dataset folder.
    pub async fn completed_small_job(&self) -> (i64, PathBuf) {
        let data = self.data_path().join("small-demo");
        sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap(), "--per-class", "60", "--size", "32"]);
        let spec = json!({ "spec": {
            "name": "small", "dataset": data.display().to_string(), "architecture": "resnet18", "image_size": 32, "epochs": 2,
            "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
            "backbone_weights": null, "freeze_backbone": false, "seed": 1
        }});
        let (code, created) = self.call_json("training/local/create", &spec).await;
        assert_eq!(code, 200, "{created}");
        let id = created["id"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (_, detail) = self.call("training/local/get", &[("id", &id.to_string())]).await;
            match detail["summary"]["status"].as_str() {
                Some("Completed") => return (id, data),
                Some("Failed" | "Cancelled" | "Interrupted") => panic!("the small job did not complete: {detail:#}"),
                _ if Instant::now() > deadline => panic!("the small job took over 5 min: {detail:#}\n{}", self.log()),
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}

/// Writes the image variants the invoke tests send, made from `src` with
/// Pillow (from the project's venv): photo-like JPEG, PNG, CMYK JPEG,
/// grayscale PNG, PNG with alpha, a huge-but-valid PNG, a GIF, and a JPEG
/// cut in half.
pub fn image_variants(src: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let script = r#"
import sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB").resize((320, 240))
im.save(f"{out}/photo.jpg", quality=90)
im.save(f"{out}/photo.png")
im.convert("CMYK").save(f"{out}/cmyk.jpg", quality=90)
im.convert("L").save(f"{out}/gray.png")
rgba = im.convert("RGBA"); rgba.putalpha(128); rgba.save(f"{out}/alpha.png")
im.resize((6000, 4500), Image.NEAREST).save(f"{out}/huge.png", optimize=True)
im.save(f"{out}/photo.gif")
data = open(f"{out}/photo.jpg", "rb").read()
open(f"{out}/truncated.jpg", "wb").write(data[: len(data) // 2])
"#;
    let venv = repo_root().join(".venv/bin/python");
    let python = if venv.exists() { venv } else { PathBuf::from("python3") };
    let status = Command::new(python).args(["-c", script]).arg(src).arg(out).status().expect("run python with Pillow");
    assert!(status.success(), "making the image variants failed");
}
