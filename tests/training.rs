//! Local training through the running server: jobs queued over HTTP, the
//! dataset check, a crash in the middle of an epoch, cancelling, refusals.

use sagedeck_tests::{sagedeck_cli, App, AwsSetup};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A small demo set (5 classes × 60 training images, 32 px) inside the app's data folder.
fn small_demo(app: &App, name: &str) -> String {
    let path = app.data_path().join(name);
    sagedeck_cli(&["demo-data", "--out", path.to_str().unwrap(), "--per-class", "60", "--size", "32"]);
    path.display().to_string()
}

fn spec(name: &str, dataset: &str, epochs: u32) -> Value {
    json!({ "spec": {
        "name": name, "dataset": dataset, "architecture": "resnet18", "image_size": 32, "epochs": epochs,
        "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
        "backbone_weights": null, "freeze_backbone": false, "seed": 1
    }})
}

async fn job(app: &App, id: i64) -> Value {
    let (status, detail) = app.call("training/local/get", &[("id", &id.to_string())]).await;
    assert_eq!(status, 200, "{detail}");
    detail
}

/// Polls the job until `done` says so; panics with the job's log after `limit`.
async fn wait_for(app: &App, id: i64, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let detail = job(app, id).await;
        if done(&detail) {
            return detail;
        }
        if Instant::now() > deadline {
            panic!("job {id} did not get there in {limit:?}: {detail:#}\nserver log:\n{}", app.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn status(detail: &Value) -> &str {
    detail["summary"]["status"].as_str().unwrap_or_default()
}

fn log_text(detail: &Value) -> String {
    detail["logs"].as_array().unwrap().iter().map(|l| l["line"].as_str().unwrap().to_string() + "\n").collect()
}

#[tokio::test]
async fn a_job_killed_mid_epoch_resumes_from_its_checkpoint_after_restart() {
    let app = App::spawn(AwsSetup::None);
    let data = small_demo(&app, "demo");
    let (code, created) = app.call_json("training/local/create", &spec("resume-me", &data, 3)).await;
    assert_eq!(code, 200, "{created}");
    let id = created["id"].as_i64().unwrap();

    // Wait until epoch 1 is recorded and epoch 2 is a few steps in.
    let before = wait_for(&app, id, Duration::from_secs(240), |d| {
        d["epochs"].as_array().unwrap().len() == 1 && d["summary"]["progress"]["epoch"] == 2 && d["summary"]["progress"]["step"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    let epoch_one = before["epochs"][0].clone();

    let app = app.crash_and_restart();
    let after = wait_for(&app, id, Duration::from_secs(240), |d| status(d) == "Completed" || status(d) == "Failed").await;
    assert_eq!(status(&after), "Completed", "{after:#}");
    let epochs: Vec<u64> = after["epochs"].as_array().unwrap().iter().map(|e| e["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [1, 2, 3], "every epoch once, none lost and none repeated");
    assert_eq!(after["epochs"][0], epoch_one, "the finished epoch is kept as it was");
    let log = log_text(&after);
    assert!(log.contains("server stopped during this job; it will resume from the checkpoint of epoch 1"), "{log}");
    assert!(log.contains("resuming from the checkpoint of epoch 1"), "{log}");
    let artifact = &after["artifact"];
    assert!(artifact["test_accuracy"].as_f64().unwrap() >= 0.0);
    let files: Vec<&str> = artifact["files"].as_array().unwrap().iter().map(|f| f[0].as_str().unwrap()).collect();
    assert_eq!(files, ["classes.json", "metadata.json", "model.safetensors"]);
    // Per-step losses cover all three epochs without gaps from the crash.
    let steps = after["steps"].as_array().unwrap();
    assert!(steps.len() >= 3 * 30, "{} steps recorded", steps.len());
}

#[tokio::test]
async fn broken_files_are_reported_and_training_uses_the_good_ones() {
    let app = App::spawn(AwsSetup::None);
    let data = small_demo(&app, "broken");
    let root = Path::new(&data);
    std::fs::write(root.join("train/001.Circle/notes.jpg"), b"not an image at all").unwrap();
    std::fs::write(root.join("train/002.Square/empty.jpg"), b"").unwrap();
    let good = std::fs::read(root.join("train/003.Triangle/0000.jpg")).unwrap();
    std::fs::write(root.join("train/003.Triangle/cut.jpg"), &good[..good.len() / 3]).unwrap();
    std::fs::create_dir_all(root.join("valid/006.Hexagon")).unwrap();
    std::fs::write(root.join("valid/006.Hexagon/0000.jpg"), &good).unwrap();

    let (code, report) = app.call("training/datasets/check", &[("path", &data)]).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["problems"], json!([]));
    let reasons: Vec<(String, String)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    let reason = |p: &str| reasons.iter().find(|r| r.0 == p).map(|r| r.1.clone()).unwrap_or_else(|| panic!("{p} not reported in {reasons:?}"));
    assert_eq!(reason("train/001.Circle/notes.jpg"), "not an image");
    assert_eq!(reason("train/002.Square/empty.jpg"), "empty file");
    assert!(reason("train/003.Triangle/cut.jpg").starts_with("truncated"));
    assert!(reason("valid/006.Hexagon/0000.jpg").contains("missing from train/"));
    assert_eq!(report["splits"][0]["total"], 300, "the 300 good training images remain");

    let (code, created) = app.call_json("training/local/create", &spec("with-broken-files", &data, 1)).await;
    assert_eq!(code, 200, "{created}");
    let id = created["id"].as_i64().unwrap();
    let done = wait_for(&app, id, Duration::from_secs(240), |d| JOB_ENDED.contains(&status(d))).await;
    assert_eq!(status(&done), "Completed", "{done:#}");
    assert_eq!(done["dataset"]["skipped"].as_array().unwrap().len(), 4);
    assert!(log_text(&done).contains("skipped train/003.Triangle/cut.jpg: truncated"));
    // The worker's log lines name the job they are about (its span).
    let server_log = app.log();
    let ended: Vec<&str> = server_log.lines().filter(|l| l.contains("job ended")).collect();
    assert!(!ended.is_empty(), "the worker logged the job's end:\n{server_log}");
    assert!(ended.iter().all(|l| l.contains(&format!("local_job{{id={id} name=with-broken-files}}"))), "{ended:?}");
}

const JOB_ENDED: [&str; 4] = ["Completed", "Failed", "Cancelled", "Interrupted"];

#[tokio::test]
async fn an_unusable_dataset_is_refused_with_its_report() {
    let app = App::spawn(AwsSetup::None);
    let empty = app.data_path().join("empty");
    std::fs::create_dir_all(empty.join("train/001.Cat")).unwrap();
    std::fs::write(empty.join("train/001.Cat/a.jpg"), b"junk").unwrap();
    let (code, body) = app.call_json("training/local/create", &spec("refused", empty.to_str().unwrap(), 1)).await;
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("can't be trained on"), "{message}");
    assert!(message.contains("no classes") && message.contains("there is no valid/ folder"), "{message}");
    assert!(message.contains("1 files were skipped"), "{message}");

    let (_, report) = app.call("training/datasets/check", &[("path", empty.to_str().unwrap())]).await;
    assert_eq!(report["skipped"][0]["reason"], "not an image");
    let missing = app.data_path().join("no-such-folder");
    let (_, nowhere) = app.call("training/datasets/check", &[("path", missing.to_str().unwrap())]).await;
    assert!(nowhere["problems"][0].as_str().unwrap().contains("is not a folder"));
    // Outside the data folder (and any --dataset-root): refused before reading.
    let (code, outside) = app.call("training/datasets/check", &[("path", "/no/such/folder")]).await;
    assert_eq!(code, 400, "{outside}");
    assert!(outside["message"].as_str().unwrap().contains("outside the folders this console reads from"), "{outside}");

    let (_, jobs) = app.call("training/local/list", &[]).await;
    assert_eq!(jobs, json!([]), "nothing was queued");
    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    assert_eq!(journal[0]["action"], "training.local.create");
    assert_eq!(journal[0]["outcome"], "failed");
}

#[tokio::test]
async fn invalid_specs_are_refused_field_by_field() {
    let app = App::spawn(AwsSetup::None);
    let mut bad = spec("bad name!", "", 0);
    bad["spec"]["learning_rate"] = json!(0.0);
    bad["spec"]["freeze_backbone"] = json!(true);
    let (code, body) = app.call_json("training/local/create", &bad).await;
    assert_eq!(code, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    for field in ["name:", "dataset:", "epochs:", "learning_rate:", "freeze_backbone:"] {
        assert!(message.contains(field), "{field} missing from {message}");
    }
    // Malformed JSON and missing fields are 400s too, and the server stays up.
    let (code, _) = app.call_json("training/local/create", &json!({ "spec": { "name": "x" } })).await;
    assert_eq!(code, 400);
    let (code, _) = app.call_json("training/local/create", &json!("not an object")).await;
    assert_eq!(code, 400);
    let mut weights = spec("weights", app.data_path().to_str().unwrap(), 1);
    weights["spec"]["backbone_weights"] = json!(app.data_path().join("no-such-weights.safetensors"));
    let (code, body) = app.call_json("training/local/create", &weights).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no file at"), "{body}");
    // Weights outside the folders the console reads from are refused before any check.
    weights["spec"]["backbone_weights"] = json!("/no/such/weights.safetensors");
    let (code, body) = app.call_json("training/local/create", &weights).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("outside the folders"), "{body}");
    let (code, _) = app.call("training/local/get", &[("id", "999")]).await;
    assert_eq!(code, 404);
    let (code, _) = app.get("/healthz").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_running_job_can_be_cancelled_and_a_queued_one_never_starts() {
    let app = App::spawn(AwsSetup::None);
    let data = small_demo(&app, "cancel");
    let (_, running) = app.call_json("training/local/create", &spec("long", &data, 50)).await;
    let (_, queued) = app.call_json("training/local/create", &spec("behind-it", &data, 1)).await;
    let (running, queued) = (running["id"].as_i64().unwrap(), queued["id"].as_i64().unwrap());
    wait_for(&app, running, Duration::from_secs(120), |d| status(d) == "Running" && d["summary"]["progress"]["step"].as_u64().unwrap_or(0) >= 1).await;

    let (code, body) = app.call("training/local/cancel", &[("id", &queued.to_string())]).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "Cancelled");
    let (code, body) = app.call("training/local/cancel", &[("id", &running.to_string())]).await;
    assert_eq!(code, 200, "{body}");
    let done = wait_for(&app, running, Duration::from_secs(60), |d| JOB_ENDED.contains(&status(d))).await;
    assert_eq!(status(&done), "Cancelled");
    assert!(done["artifact"].is_null());
    let (code, body) = app.call("training/local/cancel", &[("id", &running.to_string())]).await;
    assert_eq!(code, 409, "{body}");
    // The queued job never ran.
    assert!(job(&app, queued).await["summary"]["started_at"].is_null());
    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let actions: Vec<&str> = journal.as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "training.local.cancel").count(), 2, "{actions:?}");
}
