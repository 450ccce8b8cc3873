//! Rollouts of a local endpoint under load: one client sends images at a
//! steady rate while the endpoint moves from version 1 to 2 by canary, to 3
//! (more replicas) linearly, and then to a bad version 4 (its classes
//! shuffled) that the agreement guardrail rolls back by itself. Every answer
//! must be a 200 naming the version that gave it; the split must follow the
//! plan. Then bad requests, and a SIGKILL in the middle of a rollout.

use sagedeck_tests::{App, AwsSetup};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Trains another small job on `data` (the spec `completed_small_job` uses).
async fn train(app: &App, name: &str, data: &Path, seed: u64) -> i64 {
    let spec = json!({ "spec": {
        "name": name, "dataset": data.display().to_string(), "architecture": "resnet18", "image_size": 32, "epochs": 2,
        "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
        "backbone_weights": null, "freeze_backbone": false, "seed": seed
    }});
    let (code, created) = app.call_json("training/local/create", &spec).await;
    assert_eq!(code, 200, "{created}");
    created["id"].as_i64().unwrap()
}

async fn wait_completed(app: &App, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, detail) = app.call("training/local/get", &[("id", &id.to_string())]).await;
        match detail["summary"]["status"].as_str() {
            Some("Completed") => return detail,
            Some("Failed" | "Cancelled" | "Interrupted") => panic!("job {id} did not complete: {detail:#}"),
            _ if Instant::now() > deadline => panic!("job {id} took over 10 min"),
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

async fn versions(app: &App, endpoint: &str) -> Value {
    let (code, view) = app.call("endpoints/versions", &[("name", endpoint)]).await;
    assert_eq!(code, 200, "{view}");
    view
}

fn rollout(endpoint: &str, source: Value, shift: Value, bake: u32, rails: Value) -> Value {
    json!({ "spec": { "endpoint": endpoint, "source": source, "instances": null, "batching": null, "shift": shift,
        "bake_seconds": bake, "guardrails": rails, "accept_class_change": false } })
}

fn rails(min_agreement: Option<f64>) -> Value {
    json!({ "max_error_percent": 1.0, "max_p99_ms": null, "min_agreement_percent": min_agreement, "min_requests": 20 })
}

/// One answer the client got: when, the status, the version header.
#[derive(Clone, Debug)]
struct Answer {
    /// When the request was sent, and when its answer came.
    sent: Instant,
    at: Instant,
    status: u16,
    version: Option<u32>,
}

/// What the endpoint's page said, polled: when, the rollout's id, step and share.
#[derive(Clone, Debug)]
struct Phase {
    at: Instant,
    rollout: i64,
    step: u64,
    percent: u64,
    state: String,
}

/// Sends the images in turn, one every `every` (back to back when an answer takes longer)
/// until `stop`; every answer is kept.
fn steady_client(url: String, endpoint: &str, images: Vec<Vec<u8>>, every: Duration, stop: Arc<Mutex<bool>>) -> tokio::task::JoinHandle<Vec<Answer>> {
    let path = format!("{url}/endpoints/{endpoint}/invocations");
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut answers = Vec::new();
        let mut next = Instant::now();
        while !*stop.lock().unwrap() {
            let image = images[answers.len() % images.len()].clone();
            let sent_at = Instant::now();
            let sent = http.post(&path).header("content-type", "image/png").body(image).send().await;
            let answer = match sent {
                Ok(r) => Answer {
                    sent: sent_at,
                    at: Instant::now(),
                    status: r.status().as_u16(),
                    version: r.headers().get("x-sagedeck-model-version").and_then(|v| v.to_str().ok()?.parse().ok()),
                },
                Err(e) => panic!("the client's request failed outright (a dropped request): {e}"),
            };
            answers.push(answer);
            next += every;
            tokio::time::sleep_until(next.max(Instant::now()).into()).await;
        }
        answers
    })
}

/// Polls the endpoint's rollouts until `done` says the newest one ended; records every phase seen.
async fn follow(app: &App, endpoint: &str, id: i64, phases: &mut Vec<Phase>, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let view = versions(app, endpoint).await;
        let r = view["rollouts"].as_array().unwrap().iter().find(|r| r["id"] == id).cloned().expect("the rollout is listed");
        phases.push(Phase {
            at: Instant::now(),
            rollout: id,
            step: r["step"].as_u64().unwrap(),
            percent: r["percent"].as_u64().unwrap(),
            state: r["state"].as_str().unwrap().to_string(),
        });
        if r["state"] != "running" {
            return view;
        }
        assert!(Instant::now() < deadline, "rollout #{id} still running after {limit:?}: {r:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The answers given while `rollout` held `percent` (between the first and
/// the last poll that saw it), by version.
fn split(answers: &[Answer], phases: &[Phase], rollout: i64, step: u64) -> BTreeMap<u32, usize> {
    // The share is set before the step is stored, so a poll that sees the step sees its share.
    let seen: Vec<&Phase> = phases.iter().filter(|p| p.rollout == rollout && p.step == step && p.state == "running" && p.percent > 0).collect();
    let (Some(first), Some(last)) = (seen.first(), seen.last()) else { return BTreeMap::new() };
    let mut by_version = BTreeMap::new();
    for a in answers.iter().filter(|a| a.at > first.at && a.at < last.at) {
        *by_version.entry(a.version.unwrap_or(0)).or_insert(0) += 1;
    }
    by_version
}

fn share(counts: &BTreeMap<u32, usize>, version: u32) -> f64 {
    let total: usize = counts.values().sum();
    *counts.get(&version).unwrap_or(&0) as f64 * 100.0 / total.max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollouts_under_steady_load_drop_nothing_and_a_bad_version_rolls_back_by_itself() {
    let app = App::spawn(AwsSetup::None);
    let (first, data) = app.completed_small_job().await;
    let (second, bad) = (train(&app, "small-retrained", &data, 2).await, train(&app, "small-shuffled", &data, 3).await);
    wait_completed(&app, second).await;
    let shuffled = wait_completed(&app, bad).await;
    // Version 4's artifact: the same kind of model, its class names shuffled
    // (a packaging mistake: every answer names the wrong class).
    let meta_path = Path::new(shuffled["artifact"]["dir"].as_str().unwrap()).join("metadata.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    for key in ["classes", "class_folders"] {
        let list = meta[key].as_array_mut().unwrap();
        list.rotate_left(2);
    }
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    app.deploy_local_endpoint("shapes", first, 8, 2, 64).await;
    let view = versions(&app, "shapes").await;
    assert_eq!(view["live_version"], 1);
    assert_eq!(view["versions"][0]["source"], format!("local job #{first}"));

    // The test split's images, every class, in turn.
    let mut images: Vec<Vec<u8>> = Vec::new();
    let mut classes: Vec<_> = std::fs::read_dir(data.join("test")).unwrap().map(|e| e.unwrap().path()).collect();
    classes.sort();
    for class in classes {
        let mut files: Vec<_> = std::fs::read_dir(class).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        images.extend(files.iter().take(8).map(|f| std::fs::read(f).unwrap()));
    }
    let image = images[0].clone();
    let stop = Arc::new(Mutex::new(false));
    let client = steady_client(app.url.clone(), "shapes", images, Duration::from_millis(20), stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut phases = Vec::new();

    // 1 → 2 by canary: 20 % for 6 s, then everything, 2 s of bake.
    let spec = rollout("shapes", json!({ "kind": "local_job", "job_id": second }), json!({ "kind": "canary", "percent": 20, "hold_seconds": 6 }), 2, rails(None));
    let (code, started) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 200, "{started}");
    let canary = started["rollouts"][0]["id"].as_i64().unwrap();
    assert_eq!(started["rollouts"][0]["to_version"], 2);
    let done = follow(&app, "shapes", canary, &mut phases, Duration::from_secs(60)).await;
    assert_eq!(done["rollouts"][0]["state"], "completed", "{done:#}");
    assert_eq!(done["live_version"], 2);

    // 2 → 3: the same model on two replicas, linearly in 4 steps of 3 s.
    let mut spec = rollout("shapes", json!({ "kind": "local_job", "job_id": second }), json!({ "kind": "linear", "steps": 4, "interval_seconds": 3 }), 0, rails(None));
    spec["spec"]["instances"] = json!(2);
    let (code, started) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 200, "{started}");
    let linear = started["rollouts"][0]["id"].as_i64().unwrap();
    let done = follow(&app, "shapes", linear, &mut phases, Duration::from_secs(60)).await;
    assert_eq!(done["rollouts"][0]["state"], "completed", "{done:#}");
    assert_eq!(done["live_version"], 3);
    let (_, detail) = app.call("endpoints/describe", &[("backend", "Local"), ("name", "shapes")]).await;
    assert_eq!(detail["summary"]["instances"], 2, "{detail}");

    // 3 → 4, a bad version: 50 % canary for a minute, guarded by agreement.
    let mut spec = rollout("shapes", json!({ "kind": "local_job", "job_id": bad }), json!({ "kind": "canary", "percent": 50, "hold_seconds": 60 }), 0, rails(Some(80.0)));
    let (code, refused) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 409, "other classes need a confirmation: {refused}");
    assert!(refused["message"].as_str().unwrap().contains("another order"), "{refused}");
    spec["spec"]["accept_class_change"] = json!(true);
    let bad_started = Instant::now();
    let (code, started) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 200, "{started}");
    let caught = started["rollouts"][0]["id"].as_i64().unwrap();
    let done = follow(&app, "shapes", caught, &mut phases, Duration::from_secs(50)).await;
    let caught_after = bad_started.elapsed();
    let ended = &done["rollouts"][0];
    assert_eq!(ended["state"], "rolled_back", "{ended:#}");
    assert!(ended["outcome"].as_str().unwrap().contains("rolled back by itself"), "{ended:#}");
    assert!(ended["outcome"].as_str().unwrap().contains("agreed with the live one"), "{ended:#}");
    assert_eq!(done["live_version"], 3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    *stop.lock().unwrap() = true;
    let answers = client.await.unwrap();

    // Nothing failed, nothing was dropped; every answer names its version.
    let statuses: BTreeMap<u16, usize> = answers.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.status).or_insert(0) += 1;
        m
    });
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), vec![200], "only 200s: {statuses:?}");
    assert!(answers.iter().all(|a| a.version.is_some()), "every answer names its version");
    let canary_split = split(&answers, &phases, canary, 0);
    let linear_splits: Vec<BTreeMap<u32, usize>> = (0..3).map(|s| split(&answers, &phases, linear, s)).collect();
    let bad_split = split(&answers, &phases, caught, 0);
    println!("answers: {} (statuses {statuses:?})", answers.len());
    println!("canary 20 %: {canary_split:?} = {:.1} % to version 2", share(&canary_split, 2));
    for (s, counts) in linear_splits.iter().enumerate() {
        println!("linear step {} ({} %): {counts:?} = {:.1} % to version 3", s + 1, (s + 1) * 25, share(counts, 3));
    }
    println!("bad version 4 at 50 % until caught: {bad_split:?}");
    let bad_answered = answers.iter().filter(|a| a.version == Some(4)).count();
    println!("bad version 4: answered {bad_answered} requests, rolled back {:.1} s after the rollout was asked for: {}", caught_after.as_secs_f64(), ended["outcome"]);
    println!("rollout counts: {:#}", ended);
    assert!((share(&canary_split, 2) - 20.0).abs() <= 5.0, "canary share {canary_split:?}");
    for (s, counts) in linear_splits.iter().enumerate() {
        let planned = (s as f64 + 1.0) * 25.0;
        assert!((share(counts, 3) - planned).abs() <= 8.0, "linear step {s}: {counts:?}");
    }
    assert!(bad_answered > 0 && bad_answered < 200, "the bad version answered {bad_answered}");
    // Sent after the rollback was seen: a request routed to version 4 just
    // before it is still answered by version 4 (its runtime finishes what it holds).
    let last = answers.iter().filter(|a| a.sent > bad_started + caught_after).collect::<Vec<_>>();
    let after: BTreeMap<u32, usize> = last.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.version.unwrap_or(0)).or_insert(0) += 1;
        m
    });
    assert!(!last.is_empty() && last.iter().all(|a| a.version == Some(3)), "after the rollback version 3 answers everything: {after:?}");

    // The versions list: 3 live, 1 and 2 retired, 4 never live.
    let view = versions(&app, "shapes").await;
    let live: Vec<u64> = view["versions"].as_array().unwrap().iter().filter(|v| v["live"] == true).map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(live, vec![3]);
    let four = view["versions"].as_array().unwrap().iter().find(|v| v["version"] == 4).unwrap();
    assert!(four["live_from"].is_null(), "{four}");

    // A shadow test: the test split through the live version and a proposed one.
    let test_folder = data.join("test").display().to_string();
    let test_images: usize = std::fs::read_dir(data.join("test")).unwrap().map(|c| std::fs::read_dir(c.unwrap().path()).unwrap().count()).sum();
    let shadow = |source: Value| json!({ "name": "shapes", "source": source, "folder": test_folder, "limit": 2000 });
    let (code, same) = app.call_json("endpoints/shadow", &shadow(json!({ "kind": "version", "version": 3 }))).await;
    assert_eq!(code, 200, "{same}");
    assert_eq!(same["images"], test_images);
    assert_eq!((same["compared"].as_u64(), same["agreed"].as_u64()), (Some(test_images as u64), Some(test_images as u64)), "the live model agrees with itself: {same:#}");
    assert_eq!(same["live"]["correct"], same["proposed"]["correct"], "{same:#}");
    assert_eq!(same["live"]["label"], "version 3 (live)");
    let (code, other) = app.call_json("endpoints/shadow", &shadow(json!({ "kind": "local_job", "job_id": first }))).await;
    assert_eq!(code, 200, "{other}");
    let (compared, agreed) = (other["compared"].as_u64().unwrap(), other["agreed"].as_u64().unwrap());
    assert_eq!(compared, test_images as u64);
    assert_eq!(other["disagreements"].as_array().unwrap().len() as u64, (compared - agreed).min(12), "{other:#}");
    println!("shadow test, version 3 against local job #{first}: {other}");
    let (code, refused) = app.call_json("endpoints/shadow", &json!({ "name": "shapes", "source": { "kind": "local_job", "job_id": first }, "folder": "/no/such/folder", "limit": 10 })).await;
    assert!(code == 400 || code == 404 || code == 403, "{code}: {refused}");
    let (code, headers, _) = app.post_bytes("/endpoints/shapes/invocations", Some("image/png"), image.clone()).await;
    assert_eq!((code, headers["x-sagedeck-model-version"].to_str().unwrap()), (200, "3"), "a shadow test routes nothing");

    // Alarms on the local endpoint, evaluated by Sagedeck on its minutes.
    for (kind, threshold, expected) in [("LatencyP99", 1.0, ["ALARM", "INSUFFICIENT_DATA"]), ("ErrorRate", 50.0, ["OK", "INSUFFICIENT_DATA"])] {
        let spec = json!({ "backend": "Local", "spec": { "endpoint": "shapes", "kind": kind, "threshold": threshold,
            "period_seconds": 60, "evaluation_periods": 2, "datapoints_to_alarm": 1 } });
        let (code, alarms) = app.call_json("endpoints/alarms/put", &spec).await;
        assert_eq!(code, 200, "{alarms}");
        let alarm = alarms.as_array().unwrap().iter().find(|a| a["name"].as_str().unwrap().ends_with(if kind == "ErrorRate" { "5xx-rate" } else { "p99" })).unwrap().clone();
        let state = alarm["state"].as_str().unwrap();
        assert!(expected.contains(&state), "{alarm}");
        if state != "INSUFFICIENT_DATA" {
            assert!(alarm["reason"].as_str().unwrap().contains("of the last 2 periods"), "{alarm}");
        }
        println!("local alarm: {alarm}");
    }
    let bad_alarm = json!({ "backend": "Local", "spec": { "endpoint": "shapes", "kind": "ErrorRate", "threshold": 5.0,
        "period_seconds": 60, "evaluation_periods": 2, "datapoints_to_alarm": 3 } });
    let (code, refused) = app.call_json("endpoints/alarms/put", &bad_alarm).await;
    assert_eq!(code, 400, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("datapoints_to_alarm"), "{refused}");

    // Bad requests: each refused in words, nothing moves.
    for (shift, words) in [
        (json!({ "kind": "canary", "percent": 0, "hold_seconds": 5 }), "canary percent must be 1 to 99"),
        (json!({ "kind": "canary", "percent": 100, "hold_seconds": 5 }), "canary percent must be 1 to 99"),
        (json!({ "kind": "linear", "steps": 0, "interval_seconds": 5 }), "steps must be 1 to 20"),
    ] {
        let (code, refused) = app.call_json("endpoints/rollout/start", &rollout("shapes", json!({ "kind": "local_job", "job_id": first }), shift, 0, rails(None))).await;
        assert_eq!(code, 400, "{refused}");
        assert!(refused["message"].as_str().unwrap().contains(words), "{refused}");
    }
    let (code, refused) = app.call_json("endpoints/rollout/start", &rollout("shapes", json!({ "kind": "version", "version": 3 }), json!({ "kind": "all_at_once" }), 0, rails(None))).await;
    assert_eq!(code, 409, "version 3 is live already: {refused}");
    // A version whose weights cannot load is refused before any traffic moves.
    let weights = Path::new(shuffled["artifact"]["dir"].as_str().unwrap()).join("model.safetensors");
    std::fs::write(&weights, b"not safetensors").unwrap();
    let mut spec = rollout("shapes", json!({ "kind": "local_job", "job_id": bad }), json!({ "kind": "all_at_once" }), 0, rails(None));
    spec["spec"]["accept_class_change"] = json!(true);
    let (code, refused) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 422, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("no traffic moved (version 3 serves all of it)"), "{refused}");
    let (code, refused) = app.call("endpoints/rollout/rollback", &[("name", "shapes")]).await;
    assert_eq!(code, 409, "nothing to roll back: {refused}");
    assert_eq!(versions(&app, "shapes").await["live_version"], 3);
    let (_, journal) = app.call_json("journal/search", &json!({ "query": { "action": "endpoint.local.rollout", "limit": 50 } })).await;
    println!("journal: {journal:#}");

    // A rollout killed half way: after the restart exactly one version serves, and the journal says which.
    let spec = rollout("shapes", json!({ "kind": "version", "version": 1 }), json!({ "kind": "canary", "percent": 30, "hold_seconds": 120 }), 0, rails(None));
    let (code, started) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 200, "{started}");
    let cut = started["rollouts"][0]["id"].as_i64().unwrap();
    let mut seen_v1 = false;
    for _ in 0..50 {
        let (code, headers, _) = app.post_bytes("/endpoints/shapes/invocations", Some("image/png"), image.clone()).await;
        assert_eq!(code, 200);
        seen_v1 |= headers["x-sagedeck-model-version"] == "1";
    }
    assert!(seen_v1, "30 % of 50 requests went to version 1");
    let app = app.crash_and_restart();
    let view = versions(&app, "shapes").await;
    assert_eq!(view["live_version"], 3);
    let r = view["rollouts"].as_array().unwrap().iter().find(|r| r["id"] == cut).unwrap();
    assert_eq!(r["state"], "interrupted", "{r:#}");
    assert!(r["outcome"].as_str().unwrap().contains("version 3 serves all traffic"), "{r:#}");
    for _ in 0..30 {
        let (code, headers, _) = app.post_bytes("/endpoints/shapes/invocations", Some("image/png"), image.clone()).await;
        assert_eq!(code, 200);
        assert_eq!(headers["x-sagedeck-model-version"], "3", "after the restart only the live version answers");
    }
    let (_, journal) = app.call_json("journal/search", &json!({ "query": { "action": "endpoint.local.rollout.end", "limit": 50 } })).await;
    let text = journal.to_string();
    assert!(text.contains(&format!("rollout #{cut} to version 1")) && text.contains("interrupted"), "{journal:#}");

    // The latency alarm (above 1 ms) fires once a complete minute with traffic is behind it.
    let deadline = Instant::now() + Duration::from_secs(75);
    let fired = loop {
        let (code, alarms) = app.call("endpoints/alarms", &[("backend", "Local"), ("name", "shapes")]).await;
        assert_eq!(code, 200, "{alarms}");
        let latency = alarms.as_array().unwrap().iter().find(|a| a["name"] == "sagedeck-shapes-model-latency-p99").unwrap().clone();
        let errors = alarms.as_array().unwrap().iter().find(|a| a["name"] == "sagedeck-shapes-5xx-rate").unwrap().clone();
        assert_ne!(errors["state"], "ALARM", "no request failed: {errors}");
        if latency["state"] == "ALARM" {
            break latency;
        }
        assert!(Instant::now() < deadline, "the latency alarm never fired: {latency}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(fired["reason"].as_str().unwrap().contains("of the last 2 periods above 1000"), "{fired}");
    println!("local alarm fired: {}", fired["reason"]);

    // The live version on one replica instead of two is a new version; version 3 keeps saying what it served.
    let mut spec = rollout("shapes", json!({ "kind": "version", "version": 3 }), json!({ "kind": "all_at_once" }), 0, rails(None));
    spec["spec"]["instances"] = json!(1);
    let (code, started) = app.call_json("endpoints/rollout/start", &spec).await;
    assert_eq!(code, 200, "{started}");
    let resized = started["rollouts"][0]["id"].as_i64().unwrap();
    assert_eq!(started["rollouts"][0]["to_version"], 5);
    let done = follow(&app, "shapes", resized, &mut phases, Duration::from_secs(30)).await;
    assert_eq!((done["live_version"].as_u64(), done["rollouts"][0]["state"].as_str()), (Some(5), Some("completed")), "{done:#}");
    let three = done["versions"].as_array().unwrap().iter().find(|v| v["version"] == 3).unwrap();
    assert_eq!(three["instances"], 2, "{three}");
}
