//! SageMaker for real: Sagedeck's train.py and inference.py run by the real
//! SageMaker container toolkits, for the exact requests the console sends.
//!
//! moto stores a CreateTrainingJob and runs nothing, so these tests run the
//! job themselves the way SageMaker would (tests/sagemaker/run_training_job.py):
//! the request is read back from moto, each instance's /opt/ml layout is made
//! from it (config files, channels downloaded from moto's S3), and the real
//! entry point of the PyTorch training image (sagemaker-training's `train`
//! with sagemaker-pytorch-training) fetches the code from moto's S3 and runs
//! it, on one host and on two hosts as two processes on loopback. The models
//! are then served through the real inference toolkit's handler service
//! (tests/sagemaker/invoke_with_toolkit.py) and by local endpoints, and their
//! logits compared.

use sagedeck_tests::{aws_stand_in, repo_root, sagedeck_cli, App, AwsSetup, Moto, RecordingProxy};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BUCKET: &str = "sagedeck-tests";

fn python() -> PathBuf {
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Runs one of tests/sagemaker/*.py against moto; its last stdout line is JSON.
fn run_python(moto: &Moto, script: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("tests/sagemaker").join(script))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).chars().rev().take(6000).collect::<String>().chars().rev().collect::<String>()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}"))
}

/// The launch form's spec for Sagedeck's code on the demo set's upload.
fn job_spec(name: &str, role: &str, instances: u32, dataset: &str) -> Value {
    json!({ "spec": {
        "name": name, "image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
        "role_arn": role, "instance_type": "ml.m5.xlarge", "instance_count": instances, "volume_gb": 10,
        "max_runtime_seconds": 3600, "spot": false, "max_wait_seconds": null,
        "learning_rate": 0.002, "batch_size": 16, "epochs": 10, "architecture": "resnet18", "image_size": 32, "patience": 0,
        "extra_hyperparameters": [["workers", "0"], ["augment", "none"]],
        "train_s3": format!("{dataset}/train"), "valid_s3": format!("{dataset}/valid"), "test_s3": format!("{dataset}/test"),
        "output_s3": format!("s3://{BUCKET}/output")
    }})
}

/// Starts an upload through the console and waits for it to end.
async fn upload(app: &App, dataset: &Path, destination: &str) -> Value {
    let (code, started) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": dataset, "destination": destination } })).await;
    assert_eq!(code, 200, "{started}\n{}", app.log());
    let id = started["id"].as_i64().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, upload) = app.call("training/uploads/get", &[("id", &id)]).await;
        if matches!(upload["status"].as_str(), Some("Completed" | "Failed" | "Cancelled")) {
            return upload;
        }
        assert!(Instant::now() < deadline, "the upload took over 5 min: {upload}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every object of a tar.gz: path → bytes.
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path.trim_start_matches("./").to_string(), data)
        })
        .collect()
}

async fn get_object(moto: &Moto, uri: &str) -> Vec<u8> {
    let (bucket, key) = uri.trim_start_matches("s3://").split_once('/').unwrap();
    let object = moto.s3().await.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("GetObject {uri}: {e:?}"));
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

/// PNG copies of some of the demo set's test images (PNG decodes to the
/// same pixels in Rust's decoder and in Pillow, so logits can be compared).
fn png_images(data: &Path, out: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    let mut sources = Vec::new();
    for class in ["001.Circle", "003.Triangle", "005.Ring"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("test").join(class)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        sources.extend(files.into_iter().take(2));
    }
    let script = "import sys\nfrom PIL import Image\nfor src, dst in zip(sys.argv[1::2], sys.argv[2::2]):\n    Image.open(src).convert('RGB').resize((80, 60)).save(dst)\n";
    let mut args = Vec::new();
    let mut pngs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let dst = out.join(format!("image-{i}.png"));
        args.push(src.display().to_string());
        args.push(dst.display().to_string());
        pngs.push(dst);
    }
    let status = Command::new(python()).arg("-c").arg(script).args(&args).status().unwrap();
    assert!(status.success());
    pngs
}

/// A local endpoint's logits for each image.
async fn local_logits(app: &App, endpoint: &str, images: &[PathBuf], content_type: &str) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for image in images {
        let (code, _, body) = app.post_bytes(&format!("/endpoints/{endpoint}/invocations"), Some(content_type), std::fs::read(image).unwrap()).await;
        assert_eq!(code, 200, "{body}");
        let rows: Vec<Vec<f64>> = serde_json::from_str(&body).unwrap();
        out.push(rows[0].clone());
    }
    out
}

/// The inference toolkit's answers for each image, through inference.py.
fn toolkit_answers(moto: &Moto, model_tar_gz: &Path, requests: &Value, work: &Path) -> Vec<Value> {
    let file = work.join(format!("requests-{}.json", model_tar_gz.file_stem().unwrap().to_string_lossy()));
    std::fs::write(&file, requests.to_string()).unwrap();
    let answers = run_python(moto, "invoke_with_toolkit.py", &[model_tar_gz.to_str().unwrap(), file.to_str().unwrap()]);
    answers.as_array().unwrap().clone()
}

fn toolkit_logits(moto: &Moto, model_tar_gz: &Path, images: &[PathBuf], content_type: &str, work: &Path) -> Vec<Vec<f64>> {
    let requests: Vec<Value> =
        images.iter().map(|i| json!({ "name": i.display().to_string(), "content_type": content_type, "body_file": i })).collect();
    toolkit_answers(moto, model_tar_gz, &Value::from(requests), work)
        .into_iter()
        .map(|a| {
            assert_eq!(a["status"], 200, "{a}");
            let rows: Vec<Vec<f64>> = serde_json::from_str(a["body"].as_str().unwrap()).unwrap();
            rows[0].clone()
        })
        .collect()
}

fn max_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).flat_map(|(x, y)| {
        assert_eq!(x.len(), y.len());
        x.iter().zip(y).map(|(p, q)| (p - q).abs())
    }).fold(0.0, f64::max)
}

/// Each metric definition sent with the job, applied to the job's log as
/// SageMaker applies it: every one must find its value.
fn every_definition_matches(definitions: &[(String, String)], log: &str) {
    assert_eq!(definitions.len(), 6, "{definitions:?}");
    for (name, pattern) in definitions {
        let regex = regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{name}: {pattern:?} is not a regex: {e}"));
        let values: Vec<f64> = log.lines().filter_map(|l| regex.captures(l)).map(|c| c[1].parse::<f64>().unwrap()).collect();
        assert!(!values.is_empty(), "{name} ({pattern}) matches nothing in the log:\n{log}");
        assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0), "{name}: {values:?}");
    }
}

async fn describe(moto: &Moto, job: &str) -> aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput {
    let sm = aws_sdk_sagemaker::Client::new(&moto.sdk_config().await);
    sm.describe_training_job().training_job_name(job).send().await.unwrap()
}

fn test_accuracy_of(model_dir_metadata: &[u8]) -> f64 {
    let metadata: Value = serde_json::from_slice(model_dir_metadata).unwrap();
    metadata["metrics"]["test_accuracy"].as_f64().unwrap()
}

#[tokio::test]
async fn the_seeds_code_trains_in_the_real_toolkit_on_one_and_two_hosts_and_serves_the_same_logits_everywhere() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let role = moto.create_sagemaker_role("SageMakerExecution").await;
    // The console reaches moto through a proxy that records its requests (see RecordingProxy).
    let proxy = RecordingProxy::start(&moto.url).await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    let work = app.data_path().join("toolkit");
    std::fs::create_dir_all(&work).unwrap();

    // The demo set, uploaded to S3 from the console: then again, which sends nothing.
    let data = app.data_path().join("demo-small");
    sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap(), "--per-class", "160", "--size", "32"]);
    let destination = format!("s3://{BUCKET}/datasets/demo-small");
    let started = Instant::now();
    let first = upload(&app, &data, &destination).await;
    let first_seconds = started.elapsed().as_secs_f64();
    assert_eq!(first["status"], "Completed", "{first}");
    let files = first["files_total"].as_u64().unwrap();
    assert_eq!(files, 5 * (160 + 40 + 40), "{first}");
    assert_eq!((first["files_uploaded"].as_u64(), first["files_skipped"].as_u64()), (Some(files), Some(0)), "{first}");
    let started = Instant::now();
    let second = upload(&app, &data, &destination).await;
    let second_seconds = started.elapsed().as_secs_f64();
    assert_eq!((second["files_uploaded"].as_u64(), second["files_skipped"].as_u64()), (Some(0), Some(files)), "{second}");
    let bytes = first["bytes_total"].as_u64().unwrap() as f64;
    println!(
        "upload to moto: {files} files, {:.2} MB: first {first_seconds:.1} s ({:.2} MB/s), second (all skipped) {second_seconds:.1} s",
        bytes / 1e6,
        bytes / 1e6 / first_seconds
    );

    // One host. The request as moto stored it, then the run.
    let (code, launched) = app.call_json("training/sagemaker/launch", &job_spec("toolkit-one", &role, 1, &destination)).await;
    assert_eq!(code, 200, "{launched}\n{}", app.log());
    let stored = describe(&moto, "toolkit-one").await;
    let hp = stored.hyper_parameters().unwrap();
    assert_eq!(hp["sagemaker_program"], "\"train.py\"");
    assert_eq!(hp["sagemaker_submit_directory"], format!("\"s3://{BUCKET}/output/toolkit-one/source/sourcedir.tar.gz\""));
    assert_eq!(hp["sagemaker_region"], "\"us-east-1\"");
    assert_eq!((hp["arch"].as_str(), hp["image-size"].as_str(), hp["epochs"].as_str()), ("resnet18", "32", "10"));
    // The definitions as sent (moto keeps its own instead; the proxy's record is the request).
    let sent = proxy.sent("CreateTrainingJob");
    let definitions: Vec<(String, String)> = sent[0]["AlgorithmSpecification"]["MetricDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["Name"].as_str().unwrap().to_string(), d["Regex"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(sent[0]["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"], true);
    assert!(sent[0].get("CheckpointConfig").is_none(), "no checkpoint upload without spot");
    let source = tar_entries(&get_object(&moto, &format!("s3://{BUCKET}/output/toolkit-one/source/sourcedir.tar.gz")).await);
    assert_eq!(source.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["train.py", "inference.py"]);

    let one = run_python(&moto, "run_training_job.py", &["--job", "toolkit-one", "--work", work.join("one").to_str().unwrap()]);
    let host = &one["hosts"][0];
    assert_eq!(host["returncode"], 0, "{one}");
    let log_one = std::fs::read_to_string(host["log"].as_str().unwrap()).unwrap();
    assert!(log_one.contains("Invoking user training script"), "the toolkit ran the script:\n{log_one}");
    assert!(log_one.contains("training from random weights"), "offline, the ImageNet download fails and says so:\n{log_one}");
    every_definition_matches(&definitions, &log_one);
    let files: Vec<&str> = one["model_files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files, ["classes.json", "code/inference.py", "metadata.json", "model.safetensors"], "{one}");
    let artifact_one = one["model_artifact"].as_str().unwrap().to_string();
    let model_one = get_object(&moto, &artifact_one).await;
    let model_one_entries = tar_entries(&model_one);
    let accuracy_one = test_accuracy_of(&model_one_entries.iter().find(|(p, _)| p == "metadata.json").unwrap().1);
    // Chance is 0.2; 0.35 on 200 test images is five standard errors above it.
    assert!(accuracy_one > 0.35, "one host: test accuracy {accuracy_one} (chance is 0.2)");
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(work.join("one/host-1/checkpoints/state.json")).expect("a checkpoint for spot training")).unwrap();
    assert_eq!(checkpoint["epochs_done"], 10);
    println!("toolkit, 1 host: test accuracy {accuracy_one:.3}, {:.1} s", one["wall_seconds"].as_f64().unwrap());
    // Spot capacity taken back and given again: the same instance folders,
    // checkpoints in place; train.py carries on from them instead of starting over.
    let again = run_python(&moto, "run_training_job.py", &["--job", "toolkit-one", "--work", work.join("one").to_str().unwrap()]);
    assert_eq!(again["hosts"][0]["returncode"], 0, "{again}");
    let log_again = std::fs::read_to_string(again["hosts"][0]["log"].as_str().unwrap()).unwrap();
    assert!(log_again.contains("resuming from the checkpoint of epoch 10"), "{log_again}");
    assert!(!log_again.contains("sagedeck.metrics epoch="), "no epoch is trained again:\n{log_again}");

    // The console charts what the definitions read from the job's log.
    let (code, metrics) = app.call("training/sagemaker/metrics", &[("name", "toolkit-one")]).await;
    assert_eq!(code, 200, "{metrics}");
    let valid_loss = metrics["series"].as_array().unwrap().iter().find(|s| s["name"] == "valid:loss").expect("valid:loss charted");
    assert_eq!(valid_loss["points"].as_array().unwrap().len(), 10, "{valid_loss}");
    assert_eq!(valid_loss["points"][9][0], 10.0);
    let last: Vec<(String, f64)> = serde_json::from_value(metrics["last"].clone()).unwrap();
    let test_accuracy = last.iter().find(|(n, _)| n == "test:accuracy").unwrap().1;
    assert!((test_accuracy - accuracy_one).abs() < 1e-6, "{last:?} vs {accuracy_one}");

    // Two hosts: one process group, each host on its half.
    let (code, launched) = app.call_json("training/sagemaker/launch", &job_spec("toolkit-two", &role, 2, &destination)).await;
    assert_eq!(code, 200, "{launched}");
    let two = run_python(&moto, "run_training_job.py", &["--job", "toolkit-two", "--work", work.join("two").to_str().unwrap()]);
    let logs: Vec<String> = (0..2)
        .map(|i| {
            assert_eq!(two["hosts"][i]["returncode"], 0, "{two}");
            std::fs::read_to_string(two["hosts"][i]["log"].as_str().unwrap()).unwrap()
        })
        .collect();
    for (rank, log) in logs.iter().enumerate() {
        assert!(log.contains(&format!("process group formed: rank {rank} of 2 (gloo)")), "host {rank}:\n{log}");
        every_definition_matches(&definitions, log);
    }
    // "trained on N of the M training images": the shards are halves that add up.
    let shard = |log: &str| -> (u64, u64) {
        let line = log.lines().find(|l| l.contains("epoch 1 trained on")).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "on").unwrap();
        (words[at + 1].parse().unwrap(), words[at + 4].parse().unwrap())
    };
    let ((a, total), (b, total_b)) = (shard(&logs[0]), shard(&logs[1]));
    assert_eq!((total, total_b), (800, 800));
    assert_eq!(a + b, total, "each image once per epoch across the hosts");
    assert!(a.abs_diff(b) <= 1, "{a} and {b}");
    // Gradients were averaged: both hosts report the same (all-reduced) losses.
    let metric_lines = |log: &str| log.lines().filter(|l| l.contains("sagedeck.metrics")).map(|l| l.split("images_per_s").next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(metric_lines(&logs[0]), metric_lines(&logs[1]));
    assert!(!logs[1].contains("model written to"), "only the first host writes the model");
    let model_two = tar_entries(&get_object(&moto, two["model_artifact"].as_str().unwrap()).await);
    let accuracy_two = test_accuracy_of(&model_two.iter().find(|(p, _)| p == "metadata.json").unwrap().1);
    assert!(accuracy_two > 0.35, "two hosts: test accuracy {accuracy_two}");
    println!("toolkit, 2 hosts: test accuracy {accuracy_two:.3}, {:.1} s", two["wall_seconds"].as_f64().unwrap());

    // The SageMaker job's model.tar.gz on a local endpoint, and through inference.py.
    let images = png_images(&data, &work.join("png"));
    let spec = json!({ "spec": { "name": "from-sagemaker", "job_id": 0, "sagemaker_job": "toolkit-one", "instances": 1,
        "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 16 } } });
    let (code, detail) = app.call_json("endpoints/local/deploy", &spec).await;
    assert_eq!(code, 200, "{detail}\n{}", app.log());
    assert_eq!(detail["summary"]["model"], "SageMaker job toolkit-one");
    let here = local_logits(&app, "from-sagemaker", &images, "image/png").await;
    let model_one_path = work.join("toolkit-one.tar.gz");
    std::fs::write(&model_one_path, &model_one).unwrap();
    let there = toolkit_logits(&moto, &model_one_path, &images, "image/png", &work);
    let difference = max_difference(&here, &there);
    println!("logits, SageMaker-trained model: local endpoint vs the inference toolkit, largest difference {difference:.2e}");
    assert!(difference < 1e-3, "{here:?}\n{there:?}");
    let jpegs: Vec<PathBuf> = std::fs::read_dir(data.join("test/002.Square")).unwrap().take(4).map(|e| e.unwrap().path()).collect();
    let jpeg_difference = max_difference(&local_logits(&app, "from-sagemaker", &jpegs, "image/jpeg").await, &toolkit_logits(&moto, &model_one_path, &jpegs, "image/jpeg", &work));
    println!("logits on JPEGs (decoders differ: zune-jpeg vs libjpeg): largest difference {jpeg_difference:.2e}");

    // A local job's artifact packed for SageMaker: the same logits through inference.py.
    let (job_id, small_data) = app.completed_small_job().await;
    app.deploy_local_endpoint("local-model", job_id, 4, 0, 16).await;
    let deploy = json!({ "spec": { "name": "local-on-sagemaker", "training_job": "", "local_job": job_id,
        "model_s3": format!("s3://{BUCKET}/models"), "image": "", "role_arn": role, "instance_type": "ml.m5.large", "instance_count": 1 } });
    let (code, detail) = app.call_json("endpoints/sagemaker/deploy", &deploy).await;
    assert_eq!(code, 200, "{detail}\n{}", app.log());
    let sm = aws_sdk_sagemaker::Client::new(&moto.sdk_config().await);
    let model = sm.describe_model().model_name("local-on-sagemaker-model").send().await.unwrap();
    let container = model.primary_container().unwrap();
    let packed_uri = format!("s3://{BUCKET}/models/local-on-sagemaker/model.tar.gz");
    assert_eq!(container.model_data_url(), Some(packed_uri.as_str()));
    assert_eq!(container.environment().unwrap()["SAGEMAKER_PROGRAM"], "inference.py");
    let packed = get_object(&moto, &packed_uri).await;
    let names: Vec<String> = tar_entries(&packed).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, ["model.safetensors", "classes.json", "metadata.json", "code/inference.py"]);
    let packed_path = work.join("local-job.tar.gz");
    std::fs::write(&packed_path, &packed).unwrap();
    let small_images = png_images(&small_data, &work.join("png-small"));
    let here = local_logits(&app, "local-model", &small_images, "image/png").await;
    let there = toolkit_logits(&moto, &packed_path, &small_images, "image/png", &work);
    let difference = max_difference(&here, &there);
    println!("logits, local job packed for SageMaker: local endpoint vs the inference toolkit, largest difference {difference:.2e}");
    assert!(difference < 1e-3, "{here:?}\n{there:?}");

    // Bad requests get the local endpoint's statuses from inference.py too.
    let refused = toolkit_answers(
        &moto,
        &packed_path,
        &json!([
            { "name": "text", "content_type": "text/plain", "body_text": "hello" },
            { "name": "junk", "content_type": "image/jpeg", "body_text": "not an image" },
            { "name": "b64", "content_type": "application/json", "body_text": "{\"image_base64\": \"%%%\"}" },
            { "name": "metadata-service", "content_type": "application/json", "body_text": "{\"url\": \"http://169.254.169.254/latest/meta-data/\"}" }
        ]),
        &work,
    );
    let statuses: Vec<i64> = refused.iter().map(|a| a["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [415, 422, 400, 400], "{refused:#?}");
    assert!(refused[3]["body"].as_str().unwrap().contains("not a public address"), "{refused:#?}");
}

#[tokio::test]
async fn uploads_go_in_parts_skip_what_is_there_refuse_bad_input_and_resume_after_a_kill() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let proxy = RecordingProxy::start(&moto.url).await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    let data = app.data_path().join("shapes");
    sagedeck_cli(&["demo-data", "--out", data.to_str().unwrap(), "--per-class", "120", "--size", "32"]);
    // One image of 5 parts (noise does not compress), first in upload order.
    let big = data.join("train/001.Circle/+big.png");
    let script = "import sys, os\nfrom PIL import Image\nImage.frombytes('RGB', (3700, 3700), os.urandom(3700 * 3700 * 3)).save(sys.argv[1])";
    assert!(Command::new(python()).args(["-c", script]).arg(&big).status().unwrap().success());
    let big_size = std::fs::metadata(&big).unwrap().len();
    let parts = big_size.div_ceil(8 * 1024 * 1024);
    assert_eq!(parts, 5, "{big_size}");
    let big_key = "datasets/shapes/train/001.Circle/%2Bbig.png";
    let part_puts = || proxy.requests.lock().unwrap().iter().filter(|(op, _)| op.starts_with("PUT ") && op.contains(big_key) && op.contains("partNumber=")).count();

    // Refused before anything is stored: a bucket that is not there, a dataset that fails its check, a path outside the roots.
    let (code, err) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": data, "destination": "s3://no-such-bucket/x" } })).await;
    assert_eq!(code, 404, "{err}");
    assert!(err["message"].as_str().unwrap().contains("cannot be read, so nothing was uploaded"), "{err}");
    let broken = app.data_path().join("broken");
    std::fs::create_dir_all(broken.join("train/a")).unwrap();
    std::fs::write(broken.join("train/a/x.jpg"), b"not a jpeg").unwrap();
    let (code, err) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": broken, "destination": format!("s3://{BUCKET}/b") } })).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("fails its check"), "{err}");
    let (code, err) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": "/etc", "destination": format!("s3://{BUCKET}/etc") } })).await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": data, "destination": "https://bucket/x" } })).await;
    assert_eq!(code, 400, "{err}");
    let (_, list) = app.call("training/uploads/list", &[]).await;
    assert_eq!(list, json!([]), "nothing was stored for a refused upload");

    // Killed halfway, then resumed by the next start.
    let destination = format!("s3://{BUCKET}/datasets/shapes");
    let (code, started) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": data, "destination": destination } })).await;
    assert_eq!(code, 200, "{started}");
    let id = started["id"].as_i64().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, u) = app.call("training/uploads/get", &[("id", &id)]).await;
        assert!(matches!(u["status"].as_str(), Some("Preparing" | "Uploading")), "{u}");
        // Once the big file's first parts are in: a pace and the time left at it.
        if u["bytes_uploaded"].as_u64().unwrap_or(0) >= 8 * 1024 * 1024 && u["bytes_per_s"].as_f64().is_some() {
            assert!(u["eta_seconds"].as_f64().unwrap() > 0.0, "{u}");
            break;
        }
        assert!(Instant::now() < deadline, "{u}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The resume asks S3 which parts it holds (ListParts): kill only once it
    // holds one, not while the first parts are still in flight (a part the
    // kill cuts off is rightly sent again).
    let s3 = moto.s3().await;
    loop {
        let uploads = s3.list_multipart_uploads().bucket(BUCKET).send().await.unwrap();
        let held = match uploads.uploads().iter().find(|u| u.key().is_some_and(|k| k.ends_with("+big.png"))) {
            Some(u) => s3.list_parts().bucket(BUCKET).key(u.key().unwrap_or_default()).upload_id(u.upload_id().unwrap_or_default()).send().await.unwrap().parts().len(),
            None => 0,
        };
        if held >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no part of the big file reached S3 in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_kill = part_puts();
    let app = app.crash_and_restart_with(AwsSetup::Endpoint(proxy.url.clone()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let resumed = loop {
        let (_, u) = app.call("training/uploads/get", &[("id", &id)]).await;
        if u["status"] == "Completed" {
            break u;
        }
        assert!(!matches!(u["status"].as_str(), Some("Failed" | "Cancelled")), "{u}\n{}", app.log());
        assert!(Instant::now() < deadline, "{u}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(resumed["message"].as_str().unwrap().contains("resumed after a restart"), "{resumed}");
    assert!(resumed["files_skipped"].as_u64().unwrap() >= 1, "what was sent before the kill is not sent again: {resumed}");
    // The big file: the parts S3 had (ListParts) were not sent again.
    let after_kill = part_puts() - before_kill;
    println!("big file: {before_kill} parts sent before the kill, {after_kill} after");
    assert!(before_kill >= 1 && before_kill as u64 + after_kill as u64 <= parts + 4, "{before_kill} + {after_kill} part uploads for {parts} parts");
    assert!((after_kill as u64) < parts, "the parts S3 already held were not sent again: {after_kill} of {parts}");
    let total = resumed["files_total"].as_u64().unwrap();
    assert_eq!(resumed["files_skipped"].as_u64().unwrap() + resumed["files_uploaded"].as_u64().unwrap(), total, "{resumed}");

    // Every object is there with S3's ETag for how it was sent: the big one in two parts.
    let listed = s3.list_objects_v2().bucket(BUCKET).prefix("datasets/shapes/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(total as i32));
    let head = s3.head_object().bucket(BUCKET).key("datasets/shapes/train/001.Circle/+big.png").send().await.unwrap();
    assert_eq!(head.content_length(), Some(big_size as i64));
    assert!(head.e_tag().unwrap().trim_matches('"').ends_with("-5"), "{:?}", head.e_tag());
    assert!(head.metadata().unwrap().contains_key("sagedeck-sha256"));

    // Again: nothing is sent, the big file included.
    let again = upload(&app, &data, &destination).await;
    assert_eq!((again["files_uploaded"].as_u64(), again["files_skipped"].as_u64()), (Some(0), Some(total)), "{again}");
    // A changed file is sent again, alone.
    std::fs::copy(data.join("train/002.Square/0000.jpg"), data.join("train/001.Circle/0000.jpg")).unwrap();
    let changed = upload(&app, &data, &destination).await;
    assert_eq!((changed["files_uploaded"].as_u64(), changed["files_skipped"].as_u64()), (Some(1), Some(total - 1)), "{changed}");

    // Cancelled: it stops, says so, and the journal has it.
    let elsewhere = format!("s3://{BUCKET}/datasets/copy");
    let (code, started) = app.call_json("training/uploads/start", &json!({ "spec": { "dataset": data, "destination": elsewhere } })).await;
    assert_eq!(code, 200, "{started}");
    let (code, cancelled) = app.call("training/uploads/cancel", &[("id", &started["id"].to_string())]).await;
    assert_eq!(code, 200, "{cancelled}");
    // On a fast machine the upload may have finished first; either way it ended.
    assert!(matches!(cancelled["status"].as_str(), Some("Cancelled" | "Completed")), "{cancelled}");
    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let uploads: Vec<&Value> = journal.as_array().unwrap().iter().filter(|e| e["action"] == "dataset.upload").collect();
    assert!(uploads.len() >= 4, "{journal:#}");
    assert!(uploads.iter().any(|e| e["after"].as_str().unwrap_or_default().contains("already there and skipped")), "{journal:#}");
}

#[tokio::test]
async fn bad_code_images_unwritable_outputs_and_weightless_models_are_refused_and_nothing_is_left_behind() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let role = moto.create_sagemaker_role("SageMakerExecution").await;
    let proxy = RecordingProxy::start(&moto.url).await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    let dataset = format!("s3://{BUCKET}/datasets/none");

    // A framework image with no script: refused in words before any call.
    let mut own = job_spec("no-entry-point", &role, 1, &dataset);
    own["spec"]["code"] = json!("image");
    let (code, err) = app.call_json("training/sagemaker/launch", &own).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("no entry point of its own"), "{err}");

    // An output bucket that is not there: the code cannot go up, nothing is created.
    let mut nowhere = job_spec("no-bucket", &role, 1, &dataset);
    nowhere["spec"]["output_s3"] = json!("s3://no-such-bucket/output");
    let (code, err) = app.call_json("training/sagemaker/launch", &nowhere).await;
    assert_eq!(code, 404, "{err}");
    assert!(err["message"].as_str().unwrap().contains("nothing was created"), "{err}");
    let sm = aws_sdk_sagemaker::Client::new(&moto.sdk_config().await);
    assert!(sm.describe_training_job().training_job_name("no-bucket").send().await.is_err(), "no job was created");

    // Spot: the checkpoints beside the output, where train.py resumes from.
    let mut spot = job_spec("spot-job", &role, 1, &dataset);
    spot["spec"]["spot"] = json!(true);
    spot["spec"]["max_wait_seconds"] = json!(7200);
    let (code, detail) = app.call_json("training/sagemaker/launch", &spot).await;
    assert_eq!(code, 200, "{detail}");
    let stored = describe(&moto, "spot-job").await;
    let checkpoint = stored.checkpoint_config().expect("a checkpoint configuration");
    let expected = format!("s3://{BUCKET}/output/spot-job/checkpoints");
    assert_eq!((checkpoint.s3_uri(), checkpoint.local_path()), (Some(expected.as_str()), Some("/opt/ml/checkpoints")));
    assert_eq!(detail["checkpoint_s3"], format!("s3://{BUCKET}/output/spot-job/checkpoints"));

    // SageMaker refuses the job after the code went up (moto refuses nothing:
    // the proxy answers as SageMaker does when an account is over its limit).
    proxy.refuse("CreateTrainingJob", 400, "ResourceLimitExceeded", "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances.");
    let (code, err) = app.call_json("training/sagemaker/launch", &job_spec("refused-job", &role, 1, &dataset)).await;
    assert_eq!(code, 409, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("service limit") && message.contains("the code uploaded for it (s3://sagedeck-tests/output/refused-job/source/sourcedir.tar.gz) was removed"), "{err}");
    assert!(proxy.requests.lock().unwrap().iter().any(|(op, _)| op.starts_with("PUT ") && op.contains("refused-job/source/sourcedir.tar.gz")), "the code went up first");
    let s3 = moto.s3().await;
    assert!(s3.head_object().bucket(BUCKET).key("output/refused-job/source/sourcedir.tar.gz").send().await.is_err(), "and is gone");

    // A model.tar.gz without weights: refused for a local endpoint, nothing unpacked stays.
    moto.create_completed_training_job("weightless").await;
    moto.create_bucket("dogs").await;
    let artifact = describe(&moto, "weightless").await.model_artifacts().unwrap().s3_model_artifacts().unwrap().to_string();
    let (bucket, key) = artifact.trim_start_matches("s3://").split_once('/').unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let metadata = br#"{"format":"sagedeck-classifier/1"}"#;
    let mut header = tar::Header::new_gnu();
    header.set_size(metadata.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "metadata.json", &metadata[..]).unwrap();
    let tar_gz = builder.into_inner().unwrap().finish().unwrap();
    moto.s3().await.put_object().bucket(bucket).key(key).body(tar_gz.into()).send().await.unwrap();
    let spec = json!({ "spec": { "name": "weightless", "job_id": 0, "sagemaker_job": "weightless", "instances": 1,
        "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 16 } } });
    let (code, err) = app.call_json("endpoints/local/deploy", &spec).await;
    assert_eq!(code, 422, "{err}");
    assert!(err["message"].as_str().unwrap().contains("no weights (model.safetensors)"), "{err}");
    let imports = app.data_path().join("imports/sagemaker");
    let left: Vec<String> = std::fs::read_dir(&imports).map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing half-made is left under {}: {left:?}", imports.display());
    let (code, list) = app.call_json("endpoints/list", &serde_json::json!({ "query": {} })).await;
    assert_eq!(code, 200);
    assert!(!list.to_string().contains("\"weightless\""), "{list}");

    // A local job's model to a bucket that is not there: refused, nothing created.
    let deploy = json!({ "spec": { "name": "nowhere", "training_job": "", "local_job": 99, "model_s3": "s3://no-such-bucket/models",
        "image": "", "role_arn": role, "instance_type": "ml.m5.large", "instance_count": 1 } });
    let (code, err) = app.call_json("endpoints/sagemaker/deploy", &deploy).await;
    assert_eq!(code, 404, "no local job 99: {err}");
    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let failed: Vec<&str> = journal.as_array().unwrap().iter().filter(|e| e["outcome"] == "failed").map(|e| e["action"].as_str().unwrap()).collect();
    assert!(failed.contains(&"training.sagemaker.create") && failed.contains(&"endpoint.local.create") && failed.contains(&"endpoint.sagemaker.create"), "{journal:#}");
}

/// moto has no StopTrainingJob: a stand-in answers it (an empty JSON body,
/// as SageMaker does) and DescribeTrainingJob as SageMaker does for a running
/// job, then for a stopping one; a job already stopped gets SageMaker's
/// ValidationException.
#[tokio::test]
async fn a_running_job_is_stopped_and_journaled_and_a_finished_one_is_refused_in_aws_words() {
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = stopped.clone();
    let url = aws_stand_in(move |request| {
        let json = "application/x-amz-json-1.1";
        let job = |status: &str, secondary: &str| {
            format!(
                r#"{{"TrainingJobName":"running-job","TrainingJobArn":"arn:aws:sagemaker:us-east-1:123456789012:training-job/running-job","TrainingJobStatus":"{status}","SecondaryStatus":"{secondary}","AlgorithmSpecification":{{"TrainingImage":"img","TrainingInputMode":"File"}},"RoleArn":"arn:aws:iam::123456789012:role/R","ResourceConfig":{{"InstanceType":"ml.m5.xlarge","InstanceCount":2,"VolumeSizeInGB":10}},"StoppingCondition":{{"MaxRuntimeInSeconds":3600}},"CreationTime":1764590000}}"#
            )
        };
        if request.contains("sagemaker.describetrainingjob") {
            let body = if seen.load(std::sync::atomic::Ordering::SeqCst) { job("Stopping", "Stopping") } else { job("InProgress", "Training") };
            Some((Duration::ZERO, "200 OK", json, body))
        } else if request.contains("sagemaker.stoptrainingjob") {
            if request.contains(r#""trainingjobname":"running-job""#) && !seen.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Some((Duration::ZERO, "200 OK", json, "{}".to_string()))
            } else {
                let body = r#"{"__type":"ValidationException","message":"The request was rejected because the training job is in status Stopping."}"#;
                Some((Duration::ZERO, "400 Bad Request", json, body.to_string()))
            }
        } else if request.contains("sagemaker.listtrainingjobs") {
            Some((Duration::ZERO, "200 OK", json, r#"{"TrainingJobSummaries":[]}"#.to_string()))
        } else if request.contains("sagemaker.listhyperparametertuningjobs") {
            Some((Duration::ZERO, "200 OK", json, r#"{"HyperParameterTuningJobSummaries":[]}"#.to_string()))
        } else {
            None
        }
    })
    .await;
    let app = App::spawn(AwsSetup::Endpoint(url));
    let (code, detail) = app.call("training/sagemaker/describe", &[("name", "running-job")]).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["summary"]["status"], "InProgress");
    let (code, detail) = app.call("training/sagemaker/stop", &[("name", "running-job")]).await;
    assert_eq!(code, 200, "{detail}\n{}", app.log());
    assert_eq!(detail["summary"]["status"], "Stopping");
    let (code, err) = app.call("training/sagemaker/stop", &[("name", "running-job")]).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("in status Stopping"), "{err}");
    let (_, journal) = app.call("journal/recent", &[("limit", "5")]).await;
    let stops: Vec<&str> =
        journal.as_array().unwrap().iter().filter(|e| e["action"] == "training.sagemaker.stop").map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(stops, ["failed", "ok"], "{journal:#}");
}
