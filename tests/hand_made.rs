//! The console against an account set up by hand (tests/fixtures/
//! hand_made_account.py: the person's own names, AWS-managed and
//! hand-written policies, roles of several kinds): what it reads there and
//! how it judges it, through the HTTP API. The browser test walks the same
//! account page by page.

use sagedeck_tests::{App, AwsSetup, Moto, RecordingProxy};
use serde_json::Value;

async fn ok(app: &App, endpoint: &str, form: &[(&str, &str)]) -> Value {
    let (code, body) = app.call(endpoint, form).await;
    assert_eq!(code, 200, "{endpoint}: {body}\n{}", app.log());
    body
}

#[tokio::test]
async fn a_hand_made_account_is_read_as_it_is_and_judged_right() {
    let moto = Moto::start();
    let made = moto.hand_made_account();
    assert_eq!(made["endpoint"], "flowers-prod");
    let proxy = RecordingProxy::start(&moto.url).await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));

    // Auto-scaling: the person's own target-tracking policy is the one
    // shown, simulated and edited (min 1, max 4, target 25, 30/30).
    let s = ok(&app, "scaling/describe", &[("backend", "SageMaker"), ("endpoint", "flowers-prod")]).await;
    let p = &s["variants"][0]["policy"];
    assert_eq!(p["name"], "flowers-invocations-scaling", "{s}");
    assert_eq!((p["min_instances"].as_u64(), p["max_instances"].as_u64(), p["target_value"].as_f64()), (Some(1), Some(4), Some(25.0)));
    assert_eq!((p["scale_in_cooldown_s"].as_u64(), p["scale_out_cooldown_s"].as_u64()), (Some(30), Some(30)));
    let overview = ok(&app, "scaling/overview", &[]).await;
    let row = overview["rows"].as_array().unwrap().iter().find(|r| r["endpoint"] == "flowers-prod").unwrap().clone();
    assert_eq!(row["policy"]["name"], "flowers-invocations-scaling", "the list does not say off: {row}");
    // The scaling simulator's measured capacity comes from CloudWatch's ModelLatency.
    let measured = s["measured"]["source"].as_str().unwrap_or_else(|| panic!("no measured capacity: {s}"));
    assert!(measured.contains("ModelLatency 183.0 ms"), "{measured}");

    // moto does not implement DescribeScalingActivities: asked once, then
    // remembered (AWS's SDK retries a 5xx; without the memory each page view
    // paid those retries again).
    let activities = proxy.sent("DescribeScalingActivities").len();
    assert!(activities >= 1, "asked at least once");
    for _ in 0..3 {
        ok(&app, "scaling/describe", &[("backend", "SageMaker"), ("endpoint", "flowers-prod")]).await;
    }
    assert_eq!(proxy.sent("DescribeScalingActivities").len(), activities, "not asked again while remembered");

    // The function's capacity is judged with the endpoint's measured speed.
    let f = ok(&app, "lambda/describe", &[("home", "Aws"), ("name", "flowers-classify")]).await;
    assert_eq!(f["facts"]["endpoint_max_instances"], 4, "the policy's maximum: {f}");
    let from = f["facts"]["measured_from"].as_str().unwrap_or_else(|| panic!("not measured: {f}"));
    assert!(from.starts_with("ModelLatency 183.0 ms + OverheadLatency 9.0 ms"), "{from}");
    assert!(from.contains("UTC"), "says from when: {from}");
    // …and its own metrics are charted from AWS/Lambda.
    let m = ok(&app, "lambda/metrics", &[("home", "Aws"), ("name", "flowers-classify"), ("window", "Hour")]).await;
    let invocations: f64 = m["series"][0]["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).sum();
    assert!(invocations > 300.0, "{m}");

    // IAM: ranked by what each role can do, no ties between unequal reach.
    let review = ok(&app, "iam/review", &[("unused_days", "90")]).await;
    let ranked: Vec<(String, u64)> = review["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["report"]["name"].as_str().unwrap().to_string(), r["report"]["score"].as_u64().unwrap()))
        .collect();
    eprintln!("ranked: {ranked:?}");
    let names: Vec<&str> = ranked.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["ops-admin", "FlowersSageMakerExecution", "flowers-classify-role", "power-user", "partner-readonly", "sagemaker-operators", "old-batch-reader"],
        "{ranked:?}"
    );
    let score = |name: &str| ranked.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(score("ops-admin") > score("partner-readonly") && score("power-user") > score("partner-readonly"));
    // The execution role's advice fits an execution role.
    let exec = review["roles"].as_array().unwrap().iter().find(|r| r["report"]["name"] == "FlowersSageMakerExecution").unwrap();
    for f in exec["report"]["findings"].as_array().unwrap() {
        assert!(!f["fix"].as_str().unwrap().contains("InvokeEndpoint"), "Lambda advice on an execution role: {f}");
    }
    // Its least-privilege fix covers the tuning job's output prefix too.
    let plan = ok(&app, "iam/fix/plan", &[("role", "FlowersSageMakerExecution")]).await;
    let doc = plan["put_inline"][1].as_str().unwrap();
    for prefix in ["arn:aws:s3:::flowers-ml-data/models/*", "arn:aws:s3:::flowers-ml-data/hpo-output/*", "arn:aws:s3:::flowers-ml-data/flowers/train/*"] {
        assert!(doc.contains(prefix), "{prefix} missing from the fix:\n{doc}");
    }
}
