//! Crash safety: SIGKILL at random moments while a job trains, an endpoint
//! deploys and the journal is being written, ten times over. After each
//! restart the database passes `PRAGMA integrity_check`, no completed job,
//! served endpoint or journal entry is lost, and every interrupted job is
//! resumed or marked with its reason.

use rand::{Rng, SeedableRng};
use sagedeck_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const KILLS: usize = 10;

fn training(name: &str, dataset: &str) -> Value {
    json!({ "spec": { "name": name, "dataset": dataset, "architecture": "resnet18", "image_size": 32, "epochs": 3,
        "batch_size": 8, "learning_rate": 0.002, "patience": 0, "threads": 0, "loader_threads": 1,
        "backbone_weights": null, "freeze_backbone": false, "seed": 1 } })
}

async fn post(url: &str, endpoint: &str, body: &Value) -> Option<(u16, Value)> {
    let res = reqwest::Client::new().post(format!("{url}/api/{endpoint}")).json(body).send().await.ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.unwrap_or(Value::Null)))
}

/// The console's database, opened beside the running process without writing.
async fn read_only(db: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.expect("open the database")
}

async fn integrity(db: &std::path::Path) -> (String, i64) {
    let mut conn = read_only(db).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    let journal: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM change_journal").fetch_one(&mut conn).await.unwrap();
    (check, journal)
}

/// How the journal accounts for a deploy of `name`: its own entries, and the
/// requests for it interrupted by a kill; and how many marks are left in flight.
async fn deploy_accounted(db: &std::path::Path, name: &str) -> (i64, i64, i64) {
    let mut conn = read_only(db).await;
    let own: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM change_journal WHERE action = 'endpoint.local.create' AND target = ?")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let interrupted: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM change_journal WHERE action = 'request.interrupted' AND target = 'POST /api/endpoints/local/deploy' AND instr(after, ?) > 0",
    )
    .bind(format!("\"{name}\""))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let in_flight: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests_in_flight").fetch_one(&mut conn).await.unwrap();
    (own, interrupted, in_flight)
}

async fn interrupted_requests(db: &std::path::Path) -> i64 {
    let mut conn = read_only(db).await;
    sqlx::query_scalar("SELECT COUNT(*) FROM change_journal WHERE action = 'request.interrupted'").fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn ten_kills_during_training_deploys_and_journal_writes_lose_nothing() {
    let mut app = App::spawn(AwsSetup::None);
    let (first, data) = app.completed_small_job().await;
    let dataset = data.display().to_string();
    let db = app.data_path().join("sagedeck.db");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5a9e_dec4);

    let mut completed: BTreeSet<i64> = BTreeSet::from([first]);
    // The endpoint the journal storm's functions front.
    let base = json!({ "spec": { "name": "base", "job_id": first, "instances": 1,
        "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 8 } } });
    assert_eq!(app.call_json("endpoints/local/deploy", &base).await.0, 200);
    let mut served: BTreeSet<String> = BTreeSet::from(["base".to_string()]);
    let mut journal_high = 0i64;
    let mut reasons: BTreeMap<i64, String> = BTreeMap::new();
    let mut cut_off: Vec<&str> = Vec::new();

    for round in 0..KILLS {
        let url = app.url.clone();
        // Training: a new job each round (the earlier ones queue behind it).
        let (code, job) = post(&url, "training/local/create", &training(&format!("crash-{round}"), &dataset)).await.unwrap();
        assert_eq!(code, 200, "{job}");
        // A deploy of a completed job, in flight when the kill may come.
        let deploy_url = url.clone();
        let endpoint = format!("crash-{round}");
        let source = *completed.iter().next_back().unwrap();
        let deploy = tokio::spawn(async move {
            let spec = json!({ "spec": { "name": endpoint, "job_id": source, "instances": 1,
                "batching": { "max_batch": 4, "max_wait_ms": 0, "queue_capacity": 8 } } });
            post(&deploy_url, "endpoints/local/deploy", &spec).await
        });
        // Journal writes: functions created and deleted back to back.
        let storm_url = url.clone();
        let storm = tokio::spawn(async move {
            for i in 0.. {
                let name = format!("storm-{i}");
                if post(&storm_url, "lambda/local/create", &json!({ "spec": { "name": name, "endpoint": "base", "reserved": 1, "provisioned": null } })).await.is_none() {
                    break;
                }
                let form = [("home", "Local"), ("name", name.as_str())];
                if reqwest::Client::new().post(format!("{storm_url}/api/lambda/delete")).form(&form).send().await.is_err() {
                    break;
                }
            }
        });

        tokio::time::sleep(Duration::from_millis(rng.random_range(200..3000))).await;
        // What the console has answered for so far, just before the kill.
        let (_, jobs) = app.call("training/local/list", &[]).await;
        for j in jobs.as_array().unwrap() {
            if j["status"] == "Completed" {
                completed.insert(j["id"].as_i64().unwrap());
            }
        }
        let (_, endpoints) = app.call_json("endpoints/list", &serde_json::json!({ "query": {} })).await;
        for e in endpoints["endpoints"].as_array().unwrap() {
            if e["status"] == "InService" && e["backend"] == "Local" {
                served.insert(e["name"].as_str().unwrap().to_string());
            }
        }
        journal_high = journal_high.max(integrity(&db).await.1);

        app = app.crash_and_restart();
        let deployed = deploy.await.unwrap();
        storm.abort();
        if let Some((200, _)) = deployed {
            served.insert(format!("crash-{round}"));
        }
        // A deploy the kill cut off is in the journal either way: by its own
        // entry (it finished, the answer was lost) or as interrupted.
        let (own, interrupted, in_flight) = deploy_accounted(&db, &format!("crash-{round}")).await;
        assert_eq!(in_flight, 0, "round {round}: marks of the last run were not swept into the journal");
        if deployed.is_none() {
            assert!(own + interrupted >= 1, "round {round}: the deploy cut off by the kill left no journal entry");
            cut_off.push(if own > 0 { "finished" } else { "interrupted" });
        }

        let (check, high) = integrity(&db).await;
        assert_eq!(check, "ok", "round {round}: integrity_check");
        assert!(high >= journal_high, "round {round}: journal entries were lost ({high} < {journal_high})");
        let (_, jobs) = app.call("training/local/list", &[]).await;
        let by_id: BTreeMap<i64, &Value> = jobs.as_array().unwrap().iter().map(|j| (j["id"].as_i64().unwrap(), j)).collect();
        for id in &completed {
            assert_eq!(by_id.get(id).map(|j| j["status"].clone()), Some(json!("Completed")), "round {round}: completed job #{id} was lost");
        }
        for (id, j) in &by_id {
            match j["status"].as_str().unwrap() {
                "Completed" | "Queued" | "Running" => {}
                other => {
                    let message = j["message"].as_str().unwrap_or("");
                    assert!(!message.is_empty(), "round {round}: job #{id} is {other} with no reason: {j}");
                    reasons.insert(*id, format!("{other}: {message}"));
                }
            }
        }
        let (_, endpoints) = app.call_json("endpoints/list", &serde_json::json!({ "query": {} })).await;
        let now_served: BTreeSet<String> = endpoints["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "InService")
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        for name in &served {
            assert!(now_served.contains(name), "round {round}: endpoint {name} was served before the kill and is not after: {endpoints:#}");
        }
        eprintln!("crash round {round}: {} completed jobs, {} endpoints, journal at #{high}: integrity ok", completed.len(), served.len());
    }

    // Every interrupted job resumes and finishes (or says why it will not).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, jobs) = app.call("training/local/list", &[]).await;
        let jobs = jobs.as_array().unwrap().clone();
        let pending = jobs.iter().filter(|j| matches!(j["status"].as_str(), Some("Queued" | "Running"))).count();
        if pending == 0 {
            let done = jobs.iter().filter(|j| j["status"] == "Completed").count();
            let marked: Vec<String> = jobs.iter().filter(|j| j["status"] != "Completed").map(|j| format!("#{} {} {}", j["id"], j["status"], j["message"])).collect();
            eprintln!("after {KILLS} kills: {} jobs, {done} completed, others marked: {marked:?}", jobs.len());
            eprintln!("deploys cut off by a kill: {cut_off:?}; requests journaled as interrupted: {}", interrupted_requests(&db).await);
            // A job interrupted three times is not started again (and says
            // so); the rest resume from their checkpoints and finish.
            assert!(done * 2 >= jobs.len(), "most jobs must finish after resuming: {jobs:#?}");
            for j in &jobs {
                if j["status"] != "Completed" {
                    assert!(!j["message"].as_str().unwrap_or("").is_empty(), "{j}");
                }
            }
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not finish: {jobs:#?}\n{}", app.log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (check, _) = integrity(&db).await;
    assert_eq!(check, "ok");
    // Each served endpoint answers.
    for name in &served {
        let image = std::fs::read(std::fs::read_dir(data.join("test/001.Circle")).unwrap().next().unwrap().unwrap().path()).unwrap();
        let (status, _, body) = app.post_bytes(&format!("/endpoints/{name}/invocations"), Some("image/jpeg"), image).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
}
