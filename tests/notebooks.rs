//! The Notebooks page's server side against a real moto server.

use sagedeck_tests::{aws_stand_in, App, AwsSetup, Moto, RecordingProxy};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn overview_names_the_moto_account() {
    let moto = Moto::start();
    let app = App::spawn(AwsSetup::Moto(&moto));
    let (status, report) = app.call("overview/status", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(report["aws"]["state"], "Live", "{report}");
    assert_eq!(report["aws"]["account"], "123456789012");
    assert_eq!(report["aws"]["region"], "us-east-1");
    assert_eq!(report["aws"]["endpoint"], moto.url.as_str());
}

#[tokio::test]
async fn lists_stops_and_starts_a_notebook_and_journals_each_change() {
    let moto = Moto::start();
    let name = moto.create_notebook("dog-breeds-nb", "ml.t3.medium").await;
    moto.create_notebook("other-nb", "ml.m5.xlarge").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let (status, list) = app.call("notebooks/list", &[]).await;
    assert_eq!(status, 200, "{list}");
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let nb = rows.iter().find(|r| r["name"] == name.as_str()).expect("created notebook listed");
    assert_eq!(nb["status"], "InService");
    assert_eq!(nb["instance_type"], "ml.t3.medium");
    assert_eq!(nb["hourly_usd"], 0.05);
    assert!(nb["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, detail) = app.call("notebooks/describe", &[("name", &name)]).await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail["arn"].as_str().unwrap().contains(":notebook-instance/dog-breeds-nb"));
    assert_eq!(detail["volume_size_gb"], 5);

    let (status, change) = app.call("notebooks/stop", &[("name", &name)]).await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["status_before"], "InService");
    assert_eq!(change["after"]["summary"]["status"], "Stopped");

    // Stopping twice is refused before AWS is asked, in words.
    let (status, err) = app.call("notebooks/stop", &[("name", &name)]).await;
    assert_eq!(status, 409, "{err}");
    assert!(err["message"].as_str().unwrap().contains("already Stopped"));

    let (status, change) = app.call("notebooks/start", &[("name", &name)]).await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["status_before"], "Stopped");
    assert_eq!(change["after"]["summary"]["status"], "InService");

    let (status, journal) = app.call("journal/recent", &[("limit", "10")]).await;
    assert_eq!(status, 200);
    let entries: Vec<(String, String, String)> = journal
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
                e["after"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("notebook.start".to_string(), "ok".to_string(), "InService".to_string()),
            ("notebook.stop".to_string(), "failed".to_string(), String::new()),
            ("notebook.stop".to_string(), "ok".to_string(), "Stopped".to_string()),
        ]
    );
    assert!(journal[0]["target"] == name.as_str());
}

#[tokio::test]
async fn an_unknown_notebook_is_404() {
    let moto = Moto::start();
    let app = App::spawn(AwsSetup::Moto(&moto));
    let (status, err) = app.call("notebooks/describe", &[("name", "no-such-notebook")]).await;
    assert_eq!(status, 404, "{err}");
    assert!(err["message"].as_str().unwrap().contains("DescribeNotebookInstance"));
    let (status, _) = app.call("notebooks/stop", &[("name", "no-such-notebook")]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_unreachable_aws_is_a_readable_error_not_a_crash() {
    let app = App::spawn(AwsSetup::Unreachable);
    let (status, err) = app.call("notebooks/list", &[]).await;
    assert_eq!(status, 502, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("could not reach AWS"), "{message}");
    let (_, report) = app.call("overview/status", &[]).await;
    assert_eq!(report["aws"]["state"], "Unavailable", "{report}");
    let (status, html) = app.get("/notebooks").await;
    assert_eq!(status, 200);
    assert!(html.contains("could not reach AWS"), "the page shows the error in words");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200, "the server stays up");
}

#[tokio::test]
async fn refused_credentials_are_403_in_words() {
    let moto = Moto::start_checking_credentials();
    let app = App::spawn(AwsSetup::Moto(&moto));
    let (status, err) = app.call("notebooks/list", &[]).await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["kind"], "AccessDenied");
    assert!(err["message"].as_str().unwrap().contains("ListNotebookInstances"), "{err}");
    let (_, report) = app.call("overview/status", &[]).await;
    assert_eq!(report["aws"]["state"], "Unavailable", "{report}");
    assert!(report["aws"]["reason"].as_str().unwrap().contains("403"), "{report}");
    let (_, html) = app.get("/notebooks").await;
    assert!(html.contains("Access denied"), "the page names the kind of error");
}

/// An AWS stand-in that throttles SageMaker's ListNotebookInstances the first
/// `throttles` times (400 ThrottlingException, as SageMaker does), then
/// answers an empty list. Returns its URL and the number of
/// ListNotebookInstances calls it saw.
async fn throttling_aws(throttles: usize) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let url = aws_stand_in(move |head| {
        if !head.contains("sagemaker.listnotebookinstances") {
            return None;
        }
        Some(if seen.fetch_add(1, Ordering::SeqCst) < throttles {
            (Duration::ZERO, "400 Bad Request", "application/x-amz-json-1.1", r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string())
        } else {
            (Duration::ZERO, "200 OK", "application/x-amz-json-1.1", r#"{"NotebookInstances":[]}"#.to_string())
        })
    })
    .await;
    (url, calls)
}

/// An AWS stand-in with one notebook, nb-slow, InService, whose
/// StopNotebookInstance takes `stop_takes` to answer.
async fn slow_stopping_aws(stop_takes: Duration) -> String {
    aws_stand_in(move |head| {
        let json = "application/x-amz-json-1.1";
        if head.contains("sagemaker.describenotebookinstance") {
            let nb = r#"{"NotebookInstanceName":"nb-slow","NotebookInstanceStatus":"InService","InstanceType":"ml.t3.medium"}"#;
            Some((Duration::ZERO, "200 OK", json, nb.to_string()))
        } else if head.contains("sagemaker.stopnotebookinstance") {
            Some((stop_takes, "200 OK", json, "{}".to_string()))
        } else {
            None
        }
    })
    .await
}

/// The newest journal entry with `action`, waiting up to `within` for it.
async fn journaled(app: &App, action: &str, within: Duration) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
        if let Some(entry) = journal.as_array().unwrap().iter().find(|e| e["action"] == action) {
            return entry.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no {action} entry within {within:?}: {journal:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A caller that goes away does not cancel a change halfway (the AWS call
/// made, its journal entry not yet written); a process killed halfway
/// leaves a request.interrupted entry naming who asked for what.
#[tokio::test]
async fn a_change_outlives_its_caller_and_one_cut_by_a_kill_is_journaled() {
    let app = App::spawn(AwsSetup::Endpoint(slow_stopping_aws(Duration::from_secs(3)).await));
    let stop = || reqwest::Client::new().post(format!("{}/api/notebooks/stop", app.url)).form(&[("name", "nb-slow")]);
    let gave_up = stop().timeout(Duration::from_millis(500)).send().await;
    assert!(gave_up.is_err(), "the caller was meant to give up before AWS answered: {gave_up:?}");
    let entry = journaled(&app, "notebook.stop", Duration::from_secs(20)).await;
    assert_eq!((entry["target"].as_str(), entry["outcome"].as_str()), (Some("nb-slow"), Some("ok")), "{entry}");

    // AWS takes ten minutes: the process is killed while the change runs.
    let app = app.crash_and_restart_with(AwsSetup::Endpoint(slow_stopping_aws(Duration::from_secs(600)).await));
    let url = app.url.clone();
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new().post(format!("{url}/api/notebooks/stop")).form(&[("name", "nb-slow")]).send().await.map(|r| r.status())
    });
    // Kill once the server has written the stop down as in flight (it does
    // so before any work), not after a guessed delay.
    let db = app.data_path().join("sagedeck.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).read_only(true).connect().await.expect("open the database");
        let in_flight: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests_in_flight WHERE route = 'POST /api/notebooks/stop'").fetch_one(&mut conn).await.unwrap();
        if in_flight > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the stop was never in flight");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let app = app.crash_and_restart();
    assert!(in_flight.await.unwrap().is_err(), "the stop was meant to be cut off by the kill");
    let (_, journal) = app.call("journal/recent", &[("limit", "5")]).await;
    let newest = &journal[0];
    assert_eq!(newest["action"], "request.interrupted", "{journal:#}");
    assert_eq!(newest["target"], "POST /api/notebooks/stop");
    assert_eq!(newest["outcome"], "failed");
    assert_eq!(newest["after"], "name=nb-slow", "what was asked is kept");
    assert!(newest["message"].as_str().unwrap().contains("killed or crashed"), "{newest}");
    // Only the first stop has its own entry.
    let stops = journal.as_array().unwrap().iter().filter(|e| e["action"] == "notebook.stop").count();
    assert_eq!(stops, 1, "{journal:#}");
}

/// Adaptive mode spaces the retries by its own measure of the rate AWS
/// allows (seconds apart after two throttles), so this test takes a minute.
#[tokio::test]
async fn throttling_is_retried_adaptively_then_reported_in_words() {
    // Two throttles: the SDK's retries absorb them and the page gets its list.
    let (url, calls) = throttling_aws(2).await;
    let app = App::spawn(AwsSetup::Endpoint(url));
    let t = std::time::Instant::now();
    let (status, list) = app.call("notebooks/list", &[]).await;
    eprintln!("two throttles, then the list: {:?}", t.elapsed());
    assert_eq!(status, 200, "{list}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two throttled attempts and one that answered");

    // Throttled every time: four attempts (the configured maximum), then a
    // 429 that says AWS is limiting the rate; the console stays up.
    let (url, calls) = throttling_aws(usize::MAX).await;
    let app = App::spawn(AwsSetup::Endpoint(url));
    let t = std::time::Instant::now();
    let (status, err) = app.call("notebooks/list", &[]).await;
    eprintln!("throttled four times, then the 429: {:?}", t.elapsed());
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["kind"], "Throttled");
    assert!(err["message"].as_str().unwrap().contains("AWS is limiting the request rate"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(app.get("/healthz").await.0, 200);
}

/// Created from the form's spec (with Sagedeck's idle auto-stop lifecycle
/// script), opened through a presigned URL, refused deletion while running,
/// stopped, deleted; each change journaled. moto has no
/// CreatePresignedNotebookInstanceUrl: the recording proxy answers it in
/// AWS's shape.
#[tokio::test]
async fn a_notebook_is_created_opened_and_deleted_with_each_change_journaled() {
    let moto = Moto::start();
    let role = moto.create_sagemaker_role("NotebookRole").await;
    let proxy = RecordingProxy::start(&moto.url).await;
    let app = App::spawn(AwsSetup::Endpoint(proxy.url.clone()));

    let (code, roles) = app.call("notebooks/roles", &[]).await;
    assert_eq!(code, 200, "{roles}");
    assert_eq!(roles, json!([role.clone()]));

    // Every bad field named before any AWS call.
    let spec = |name: &str, instance_type: &str, volume: u32, idle: Option<u32>| {
        json!({ "spec": { "name": name, "instance_type": instance_type, "role_arn": role, "volume_size_gb": volume, "idle_stop_minutes": idle } })
    };
    for (bad, field) in [
        (spec("no spaces please", "ml.t3.medium", 5, None), "name:"),
        (spec("nb", "ml.banana.large", 5, None), "instance_type:"),
        (spec("nb", "ml.t3.medium", 1, None), "volume_size_gb:"),
        (spec("nb", "ml.t3.medium", 5, Some(2000)), "idle_stop_minutes:"),
    ] {
        let (code, err) = app.call_json("notebooks/create", &bad).await;
        assert_eq!(code, 400, "{bad}: {err}");
        assert!(err["message"].as_str().unwrap().contains(field), "{err}");
    }
    assert!(proxy.sent("CreateNotebookInstance").is_empty(), "nothing reached AWS");

    let (code, detail) = app.call_json("notebooks/create", &spec("research-1", "ml.t3.medium", 20, Some(45))).await;
    assert_eq!(code, 200, "{detail}\n{}", app.log());
    assert_eq!(detail["summary"]["instance_type"], "ml.t3.medium");
    assert_eq!(detail["volume_size_gb"], 20);
    assert_eq!(detail["lifecycle_config"], "sagedeck-idle-stop-45min");
    let sent = &proxy.sent("CreateNotebookInstance")[0];
    assert_eq!((sent["RoleArn"].as_str(), sent["VolumeSizeInGB"].as_i64()), (Some(role.as_str()), Some(20)));

    // The lifecycle script SageMaker holds: a bash OnStart that installs a
    // Python check; both parse, and the check reads the period it was given.
    let sm = aws_sdk_sagemaker::Client::new(&moto.sdk_config().await);
    let config = sm.describe_notebook_instance_lifecycle_config().notebook_instance_lifecycle_config_name("sagedeck-idle-stop-45min").send().await.unwrap();
    use base64::Engine as _;
    let script = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(config.on_start()[0].content().unwrap()).unwrap()).unwrap();
    assert!(script.contains("sagedeck-idle-check.py 45 >>"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("on-start.sh"), &script).unwrap();
    let bash = std::process::Command::new("bash").arg("-n").arg(dir.path().join("on-start.sh")).output().unwrap();
    assert!(bash.status.success(), "bash -n: {}", String::from_utf8_lossy(&bash.stderr));
    let python = script.split("<<'PY'\n").nth(1).unwrap().split("\nPY\n").next().unwrap();
    std::fs::write(dir.path().join("check.py"), python).unwrap();
    let compiled = std::process::Command::new("python3").args(["-m", "py_compile"]).arg(dir.path().join("check.py")).output().unwrap();
    assert!(compiled.status.success(), "py_compile: {}", String::from_utf8_lossy(&compiled.stderr));
    // A second notebook with the same period shares the configuration.
    let (code, _) = app.call_json("notebooks/create", &spec("research-2", "ml.t3.medium", 5, Some(45))).await;
    assert_eq!(code, 200);
    assert_eq!(proxy.sent("CreateNotebookInstanceLifecycleConfig").len(), 1);

    // Open: a presigned URL for JupyterLab.
    let (code, url) = app.call("notebooks/open", &[("name", "research-1")]).await;
    assert_eq!(code, 200, "{url}");
    assert_eq!(url, "https://research-1.notebook.us-east-1.sagemaker.aws?authToken=stand-in-token&view=lab");
    assert_eq!(proxy.sent("CreatePresignedNotebookInstanceUrl")[0]["NotebookInstanceName"], "research-1");

    // Delete: refused while it runs, done once it is stopped.
    let (code, err) = app.call("notebooks/delete", &[("name", "research-1")]).await;
    assert_eq!(code, 409, "{err}");
    assert!(err["message"].as_str().unwrap().contains("stop it first"), "{err}");
    assert!(proxy.sent("DeleteNotebookInstance").is_empty());
    let (code, _) = app.call("notebooks/stop", &[("name", "research-1")]).await;
    assert_eq!(code, 200);
    let (code, err) = app.call("notebooks/open", &[("name", "research-1")]).await;
    assert_eq!(code, 409, "a stopped notebook does not open: {err}");
    let (code, answer) = app.call("notebooks/delete", &[("name", "research-1")]).await;
    assert_eq!(code, 200, "{answer}");
    let (_, list) = app.call("notebooks/list", &[]).await;
    assert!(!list.to_string().contains("\"research-1\""), "{list}");

    let (_, journal) = app.call("journal/recent", &[("limit", "20")]).await;
    let actions: Vec<String> = journal.as_array().unwrap().iter().map(|e| format!("{} {} {}", e["action"].as_str().unwrap(), e["target"].as_str().unwrap(), e["outcome"].as_str().unwrap())).collect();
    for expected in ["notebook.create research-1 ok", "notebook.create research-2 ok", "notebook.delete research-1 failed", "notebook.stop research-1 ok", "notebook.delete research-1 ok"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not in {actions:?}");
    }
}
