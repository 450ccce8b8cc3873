//! Auto-scaling through the running server: a local endpoint's replicas
//! follow generated load up and back down under a target-tracking policy,
//! and the change is reverted from the journal; a SageMaker variant's policy
//! is put, read back from moto's Application Auto Scaling, edited, reverted
//! and removed.

use sagedeck_tests::{App, AwsSetup, Moto};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn policy(min: u32, max: u32, target: f64, datapoint: u32, scale_in: u32, scale_out: u32) -> Value {
    json!({ "min_instances": min, "max_instances": max, "target_value": target,
        "scale_in_cooldown_s": scale_in, "scale_out_cooldown_s": scale_out,
        "disable_scale_in": false, "datapoint_seconds": datapoint })
}

fn put(backend: &str, endpoint: &str, variant: &str, policy: Value) -> Value {
    json!({ "backend": backend, "endpoint": endpoint, "variant": variant, "policy": policy })
}

async fn describe(app: &App, backend: &str, endpoint: &str) -> Value {
    let (code, s) = app.call("scaling/describe", &[("backend", backend), ("endpoint", endpoint)]).await;
    assert_eq!(code, 200, "{s}");
    s
}

async fn journal(app: &App) -> Vec<Value> {
    let (code, j) = app.call("journal/recent", &[("limit", "50")]).await;
    assert_eq!(code, 200, "{j}");
    j.as_array().unwrap().clone()
}

#[tokio::test]
async fn local_replicas_follow_load_up_and_down_and_the_policy_reverts_from_the_journal() {
    let app = App::spawn(AwsSetup::None);
    let (job, data) = app.completed_small_job().await;
    app.deploy_local_endpoint("busy", job, 4, 0, 256).await;

    // Bad policies are refused with the field's problem, and change nothing.
    for (bad, words) in [
        (policy(3, 2, 60.0, 2, 4, 2), "at least the minimum"),
        (policy(1, 3, 0.0, 2, 4, 2), "target"),
        (policy(0, 3, 60.0, 2, 4, 2), "at least 1 replica"),
        (policy(1, 3, 60.0, 0, 4, 2), "datapoint"),
        (policy(1, 3, 60.0, 2, 99_999, 2), "cooldown"),
    ] {
        let (code, err) = app.call_json("scaling/put", &put("Local", "busy", "replicas", bad)).await;
        assert_eq!(code, 400, "{err}");
        assert!(err["message"].as_str().unwrap().contains(words), "{err}");
    }
    let (code, err) = app.call_json("scaling/put", &put("Local", "busy", "AllTraffic", policy(1, 3, 60.0, 2, 4, 2))).await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = app.call_json("scaling/put", &put("Local", "nobody", "replicas", policy(1, 3, 60.0, 2, 4, 2))).await;
    assert_eq!(code, 404, "{err}");
    assert_eq!(describe(&app, "Local", "busy").await["variants"][0]["policy"], Value::Null);

    // Target 120 invocations per replica per minute (2/s), 2-second
    // datapoints: 3 datapoints above (6 s) scale out, 15 below (30 s) scale in.
    let (code, s) = app.call_json("scaling/put", &put("Local", "busy", "replicas", policy(1, 3, 120.0, 2, 4, 2))).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["variants"][0]["policy"]["target_value"], 120.0);
    assert_eq!(s["variants"][0]["registered"], json!([1, 3]));

    // Four clients sending images back to back: far above 2/s per replica.
    let image = {
        let dir = data.join("test").join("001.Circle");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        std::fs::read(&files[0]).unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, image, stop, sent) = (app.url.clone(), image.clone(), stop.clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let r = http.post(format!("{url}/endpoints/busy/invocations")).header("content-type", "image/jpeg").body(image.clone()).send().await;
                assert!(r.map(|r| r.status().as_u16() == 200 || r.status().as_u16() == 429).unwrap_or(false));
                sent.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let started = Instant::now();
    let mut timeline: Vec<(f64, u64)> = Vec::new();
    let instances = |s: &Value| s["variants"][0]["current_instances"].as_u64().unwrap();
    let mut peak = 1;
    while started.elapsed() < Duration::from_secs(40) && peak < 3 {
        let n = instances(&describe(&app, "Local", "busy").await);
        if timeline.last().map(|t| t.1) != Some(n) {
            timeline.push((started.elapsed().as_secs_f64(), n));
        }
        peak = peak.max(n);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let requests = sent.load(Ordering::SeqCst);
    assert_eq!(peak, 3, "replicas reached the maximum under load: {timeline:?}\n{}", app.log());
    // The tracker's log lines name the endpoint they are about (its span).
    let server_log = app.log();
    let scaled: Vec<&str> = server_log.lines().filter(|l| l.contains("local auto-scaling") && !l.contains("the policy's min")).collect();
    assert!(!scaled.is_empty() && scaled.iter().all(|l| l.contains("local_scaling{endpoint=busy}")), "{scaled:?}");

    // Quiet: back to the minimum after 15 datapoints (30 s) below 90 % of the target.
    let quiet = Instant::now();
    loop {
        let n = instances(&describe(&app, "Local", "busy").await);
        if timeline.last().map(|t| t.1) != Some(n) {
            timeline.push((started.elapsed().as_secs_f64(), n));
        }
        if n == 1 {
            break;
        }
        assert!(quiet.elapsed() < Duration::from_secs(75), "no scale-in within 75 s: {timeline:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let scaled_in_after = quiet.elapsed().as_secs_f64();
    eprintln!(
        "local scaling timeline (s since load start, replicas): {timeline:?}; {requests} requests in {load_seconds:.1} s of load; back to 1 replica {scaled_in_after:.1} s after the load stopped"
    );
    assert!(scaled_in_after >= 20.0, "scale-in waits for 15 quiet datapoints, not {scaled_in_after:.1} s");

    let s = describe(&app, "Local", "busy").await;
    let activities = s["variants"][0]["activities"].as_array().unwrap();
    let ups = activities.iter().filter(|a| a["to"].as_u64() > a["from"].as_u64()).count();
    let downs = activities.iter().filter(|a| a["to"].as_u64() < a["from"].as_u64()).count();
    assert!(ups >= 1 && downs >= 1, "{activities:#?}");
    assert!(activities.iter().all(|a| a["status"] == "Successful"), "{activities:#?}");
    assert!(activities.iter().any(|a| a["cause"].as_str().unwrap().contains("datapoints above the target")));
    // The scaled-in endpoint still answers, and its stored size survived.
    let (code, _, body) = app.post_bytes("/endpoints/busy/invocations", Some("image/jpeg"), image.clone()).await;
    assert_eq!(code, 200, "{body}");
    // The recorded trace feeds the simulator.
    let (code, trace) = app.call("scaling/trace", &[("backend", "Local"), ("endpoint", "busy"), ("hours", "1")]).await;
    assert_eq!(code, 200, "{trace}");
    let total: f64 = trace["per_minute"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
    assert!(total >= requests as f64, "trace {total} vs {requests} sent");
    assert_eq!(trace["per_minute"].as_array().unwrap().len(), 60);

    // Revert the policy from the journal: it is gone again; a second revert is refused.
    let entries = journal(&app).await;
    let put_entry = entries.iter().find(|e| e["action"] == "scaling.put" && e["outcome"] == "ok").expect("journaled");
    assert_eq!(put_entry["target"], "local/busy/replicas");
    assert_eq!(put_entry["before"], "null");
    assert_eq!(put_entry["revertible"], true);
    let id = put_entry["id"].as_i64().unwrap().to_string();
    let (code, reverted) = app.call("journal/revert", &[("id", &id)]).await;
    assert_eq!(code, 200, "{reverted}");
    assert_eq!(reverted["action"], "scaling.remove");
    assert_eq!(reverted["revert_of"].to_string(), id);
    assert_eq!(describe(&app, "Local", "busy").await["variants"][0]["policy"], Value::Null);
    let (code, err) = app.call("journal/revert", &[("id", &id)]).await;
    assert_eq!(code, 409, "{err}");
    let (code, err) = app.call("journal/revert", &[("id", "99999")]).await;
    assert_eq!(code, 404, "{err}");
    let create = entries.iter().find(|e| e["action"] == "endpoint.local.create").unwrap();
    let (code, err) = app.call("journal/revert", &[("id", &create["id"].to_string())]).await;
    assert_eq!(code, 409, "{err}");

    // A restart keeps the scaled size and no policy.
    let app = app.crash_and_restart();
    let s = describe(&app, "Local", "busy").await;
    assert_eq!(s["variants"][0]["current_instances"], 1);
    assert_eq!(s["variants"][0]["policy"], Value::Null);
}

#[tokio::test]
async fn a_sagemaker_variant_policy_is_put_read_back_edited_reverted_and_removed_against_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(&config);
    moto.create_completed_training_job("dog-breeds-2026-11-22").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    app.deploy_sagemaker_endpoint("dogs", "dog-breeds-2026-11-22").await;

    let s = describe(&app, "SageMaker", "dogs").await;
    assert_eq!(s["variants"][0]["variant"], "AllTraffic");
    assert_eq!(s["variants"][0]["resource_id"], "endpoint/dogs/variant/AllTraffic");
    assert_eq!(s["variants"][0]["policy"], Value::Null);
    assert_eq!(s["hourly_price"].as_f64().map(|p| p > 0.0), Some(true), "{s}");

    // Refused before AWS: min > max, a datapoint other than a minute, an unknown variant.
    let (code, err) = app.call_json("scaling/put", &put("SageMaker", "dogs", "AllTraffic", policy(5, 2, 25.0, 60, 30, 30))).await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = app.call_json("scaling/put", &put("SageMaker", "dogs", "AllTraffic", policy(1, 4, 25.0, 5, 30, 30))).await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = app.call_json("scaling/put", &put("SageMaker", "dogs", "Canary", policy(1, 4, 25.0, 60, 30, 30))).await;
    assert_eq!(code, 404, "{err}");
    assert!(err["message"].as_str().unwrap().contains("AllTraffic"), "{err}");

    // The seeds' policy: min 1, max 4, target 25, 30 s cooldowns.
    let (code, s) = app.call_json("scaling/put", &put("SageMaker", "dogs", "AllTraffic", policy(1, 4, 25.0, 60, 30, 30))).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["variants"][0]["policy"]["target_value"], 25.0);
    assert_eq!(s["variants"][0]["registered"], json!([1, 4]));
    let read_back = |target: f64| {
        let autoscaling = autoscaling.clone();
        async move {
            let targets = autoscaling
                .describe_scalable_targets()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker)
                .send()
                .await
                .unwrap();
            let t = &targets.scalable_targets()[0];
            assert_eq!((t.resource_id(), t.min_capacity(), t.max_capacity()), ("endpoint/dogs/variant/AllTraffic", 1, 4));
            assert_eq!(t.scalable_dimension().as_str(), "sagemaker:variant:DesiredInstanceCount");
            let policies = autoscaling
                .describe_scaling_policies()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker)
                .send()
                .await
                .unwrap();
            let p = &policies.scaling_policies()[0];
            assert_eq!(p.policy_name(), "sagedeck-invocations-per-instance");
            assert_eq!(p.policy_type().as_str(), "TargetTrackingScaling");
            let c = p.target_tracking_scaling_policy_configuration().unwrap();
            assert_eq!(c.target_value(), target);
            assert_eq!(
                c.predefined_metric_specification().unwrap().predefined_metric_type().as_str(),
                "SageMakerVariantInvocationsPerInstance"
            );
            assert_eq!((c.scale_in_cooldown(), c.scale_out_cooldown()), (Some(30), Some(30)));
        }
    };
    read_back(25.0).await;

    // Edit to 30, then revert the edit from the journal: 25 again.
    let (code, s) = app.call_json("scaling/put", &put("SageMaker", "dogs", "AllTraffic", policy(1, 4, 30.0, 60, 30, 30))).await;
    assert_eq!(code, 200, "{s}");
    read_back(30.0).await;
    let entries = journal(&app).await;
    let edit = entries.iter().find(|e| e["action"] == "scaling.put" && e["outcome"] == "ok").unwrap();
    assert_eq!(edit["backend"], "aws");
    assert_eq!(edit["target"], "sagemaker/dogs/AllTraffic");
    assert!(edit["before"].as_str().unwrap().contains("\"target_value\":25.0"), "{edit}");
    assert!(edit["after"].as_str().unwrap().contains("\"target_value\":30.0"), "{edit}");
    let (code, reverted) = app.call("journal/revert", &[("id", &edit["id"].to_string())]).await;
    assert_eq!(code, 200, "{reverted}");
    read_back(25.0).await;

    // The overview lists the endpoint with its policy; activities are explained when absent.
    let (code, overview) = app.call("scaling/overview", &[]).await;
    assert_eq!(code, 200, "{overview}");
    let row = overview["rows"].as_array().unwrap().iter().find(|r| r["endpoint"] == "dogs").unwrap();
    assert_eq!(row["policy"]["target_value"], 25.0);
    let s = describe(&app, "SageMaker", "dogs").await;
    assert!(
        !s["variants"][0]["activities"].as_array().unwrap().is_empty() || s["variants"][0]["activities_note"].is_string(),
        "{s}"
    );

    // Remove: policy deleted and target deregistered in moto.
    let (code, s) = app.call("scaling/remove", &[("backend", "SageMaker"), ("endpoint", "dogs"), ("variant", "AllTraffic")]).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["variants"][0]["policy"], Value::Null);
    let targets = autoscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker)
        .send()
        .await
        .unwrap();
    assert!(targets.scalable_targets().is_empty());
    let (code, err) = app.call("scaling/remove", &[("backend", "SageMaker"), ("endpoint", "dogs"), ("variant", "AllTraffic")]).await;
    assert_eq!(code, 404, "{err}");
}

/// An endpoint scaled by hand, the way the seeds did it in the console: a
/// registered target (min 1, max 4) and a target-tracking policy on
/// invocations per instance under the person's own name, beside a policy on
/// a customized metric and a step-scaling policy.
#[tokio::test]
async fn policies_made_by_hand_are_read_simulated_edited_in_place_and_reverted() {
    use aws_sdk_applicationautoscaling::types::{
        AdjustmentType, CustomizedMetricSpecification, MetricStatistic, MetricType, PolicyType, PredefinedMetricSpecification,
        ScalableDimension, ServiceNamespace, StepAdjustment, StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
    };
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(&config);
    moto.create_completed_training_job("flowers-by-hand").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    app.deploy_sagemaker_endpoint("flowers-prod", "flowers-by-hand").await;
    let id = "endpoint/flowers-prod/variant/AllTraffic";
    let dimension = ScalableDimension::SageMakerVariantDesiredInstanceCount;
    autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .scalable_dimension(dimension.clone())
        .resource_id(id)
        .min_capacity(1)
        .max_capacity(4)
        .send()
        .await
        .unwrap();
    let tracking = |metric: Option<MetricType>, target: f64| {
        let mut c = TargetTrackingScalingPolicyConfiguration::builder().target_value(target).scale_in_cooldown(30).scale_out_cooldown(30);
        c = match metric {
            Some(m) => c.predefined_metric_specification(PredefinedMetricSpecification::builder().predefined_metric_type(m).build().unwrap()),
            None => c.customized_metric_specification(
                CustomizedMetricSpecification::builder()
                    .namespace("/aws/sagemaker/Endpoints")
                    .metric_name("CPUUtilization")
                    .statistic(MetricStatistic::Average)
                    .build(),
            ),
        };
        c.build().unwrap()
    };
    let put_by_hand = |name: &'static str, config: TargetTrackingScalingPolicyConfiguration| {
        autoscaling
            .put_scaling_policy()
            .policy_name(name)
            .service_namespace(ServiceNamespace::Sagemaker)
            .scalable_dimension(dimension.clone())
            .resource_id(id)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(config)
            .send()
    };
    put_by_hand("flowers-invocations", tracking(Some(MetricType::SageMakerVariantInvocationsPerInstance), 25.0)).await.unwrap();
    put_by_hand("flowers-cpu", tracking(None, 70.0)).await.unwrap();
    autoscaling
        .put_scaling_policy()
        .policy_name("flowers-burst")
        .service_namespace(ServiceNamespace::Sagemaker)
        .scalable_dimension(dimension.clone())
        .resource_id(id)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(
            StepScalingPolicyConfiguration::builder()
                .adjustment_type(AdjustmentType::ChangeInCapacity)
                .step_adjustments(StepAdjustment::builder().metric_interval_lower_bound(0.0).scaling_adjustment(2).build().unwrap())
                .cooldown(120)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Read as it is: the hand-made invocations policy is the one shown and simulated.
    let s = describe(&app, "SageMaker", "flowers-prod").await;
    let v = &s["variants"][0];
    assert_eq!(v["registered"], json!([1, 4]), "{s}");
    let p = &v["policy"];
    assert_eq!((p["name"].as_str(), p["target_value"].as_f64()), (Some("flowers-invocations"), Some(25.0)), "{s}");
    assert_eq!((p["min_instances"].as_u64(), p["max_instances"].as_u64()), (Some(1), Some(4)), "{s}");
    assert_eq!((p["scale_in_cooldown_s"].as_u64(), p["scale_out_cooldown_s"].as_u64()), (Some(30), Some(30)), "{s}");
    let policies = v["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 3, "{s}");
    let find = |name: &str| policies.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} missing: {s}")).clone();
    assert_eq!(find("flowers-invocations")["edited_here"], true);
    assert_eq!(find("flowers-invocations")["made_by_sagedeck"], false);
    let cpu = find("flowers-cpu");
    assert_eq!(cpu["edited_here"], false);
    assert!(cpu["summary"].as_str().unwrap().contains("/aws/sagemaker/Endpoints/CPUUtilization (Average)"), "{cpu}");
    assert!(cpu["summary"].as_str().unwrap().contains("at 70"), "{cpu}");
    let burst = find("flowers-burst");
    assert_eq!(burst["policy_type"], "StepScaling");
    assert!(burst["summary"].as_str().unwrap().starts_with("step scaling"), "{burst}");
    assert!(burst["summary"].as_str().unwrap().contains("[0, ∞) → +2"), "{burst}");
    let (code, overview) = app.call("scaling/overview", &[]).await;
    assert_eq!(code, 200, "{overview}");
    let row = overview["rows"].as_array().unwrap().iter().find(|r| r["endpoint"] == "flowers-prod").unwrap().clone();
    assert_eq!(row["policy"]["name"], "flowers-invocations", "{row}");
    assert_eq!(row["other_policies"], json!(["flowers-burst (StepScaling)", "flowers-cpu (TargetTrackingScaling)"]), "{row}");

    // Editing edits that policy, in place, under its name: no second invocations policy appears.
    let mut edited = p.clone();
    edited["target_value"] = json!(40.0);
    let (code, after) = app.call_json("scaling/put", &put("SageMaker", "flowers-prod", "AllTraffic", edited)).await;
    assert_eq!(code, 200, "{after}");
    let names_and_targets = || async {
        let listed = autoscaling.describe_scaling_policies().service_namespace(ServiceNamespace::Sagemaker).send().await.unwrap();
        let mut out: Vec<(String, Option<f64>)> = listed
            .scaling_policies()
            .iter()
            .map(|p| (p.policy_name().to_string(), p.target_tracking_scaling_policy_configuration().map(|c| c.target_value())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(
        names_and_targets().await,
        vec![("flowers-burst".into(), None), ("flowers-cpu".into(), Some(70.0)), ("flowers-invocations".into(), Some(40.0))]
    );
    // The journal's before and after carry the name; the revert puts 25 back under it.
    let entries = journal(&app).await;
    let edit = entries.iter().find(|e| e["action"] == "scaling.put").unwrap();
    assert!(edit["before"].as_str().unwrap().contains("\"name\":\"flowers-invocations\""), "{edit}");
    let (code, reverted) = app.call("journal/revert", &[("id", &edit["id"].to_string())]).await;
    assert_eq!(code, 200, "{reverted}");
    assert_eq!(names_and_targets().await[2], ("flowers-invocations".into(), Some(25.0)));

    // Removing removes that policy only; the target stays for the other two.
    let (code, s) = app.call("scaling/remove", &[("backend", "SageMaker"), ("endpoint", "flowers-prod"), ("variant", "AllTraffic")]).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(names_and_targets().await.len(), 2);
    assert_eq!(s["variants"][0]["registered"], json!([1, 4]), "{s}");
    assert_eq!(s["variants"][0]["policy"], Value::Null, "{s}");
    // And reverting the removal brings it back by its own name.
    let entries = journal(&app).await;
    let removal = entries.iter().find(|e| e["action"] == "scaling.remove").unwrap();
    let (code, reverted) = app.call("journal/revert", &[("id", &removal["id"].to_string())]).await;
    assert_eq!(code, 200, "{reverted}");
    assert_eq!(names_and_targets().await[2], ("flowers-invocations".into(), Some(25.0)));
}
