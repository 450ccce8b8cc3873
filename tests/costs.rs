//! The Costs page's server side: prices from the Pricing API (a stand-in in
//! AWS's response shape: moto has none) or the recorded table, what runs on
//! a moto account, idleness from CloudWatch, and an idle endpoint deleted
//! and recreated from the journal.

use sagedeck_tests::{App, AwsSetup, Moto, RecordingProxy};
use serde_json::{json, Value};

fn line<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["lines"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no line {name}: {view:#}"))
}

fn idle_names(view: &Value) -> Vec<String> {
    view["idle"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn prices_a_moto_account_from_the_pricing_api_finds_the_idle_endpoint_deletes_it_and_the_journal_recreates_it() {
    let moto = Moto::start();
    let proxy = RecordingProxy::start(&moto.url).await;
    proxy.set_prices(&[
        ("us-east-1", "ml.m5.large", "Hosting", "0.1300000000"),
        ("us-east-1", "ml.m5.large", "Training", "0.1150000000"),
        ("us-east-1", "ml.t3.medium", "Notebook", "0.0500000000"),
        // Another region's product with the same type must not be read.
        ("eu-west-3", "ml.m5.large", "Hosting", "9.9900000000"),
    ]);
    // Both endpoints were made two days ago (as far as the console can tell).
    proxy.age_endpoints(48);
    moto.create_notebook("costs-nb", "ml.t3.medium").await;
    moto.create_completed_training_job("costs-job").await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    let quiet = app.deploy_sagemaker_endpoint("quiet-dogs", "costs-job").await;
    app.deploy_sagemaker_endpoint("busy-dogs", "costs-job").await;
    let variant = quiet["variants"][0]["name"].as_str().unwrap().to_string();
    moto.put_metrics("AWS/SageMaker", &[("EndpointName", "busy-dogs"), ("VariantName", &variant)], 90, &[("Invocations", 12.0, "Count")]).await;

    let (code, view) = app.call("costs/view", &[("idle_hours", "24")]).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["region"], "us-east-1");
    assert!(view["price_source"].as_str().unwrap().contains("Pricing API"), "{view:#}");

    let nb = line(&view, "costs-nb");
    assert_eq!(nb["kind"], "Notebook");
    assert_eq!(nb["hourly_usd"], 0.05);
    assert!(nb["price_source"].as_str().unwrap().starts_with("AWS Pricing API, us-east-1"), "{nb}");
    let quiet_line = line(&view, "quiet-dogs");
    assert_eq!(quiet_line["hourly_usd"], 0.13, "the Hosting product of us-east-1, not Training's nor eu-west-3's");
    assert_eq!(quiet_line["instances"], 1);
    assert!(quiet_line["billing_now"].as_bool().unwrap());

    // Idle: the endpoint nobody called, not the one CloudWatch saw 12 calls on.
    let idle = idle_names(&view);
    assert!(idle.contains(&"quiet-dogs".to_string()), "{view:#}");
    assert!(!idle.contains(&"busy-dogs".to_string()), "{view:#}");
    let entry = view["idle"].as_array().unwrap().iter().find(|i| i["name"] == "quiet-dogs").unwrap();
    assert_eq!(entry["action"], "DeleteSageMakerEndpoint");
    assert!(entry["evidence"].as_str().unwrap().contains("no invocations in the last 24 h"), "{entry}");

    // Two days up at $0.13/h (or since the 1st of the month): the month has it.
    let month_usd = view["month"]["usd"].as_f64().unwrap();
    assert!(month_usd > 0.0, "{view:#}");
    let days = view["month"]["daily"].as_array().unwrap();
    assert!(!days.is_empty() && days.iter().all(|d| d[1].as_f64().unwrap() >= 0.0), "{days:?}");

    // Prices are asked once per type and use: a second view reads SQLite.
    let asked = |p: &RecordingProxy| p.requests.lock().unwrap().iter().filter(|(op, _)| op == "GetProducts").count();
    let first = asked(&proxy);
    assert!(first >= 2, "notebook and hosting prices were asked for");
    let (code, _) = app.call("costs/view", &[("idle_hours", "24")]).await;
    assert_eq!(code, 200);
    assert_eq!(asked(&proxy), first, "the second view asked the Pricing API again");

    // Delete the idle one from the Costs page (its config kept), then undo it from the journal.
    let (code, body) = app.call("endpoints/delete", &[("backend", "SageMaker"), ("name", "quiet-dogs"), ("with_config", "false")]).await;
    assert_eq!(code, 200, "{body}");
    let (code, journal) = app.call("journal/recent", &[("limit", "5")]).await;
    assert_eq!(code, 200);
    let deletion = journal.as_array().unwrap().iter().find(|c| c["action"] == "endpoint.sagemaker.delete").expect("deletion journaled").clone();
    assert_eq!(deletion["revertible"], true, "{deletion}");
    let before: Value = serde_json::from_str(deletion["before"].as_str().unwrap()).unwrap();
    assert!(before["config"].as_str().is_some_and(|c| !c.is_empty()), "{before}");
    let (code, body) = app.call("endpoints/describe", &[("backend", "SageMaker"), ("name", "quiet-dogs")]).await;
    assert_eq!(code, 404, "deleted: {body}");

    let id = deletion["id"].as_i64().unwrap().to_string();
    let (code, revert) = app.call("journal/revert", &[("id", &id)]).await;
    assert_eq!(code, 200, "{revert}");
    assert_eq!(revert["action"], "endpoint.sagemaker.create");
    assert_eq!(revert["revert_of"], deletion["id"]);
    let (code, body) = app.call("endpoints/describe", &[("backend", "SageMaker"), ("name", "quiet-dogs")]).await;
    assert_eq!(code, 200, "recreated from its config: {body}");
    let created = proxy.requests.lock().unwrap().iter().rev().find(|(op, _)| op == "CreateEndpoint").map(|(_, b)| b.clone()).unwrap();
    assert_eq!(created["EndpointConfigName"], before["config"]);
    // Once is enough: the same deletion cannot be undone twice.
    let (code, again) = app.call("journal/revert", &[("id", &id)]).await;
    assert_eq!(code, 409, "{again}");

    // A deletion that took the config with it is not revertible.
    let (code, body) = app.call("endpoints/delete", &[("backend", "SageMaker"), ("name", "busy-dogs"), ("with_config", "true")]).await;
    assert_eq!(code, 200, "{body}");
    let (_, journal) = app.call("journal/recent", &[("limit", "3")]).await;
    let gone = journal.as_array().unwrap().iter().find(|c| c["action"] == "endpoint.sagemaker.delete" && c["target"] == "busy-dogs").unwrap();
    assert_eq!(gone["revertible"], false, "{gone}");
    let (code, refused) = app.call("journal/revert", &[("id", &gone["id"].as_i64().unwrap().to_string())]).await;
    assert_eq!(code, 409, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("configuration was deleted"), "{refused}");
}

#[tokio::test]
async fn without_the_pricing_api_the_recorded_table_prices_and_says_so() {
    let moto = Moto::start();
    moto.create_notebook("table-nb", "ml.t3.medium").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    let (code, view) = app.call("costs/view", &[("idle_hours", "24")]).await;
    assert_eq!(code, 200, "{view}");
    let source = view["price_source"].as_str().unwrap();
    assert!(source.contains("recorded table (us-east-1, 2024-06-01)") && source.contains("could not be asked"), "{source}");
    let nb = line(&view, "table-nb");
    assert_eq!(nb["hourly_usd"], 0.05);
    assert_eq!(nb["price_source"], "recorded table (us-east-1, 2024-06-01)");
    // Just started: not idle for 24 hours.
    assert!(idle_names(&view).is_empty(), "{view:#}");
}

#[tokio::test]
async fn bad_idle_windows_are_refused_naming_the_field() {
    let app = App::spawn(AwsSetup::None);
    for bad in ["0", "-3", "1513", "soon"] {
        let (code, body) = app.call("costs/view", &[("idle_hours", bad)]).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("idle_hours"), "{bad}: {body}");
    }
}

#[tokio::test]
async fn local_work_is_shown_at_what_sagemaker_would_charge_and_billed_as_nothing() {
    let app = App::spawn(AwsSetup::None);
    let (job, _) = app.completed_small_job().await;
    let spec = json!({ "spec": { "name": "cost-local", "job_id": job, "instances": 2,
        "batching": { "max_batch": 4, "max_wait_ms": 5, "queue_capacity": 16 } } });
    let (code, body) = app.call_json("endpoints/local/deploy", &spec).await;
    assert_eq!(code, 200, "{body}");

    let (code, view) = app.call("costs/view", &[("idle_hours", "24")]).await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["region"], Value::Null);
    assert!(view["price_source"].as_str().unwrap().contains("no AWS account"), "{view:#}");
    assert!(view["notes"][0].as_str().unwrap().starts_with("Only local work is shown"), "{view:#}");
    let served = line(&view, "cost-local");
    assert_eq!(served["kind"], "LocalEndpoint");
    assert_eq!(served["billing_now"], false);
    assert_eq!(served["instance_type"], "ml.c5.large");
    assert_eq!(served["instances"], 2);
    // Nothing here bills: the month is $0, and the local work's SageMaker equivalent is priced.
    assert_eq!(view["month"]["usd"], 0.0);
    assert!(view["month"]["local_equivalent_usd"].as_f64().unwrap() > 0.0, "{view:#}");
}
