//! Endpoints through the running server: a local endpoint deployed from a
//! trained job and invoked over HTTP with every kind of image and every kind
//! of bad input, a full queue under 64 clients, restart; and the SageMaker
//! path against moto (deploy, list, describe, invoke with moto's canned
//! answer, CloudWatch metrics, delete).

use sagedeck_tests::{image_variants, sagedeck_cli, App, AwsSetup, Moto};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn deploy_spec(name: &str, job: i64, instances: u32, max_batch: u32, queue: u32) -> Value {
    json!({ "spec": { "name": name, "job_id": job, "instances": instances,
        "batching": { "max_batch": max_batch, "max_wait_ms": 0, "queue_capacity": queue } } })
}

fn first_test_image(data: &Path) -> PathBuf {
    let dir = data.join("test").join("003.Triangle");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.remove(0)
}

/// The offline forward: `sagedeck predict` on the artifact, no server.
fn offline(artifact: &str, image: &Path) -> Vec<f64> {
    let out = sagedeck_cli(&["predict", "--artifact", artifact, image.to_str().unwrap()]);
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    line["logits"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0
}

#[tokio::test]
async fn a_local_endpoint_serves_every_image_kind_refuses_bad_input_and_survives_a_restart() {
    let app = App::spawn(AwsSetup::None);
    let (job, data) = app.completed_small_job().await;

    let (code, detail) = app.call_json("endpoints/local/deploy", &deploy_spec("shapes", job, 2, 8, 32)).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["summary"]["status"], "InService");
    assert_eq!(detail["summary"]["instances"], 2);
    assert_eq!(detail["invoke_path"], "/endpoints/shapes/invocations");
    let artifact = detail["artifact_dir"].as_str().unwrap().to_string();
    assert_eq!(detail["classes"].as_array().unwrap().len(), 5);

    // Deploying the same name twice, or a job that does not exist, is refused in words.
    let (code, err) = app.call_json("endpoints/local/deploy", &deploy_spec("shapes", job, 1, 8, 32)).await;
    assert_eq!(code, 409, "{err}");
    let (code, err) = app.call_json("endpoints/local/deploy", &deploy_spec("other", 999, 1, 8, 32)).await;
    assert_eq!(code, 404, "{err}");
    let (code, err) = app.call_json("endpoints/local/deploy", &deploy_spec("Bad_Name", job, 1, 8, 32)).await;
    assert_eq!(code, 400, "{err}");

    let variants = app.data_path().join("variants");
    image_variants(&first_test_image(&data), &variants);
    let read = |name: &str| std::fs::read(variants.join(name)).unwrap();
    assert!(read("huge.png").len() < 6_000_000, "the huge PNG must fit the limit to test decoding, not the limit");

    // Raw logits, as the seeds' endpoint answers, equal to the offline forward.
    for (file, content_type) in [("photo.jpg", "image/jpeg"), ("photo.png", "image/png")] {
        let (code, headers, body) = app.post_bytes("/endpoints/shapes/invocations", Some(content_type), read(file)).await;
        assert_eq!(code, 200, "{file}: {body}");
        assert_eq!(headers["x-amzn-invoked-production-variant"], "AllTraffic");
        assert!(headers.contains_key("x-sagedeck-model-latency-ms"));
        let rows: Vec<Vec<f64>> = serde_json::from_str(&body).unwrap();
        assert_eq!(rows.len(), 1);
        let expected = offline(&artifact, &variants.join(file));
        assert_eq!(argmax(&rows[0]), argmax(&expected), "{file}: served {:?} vs offline {:?}", rows[0], expected);
        for (a, b) in rows[0].iter().zip(&expected) {
            assert!((a - b).abs() < 1e-3, "{file}: served {:?} vs offline {:?}", rows[0], expected);
        }
    }

    // CMYK JPEG, grayscale PNG, PNG with alpha, a 6000×4500 PNG, the
    // SageMaker x-image type and the Lambda's JSON form all work.
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, read("photo.jpg"));
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("cmyk.jpg", "image/jpeg", read("cmyk.jpg"), "Cmyk"),
        ("gray.png", "image/png", read("gray.png"), "L8"),
        ("alpha.png", "image/png", read("alpha.png"), "Rgba8"),
        ("huge.png", "image/png", read("huge.png"), "Rgb8"),
        ("x-image", "application/x-image", read("photo.jpg"), "Rgb8"),
        ("json", "application/json", json!({ "image_base64": b64 }).to_string().into_bytes(), "Rgb8"),
    ];
    for (what, content_type, body, color) in cases {
        let (code, _, text) = app.post_bytes("/endpoints/shapes/invocations?top_k=5", Some(content_type), body).await;
        assert_eq!(code, 200, "{what}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["predictions"].as_array().unwrap().len(), 5, "{what}");
        let sum: f64 = answer["predictions"].as_array().unwrap().iter().map(|p| p["probability"].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{what}: five of five classes sum to 1");
        assert!(answer["predictions"][0]["class"].as_str().unwrap().len() > 2);
        assert!(answer["model_latency_ms"].as_f64().unwrap() > 0.0);
        assert!(answer["overhead_latency_ms"].as_f64().unwrap() >= 0.0);
        if what != "x-image" && what != "json" {
            assert!(answer["image"]["color"].as_str().unwrap().starts_with(color) || color == "Cmyk", "{what}: {}", answer["image"]);
        }
        if what == "huge.png" {
            assert_eq!(answer["image"]["width"], 6000);
        }
    }

    // Bad input: each gets SageMaker Runtime's status and error code for the
    // same situation (what a model container refuses comes back as
    // ModelError 424 with the container's status), our reason, and nothing breaks.
    let huge_body = vec![0u8; 6 * 1024 * 1024 + 1];
    let bad: Vec<(&str, &str, Option<&str>, Vec<u8>, u16, &str, Option<u16>, &str)> = vec![
        ("over 6 MB", "/endpoints/shapes/invocations", Some("image/jpeg"), huge_body, 413, "ValidationError", None, "6 MB"),
        ("text/plain", "/endpoints/shapes/invocations", Some("text/plain"), b"hi".to_vec(), 424, "ModelError", Some(415), "text/plain is not accepted"),
        ("no type", "/endpoints/shapes/invocations", None, read("photo.jpg"), 424, "ModelError", Some(415), "no Content-Type"),
        ("GIF bytes", "/endpoints/shapes/invocations", Some("image/jpeg"), read("photo.gif"), 424, "ModelError", Some(422), "Gif images are not supported"),
        ("truncated", "/endpoints/shapes/invocations", Some("image/jpeg"), read("truncated.jpg"), 424, "ModelError", Some(422), "truncated"),
        ("not an image", "/endpoints/shapes/invocations", Some("image/png"), b"hello".to_vec(), 424, "ModelError", Some(422), "not a JPEG or PNG"),
        ("empty", "/endpoints/shapes/invocations", Some("image/png"), Vec::new(), 424, "ModelError", Some(422), "empty"),
        ("malformed JSON", "/endpoints/shapes/invocations", Some("application/json"), b"{\"image_base64\":".to_vec(), 424, "ModelError", Some(400), "cannot be read"),
        ("URL fetch off", "/endpoints/shapes/invocations", Some("application/json"), br#"{"url":"https://example.com/a.jpg"}"#.to_vec(), 424, "ModelError", Some(400), "turned off"),
        ("unknown endpoint", "/endpoints/nope/invocations", Some("image/jpeg"), read("photo.jpg"), 400, "ValidationError", None, "Endpoint nope not found"),
    ];
    for (what, path, content_type, body, status, code_name, original, words) in bad {
        let (code, headers, text) = app.post_bytes(path, content_type, body).await;
        assert_eq!(code, status, "{what}: {text}");
        let error_type = headers["x-amzn-errortype"].to_str().unwrap();
        assert!(error_type.starts_with(&format!("{code_name}:")), "{what}: {error_type}");
        let err: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert!(err["message"].as_str().unwrap().contains(words), "{what}: {text}");
        assert_eq!(err["OriginalStatusCode"].as_u64(), original.map(u64::from), "{what}: {text}");
        if original.is_some() {
            assert!(err["OriginalMessage"].as_str().unwrap().contains(words), "{what}: {text}");
        }
    }
    // boto3, a real SageMaker client, catches them as its modelled exceptions.
    let script = r#"
import json, sys, boto3
url, image = sys.argv[1], open(sys.argv[2], "rb").read()
rt = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
out = {}
ok = rt.invoke_endpoint(EndpointName="shapes", ContentType="image/jpeg", Body=image)
out["ok"] = json.loads(ok["Body"].read())
try:
    rt.invoke_endpoint(EndpointName="shapes", ContentType="image/png", Body=b"hello")
except rt.exceptions.ModelError as e:
    out["model_error"] = [e.response["Error"]["Code"], e.response["OriginalStatusCode"], e.response["OriginalMessage"]]
try:
    rt.invoke_endpoint(EndpointName="nope", ContentType="image/jpeg", Body=image)
except rt.exceptions.ValidationError as e:
    out["validation_error"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
print(json.dumps(out))
"#;
    let python = sagedeck_tests::repo_root().join(".venv/bin/python");
    let out = std::process::Command::new(&python).args(["-c", script, &app.url]).arg(variants.join("photo.jpg")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let caught: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(caught["ok"].as_array().unwrap()[0].as_array().unwrap().len(), 5, "{caught}");
    assert_eq!(caught["model_error"][0], "ModelError", "{caught}");
    assert_eq!(caught["model_error"][1], 422);
    assert!(caught["model_error"][2].as_str().unwrap().contains("not a JPEG or PNG"), "{caught}");
    assert_eq!(caught["validation_error"][0], "ValidationError", "{caught}");
    assert!(caught["validation_error"][1].as_str().unwrap().contains("nope"), "{caught}");
    let (code, _) = app.get("/healthz").await;
    assert_eq!(code, 200, "the server is still up");

    // Metrics, under SageMaker's names: 8 + 1 (boto3) good and 9 + 1 (boto3) bad invocations of this endpoint.
    let (code, m) = app.call("endpoints/metrics", &[("backend", "Local"), ("name", "shapes"), ("window", "Hour")]).await;
    assert_eq!(code, 200, "{m}");
    let sum = |m: &Value, name: &str| -> f64 {
        m["series"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).sum()
    };
    assert_eq!(sum(&m, "Invocations"), 19.0, "{m}");
    assert_eq!(sum(&m, "Invocation4XXErrors"), 10.0);
    assert_eq!(sum(&m, "Invocation5XXErrors"), 0.0);
    assert_eq!(sum(&m, "InvocationsPerInstance"), 9.5);
    let names: Vec<&str> = m["series"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    for n in ["Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency", "Invocation4XXErrors", "Invocation5XXErrors"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }

    // 64 clients at once against a 1-replica endpoint with a queue of 4:
    // only 200s and 429s (with Retry-After), and some of each.
    let (code, err) = app.call_json("endpoints/local/deploy", &deploy_spec("tiny-queue", job, 1, 1, 4)).await;
    assert_eq!(code, 200, "{err}");
    let photo = read("photo.jpg");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (url, body) = (format!("{}/endpoints/tiny-queue/invocations", app.url), photo.clone());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new().post(url).header("content-type", "image/jpeg").body(body).send().await.unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").is_some())
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        let (status, retry_after) = t.await.unwrap();
        if status == 429 {
            assert!(retry_after, "a 429 says when to retry");
        }
        *counts.entry(status).or_insert(0) += 1;
    }
    assert!(counts.keys().all(|s| *s == 200 || *s == 429), "{counts:?}");
    assert!(counts.get(&200).copied().unwrap_or(0) >= 4, "{counts:?}");
    assert!(counts.get(&429).copied().unwrap_or(0) > 0, "the queue filled up: {counts:?}");
    println!("64 clients over a queue of 4: {counts:?}");

    // The image test bench on the dataset's own test split.
    let (code, report) = app
        .call("endpoints/testbench", &[("backend", "Local"), ("name", "shapes"), ("folder", data.to_str().unwrap()), ("limit", "40")])
        .await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["images"], 40);
    assert_eq!(report["classes"].as_array().unwrap().len(), 5);
    let confusion_total: u64 = report["confusion"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(confusion_total, 40);
    let wrong = 40 - report["correct"].as_u64().unwrap();
    assert_eq!(report["wrong"].as_array().unwrap().len() as u64, wrong.min(24));
    if wrong > 0 {
        assert!(report["wrong"][0]["thumbnail"].as_str().unwrap().starts_with("data:image/png;base64,"));
    }

    // A crash and a restart: both endpoints come back and serve, and the
    // metrics recorded before the crash are still there. Reading the metrics
    // writes what the 5-second flush has not written yet, so no wait is needed.
    let (_, before) = app.call("endpoints/metrics", &[("backend", "Local"), ("name", "shapes"), ("window", "Day")]).await;
    let recorded = sum(&before, "Invocations");
    assert!(recorded >= 59.0, "19 invocations and the 40 test-bench images: {before}");
    let app = app.crash_and_restart();
    let (code, list) = app.call_json("endpoints/list", &serde_json::json!({ "query": {} })).await;
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> = list["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(list["sagemaker_note"].as_str().unwrap().contains("not configured"), "{list}");
    let (code, _, body) = app.post_bytes("/endpoints/shapes/invocations", Some("image/jpeg"), read("photo.jpg")).await;
    assert_eq!(code, 200, "{body}");
    let (_, m) = app.call("endpoints/metrics", &[("backend", "Local"), ("name", "shapes"), ("window", "Day")]).await;
    assert_eq!(sum(&m, "Invocations"), recorded + 1.0, "metrics survive the restart, and the one after it counts: {m}");

    let (code, _) = app.call("endpoints/delete", &[("backend", "Local"), ("name", "tiny-queue"), ("with_config", "false")]).await;
    assert_eq!(code, 200);
    // As SageMaker answers for an endpoint that does not exist: 400 ValidationError.
    let (code, headers, body) = app.post_bytes("/endpoints/tiny-queue/invocations", Some("image/jpeg"), read("photo.jpg")).await;
    assert_eq!(code, 400, "a deleted endpoint is gone: {body}");
    assert!(headers["x-amzn-errortype"].to_str().unwrap().starts_with("ValidationError"), "{headers:?}");
    assert!(body.contains("not found"), "{body}");
    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let actions: Vec<&str> = journal.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"endpoint.local.create") && actions.contains(&"endpoint.local.delete"), "{actions:?}");
}

#[tokio::test]
async fn a_sagemaker_endpoint_is_deployed_invoked_charted_and_deleted_against_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let sm = aws_sdk_sagemaker::Client::new(&config);
    moto.create_completed_training_job("dog-breeds-2026-11-22").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let (code, jobs) = app.call("endpoints/sagemaker/deployable", &[]).await;
    assert_eq!(code, 200, "{jobs}");
    assert_eq!(jobs[0]["name"], "dog-breeds-2026-11-22", "{jobs}");
    assert!(jobs[0]["model_artifact"].as_str().unwrap().starts_with("s3://dogs/output"));

    // Bad forms are refused before AWS is called.
    let spec = |name: &str, instance_type: &str, count: u32| {
        json!({ "spec": { "name": name, "training_job": "dog-breeds-2026-11-22", "image": "", "role_arn": "",
            "instance_type": instance_type, "instance_count": count } })
    };
    let (code, err) = app.call_json("endpoints/sagemaker/deploy", &spec("dogs", "m5.large", 1)).await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = app.call_json("endpoints/sagemaker/deploy", &spec("dogs", "ml.m5.large", 0)).await;
    assert_eq!(code, 400, "{err}");

    let (code, detail) = app.call_json("endpoints/sagemaker/deploy", &spec("dogs", "ml.m5.large", 2)).await;
    assert_eq!(code, 200, "{detail}\n{}", app.log());
    assert_eq!(detail["config_name"], "dogs-config");
    assert_eq!(detail["variants"][0]["model"], "dogs-model");
    assert_eq!(detail["variants"][0]["instance_type"], "ml.m5.large");
    let model = sm.describe_model().model_name("dogs-model").send().await.unwrap();
    let container = model.primary_container().unwrap();
    assert!(container.image().unwrap().contains("pytorch-inference"));
    assert!(container.model_data_url().unwrap().starts_with("s3://dogs/output"));

    let (code, list) = app.call_json("endpoints/list", &serde_json::json!({ "query": {} })).await;
    assert_eq!(code, 200);
    let row = list["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "dogs").expect("listed");
    assert_eq!(row["backend"], "SageMaker");
    assert_eq!(list["sagemaker_note"], Value::Null);

    // moto answers InvokeEndpoint with the results queued at its static route.
    moto.queue_endpoint_result("[[-8.83, 4.5, -5.32, 1.25]]").await;
    moto.queue_endpoint_result("[[0.5, 0.1, 3.0, 0.2]]").await;
    let jpeg = {
        let data = app.data_path().join("one");
        sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap(), "--per-class", "4", "--size", "32"]);
        std::fs::read(first_test_image(&data)).unwrap()
    };
    // The seeds' Lambda form (JSON). moto cannot take a binary body (it
    // JSON-encodes the body to key its canned answers and fails on bytes),
    // so the binary upload is covered by the local endpoint's tests.
    let body = json!({ "image_base64": "aGVsbG8=" }).to_string().into_bytes();
    let _ = &jpeg;
    let (code, _, body) = app.post_bytes("/aws/endpoints/dogs/invocations?top_k=3", Some("application/json"), body).await;
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["logits"][0].as_array().unwrap().len(), 4);
    assert_eq!(answer["predictions"][0]["index"], 1, "{answer}");
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 3);
    let (code, _, body) = app.post_bytes("/aws/endpoints/dogs/invocations", Some("application/json"), br#"{"url":"https://example.com/dog.jpg"}"#.to_vec()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, "[[0.5, 0.1, 3.0, 0.2]]", "the raw body passes through as SageMaker sent it");
    let (code, _, body) = app.post_bytes("/aws/endpoints/dogs/invocations", Some("text/csv"), b"1,2".to_vec()).await;
    assert_eq!(code, 415, "{body}");

    // CloudWatch: a datapoint put in moto comes back in the chart's series.
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    cw.put_metric_data()
        .namespace("AWS/SageMaker")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Invocations")
                .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("EndpointName").value("dogs").build())
                .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("VariantName").value("AllTraffic").build())
                .value(7.0)
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
                .build(),
        )
        .send()
        .await
        .expect("moto PutMetricData");
    let (code, m) = app.call("endpoints/metrics", &[("backend", "SageMaker"), ("name", "dogs"), ("window", "Hour")]).await;
    assert_eq!(code, 200, "{m}");
    let inv = m["series"].as_array().unwrap().iter().find(|s| s["name"] == "Invocations").unwrap();
    let total: f64 = inv["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).sum();
    assert_eq!(total, 7.0, "{m}");
    assert!(m["source"].as_str().unwrap().contains("CloudWatch"));

    let (code, _) = app.call("endpoints/delete", &[("backend", "SageMaker"), ("name", "dogs"), ("with_config", "true")]).await;
    assert_eq!(code, 200);
    let (code, err) = app.call("endpoints/describe", &[("backend", "SageMaker"), ("name", "dogs")]).await;
    assert_eq!(code, 404, "{err}");
    assert!(sm.describe_model().model_name("dogs-model").send().await.is_err(), "the model went with it");
    let (_, journal) = app.call("journal/recent", &[("limit", "10")]).await;
    let actions: Vec<&str> = journal.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"endpoint.sagemaker.create") && actions.contains(&"endpoint.sagemaker.delete"), "{actions:?}");
}

/// The AWS calls the console has made, per operation.
async fn aws_calls(app: &App, operation: &str) -> u64 {
    let (code, calls) = app.call("aws/calls", &[]).await;
    assert_eq!(code, 200, "{calls}");
    calls["per_operation"].as_array().unwrap().iter().filter(|p| p[0].as_str().unwrap().ends_with(&format!(" {operation}"))).map(|p| p[1].as_u64().unwrap()).sum()
}

async fn endpoint_page(app: &App, query: Value) -> Value {
    let (code, page) = app.call_json("endpoints/list", &json!({ "query": query })).await;
    assert_eq!(code, 200, "{page}");
    page
}

fn names(page: &Value) -> Vec<String> {
    page["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

/// An account with more endpoints than a ListEndpoints page (100) and a list
/// page (50), made by hand in moto: the list pages through all of them from
/// SQLite, newest first, with totals and filters; views make no AWS call;
/// endpoints deleted or made by hand show after a Refresh.
#[tokio::test]
async fn the_endpoint_list_pages_a_large_account_from_its_cache() {
    let moto = Moto::start();
    let sm = aws_sdk_sagemaker::Client::new(&moto.sdk_config().await);
    use aws_sdk_sagemaker::types::{ContainerDefinition, ProductionVariant, ProductionVariantInstanceType};
    sm.create_model()
        .model_name("by-hand")
        .execution_role_arn("arn:aws:iam::123456789012:role/by-hand")
        .primary_container(ContainerDefinition::builder().image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311").build())
        .send()
        .await
        .unwrap();
    let variant = ProductionVariant::builder()
        .variant_name("AllTraffic")
        .model_name("by-hand")
        .instance_type(ProductionVariantInstanceType::MlM5Large)
        .initial_instance_count(2)
        .build();
    sm.create_endpoint_config().endpoint_config_name("by-hand-config").production_variants(variant).send().await.unwrap();
    const COUNT: usize = 120;
    for i in 0..COUNT {
        let name = format!("{}-{i:03}", if i % 10 == 0 { "flowers" } else { "dogs" });
        sm.create_endpoint().endpoint_name(&name).endpoint_config_name("by-hand-config").send().await.unwrap();
    }
    let app = App::spawn(AwsSetup::Moto(&moto));

    // Every endpoint once, newest first, 50 a page, through the Older links.
    let first = endpoint_page(&app, json!({})).await;
    assert_eq!(first["sagemaker_total"], COUNT as u64, "{first}");
    assert_eq!(first["local_total"], 0);
    assert_eq!(names(&first).len(), 50);
    assert_eq!(names(&first)[0], "dogs-119", "newest first");
    assert_eq!(first["newer"], Value::Null);
    let described = first["endpoints"].as_array().unwrap().iter().filter(|e| e["instance_type"] == "ml.m5.large" && e["instances"] == 2).count();
    assert_eq!(described, 50, "the first listing describes new endpoints (up to 50 a round): {first}");
    let mut seen: Vec<String> = names(&first);
    let mut page = first.clone();
    while let Some(older) = page["older"].as_str().map(str::to_string) {
        page = endpoint_page(&app, json!({ "older": older })).await;
        assert!(page["newer"].is_string(), "a later page links back");
        seen.extend(names(&page));
    }
    let expected: Vec<String> = (0..COUNT).rev().map(|i| format!("{}-{i:03}", if i % 10 == 0 { "flowers" } else { "dogs" })).collect();
    assert_eq!(seen, expected, "each endpoint once, in creation order");
    // Back from the last page through the Newer link.
    let back = endpoint_page(&app, json!({ "newer": page["newer"] })).await;
    assert_eq!(names(&back), expected[50..100].to_vec());

    // Filters, counted on the server.
    let flowers = endpoint_page(&app, json!({ "name": "FLOWERS" })).await;
    assert_eq!(flowers["sagemaker_total"], 12, "{flowers}");
    assert!(names(&flowers).iter().all(|n| n.starts_with("flowers-")));
    let changing = endpoint_page(&app, json!({ "status": "Changing" })).await;
    assert_eq!(changing["sagemaker_total"], 0, "moto's endpoints are InService at once: {changing}");
    let local_only = endpoint_page(&app, json!({ "on": "Local" })).await;
    assert_eq!((local_only["local_total"].as_u64(), local_only["sagemaker_total"].as_u64()), (Some(0), Some(0)));
    let (code, bad) = app.call_json("endpoints/list", &json!({ "query": { "older": "'; DROP TABLE sagemaker_endpoints; --" } })).await;
    assert_eq!(code, 400, "{bad}");

    // Twenty views (tabs, filters, pages) make no describe and no listing
    // beyond the poller's own round (at most 2 list pages, a minute apart).
    let (lists, describes) = (aws_calls(&app, "ListEndpoints").await, aws_calls(&app, "DescribeEndpoint").await);
    assert!(lists >= 2, "the poller listed both pages: {lists}");
    for i in 0..20 {
        endpoint_page(&app, if i % 2 == 0 { json!({}) } else { json!({ "name": "dogs-1" }) }).await;
    }
    assert_eq!(aws_calls(&app, "DescribeEndpoint").await, describes, "views describe nothing");
    assert!(aws_calls(&app, "ListEndpoints").await <= lists + 2, "views list nothing");

    // Made and deleted by hand: a Refresh reads them; the rest of the
    // account is described over the following rounds.
    sm.delete_endpoint().endpoint_name("dogs-119").send().await.unwrap();
    sm.create_endpoint().endpoint_name("cats-by-hand").endpoint_config_name("by-hand-config").send().await.unwrap();
    let (code, refreshed) = app.call_json("endpoints/refresh", &json!({ "query": {} })).await;
    assert_eq!(code, 200, "{refreshed}");
    assert_eq!(refreshed["sagemaker_total"], COUNT as u64, "one gone, one new: {refreshed}");
    assert_eq!(names(&refreshed)[0], "cats-by-hand");
    assert!(!names(&refreshed).contains(&"dogs-119".to_string()));
    let cats = &refreshed["endpoints"][0];
    assert_eq!((cats["instance_type"].as_str(), cats["instances"].as_u64(), cats["model"].as_str()), (Some("ml.m5.large"), Some(2), Some("by-hand")));
    let (code, _) = app.call_json("endpoints/refresh", &json!({ "query": {} })).await;
    assert_eq!(code, 200);
    let mut all = Vec::new();
    let mut page = endpoint_page(&app, json!({})).await;
    loop {
        all.extend(page["endpoints"].as_array().unwrap().iter().cloned());
        let Some(older) = page["older"].as_str().map(str::to_string) else { break };
        page = endpoint_page(&app, json!({ "older": older })).await;
    }
    assert_eq!(all.len(), COUNT);
    assert!(all.iter().all(|e| e["instance_type"] == "ml.m5.large"), "every endpoint described after three rounds");
}
