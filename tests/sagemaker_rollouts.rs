//! SageMaker rollouts and endpoint alarms against moto. moto keeps
//! CloudWatch alarms (PutMetricAlarm, DescribeAlarms) but has no
//! UpdateEndpoint and shifts no traffic: the recording proxy answers
//! UpdateEndpoint in AWS's shape and lays the states SageMaker reports
//! (Updating with a PendingDeploymentSummary, RollingBack, InService with a
//! FailureReason) over DescribeEndpoint as the test moves them.

use sagedeck_tests::{App, AwsSetup, Moto, RecordingProxy};
use serde_json::{json, Value};

fn rollout(job: &str, shift: Value, count: Option<u32>, alarms: &[&str]) -> Value {
    json!({ "spec": { "endpoint": "dogs", "training_job": job, "instance_type": null, "instance_count": count, "shift": shift,
        "bake_seconds": 300, "termination_wait_seconds": 300, "alarms": alarms } })
}

async fn view(app: &App) -> Value {
    let (code, v) = app.call("endpoints/sagemaker/rollouts", &[("name", "dogs")]).await;
    assert_eq!(code, 200, "{v}");
    v
}

#[tokio::test]
async fn a_sagemaker_rollout_sends_its_deployment_config_reads_its_states_and_rolls_back() {
    let moto = Moto::start();
    moto.create_completed_training_job("dogs-v1").await;
    moto.create_completed_training_job("dogs-v2").await;
    let proxy = RecordingProxy::start(&moto.url).await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    app.deploy_sagemaker_endpoint("dogs", "dogs-v1").await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&moto.sdk_config().await);

    // Alarms made by hand beforehand (one on this endpoint, one on another), then two from the endpoint's page.
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
    let on = |endpoint: &str| Dimension::builder().name("EndpointName").value(endpoint).build();
    for (alarm, endpoint) in [("ops-dogs-invocations", "dogs"), ("ops-cats-invocations", "cats")] {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(alarm)
            .namespace("AWS/SageMaker")
            .metric_name("Invocations")
            .dimensions(on(endpoint))
            .statistic(Statistic::Sum)
            .period(300)
            .evaluation_periods(1)
            .threshold(10000.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .unwrap();
    }
    for (kind, threshold) in [("ErrorRate", 5.0), ("LatencyP99", 250.0)] {
        let spec = json!({ "backend": "SageMaker", "spec": { "endpoint": "dogs", "kind": kind, "threshold": threshold,
            "period_seconds": 60, "evaluation_periods": 3, "datapoints_to_alarm": 2 } });
        let (code, alarms) = app.call_json("endpoints/alarms/put", &spec).await;
        assert_eq!(code, 200, "{alarms}");
    }
    let read = cloudwatch.describe_alarms().alarm_name_prefix("sagedeck-dogs-").send().await.unwrap();
    let alarms = read.metric_alarms();
    assert_eq!(alarms.len(), 2);
    let rate = alarms.iter().find(|a| a.alarm_name() == Some("sagedeck-dogs-5xx-rate")).expect("the 5XX alarm");
    assert_eq!((rate.metric_name(), rate.statistic(), rate.threshold()), (Some("Invocation5XXErrors"), Some(&Statistic::Average), Some(0.05)));
    let latency = alarms.iter().find(|a| a.alarm_name() == Some("sagedeck-dogs-model-latency-p99")).expect("the latency alarm");
    assert_eq!((latency.metric_name(), latency.extended_statistic(), latency.threshold()), (Some("ModelLatency"), Some("p99"), Some(250_000.0)));
    for a in alarms {
        let dims: Vec<(&str, &str)> = a.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(dims, vec![("EndpointName", "dogs"), ("VariantName", "AllTraffic")]);
        assert_eq!((a.period(), a.evaluation_periods(), a.datapoints_to_alarm(), a.treat_missing_data()), (Some(60), Some(3), Some(2), Some("notBreaching")));
        assert_eq!(a.comparison_operator(), Some(&ComparisonOperator::GreaterThanThreshold));
    }
    let listed = view(&app).await;
    let names: Vec<(&str, bool)> = listed["alarms"].as_array().unwrap().iter().map(|a| (a["name"].as_str().unwrap(), a["ours"].as_bool().unwrap())).collect();
    assert_eq!(names, vec![("ops-dogs-invocations", false), ("sagedeck-dogs-5xx-rate", true), ("sagedeck-dogs-model-latency-p99", true)], "the hand-made alarm on dogs is listed, the one on cats is not");

    // Refused before any call that changes something.
    let both = ["sagedeck-dogs-5xx-rate", "sagedeck-dogs-model-latency-p99"];
    for (spec, code, words) in [
        (rollout("dogs-v2", json!({ "kind": "canary", "percent": 60, "hold_seconds": 600 }), Some(2), &both), 400, "1 to 50 on SageMaker"),
        (rollout("dogs-v2", json!({ "kind": "canary", "percent": 20, "hold_seconds": 600 }), None, &both), 400, "at least 2 instances"),
        (rollout("dogs-v2", json!({ "kind": "linear", "steps": 12, "interval_seconds": 60 }), Some(4), &both), 400, "2 to 10 on SageMaker"),
        (rollout("dogs-v2", json!({ "kind": "all_at_once" }), None, &["no-such-alarm"]), 400, "does not exist in CloudWatch"),
        (rollout("", json!({ "kind": "all_at_once" }), Some(1), &both), 409, "nothing would change"),
    ] {
        let (got, body) = app.call_json("endpoints/sagemaker/rollout/start", &spec).await;
        assert_eq!(got, code, "{spec}: {body}");
        assert!(body["message"].as_str().unwrap().contains(words), "{body}");
    }
    assert!(proxy.sent("UpdateEndpoint").is_empty() && proxy.sent("CreateModel").len() == 1, "nothing was made for a refused rollout");

    // Canary 20 % of two instances for 10 minutes, rolled back by both alarms.
    let (code, started) = app.call_json("endpoints/sagemaker/rollout/start", &rollout("dogs-v2", json!({ "kind": "canary", "percent": 20, "hold_seconds": 600 }), Some(2), &both)).await;
    assert_eq!(code, 200, "{started}");
    let update = proxy.sent("UpdateEndpoint").pop().unwrap();
    let new_config = update["EndpointConfigName"].as_str().unwrap().to_string();
    assert!(new_config.starts_with("dogs-20"), "{new_config}");
    assert_eq!(update["EndpointName"], "dogs");
    assert_eq!(
        update["DeploymentConfig"],
        json!({
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": { "Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": { "Type": "CAPACITY_PERCENT", "Value": 20 } },
                "TerminationWaitInSeconds": 300,
                "MaximumExecutionTimeoutInSeconds": 600 * 2 + 300 + 1800
            },
            "AutoRollbackConfiguration": { "Alarms": [{ "AlarmName": "sagedeck-dogs-5xx-rate" }, { "AlarmName": "sagedeck-dogs-model-latency-p99" }] }
        })
    );
    let model = proxy.sent("CreateModel").pop().unwrap();
    assert_eq!(model["ModelName"], new_config.as_str());
    assert!(model["PrimaryContainer"]["ModelDataUrl"].as_str().unwrap().contains("dogs-v2"), "{model}");
    let config = proxy.sent("CreateEndpointConfig").pop().unwrap();
    assert_eq!(config["ProductionVariants"][0]["VariantName"], "AllTraffic");
    assert_eq!(config["ProductionVariants"][0]["InitialInstanceCount"], 2);
    assert_eq!(config["ProductionVariants"][0]["ModelName"], new_config.as_str());
    assert_eq!(started["status"], "Updating");
    assert_eq!(started["rollouts"][0]["state"], "updating");
    assert!(started["rollouts"][0]["plan"].as_str().unwrap().contains("canary 20 % of the new fleet, baked 10 min"), "{started}");

    // SageMaker's progress, as DescribeEndpoint reports it while the canary bakes.
    proxy.overlay_endpoint("dogs", json!({ "PendingDeploymentSummary": {
        "EndpointConfigName": new_config, "StartTime": 1_790_000_000.0,
        "ProductionVariants": [{ "VariantName": "AllTraffic", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2, "InstanceType": "ml.m5.large",
            "VariantStatus": [{ "Status": "Baking", "StatusMessage": "Baking the canary for 600 seconds", "StartTime": 1_790_000_100.0 }] }] } }));
    let v = view(&app).await;
    assert_eq!(v["progress"][0]["statuses"][0][0], "Baking");
    assert_eq!(v["progress"][0]["instances"], "2 of 2 × ml.m5.large");
    assert_eq!(v["rollouts"][0]["state"], "updating");
    let (code, refused) = app.call("endpoints/sagemaker/rollout/rollback", &[("name", "dogs")]).await;
    assert_eq!(code, 409, "no rollback while SageMaker deploys: {refused}");

    // Done: the new configuration serves.
    proxy.overlay_endpoint("dogs", json!({ "EndpointStatus": "InService", "PendingDeploymentSummary": null }));
    let v = view(&app).await;
    assert_eq!(v["rollouts"][0]["state"], "completed", "{v}");
    assert_eq!(v["previous_config"], "dogs-config");

    // One click back: UpdateEndpoint to the configuration it replaced.
    let (code, back) = app.call("endpoints/sagemaker/rollout/rollback", &[("name", "dogs")]).await;
    assert_eq!(code, 200, "{back}");
    let update = proxy.sent("UpdateEndpoint").pop().unwrap();
    assert_eq!(update["EndpointConfigName"], "dogs-config");
    assert_eq!(update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"], "ALL_AT_ONCE");
    proxy.overlay_endpoint("dogs", json!({ "EndpointStatus": "InService" }));
    let v = view(&app).await;
    assert_eq!((v["config"].as_str(), v["rollouts"][0]["state"].as_str()), (Some("dogs-config"), Some("completed")), "{v}");

    // A linear rollout an alarm stops: SageMaker rolls back and says why.
    let (code, started) = app.call_json("endpoints/sagemaker/rollout/start", &rollout("dogs-v2", json!({ "kind": "linear", "steps": 2, "interval_seconds": 120 }), Some(2), &both[..1])).await;
    assert_eq!(code, 200, "{started}");
    let linear = proxy.sent("UpdateEndpoint").pop().unwrap();
    assert_eq!(
        linear["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"],
        json!({ "Type": "LINEAR", "WaitIntervalInSeconds": 120, "LinearStepSize": { "Type": "CAPACITY_PERCENT", "Value": 50 } })
    );
    proxy.overlay_endpoint("dogs", json!({ "EndpointStatus": "RollingBack" }));
    assert_eq!(view(&app).await["rollouts"][0]["state"], "updating");
    proxy.overlay_endpoint("dogs", json!({ "EndpointStatus": "InService", "EndpointConfigName": "dogs-config",
        "FailureReason": "CloudWatch alarm sagedeck-dogs-5xx-rate went into ALARM state during the deployment; rolled back" }));
    let v = view(&app).await;
    assert_eq!(v["rollouts"][0]["state"], "rolled_back", "{v}");
    assert!(v["rollouts"][0]["outcome"].as_str().unwrap().contains("sagedeck-dogs-5xx-rate went into ALARM"), "{v}");

    // SageMaker refuses an update: what Sagedeck made for it is deleted again.
    proxy.overlay_endpoint("dogs", json!({ "FailureReason": null }));
    proxy.refuse("UpdateEndpoint", 400, "ValidationException", "The instance type ml.m5.large is not supported for blue/green canary in this region.");
    let (code, refused) = app.call_json("endpoints/sagemaker/rollout/start", &rollout("dogs-v2", json!({ "kind": "canary", "percent": 50, "hold_seconds": 60 }), Some(2), &[])).await;
    assert_eq!(code, 400, "{refused}");
    let words = refused["message"].as_str().unwrap();
    assert!(words.contains("Nothing was changed (dogs-config serves); Sagedeck deleted what it had made: endpoint configuration"), "{words}");
    let orphan = proxy.sent("CreateEndpointConfig").pop().unwrap()["EndpointConfigName"].as_str().unwrap().to_string();
    let sm = aws_sdk_sagemaker::Client::new(&moto.sdk_config().await);
    assert!(sm.describe_endpoint_config().endpoint_config_name(&orphan).send().await.is_err(), "{orphan} was deleted");
    assert!(sm.describe_model().model_name(&orphan).send().await.is_err(), "model {orphan} was deleted");

    // A local job as the next version: packed with code/inference.py and
    // uploaded first; a refused update deletes the upload too.
    let (local_job, _) = app.completed_small_job().await;
    moto.create_bucket("models").await;
    let mut from_local = rollout("", json!({ "kind": "all_at_once" }), None, &[]);
    from_local["spec"]["local_job"] = json!(local_job);
    from_local["spec"]["model_s3"] = json!("s3://models/dogs");
    let (code, refused) = app.call_json("endpoints/sagemaker/rollout/start", &from_local).await;
    assert_eq!(code, 400, "still refused: {refused}");
    assert!(refused["message"].as_str().unwrap().contains("and the model.tar.gz it uploaded (s3://models/dogs/"), "{refused}");
    let s3 = moto.s3().await;
    assert_eq!(s3.list_objects_v2().bucket("models").send().await.unwrap().key_count(), Some(0), "the upload was deleted");
    proxy.clear_refusal();
    let (code, started) = app.call_json("endpoints/sagemaker/rollout/start", &from_local).await;
    assert_eq!(code, 200, "{started}");
    let model = proxy.sent("CreateModel").pop().unwrap();
    let url = model["PrimaryContainer"]["ModelDataUrl"].as_str().unwrap().to_string();
    assert_eq!(url, format!("s3://models/dogs/{}/model.tar.gz", model["ModelName"].as_str().unwrap()));
    let key = url.trim_start_matches("s3://models/");
    assert!(s3.head_object().bucket("models").key(key).send().await.is_ok(), "{url} was uploaded");
    assert_eq!(started["rollouts"][0]["source"], format!("local job #{local_job}"));
    assert_eq!(proxy.sent("UpdateEndpoint").pop().unwrap()["EndpointConfigName"], model["ModelName"]);

    let (_, journal) = app.call_json("journal/search", &json!({ "query": { "action": "endpoint.sagemaker.", "limit": 50 } })).await;
    let actions: Vec<(String, String)> = journal.as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string())).collect();
    println!("journal: {actions:?}");
    for expected in [("endpoint.sagemaker.rollout", "ok"), ("endpoint.sagemaker.rollout.end", "ok"), ("endpoint.sagemaker.rollback", "ok"), ("endpoint.sagemaker.rollout.end", "failed"), ("endpoint.sagemaker.rollout", "failed")] {
        assert!(actions.contains(&(expected.0.to_string(), expected.1.to_string())), "{expected:?} in {actions:?}");
    }
}
