//! Lambda through the running server: a local function forwards the seeds'
//! events to a local endpoint, throttles above its reserved concurrency with
//! Lambda's TooManyRequestsException, keeps provisioned environments warm,
//! and reverts a concurrency change; against moto, the endpoint's function
//! is set up with a role scoped to that endpoint (read back from moto's
//! IAM), its reserved concurrency is put and removed, and provisioned
//! concurrency, which moto does not serve, is reported as such.

use base64::Engine;
use sagedeck_tests::{App, AwsSetup, Moto};
use serde_json::{json, Value};
use std::path::PathBuf;

async fn describe(app: &App, home: &str, name: &str) -> Value {
    let (code, d) = app.call("lambda/describe", &[("home", home), ("name", name)]).await;
    assert_eq!(code, 200, "{d}");
    d
}

#[tokio::test]
async fn a_local_function_forwards_to_its_endpoint_and_throttles_above_its_reserved_concurrency() {
    let app = App::spawn(AwsSetup::None);
    let (job, data) = app.completed_small_job().await;
    app.deploy_local_endpoint("shapes", job, 1, 0, 256).await;

    let create = |name: &str, reserved: Value, provisioned: Value| {
        json!({ "spec": { "name": name, "endpoint": "shapes", "reserved": reserved, "provisioned": provisioned } })
    };
    // Refused: the account must keep 100 unreserved; provisioned must fit reserved; unknown endpoint.
    let (code, err) = app.call_json("lambda/local/create", &create("f", json!(950), Value::Null)).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("must keep 100"), "{err}");
    let (code, err) = app.call_json("lambda/local/create", &create("f", json!(3), json!(5))).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("within reserved"), "{err}");
    let (code, err) = app.call_json("lambda/local/create", &json!({ "spec": { "name": "f", "endpoint": "nope", "reserved": null, "provisioned": null } })).await;
    assert_eq!(code, 404, "{err}");

    let (code, f) = app.call_json("lambda/local/create", &create("invoke-shapes", json!(3), json!(1))).await;
    assert_eq!(code, 200, "{f}");
    assert_eq!(f["summary"]["reserved"], 3);
    assert_eq!(f["warm"], 1, "the provisioned environment is initialised up front");

    let image = {
        let dir = data.join("test").join("002.Square");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        std::fs::read(&files[0]).unwrap()
    };
    let event = json!({ "image_base64": base64::engine::general_purpose::STANDARD.encode(&image) }).to_string().into_bytes();

    // The seeds' reply: statusCode 200 and the logits as the body; the
    // provisioned environment answers without an init.
    let (code, headers, body) = app.post_bytes("/functions/invoke-shapes/invocations", Some("application/json"), event.clone()).await;
    assert_eq!(code, 200, "{body}");
    assert!(!headers.contains_key("x-sagedeck-init-duration-ms"), "warm from provisioning");
    assert!(headers.contains_key("x-amzn-requestid"));
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["statusCode"], 200);
    let logits: Vec<Vec<f64>> = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(logits[0].len(), 5);
    // Lambda's own path works too.
    let (code, _, _) = app.post_bytes("/2015-03-31/functions/invoke-shapes/invocations", Some("application/json"), event.clone()).await;
    assert_eq!(code, 200);

    // 16 at once against a reservation of 3: some answered, the rest
    // refused with Lambda's shape, and never more than 3 ran at once.
    let mut calls = Vec::new();
    for _ in 0..16 {
        let (url, event) = (app.url.clone(), event.clone());
        calls.push(tokio::spawn(async move {
            let r = reqwest::Client::new().post(format!("{url}/functions/invoke-shapes/invocations")).body(event).send().await.unwrap();
            let kind = r.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), kind, r.text().await.unwrap())
        }));
    }
    let mut ok = 0;
    let mut throttled = 0;
    for c in calls {
        let (status, kind, body) = c.await.unwrap();
        match status {
            200 => ok += 1,
            429 => {
                throttled += 1;
                assert_eq!(kind.as_deref(), Some("TooManyRequestsException"));
                let b: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(b["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded", "{b}");
                assert_eq!(b["message"], "Rate Exceeded.");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let d = describe(&app, "Local", "invoke-shapes").await;
    eprintln!("16 concurrent invocations, reserved 3: {ok} answered, {throttled} throttled, peak {} at once", d["peak_in_flight"]);
    assert!(ok >= 3 && throttled >= 1, "{ok} ok, {throttled} throttled");
    assert_eq!(d["peak_in_flight"], 3, "exactly the reservation ran at once, never more");
    assert_eq!(d["in_flight"], 0);

    // Reserved 0 throttles everything: exactly above 0.
    let (code, d) = app.call("lambda/reserved", &[("home", "Local"), ("name", "invoke-shapes"), ("value", "0")]).await;
    assert_eq!(code, 400, "provisioned 1 does not fit a reservation of 0: {d}");
    let (code, _) = app.call("lambda/provisioned", &[("home", "Local"), ("name", "invoke-shapes"), ("qualifier", "live")]).await;
    assert_eq!(code, 200, "provisioned removed");
    let (code, d) = app.call("lambda/reserved", &[("home", "Local"), ("name", "invoke-shapes"), ("value", "0")]).await;
    assert_eq!(code, 200, "{d}");
    let (code, headers, _) = app.post_bytes("/functions/invoke-shapes/invocations", Some("application/json"), event.clone()).await;
    assert_eq!((code, headers["x-amzn-errortype"].to_str().unwrap()), (429, "TooManyRequestsException"));
    let (code, err) = app.call("lambda/invoke", &[("home", "Local"), ("name", "invoke-shapes"), ("event", "{}")]).await;
    assert_eq!(code, 429, "{err}");

    // Revert to 3 from the journal, then a cold start (no provisioned
    // environment left) and a warm one.
    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let change = journal.as_array().unwrap().iter().find(|e| e["action"] == "lambda.reserved" && e["outcome"] == "ok").unwrap().clone();
    assert_eq!((change["before"].as_str(), change["after"].as_str()), (Some("3"), Some("0")));
    let (code, reverted) = app.call("journal/revert", &[("id", &change["id"].to_string())]).await;
    assert_eq!(code, 200, "{reverted}");
    assert_eq!(describe(&app, "Local", "invoke-shapes").await["summary"]["reserved"], 3);
    // With LogType=Tail, as `aws lambda invoke --log-type Tail` asks: the
    // invocation's own lines, its REPORT with a real Init Duration when cold.
    let tail_of = |headers: &reqwest::header::HeaderMap| {
        let encoded = headers["x-amz-log-result"].to_str().unwrap().to_string();
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap()).unwrap()
    };
    let tail_headers = [("content-type", "application/json"), ("x-amz-log-type", "Tail")];
    let (code, headers, _) = app.raw("POST", "/functions/invoke-shapes/invocations", &tail_headers, event.clone()).await;
    assert_eq!(code, 200);
    assert!(headers.contains_key("x-sagedeck-init-duration-ms"), "a new environment pays an init");
    let cold = tail_of(&headers);
    let request_id = headers["x-amzn-requestid"].to_str().unwrap().to_string();
    assert_eq!(cold.matches("REPORT RequestId").count(), 1, "only this invocation's REPORT:\n{cold}");
    assert!(cold.contains(&format!("REPORT RequestId: {request_id}")), "{cold}");
    let init_ms: f64 = cold.split("Init Duration: ").nth(1).and_then(|r| r.split(' ').next()).and_then(|v| v.parse().ok()).expect("an Init Duration");
    assert!(init_ms > 0.0, "a cold start's init takes time: {cold}");
    let (_, headers, _) = app.raw("POST", "/functions/invoke-shapes/invocations", &tail_headers, event.clone()).await;
    assert!(!headers.contains_key("x-sagedeck-init-duration-ms"), "the next one is warm");
    let warm = tail_of(&headers);
    assert_eq!(warm.matches("REPORT RequestId").count(), 1, "{warm}");
    assert!(!warm.contains("Init Duration"), "a warm invocation reports no init: {warm}");

    // Bad events: not JSON, JSON the handler cannot use, unknown function, $LATEST.
    let (code, headers, _) = app.post_bytes("/functions/invoke-shapes/invocations", Some("application/json"), b"{not json".to_vec()).await;
    assert_eq!((code, headers["x-amzn-errortype"].to_str().unwrap()), (400, "InvalidRequestContentException"));
    let (code, headers, body) = app.post_bytes("/functions/invoke-shapes/invocations", Some("application/json"), br#"{"colour":"red"}"#.to_vec()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert!(body.contains("errorMessage"), "{body}");
    let (code, headers, _) = app.post_bytes("/functions/nobody/invocations", Some("application/json"), b"{}".to_vec()).await;
    assert_eq!((code, headers["x-amzn-errortype"].to_str().unwrap()), (404, "ResourceNotFoundException"));
    let (code, err) = app.call("lambda/provisioned", &[("home", "Local"), ("name", "invoke-shapes"), ("qualifier", "$LATEST"), ("value", "1")]).await;
    assert_eq!(code, 400, "{err}");

    // The test button's log tail: this invocation's START, END and REPORT.
    let (code, out) = app.call("lambda/invoke", &[("home", "Local"), ("name", "invoke-shapes"), ("event", &String::from_utf8(event).unwrap())]).await;
    assert_eq!(code, 200, "{out}");
    let tail = out["log_tail"].as_str().unwrap();
    assert!(tail.contains("START RequestId") && tail.contains("END RequestId") && tail.contains("REPORT RequestId"), "{tail}");
    assert_eq!(tail.matches("REPORT RequestId").count(), 1, "{tail}");

    // Its metrics, as CloudWatch's AWS/Lambda names them: every call that
    // ran (the handler's failure included), every throttle, the most at once.
    let (code, m) = app.call("lambda/metrics", &[("home", "Local"), ("name", "invoke-shapes"), ("window", "Hour")]).await;
    assert_eq!(code, 200, "{m}");
    let points = |m: &Value, name: &str| -> Vec<f64> {
        let s = m["series"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}: {m}"));
        s["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect()
    };
    let ran = (ok + 6) as f64;
    assert_eq!(points(&m, "Invocations").iter().sum::<f64>(), ran, "{m}");
    assert_eq!(points(&m, "Throttles").iter().sum::<f64>(), (throttled + 2) as f64, "{m}");
    assert_eq!(points(&m, "Errors").iter().sum::<f64>(), 1.0, "the event the handler could not use: {m}");
    assert_eq!(points(&m, "ConcurrentExecutions").iter().copied().fold(0.0, f64::max), 3.0, "{m}");
    assert!(points(&m, "Duration").iter().all(|ms| *ms > 0.0) && !points(&m, "Duration").is_empty(), "{m}");
    assert_eq!(points(&m, "Invocations").len(), 61, "one point per minute of the hour");

    // A restart keeps the function, its configuration and its metrics.
    let app = app.crash_and_restart();
    let (code, m) = app.call("lambda/metrics", &[("home", "Local"), ("name", "invoke-shapes"), ("window", "Day")]).await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(points(&m, "Invocations").iter().sum::<f64>(), ran, "{m}");
    let d = describe(&app, "Local", "invoke-shapes").await;
    assert_eq!(d["summary"]["reserved"], 3);
    assert_eq!(d["summary"]["endpoint"], "shapes");
}

#[tokio::test]
async fn the_endpoints_function_is_set_up_with_a_scoped_role_and_its_concurrency_edited_against_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    moto.create_completed_training_job("dog-breeds-lambda").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    let endpoint = app.deploy_sagemaker_endpoint("dogs", "dog-breeds-lambda").await;
    let endpoint_arn = endpoint["arn"].as_str().unwrap().to_string();

    let (code, err) = app.call_json("lambda/setup", &json!({ "spec": { "endpoint": "dogs", "function_name": "dogs-invoke", "memory_mb": 64, "timeout_s": 30 } })).await;
    assert_eq!(code, 400, "memory below 128 MB: {err}");
    let (code, report) = app.call_json("lambda/setup", &json!({ "spec": { "endpoint": "dogs", "function_name": "dogs-invoke", "memory_mb": 256, "timeout_s": 30 } })).await;
    assert_eq!(code, 200, "{report}\n{}", app.log());
    eprintln!("set-up steps: {:#}", report["steps"]);

    // The role: trusted by Lambda only, one inline policy, nothing attached.
    let role = iam.get_role().role_name("dogs-invoke-role").send().await.unwrap();
    let trust = percent_decode(role.role().unwrap().assume_role_policy_document().unwrap());
    assert!(trust.contains("lambda.amazonaws.com"), "{trust}");
    let attached = iam.list_attached_role_policies().role_name("dogs-invoke-role").send().await.unwrap();
    assert!(attached.attached_policies().is_empty(), "no managed policy, least of all AmazonSageMakerFullAccess");
    let inline = iam.list_role_policies().role_name("dogs-invoke-role").send().await.unwrap();
    assert_eq!(inline.policy_names(), ["invoke-one-endpoint"]);
    let doc = iam.get_role_policy().role_name("dogs-invoke-role").policy_name("invoke-one-endpoint").send().await.unwrap();
    let policy: Value = serde_json::from_str(&percent_decode(doc.policy_document())).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements[0]["Action"], "sagemaker:InvokeEndpoint");
    assert_eq!(statements[0]["Resource"], endpoint_arn.as_str());
    for s in statements {
        assert_ne!(s["Resource"], "*", "{s}");
        let actions = s["Action"].to_string();
        assert!(actions.contains("sagemaker:InvokeEndpoint") || actions.contains("logs:"), "{actions}");
        if actions.contains("logs:") {
            assert!(s["Resource"].as_str().unwrap().contains("/aws/lambda/dogs-invoke"), "{s}");
        }
    }
    let f = lambda.get_function().function_name("dogs-invoke").send().await.unwrap();
    let c = f.configuration().unwrap();
    assert_eq!(c.environment().unwrap().variables().unwrap()["ENDPOINT_NAME"], "dogs");
    assert_eq!(c.handler(), Some("handler.lambda_handler"));
    assert_eq!(c.role(), role.role().map(|r| r.arn()));

    // A second set-up with the same name fails at the role and leaves nothing new.
    let (code, err) = app.call_json("lambda/setup", &json!({ "spec": { "endpoint": "dogs", "function_name": "dogs-invoke", "memory_mb": 256, "timeout_s": 30 } })).await;
    assert_eq!(code, 409, "{err}");

    // Listed, described; reserved concurrency put, read back from moto, removed.
    let (code, list) = app.call("lambda/list", &[]).await;
    assert_eq!(code, 200, "{list}");
    let row = list["functions"].as_array().unwrap().iter().find(|f| f["name"] == "dogs-invoke").unwrap();
    assert_eq!(row["endpoint"], "dogs");
    let d = describe(&app, "Aws", "dogs-invoke").await;
    assert_eq!(d["summary"]["reserved"], Value::Null);
    assert_eq!(d["facts"]["endpoint_max_instances"], 1, "{d}");
    assert_eq!(d["facts"]["per_instance_per_minute"], Value::Null, "nothing measured before any invocation: {d}");

    // The endpoint served traffic: the check judges with CloudWatch's
    // ModelLatency and OverheadLatency (microseconds), weighted by invocations.
    moto.put_endpoint_metrics("dogs", 20, &[("Invocations", 300.0, "Count"), ("ModelLatency", 183_000.0, "Microseconds"), ("OverheadLatency", 12_000.0, "Microseconds")]).await;
    moto.put_endpoint_metrics("dogs", 10, &[("Invocations", 100.0, "Count"), ("ModelLatency", 187_000.0, "Microseconds"), ("OverheadLatency", 16_000.0, "Microseconds")]).await;
    let d = describe(&app, "Aws", "dogs-invoke").await;
    let per = d["facts"]["per_instance_per_minute"].as_f64().unwrap_or_else(|| panic!("measured: {d}"));
    assert!((per - 60_000.0 / 184.0).abs() < 0.01, "{d}");
    assert!((d["facts"]["latency_ms"].as_f64().unwrap() - 197.0).abs() < 1e-6, "{d}");
    let from = d["facts"]["measured_from"].as_str().unwrap();
    assert!(from.starts_with("ModelLatency 184.0 ms + OverheadLatency 13.0 ms, mean of 400 invocations"), "{from}");
    assert!(from.contains("CloudWatch"), "{from}");
    let (code, d) = app.call("lambda/reserved", &[("home", "Aws"), ("name", "dogs-invoke"), ("value", "5")]).await;
    assert_eq!(code, 200, "{d}");
    let conc = lambda.get_function_concurrency().function_name("dogs-invoke").send().await.unwrap();
    assert_eq!(conc.reserved_concurrent_executions(), Some(5));
    let (code, err) = app.call("lambda/provisioned", &[("home", "Aws"), ("name", "dogs-invoke"), ("qualifier", "1"), ("value", "6")]).await;
    assert_eq!(code, 400, "6 provisioned do not fit 5 reserved: {err}");
    let (code, err) = app.call("lambda/provisioned", &[("home", "Aws"), ("name", "dogs-invoke"), ("qualifier", "1"), ("value", "2")]).await;
    assert_ne!(code, 200, "{err}");
    assert!(err["message"].as_str().unwrap().contains("not supported by this AWS endpoint"), "{err}");
    let (code, _) = app.call("lambda/reserved", &[("home", "Aws"), ("name", "dogs-invoke")]).await;
    assert_eq!(code, 200);
    let conc = lambda.get_function_concurrency().function_name("dogs-invoke").send().await.unwrap();
    assert_eq!(conc.reserved_concurrent_executions(), None);

    // The function's own metrics come from CloudWatch's AWS/Lambda.
    moto.put_metrics("AWS/Lambda", &[("FunctionName", "dogs-invoke")], 5, &[("Invocations", 12.0, "Count"), ("Throttles", 2.0, "Count"), ("Duration", 230.0, "Milliseconds"), ("ConcurrentExecutions", 4.0, "Count")]).await;
    let (code, m) = app.call("lambda/metrics", &[("home", "Aws"), ("name", "dogs-invoke"), ("window", "Hour")]).await;
    assert_eq!(code, 200, "{m}");
    let value = |name: &str| -> Vec<f64> {
        let s = m["series"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}: {m}"));
        s["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect()
    };
    assert_eq!((value("Invocations"), value("Throttles"), value("Duration"), value("ConcurrentExecutions")), (vec![12.0], vec![2.0], vec![230.0], vec![4.0]), "{m}");
    assert!(m["source"].as_str().unwrap().contains("AWS/Lambda"), "{m}");

    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let actions: Vec<&str> = journal.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"lambda.setup") && actions.contains(&"lambda.reserved") && actions.contains(&"lambda.provisioned"), "{actions:?}");
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
