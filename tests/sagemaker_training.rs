//! SageMaker training jobs through the running console against moto: the
//! launch form's server path (checks first, then CreateTrainingJob, single
//! and 4-instance), the cached list and its filters, the job page's facts,
//! per-host logs merged by time (seeded, since moto writes none), AWS's own
//! errors, a restart, and the AWS call counter.

use sagedeck_tests::{App, AwsSetup, Moto};
use serde_json::{json, Value};

fn spec(name: &str, role: &str, instances: u32) -> Value {
    json!({ "spec": {
        "name": name, "image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
        "role_arn": role, "instance_type": "ml.m5.xlarge", "instance_count": instances, "volume_gb": 10,
        "max_runtime_seconds": 3600, "spot": false, "max_wait_seconds": null,
        "learning_rate": 0.001, "batch_size": 32, "epochs": 5, "extra_hyperparameters": [["momentum", "0.9"]],
        "train_s3": "s3://dogs/train", "valid_s3": "s3://dogs/valid", "test_s3": "", "output_s3": "s3://dogs/output"
    }})
}

#[tokio::test]
async fn jobs_are_launched_listed_described_and_their_host_logs_merged() {
    let moto = Moto::start();
    moto.create_bucket("dogs").await;
    let role = moto.create_sagemaker_role("SageMakerExecution").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let (code, defaults) = app.call("training/sagemaker/defaults", &[]).await;
    assert_eq!(code, 200, "{defaults}");
    assert_eq!(defaults["roles"], json!([role]), "the role SageMaker may assume is offered");
    assert!(defaults["spec"]["image"].as_str().unwrap().contains("pytorch-training"));

    // Our checks come before any call, each naming its field.
    let mut bad = spec("dog_breeds", "not-an-arn", 0);
    bad["spec"]["train_s3"] = json!("dogs/train");
    let (code, err) = app.call_json("training/sagemaker/launch", &bad).await;
    assert_eq!(code, 400, "{err}");
    let message = err["message"].as_str().unwrap();
    for field in ["name:", "role_arn:", "instance_count:", "train_s3:"] {
        assert!(message.contains(field), "{field} missing from {message}");
    }

    let (code, single) = app.call_json("training/sagemaker/launch", &spec("dogs-single", &role, 1)).await;
    assert_eq!(code, 200, "{single}\n{}", app.log());
    assert_eq!(single["summary"]["instance_count"], 1);
    let (code, multi) = app.call_json("training/sagemaker/launch", &spec("dogs-multi", &role, 4)).await;
    assert_eq!(code, 200, "{multi}");
    assert_eq!(multi["summary"]["instance_count"], 4);
    assert_eq!(multi["summary"]["instance_type"], "ml.m5.xlarge");
    let hp: Vec<(String, String)> = serde_json::from_value(multi["hyperparameters"].clone()).unwrap();
    assert!(hp.contains(&("batch-size".into(), "32".into())) && hp.contains(&("momentum".into(), "0.9".into())), "{hp:?}");
    assert_eq!(multi["channels"].as_array().unwrap().len(), 2);
    assert_eq!(multi["role_arn"], role.as_str());

    // A name already used is refused before the call (SageMaker never frees one).
    let (code, err) = app.call_json("training/sagemaker/launch", &spec("dogs-multi", &role, 4)).await;
    assert_eq!(code, 409, "{err}");
    assert!(err["message"].as_str().unwrap().contains("already exists"), "{err}");

    let (code, list) = app.call("training/sagemaker/list", &[]).await;
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> = list["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"dogs-single") && names.contains(&"dogs-multi"), "{names:?}");
    let (_, filtered) = app.call("training/sagemaker/list", &[("name_contains", "MULTI")]).await;
    assert_eq!(filtered["jobs"].as_array().unwrap().len(), 1, "{filtered}");
    let (_, filtered) = app.call("training/sagemaker/list", &[("status", "Failed")]).await;
    assert_eq!(filtered["jobs"].as_array().unwrap().len(), 0, "{filtered}");

    // Four hosts' streams, interleaved in time, come back as one ordered view.
    // An hour ago: CloudWatch (and moto) refuse events older than 14 days.
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    let mut seeded = Vec::new();
    for step in 0..3 {
        for host in 1..=4 {
            seeded.push((format!("algo-{host}-1763800000"), t0 + step * 1000 + host, format!("epoch {step} host {host}")));
        }
    }
    let refs: Vec<(&str, i64, &str)> = seeded.iter().map(|(h, t, m)| (h.as_str(), *t, m.as_str())).collect();
    moto.seed_training_logs("dogs-multi", &refs).await;
    moto.seed_training_logs("dogs-single", &[("algo-1-1763800000", t0, "other job")]).await;
    let (code, logs) = app.call("training/sagemaker/logs", &[("name", "dogs-multi"), ("after", "0")]).await;
    assert_eq!(code, 200, "{logs}");
    assert_eq!(logs["hosts"].as_array().unwrap().len(), 4, "{logs}");
    let lines = logs["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 12, "only this job's streams");
    let times: Vec<i64> = lines.iter().map(|l| l["at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "merged in time order: {times:?}");
    assert_eq!(lines[0]["host"], "algo-1-1763800000");
    assert_eq!(lines[1]["host"], "algo-2-1763800000", "hosts interleave by time");
    // Following: only lines after the last one seen.
    let last = logs["last_at"].as_i64().unwrap();
    moto.seed_training_logs("dogs-multi", &[("algo-3-1763800000", last + 500, "epoch 3 host 3")]).await;
    let (_, newer) = app.call("training/sagemaker/logs", &[("name", "dogs-multi"), ("after", &last.to_string())]).await;
    let newer = newer["lines"].as_array().unwrap();
    assert_eq!(newer.len(), 1, "{newer:?}");
    assert_eq!(newer[0]["message"], "epoch 3 host 3");

    // The pages read the cache: it survives a restart of the console.
    let app = app.crash_and_restart_with(AwsSetup::Moto(&moto));
    let (_, list) = app.call("training/sagemaker/list", &[]).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2, "{list}");
    let (code, detail) = app.call("training/sagemaker/describe", &[("name", "dogs-multi")]).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["summary"]["instance_count"], 4);

    let (code, calls) = app.call("aws/calls", &[]).await;
    assert_eq!(code, 200);
    assert!(calls["total"].as_u64().unwrap() >= 1, "{calls}");

    let (_, journal) = app.call("journal/recent", &[("limit", "10")]).await;
    let creates = journal.as_array().unwrap().iter().filter(|e| e["action"] == "training.sagemaker.create").count();
    assert_eq!(creates, 2, "{journal}");
}

#[tokio::test]
async fn an_aws_refusal_of_the_launch_is_shown_in_words_and_journaled() {
    let moto = Moto::start_checking_credentials();
    let app = App::spawn(AwsSetup::Moto(&moto));
    // With Sagedeck's code, the first call is the code's upload: refused, nothing is created.
    let (code, err) = app.call_json("training/sagemaker/launch", &spec("dogs-refused", "arn:aws:iam::123456789012:role/X", 1)).await;
    assert_eq!(code, 403, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("Sagedeck's training code could not be put at s3://dogs/output/dogs-refused/source/sourcedir.tar.gz"), "{err}");
    assert!(message.contains("nothing was created"), "{err}");
    // An image with its own entry point goes straight to CreateTrainingJob.
    let mut own = spec("dogs-refused", "arn:aws:iam::123456789012:role/X", 1);
    own["spec"]["code"] = json!("image");
    own["spec"]["image"] = json!("123456789012.dkr.ecr.us-east-1.amazonaws.com/dog-trainer:1");
    let (code, err) = app.call_json("training/sagemaker/launch", &own).await;
    assert_eq!(code, 403, "{err}");
    assert!(err["message"].as_str().unwrap().starts_with("SageMaker CreateTrainingJob:"), "{err}");
    let (_, journal) = app.call("journal/recent", &[("limit", "5")]).await;
    assert_eq!(journal[0]["action"], "training.sagemaker.create");
    assert_eq!(journal[0]["outcome"], "failed", "{journal}");
    assert_eq!(journal[1]["action"], "training.sagemaker.create");
    assert_eq!(journal[1]["outcome"], "failed", "{journal}");
    // The list answers from the (empty) cache and says the refresh failed.
    // The background refresh may still be in flight on a busy machine: the
    // Refresh button's call waits for it, so the list read after it is settled.
    let (code, state) = app.call("training/sagemaker/refresh", &[]).await;
    assert_eq!(code, 200, "{state}");
    assert!(state["error"].as_str().unwrap_or_default().contains("ListTrainingJobs"), "{state}");
    let (code, list) = app.call("training/sagemaker/list", &[]).await;
    assert_eq!(code, 200, "{list}");
    assert!(list["cache"]["error"].as_str().unwrap_or_default().contains("ListTrainingJobs"), "{list}");
}

#[tokio::test]
async fn without_aws_the_list_says_why_and_the_local_half_still_works() {
    let app = App::spawn(AwsSetup::None);
    let (code, list) = app.call("training/sagemaker/list", &[]).await;
    assert_eq!(code, 200, "{list}");
    assert!(list["note"].as_str().unwrap().contains("not configured"), "{list}");
    let (code, defaults) = app.call("training/sagemaker/defaults", &[]).await;
    assert_eq!(code, 200, "{defaults}");
    assert!(defaults["not_configured"].as_str().unwrap().contains("not configured"), "{defaults}");
    let (code, tuning) = app.call("training/tuning/list", &[]).await;
    assert_eq!((code, tuning), (200, json!({ "jobs": [], "total": 0, "older": null })));
}

#[tokio::test]
async fn a_tuning_job_over_learning_rate_and_batch_size_is_launched_listed_and_described() {
    let moto = Moto::start();
    moto.create_bucket("dogs").await;
    let role = moto.create_sagemaker_role("SageMakerExecution").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    let tuning = |name: &str, lr_min: f64| {
        json!({ "spec": {
            "name": name, "base": spec("unused", &role, 1)["spec"].clone(),
            "lr_min": lr_min, "lr_max": 0.1, "lr_log_scale": true, "batch_sizes": [32, 64, 128],
            "objective_metric": "valid:loss", "metric_regex": "",
            "minimize": true, "max_jobs": 4, "max_parallel": 2
        }})
    };
    let (code, err) = app.call_json("training/tuning/launch", &tuning("dogs-hpo", 0.5)).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("lr_range"), "{err}");

    let (code, detail) = app.call_json("training/tuning/launch", &tuning("dogs-hpo", 0.001)).await;
    assert_eq!(code, 200, "{detail}\n{}", app.log());
    assert_eq!(detail["summary"]["max_jobs"], 4);
    assert_eq!(detail["summary"]["max_parallel"], 2);
    assert_eq!(detail["summary"]["objective"], "Minimize valid:loss");
    let ranges: Vec<&str> = detail["ranges"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(ranges.contains(&"lr: 0.001 to 0.1 (Logarithmic)"), "{ranges:?}");
    assert!(ranges.contains(&"batch-size: one of 32, 64, 128"), "{ranges:?}");
    // moto has no ListTrainingJobsForHyperParameterTuningJob: the page says
    // so instead of showing an empty table as if there were no trials.
    if detail["trials"].as_array().unwrap().is_empty() {
        assert!(detail["trials_note"].as_str().unwrap().contains("ListTrainingJobsForHyperParameterTuningJob"), "{detail}");
    }

    let (code, list) = app.call("training/tuning/list", &[]).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["jobs"][0]["name"], "dogs-hpo", "{list}");
    assert_eq!(list["total"], 1, "{list}");
    let (_, journal) = app.call("journal/recent", &[("limit", "5")]).await;
    assert_eq!(journal[0]["action"], "training.sagemaker.tune", "{journal}");
    assert_eq!(journal[0]["outcome"], "ok");
}
