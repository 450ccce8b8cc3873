//! `sagedeck train` on the demo set, headless: the accuracy the issue asks
//! for, the artifact's files, and the job recorded in the database.

use sagedeck_tests::{sagedeck_cli, App, AwsSetup};
use serde_json::Value;

#[tokio::test]
async fn the_cli_trains_the_demo_set_past_90_percent_and_records_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = dir.path().join("run");
    let db = format!("sqlite://{}", dir.path().join("sagedeck.db").display());
    sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap()]);
    let output = sagedeck_cli(&[
        "train", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--name", "demo-cli",
        "--image-size", "48", "--epochs", "14", "--patience", "4", "--database-url", &db,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("5 classes, 3000 usable images (train 2000, valid 500, test 500), 0 skipped"), "{stdout}");

    let metadata: Value = serde_json::from_slice(&std::fs::read(out.join("artifact/metadata.json")).unwrap()).unwrap();
    let accuracy = metadata["metrics"]["test_accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.90, "test accuracy {accuracy} is below 90 %\n{stdout}");
    assert_eq!(metadata["format"], "sagedeck-classifier/1");
    assert_eq!(metadata["architecture"], "resnet18");
    assert_eq!(metadata["input_size"], 48);
    assert_eq!(metadata["normalization"]["mean"][0].as_f64().unwrap() as f32, 0.485);
    assert_eq!(metadata["dataset"]["digest"].as_str().unwrap().len(), 64);
    let classes: Vec<String> = serde_json::from_slice(&std::fs::read(out.join("artifact/classes.json")).unwrap()).unwrap();
    assert_eq!(classes, ["Circle", "Square", "Triangle", "Cross", "Ring"]);
    assert!(std::fs::metadata(out.join("artifact/model.safetensors")).unwrap().len() > 40_000_000);

    // The console, opened on the same database, lists the job with its result.
    let db_arg = db.clone();
    let app = App::spawn_with(AwsSetup::None, &["--database-url", &db_arg]);
    let (_, jobs) = app.call("training/local/list", &[]).await;
    assert_eq!(jobs[0]["name"], "demo-cli");
    assert_eq!(jobs[0]["status"], "Completed");
    assert!((jobs[0]["test_accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-9);
    let (_, detail) = app.call("training/local/get", &[("id", &jobs[0]["id"].to_string())]).await;
    assert!(detail["epochs"].as_array().unwrap().len() >= 5);
    assert!(detail["artifact"]["test_accuracy"].as_f64().unwrap() >= 0.90);
    println!("demo set via the CLI: test accuracy {:.2} %, {} epochs\n{stdout}", accuracy * 100.0, detail["epochs"].as_array().unwrap().len());
}

#[tokio::test]
async fn the_cli_takes_the_augmentation_and_the_artifact_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("small");
    let out = dir.path().join("run");
    sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap(), "--per-class", "8", "--size", "32"]);
    let train = |augment: &str| {
        std::process::Command::new(sagedeck_tests::server_binary())
            .args(["train", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--name", "digits-like"])
            .args(["--image-size", "32", "--epochs", "1", "--batch-size", "8", "--augment", augment])
            .output()
            .unwrap()
    };
    let refused = train("rotate");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not an augmentation"), "{}", String::from_utf8_lossy(&refused.stderr));
    let done = train("crop=0.8-1");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&done.stderr));
    assert!(stdout.contains("augmentation: random crops of 80–100 % of the area, never mirrored"), "{stdout}");
    let metadata: Value = serde_json::from_slice(&std::fs::read(out.join("artifact/metadata.json")).unwrap()).unwrap();
    assert_eq!(metadata["spec"]["augmentation"], serde_json::json!({ "flip": false, "crop": [0.8, 1.0] }), "{metadata:#}");
}
