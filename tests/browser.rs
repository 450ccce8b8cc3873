//! The browser test: headless Chromium (Debian's, driven by playwright-core)
//! opens every page of a console that operates a moto account, finds the
//! notebook it created, stops and starts it through the UI; and a newcomer
//! trains the demo set from the Training page.

use sagedeck_tests::{image_variants, repo_root, App, AwsSetup, Moto, RecordingProxy, PASSWORD};
use std::process::Command;
use tokio::sync::RwLock;

/// The newcomer's training run needs both cores for its epochs: beside two
/// other Chromium runs its first epoch fell to 8 images/s in CI and the job
/// outlived the script's five minutes. It holds this lock for writing, every
/// other browser test for reading, so it runs alone and the rest in parallel.
static CORES: RwLock<()> = RwLock::const_new(());

/// Runs a script against `app` and fails the test with the script's output
/// and the server's log unless every check in it passed.
async fn check_script(app: &App, name: &'static str, envs: Vec<(&'static str, String)>) {
    let _shared = CORES.read().await;
    run_checks(app, name, envs).await;
}

/// `check_script` without the lock, for a test that holds it already.
async fn run_checks(app: &App, name: &'static str, envs: Vec<(&'static str, String)>) {
    let url = app.url.clone();
    let out = tokio::task::spawn_blocking(move || run_script(name, url, &envs)).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !out.status.success() {
        // The log's end says what the server did last; its start is the same
        // for every test.
        let log = app.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        panic!("browser run failed\n--- stderr\n{stderr}\n--- the server log's last 60 lines\n{tail}\n--- stdout\n{stdout}");
    }
    assert!(stdout.contains("browser: all checks passed"));
}

fn run_script(name: &str, url: String, envs: &[(&str, String)]) -> std::process::Output {
    let script = repo_root().join("tests/browser").join(name);
    let shots = repo_root().join("target/browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    Command::new("node")
        .arg(script)
        .env("SAGEDECK_URL", url)
        .env("SCREENSHOT_DIR", shots)
        .envs(envs.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .output()
        .expect("run node (scripts/setup.sh test installs the browser driver)")
}

#[tokio::test]
async fn a_newcomer_trains_the_demo_set_in_chromium() {
    let _alone = CORES.write().await;
    let app = App::spawn(AwsSetup::None);
    run_checks(&app, "training.mjs", vec![]).await;
}

#[tokio::test]
async fn a_person_stops_and_starts_a_notebook_in_chromium() {
    let moto = Moto::start();
    let name = moto.create_notebook("browser-nb", "ml.t3.medium").await;
    moto.create_sagemaker_role("NotebookRole").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    check_script(&app, "console.mjs", vec![("NOTEBOOK_NAME", name)]).await;
}

#[tokio::test]
async fn an_operator_deploys_a_job_and_tests_it_with_a_dropped_image_in_chromium() {
    // It trains a small job first: that too must not overlap the newcomer's.
    let _shared = CORES.read().await;
    let app = App::spawn(AwsSetup::None);
    let (_, data) = app.completed_small_job().await;
    let images = app.data_path().join("browser-images");
    let src = std::fs::read_dir(data.join("test/002.Square")).unwrap().next().unwrap().unwrap().path();
    image_variants(&src, &images);
    run_checks(&app, "endpoints.mjs", vec![("IMAGES_DIR", images.display().to_string()), ("DATA_DIR", data.display().to_string())]).await;
}

#[tokio::test]
async fn the_test_panel_invokes_a_sagemaker_endpoint_in_chromium() {
    let moto = Moto::start();
    moto.create_completed_training_job("dog-breeds-browser").await;
    moto.create_completed_training_job("dog-breeds-browser-v2").await;
    // moto has no UpdateEndpoint: the proxy answers it, and this task
    // reports the deployment done six seconds later, as SageMaker would.
    let proxy = std::sync::Arc::new(RecordingProxy::start(&moto.url).await);
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    let spec = serde_json::json!({ "spec": { "name": "dogs-browser", "training_job": "dog-breeds-browser", "image": "",
        "role_arn": "", "instance_type": "ml.m5.large", "instance_count": 1 } });
    let (code, detail) = app.call_json("endpoints/sagemaker/deploy", &spec).await;
    assert_eq!(code, 200, "{detail}");
    moto.queue_endpoint_result("[[0.1, 2.5, -1.0, 0.3]]").await;
    let sagemaker = proxy.clone();
    let finisher = tokio::spawn(async move {
        while sagemaker.sent("UpdateEndpoint").is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        sagemaker.overlay_endpoint("dogs-browser", serde_json::json!({ "EndpointStatus": "InService" }));
    });

    check_script(&app, "sagemaker_endpoint.mjs", vec![("ENDPOINT_NAME", "dogs-browser".into()), ("NEXT_JOB", "dog-breeds-browser-v2".into())]).await;
    finisher.abort();
}

#[tokio::test]
async fn an_operator_launches_a_four_instance_job_reads_its_logs_and_tabs_do_not_multiply_aws_calls() {
    let moto = Moto::start();
    moto.create_bucket("dogs").await;
    moto.create_sagemaker_role("SageMakerExecution").await;
    let job = "browser-multi";
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 600_000;
    let mut lines = Vec::new();
    for step in 0..2 {
        for host in 1..=4 {
            lines.push((format!("algo-{host}-1763800000"), t0 + step * 1000 + host, format!("epoch {step} host {host}")));
        }
    }
    let refs: Vec<(&str, i64, &str)> = lines.iter().map(|(h, t, m)| (h.as_str(), *t, m.as_str())).collect();
    moto.seed_training_logs(job, &refs).await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    check_script(&app, "sagemaker_training.mjs", vec![("JOB_NAME", job.into())]).await;
}

#[tokio::test]
async fn an_operator_simulates_applies_and_reverts_a_scaling_policy_in_chromium() {
    let moto = Moto::start();
    moto.create_completed_training_job("dog-breeds-scaling").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    app.deploy_sagemaker_endpoint("dogs-scaling", "dog-breeds-scaling").await;

    check_script(&app, "scaling.mjs", vec![("ENDPOINT_NAME", "dogs-scaling".into())]).await;
}

#[tokio::test]
async fn an_operator_sets_up_the_endpoints_lambda_and_its_concurrency_in_chromium() {
    let moto = Moto::start();
    moto.create_completed_training_job("dog-breeds-lambda").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    app.deploy_sagemaker_endpoint("dogs-lambda", "dog-breeds-lambda").await;

    check_script(&app, "lambda.mjs", vec![("ENDPOINT_NAME", "dogs-lambda".into())]).await;
}

#[tokio::test]
async fn an_operator_reviews_iam_roles_and_uses_the_live_policy_editor_in_chromium() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role().role_name("dogs-lambda-role").assume_role_policy_document(trust).send().await.unwrap();
    iam.attach_role_policy().role_name("dogs-lambda-role").policy_arn("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess").send().await.unwrap();
    iam.create_role().role_name("scoped-lambda-role").assume_role_policy_document(trust).send().await.unwrap();
    moto.create_completed_training_job("dog-breeds-iam").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    // A deployed endpoint whose Lambda runs as a role with AmazonSageMakerFullAccess, as in the seeds.
    app.deploy_sagemaker_endpoint("dogs", "dog-breeds-iam").await;
    app.over_privileged_lambda(&moto, "dogs", "dogs-invoke").await;

    let details = repo_root().join("docs/iam/account.json").display().to_string();
    check_script(&app, "iam.mjs", vec![("DETAILS_FILE", details)]).await;
}

#[tokio::test]
async fn the_console_reads_and_judges_an_account_set_up_by_hand_in_chromium() {
    let moto = Moto::start();
    moto.hand_made_account();
    let app = App::spawn(AwsSetup::Moto(&moto));
    check_script(&app, "hand_made.mjs", vec![]).await;
}

#[tokio::test]
async fn a_viewer_signs_in_is_refused_an_operators_action_and_signs_out_in_chromium() {
    let app = App::spawn_with_users(AwsSetup::None, &[]);
    check_script(&app, "auth.mjs", vec![("PASSWORD", PASSWORD.to_string())]).await;
}

#[tokio::test]
async fn an_operator_reads_what_runs_costs_and_deletes_an_idle_endpoint_in_chromium() {
    let moto = Moto::start();
    let proxy = RecordingProxy::start(&moto.url).await;
    proxy.set_prices(&[("us-east-1", "ml.m5.large", "Hosting", "0.1300000000"), ("us-east-1", "ml.t3.medium", "Notebook", "0.0500000000")]);
    proxy.age_endpoints(48);
    moto.create_notebook("browser-costs-nb", "ml.t3.medium").await;
    // The notebook's execution role, so its page shows the role's IAM review score.
    moto.create_sagemaker_role("AmazonSageMaker-ExecutionRole").await;
    moto.create_completed_training_job("dog-breeds-costs").await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));
    let quiet = app.deploy_sagemaker_endpoint("quiet-dogs", "dog-breeds-costs").await;
    app.deploy_sagemaker_endpoint("busy-dogs", "dog-breeds-costs").await;
    let variant = quiet["variants"][0]["name"].as_str().unwrap().to_string();
    moto.put_metrics("AWS/SageMaker", &[("EndpointName", "busy-dogs"), ("VariantName", &variant)], 90, &[("Invocations", 12.0, "Count")]).await;

    check_script(&app, "costs.mjs", vec![]).await;
}
