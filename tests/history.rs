//! The job history at scale: every job reachable through server-side pages
//! with their totals and filters, and the SageMaker history read whole, new
//! jobs from a watermark and older ones by a backfill that survives a
//! restart.
//!
//! moto lists training jobs in insertion order and pages before it filters,
//! so the SageMaker history is read here from a stand-in that answers
//! ListTrainingJobs as AWS documents it (CreationTimeBefore/After filters
//! first, then SortBy CreationTime Descending, MaxResults and NextToken) and
//! DescribeTrainingJob with the members its contract requires.

use sagedeck_tests::{aws_stand_in, server_binary, App, AwsSetup};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn query(extra: Value) -> Value {
    let mut q = json!({"status": "", "name": "", "runs_on": null, "older": null, "newer": null});
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    json!({ "query": q })
}

async fn page(app: &App, extra: Value) -> Value {
    let (code, page) = app.call_json("training/history", &query(extra)).await;
    assert_eq!(code, 200, "{page}");
    page
}

/// A row's key: `local:<id>` or `sm:<name>`.
fn key(row: &Value) -> String {
    if let Some(j) = row.get("Local") {
        format!("local:{}", j["id"])
    } else {
        format!("sm:{}", row["SageMaker"]["name"].as_str().unwrap())
    }
}

fn created(row: &Value) -> String {
    row.get("Local").map(|j| j["created_at"].clone()).unwrap_or_else(|| row["SageMaker"]["created_at"].clone()).as_str().unwrap().to_string()
}

/// Walks every page from the first through the "older" links; returns the
/// rows' keys in order and the pages' sizes.
async fn walk(app: &App, filters: Value) -> (Vec<String>, Vec<usize>, Value) {
    let first = page(app, filters.clone()).await;
    let (mut keys, mut sizes) = (Vec::new(), Vec::new());
    let mut current = first.clone();
    let mut last_time = String::from("9999");
    loop {
        let rows = current["rows"].as_array().unwrap();
        sizes.push(rows.len());
        for r in rows {
            let t = created(r);
            assert!(t <= last_time, "rows go newest first: {t} after {last_time}");
            last_time = t;
            keys.push(key(r));
        }
        let Some(older) = current["older"].as_str() else { break };
        let mut next = filters.clone();
        next["older"] = json!(older);
        current = page(app, next).await;
        assert!(current["newer"].is_string(), "a page after the first links back: {current}");
    }
    (keys, sizes, first)
}

/// The stand-in's account: `count` jobs, `hist-0000` the oldest, one a
/// minute from 2026-01-01.
#[derive(Default)]
struct Account {
    count: Mutex<usize>,
    lists: Mutex<Vec<Value>>,
    describes: AtomicUsize,
    /// Tuning jobs, `hpo-0000` the oldest, one an hour from 2026-01-01.
    tuning: Mutex<usize>,
    tuning_lists: Mutex<Vec<Value>>,
    tuning_describes: AtomicUsize,
}

const START: f64 = 1_767_225_600.0; // 2026-01-01T00:00:00Z

fn job_time(i: usize) -> f64 {
    START + 60.0 * i as f64 + 0.25
}

fn answer(account: &Account, request: &str) -> Option<(Duration, &'static str, &'static str, String)> {
    let body: Value = request.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).unwrap_or(json!({}));
    let ok = |v: Value| Some((Duration::ZERO, "200 OK", "application/x-amz-json-1.1", v.to_string()));
    if request.contains("x-amz-target: sagemaker.listtrainingjobs\r\n") {
        account.lists.lock().unwrap().push(body.clone());
        let count = *account.count.lock().unwrap();
        let after = body["creationtimeafter"].as_f64();
        let before = body["creationtimebefore"].as_f64();
        let mut jobs: Vec<usize> = (0..count)
            .filter(|i| after.is_none_or(|a| job_time(*i) > a) && before.is_none_or(|b| job_time(*i) < b))
            .collect();
        assert_eq!(body["sortby"], "creationtime");
        assert_eq!(body["sortorder"], "descending");
        jobs.reverse();
        let from: usize = body["nexttoken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let size = body["maxresults"].as_u64().unwrap_or(100) as usize;
        let slice: Vec<Value> = jobs
            .iter()
            .skip(from)
            .take(size)
            .map(|i| {
                json!({"TrainingJobName": format!("hist-{i:04}"), "TrainingJobArn": format!("arn:aws:sagemaker:us-east-1:123456789012:training-job/hist-{i:04}"),
                       "CreationTime": job_time(*i), "TrainingEndTime": job_time(*i) + 30.0, "LastModifiedTime": job_time(*i) + 30.0, "TrainingJobStatus": "Completed"})
            })
            .collect();
        let mut out = json!({ "TrainingJobSummaries": slice });
        if from + size < jobs.len() {
            out["NextToken"] = json!((from + size).to_string());
        }
        return ok(out);
    }
    if request.contains("x-amz-target: sagemaker.describetrainingjob") {
        account.describes.fetch_add(1, Ordering::SeqCst);
        let name = body["trainingjobname"].as_str().unwrap_or_default().to_string();
        let i: usize = name.trim_start_matches("hist-").parse().unwrap_or(0);
        return ok(json!({
            "TrainingJobName": name, "TrainingJobArn": format!("arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"),
            "ModelArtifacts": {"S3ModelArtifacts": format!("s3://bucket/{name}/output/model.tar.gz")},
            "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
            "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": job_time(i), "TrainingEndTime": job_time(i) + 30.0, "TrainingTimeInSeconds": 30, "BillableTimeInSeconds": 30
        }));
    }
    if request.contains("x-amz-target: sagemaker.listhyperparametertuningjobs") {
        account.tuning_lists.lock().unwrap().push(body.clone());
        let count = *account.tuning.lock().unwrap();
        let from: usize = body["nexttoken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let size = body["maxresults"].as_u64().unwrap_or(100) as usize;
        let jobs: Vec<Value> = (0..count)
            .rev()
            .skip(from)
            .take(size)
            .map(|i| json!({"HyperParameterTuningJobName": format!("hpo-{i:04}"), "HyperParameterTuningJobArn": format!("arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/hpo-{i:04}"),
                "HyperParameterTuningJobStatus": "Completed", "Strategy": "Bayesian", "CreationTime": START + 3600.0 * i as f64,
                "TrainingJobStatusCounters": {"Completed": 4}, "ObjectiveStatusCounters": {"Succeeded": 4}}))
            .collect();
        let mut out = json!({ "HyperParameterTuningJobSummaries": jobs });
        if from + size < count {
            out["NextToken"] = json!((from + size).to_string());
        }
        return ok(out);
    }
    if request.contains("x-amz-target: sagemaker.describehyperparametertuningjob") {
        account.tuning_describes.fetch_add(1, Ordering::SeqCst);
        let name = body["hyperparametertuningjobname"].as_str().unwrap_or_default().to_string();
        let i: f64 = name.trim_start_matches("hpo-").parse().unwrap_or(0.0);
        return ok(json!({
            "HyperParameterTuningJobName": name, "HyperParameterTuningJobArn": format!("arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}"),
            "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
                "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "valid:loss"}},
            "HyperParameterTuningJobStatus": "Completed", "CreationTime": START + 3600.0 * i,
            "TrainingJobStatusCounters": {"Completed": 4}, "ObjectiveStatusCounters": {"Succeeded": 4}
        }));
    }
    if request.contains("x-amz-target: sagemaker.listtrainingjobsforhyperparametertuningjob") {
        return ok(json!({ "TrainingJobSummaries": [] }));
    }
    None
}

async fn wait_for_history(app: &App, complete: bool, jobs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = page(app, json!({ "runs_on": "SageMaker" })).await;
        if p["sync"]["complete"] == complete && p["sagemaker_total"] == jobs {
            return p;
        }
        assert!(Instant::now() < deadline, "the history did not reach {jobs} jobs (complete {complete}): {}", p["sync"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_whole_sagemaker_history_is_read_new_jobs_from_the_watermark_older_ones_by_a_backfill_that_resumes() {
    let account = Arc::new(Account { count: Mutex::new(730), ..Default::default() });
    let a = account.clone();
    let url = aws_stand_in(move |request| answer(&a, request)).await;
    let app = App::spawn(AwsSetup::Endpoint(url.clone()));

    // The first listing reads the newest five pages and describes them; the
    // backfill reads the rest a page at a time and says how far it is.
    let done = wait_for_history(&app, true, 730).await;
    assert!(done["sync"]["jobs_read"] == 730, "{}", done["sync"]);
    let lists = account.lists.lock().unwrap().clone();
    let backfill: Vec<&Value> = lists.iter().filter(|l| l["creationtimebefore"].is_number()).collect();
    assert!(backfill.len() >= 3, "230 older jobs take three backfill pages: {lists:?}");
    assert!(backfill.iter().all(|l| l["nexttoken"].is_null() && l["maxresults"] == 100), "{backfill:?}");
    // Only the jobs the poller listed were described; the backfill keeps
    // what the list says and a job's page describes it when opened.
    let described = account.describes.load(Ordering::SeqCst);
    assert_eq!(described, 500, "the first five pages' jobs are described, the backfilled ones are not");
    let (keys, sizes, _) = walk(&app, json!({ "runs_on": "SageMaker" })).await;
    assert_eq!(keys.len(), 730);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 730, "no job twice");
    assert!(sizes.iter().all(|s| *s <= 50) && sizes.len() == 15, "{sizes:?}");
    assert_eq!(keys[0], "sm:hist-0729");
    assert_eq!(keys[729], "sm:hist-0000");
    let (code, old) = app.call("training/sagemaker/describe", &[("name", "hist-0003")]).await;
    assert_eq!(code, 200, "{old}");
    assert_eq!(old["summary"]["instance_count"], 2, "an old job's page describes it: {old}");

    // New jobs: the poller lists from the watermark and describes only them.
    *account.count.lock().unwrap() = 733;
    let before = account.describes.load(Ordering::SeqCst);
    let lists_before = account.lists.lock().unwrap().len();
    let (code, _) = app.call("training/sagemaker/refresh", &[]).await;
    assert_eq!(code, 200);
    wait_for_history(&app, true, 733).await;
    let new_lists: Vec<Value> = account.lists.lock().unwrap()[lists_before..].to_vec();
    assert!(!new_lists.is_empty() && new_lists.iter().all(|l| l["creationtimeafter"].is_number()), "{new_lists:?}");
    assert_eq!(account.describes.load(Ordering::SeqCst) - before, 3, "only the three new jobs are described");

    // A restart resumes from what SQLite holds: no listing from the top.
    let lists_before = account.lists.lock().unwrap().len();
    let app = app.crash_and_restart_with(AwsSetup::Endpoint(url));
    let p = wait_for_history(&app, true, 733).await;
    assert!(p["sync"]["complete"] == true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_restart: Vec<Value> = account.lists.lock().unwrap()[lists_before..].to_vec();
    assert!(!after_restart.is_empty(), "the poller lists after the restart");
    assert!(after_restart.iter().all(|l| l["creationtimeafter"].is_number()), "{after_restart:?}");
}

#[tokio::test]
async fn every_job_of_a_large_history_is_reachable_in_pages_with_totals_filters_and_a_shareable_url() {
    // 130 local and 120 SageMaker jobs seeded into the store, as a year of
    // work leaves them; the account itself is empty.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sagedeck.db").display());
    let seeded = std::process::Command::new(server_binary())
        .args(["seed-history", "--database-url", &db, "--local", "130", "--sagemaker", "120", "--epochs", "1", "--steps", "2"])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let account = Arc::new(Account::default());
    let a = account.clone();
    let url = aws_stand_in(move |request| answer(&a, request)).await;
    let app = App::spawn_in(dir, AwsSetup::Endpoint(url), &[]);

    let (keys, sizes, first) = walk(&app, json!({})).await;
    assert_eq!((first["local_total"].as_u64(), first["sagemaker_total"].as_u64()), (Some(130), Some(120)), "{first}");
    assert_eq!(keys.len(), 250);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 250, "every job once");
    assert_eq!(sizes, [50, 50, 50, 50, 50]);
    assert!(first["newer"].is_null(), "nothing is newer than the first page");
    // The two lists interleave by creation time.
    assert!(keys[..4].iter().any(|k| k.starts_with("local:")) && keys[..4].iter().any(|k| k.starts_with("sm:")), "{:?}", &keys[..4]);

    // Back from the last page through the "newer" links: the same pages.
    let mut back = Vec::new();
    let mut current = {
        let mut last = first.clone();
        while let Some(older) = last["older"].as_str() {
            last = page(&app, json!({ "older": older })).await;
        }
        last
    };
    loop {
        let rows: Vec<String> = current["rows"].as_array().unwrap().iter().map(key).collect();
        back.splice(0..0, rows);
        let Some(newer) = current["newer"].as_str() else { break };
        current = page(&app, json!({ "newer": newer })).await;
    }
    assert_eq!(back, keys, "paging back gives the same rows");

    // Filters, with totals over all pages: i % 50 in 0..=2 failed, 3 stopped.
    let failed = page(&app, json!({ "status": "Failed" })).await;
    assert_eq!((failed["local_total"].as_u64(), failed["sagemaker_total"].as_u64()), (Some(9), Some(9)), "{failed}");
    assert!(failed["rows"].as_array().unwrap().iter().all(|r| r.get("Local").map(|j| j["status"] == "Failed").unwrap_or_else(|| r["SageMaker"]["status"] == "Failed")));
    let stopped = page(&app, json!({ "status": "Stopped" })).await;
    assert_eq!((stopped["local_total"].as_u64(), stopped["sagemaker_total"].as_u64()), (Some(3), Some(3)), "local Cancelled counts as Stopped");
    let dogs = page(&app, json!({ "name": "DOGS" })).await;
    assert_eq!((dogs["local_total"].as_u64(), dogs["sagemaker_total"].as_u64()), (Some(26), Some(24)), "names match in any case");
    let (local_only, _, lf) = walk(&app, json!({ "runs_on": "Local", "status": "Completed" })).await;
    assert_eq!(lf["sagemaker_total"], 0);
    assert_eq!(local_only.len() as u64, lf["local_total"].as_u64().unwrap());
    assert_eq!(local_only.len(), 130 - 9 - 3);

    // The view is in the URL: the server-rendered page answers it.
    let (code, _, html) = app.raw("GET", "/training?status=Failed&q=dogs", &[], vec![]).await;
    assert_eq!(code, 200);
    assert!(html.contains("data-total=\"6\""), "3 failed dogs jobs of each kind: {}", &html[html.find("jobs-count").unwrap_or(0)..][..200.min(html.len())]);

    // Bad positions and filters are refused in words; the server stays up.
    for bad in [json!({ "older": "yesterday" }), json!({ "status": "Exploded" }), json!({ "older": "2026-01-01T00:00:00.000Z~local~1", "newer": "2026-01-01T00:00:00.000Z~local~1" }), json!({ "name": "x".repeat(101) })] {
        let (code, answer) = app.call_json("training/history", &query(bad.clone())).await;
        assert_eq!(code, 400, "{bad} → {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.len() > 10), "{answer}");
    }
    assert_eq!(page(&app, json!({})).await["local_total"], 130);
}

#[tokio::test]
async fn the_journal_counts_what_its_filters_match_and_pages_through_all_of_it() {
    use sqlx::ConnectOptions;
    let app = App::spawn(AwsSetup::None);
    // 250 entries as a long-lived console leaves them: every fifth failed,
    // every other one on AWS, two people.
    let mut db = sqlx::sqlite::SqliteConnectOptions::new().filename(app.data_path().join("sagedeck.db")).connect().await.unwrap();
    for i in 0..250 {
        sqlx::query("INSERT INTO change_journal (at, actor, backend, action, target, outcome, message) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, 'scaling.put', ?, ?, ?)")
            .bind(if i % 2 == 0 { "ana" } else { "ben" })
            .bind(if i % 2 == 0 { "aws" } else { "local" })
            .bind(format!("endpoint-{i:03}"))
            .bind(if i % 5 == 0 { "failed" } else { "ok" })
            .bind((i % 5 == 0).then_some("refused"))
            .execute(&mut db)
            .await
            .unwrap();
    }
    let count = |q: Value| {
        let app = &app;
        async move {
            let (code, n) = app.call_json("journal/count", &json!({ "query": q })).await;
            assert_eq!(code, 200, "{n}");
            n.as_u64().unwrap()
        }
    };
    assert!(count(json!({ "limit": 100 })).await >= 250, "the seeded rows and whatever the start-up journaled");
    assert_eq!(count(json!({ "outcome": "failed", "limit": 100 })).await, 50);
    assert_eq!(count(json!({ "actor": "ana", "outcome": "failed", "limit": 100 })).await, 25);
    assert_eq!(count(json!({ "text": "ENDPOINT-1", "limit": 100 })).await, 100, "endpoint-100 to -199, in any case");
    // Paged by id, the pages hold every matching entry once.
    let mut seen = HashSet::new();
    let mut before: Option<i64> = None;
    loop {
        let (code, page) = app.call_json("journal/search", &json!({ "query": { "actor": "ben", "limit": 40, "before": before } })).await;
        assert_eq!(code, 200, "{page}");
        let rows = page.as_array().unwrap();
        for r in rows {
            assert!(seen.insert(r["id"].as_i64().unwrap()), "an entry twice");
        }
        if rows.len() < 40 {
            break;
        }
        before = rows.last().map(|r| r["id"].as_i64().unwrap());
    }
    assert_eq!(seen.len() as u64, count(json!({ "actor": "ben", "limit": 100 })).await);
    assert_eq!(seen.len(), 125);
    let (code, _, html) = app.raw("GET", "/journal?user=ana&outcome=failed", &[], vec![]).await;
    assert_eq!(code, 200);
    assert!(html.contains("25 of 25 changes matching"), "the URL's filters are the page's");
    let (code, err) = app.call_json("journal/count", &json!({ "query": { "text": "x".repeat(5000), "limit": 1 } })).await;
    assert_eq!(code, 400, "{err}");
}

#[tokio::test]
async fn tuning_jobs_page_newest_first_with_their_total() {
    use sqlx::ConnectOptions;
    let account = Arc::new(Account::default());
    let a = account.clone();
    let url = aws_stand_in(move |request| answer(&a, request)).await;
    let app = App::spawn(AwsSetup::Endpoint(url));
    // 120 tuning jobs in the poller's cache, one a minute.
    let mut db = sqlx::sqlite::SqliteConnectOptions::new().filename(app.data_path().join("sagedeck.db")).connect().await.unwrap();
    for i in 0..120 {
        let created = format!("2026-03-01T{:02}:{:02}:00.000Z", i / 60, i % 60);
        let status = if i % 10 == 0 { "Failed" } else { "Completed" };
        let summary = json!({"name": format!("hpo-{i:03}"), "status": status, "strategy": "Bayesian", "objective": "Minimize valid:loss",
            "max_jobs": 4, "max_parallel": 2, "completed": 4, "in_progress": 0, "failed": 0, "created_at": created, "ended_at": null,
            "best_training_job": null, "best_value": null});
        sqlx::query("INSERT INTO sagemaker_tuning_jobs (name, status, created_at, summary, detail, refreshed_at) VALUES (?, ?, ?, ?, NULL, ?)")
            .bind(format!("hpo-{i:03}"))
            .bind(status)
            .bind(&created)
            .bind(summary.to_string())
            .bind(&created)
            .execute(&mut db)
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut older: Option<String> = None;
    let mut pages = 0;
    loop {
        let form: Vec<(&str, &str)> = older.as_deref().map(|o| vec![("older", o)]).unwrap_or_default();
        let (code, page) = app.call("training/tuning/list", &form).await;
        assert_eq!(code, 200, "{page}");
        assert_eq!(page["total"], 120);
        names.extend(page["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()));
        pages += 1;
        match page["older"].as_str() {
            Some(o) => older = Some(o.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..120).rev().map(|i| format!("hpo-{i:03}")).collect();
    assert_eq!(names, expected, "newest first, each once");
    let (code, err) = app.call("training/tuning/list", &[("older", "not a position")]).await;
    assert_eq!(code, 400, "{err}");

    // Filters, counted on the server: by status, by name in any case, both.
    let listed = |page: &Value| page["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (code, failed) = app.call("training/tuning/list", &[("status", "Failed")]).await;
    assert_eq!(code, 200, "{failed}");
    assert_eq!(failed["total"], 12);
    assert_eq!(listed(&failed)[..2], ["hpo-110", "hpo-100"]);
    let (_, named) = app.call("training/tuning/list", &[("name", "HPO-01")]).await;
    assert_eq!(named["total"], 10, "{named}");
    let (_, both) = app.call("training/tuning/list", &[("status", "Failed"), ("name", "hpo-01")]).await;
    assert_eq!(listed(&both), ["hpo-010"]);
    let (_, none) = app.call("training/tuning/list", &[("name", "hpo_0")]).await;
    assert_eq!(none["total"], 0, "_ is not a wildcard: {none}");
    let (code, err) = app.call("training/tuning/list", &[("status", "Exploded")]).await;
    assert_eq!(code, 400, "{err}");
}

async fn tuning_total(app: &App) -> u64 {
    app.call("training/tuning/list", &[]).await.1["total"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn the_whole_tuning_history_is_read_once_and_then_a_page_at_a_time() {
    let account = Arc::new(Account { tuning: Mutex::new(130), ..Default::default() });
    let a = account.clone();
    let url = aws_stand_in(move |request| answer(&a, request)).await;
    let app = App::spawn(AwsSetup::Endpoint(url));
    let deadline = Instant::now() + Duration::from_secs(60);
    while tuning_total(&app).await < 130 {
        assert!(Instant::now() < deadline, "the tuning history was not read: {:?}", account.tuning_lists.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Two pages (100 + 30), every job described once.
    let lists = account.tuning_lists.lock().unwrap().clone();
    assert_eq!(lists.iter().filter(|l| l["nexttoken"].is_string()).count(), 1, "{lists:?}");
    assert_eq!(account.tuning_describes.load(Ordering::SeqCst), 130);
    let (_, first) = app.call("training/tuning/list", &[]).await;
    assert_eq!(first["jobs"][0]["name"], "hpo-0129", "newest first: {}", first["jobs"][0]);
    assert_eq!(first["jobs"][0]["objective"], "Minimize valid:loss");

    // One new job: it is described, nothing else is.
    *account.tuning.lock().unwrap() = 131;
    let mark = account.tuning_lists.lock().unwrap().len();
    let (code, _) = app.call("training/sagemaker/refresh", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(tuning_total(&app).await, 131);
    assert_eq!(account.tuning_describes.load(Ordering::SeqCst), 131, "only the new job is described");
    // With nothing new, a refresh reads the first page only.
    let mark2 = account.tuning_lists.lock().unwrap().len();
    let (code, _) = app.call("training/sagemaker/refresh", &[]).await;
    assert_eq!(code, 200);
    let quiet: Vec<Value> = account.tuning_lists.lock().unwrap()[mark2..].to_vec();
    assert!(!quiet.is_empty() && quiet.iter().all(|l| l["nexttoken"].is_null()), "{quiet:?}");
    assert!(account.tuning_lists.lock().unwrap().len() > mark);
}
