//! Schedules against a real moto account: one that stops a notebook runs on
//! time, one whose time passed while the server was down runs once when it
//! starts again and says it caught up, overlapping ones skip what is done,
//! and bad schedules are refused naming the field.

use sagedeck_tests::{App, AwsSetup, Moto};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// "once <UTC time `seconds` from now>" as the form writes it.
fn once_in(seconds: i64) -> String {
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + seconds;
    let (days, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    let (y, m, d) = app::calendar::civil_from_days(days);
    format!("once {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn stop(name: &str, when: &str) -> Value {
    json!({ "spec": { "action": { "StopNotebook": { "name": name } }, "when": when, "time_zone": "UTC" } })
}

async fn status(app: &App, name: &str) -> String {
    let (code, d) = app.call("notebooks/describe", &[("name", name)]).await;
    assert_eq!(code, 200, "{d}");
    d["summary"]["status"].as_str().unwrap().to_string()
}

/// The journal's newest entries with this action.
async fn journaled(app: &App, action: &str) -> Vec<Value> {
    let (code, j) = app.call("journal/recent", &[("limit", "50")]).await;
    assert_eq!(code, 200, "{j}");
    j.as_array().unwrap().iter().filter(|c| c["action"] == action).cloned().collect()
}

async fn wait_for_run(app: &App, within: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let runs = journaled(app, "schedule.run").await;
        if !runs.is_empty() || start.elapsed() > within {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_schedule_stops_a_notebook_on_time_and_journals_it_as_the_schedule() {
    let moto = Moto::start();
    let name = moto.create_notebook("scheduled-nb", "ml.t3.medium").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let (code, made) = app.call_json("schedules/create", &stop(&name, &once_in(3))).await;
    assert_eq!(code, 200, "{made}");
    assert!(made["next_run_local"].as_str().unwrap().ends_with("UTC"), "{made}");
    let (code, listed) = app.call("schedules/list", &[("resource", "notebook/scheduled-nb")]).await;
    assert_eq!(code, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(status(&app, &name).await, "InService", "not before its time");
    let creations = journaled(&app, "schedule.create").await;
    assert_eq!(creations.len(), 1, "{creations:?}");
    assert!(creations[0]["after"].as_str().unwrap().contains("first run"), "{creations:?}");

    let runs = wait_for_run(&app, Duration::from_secs(20)).await;
    assert_eq!(runs.len(), 1, "ran once: {runs:?}");
    assert_eq!(runs[0]["actor"], "schedule");
    assert_eq!(runs[0]["outcome"], "ok");
    let said = runs[0]["after"].as_str().unwrap();
    assert!(said.contains("stop notebook scheduled-nb") && said.contains("done: InService → Stopped"), "{said}");
    assert!(!said.contains("caught up"), "it ran on time: {said}");
    assert_eq!(status(&app, &name).await, "Stopped");
    let stops = journaled(&app, "notebook.stop").await;
    assert_eq!(stops.first().map(|c| c["actor"].clone()), Some(json!("schedule")), "{stops:?}");

    // Done: a one-off has no next run.
    let (_, listed) = app.call("schedules/list", &[]).await;
    assert_eq!(listed[0]["next_run_at"], Value::Null, "{listed}");
    assert!(listed[0]["last_outcome"].as_str().unwrap().starts_with("done"), "{listed}");
}

#[tokio::test]
async fn a_schedule_due_while_the_server_was_down_runs_once_at_start_and_says_so() {
    let moto = Moto::start();
    let name = moto.create_notebook("catch-up-nb", "ml.t3.medium").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    // Two schedules on the same notebook, due at the same moment: the first
    // stops it, the second finds it stopped and skips.
    let when = once_in(3);
    for _ in 0..2 {
        let (code, made) = app.call_json("schedules/create", &stop(&name, &when)).await;
        assert_eq!(code, 200, "{made}");
    }
    let app = app.down_for(Duration::from_secs(6), AwsSetup::Moto(&moto));

    let start = Instant::now();
    let mut runs = Vec::new();
    while runs.len() < 2 && start.elapsed() < Duration::from_secs(20) {
        runs = journaled(&app, "schedule.run").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(runs.len(), 2, "{runs:?}");
    // Newest first: the second schedule skipped, the first stopped it.
    let (second, first) = (runs[0]["after"].as_str().unwrap(), runs[1]["after"].as_str().unwrap());
    assert!(first.contains("caught up") && first.contains("the console was not running at its time"), "{first}");
    assert!(first.contains("done: InService → Stopped"), "{first}");
    assert!(second.contains("skipped") && second.contains("Stopped"), "{second}");
    for run in runs.iter().rev() {
        println!("journal #{} {} {} {}: {}", run["id"], run["actor"], run["action"], run["target"], run["after"].as_str().unwrap());
    }
    assert_eq!(status(&app, &name).await, "Stopped");
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field() {
    let moto = Moto::start();
    let app = App::spawn(AwsSetup::Moto(&moto));
    let cases = [
        ("a time in the past", stop("nb", "once 2020-01-01 10:00"), "when"),
        ("a cron-like text it cannot read", stop("nb", "*/5 * * * *"), "when"),
        ("an unknown time zone", json!({ "spec": { "action": { "StopNotebook": { "name": "nb" } }, "when": "weekdays 19:00", "time_zone": "Mars/Base" } }), "time_zone"),
        ("a negative idle period", json!({ "spec": { "action": { "DeleteEndpointIfIdle": { "backend": "SageMaker", "name": "dogs", "idle_hours": -5 } }, "when": "daily 02:00", "time_zone": "UTC" } }), "idle_hours"),
        ("no idle period", json!({ "spec": { "action": { "DeleteEndpointIfIdle": { "backend": "SageMaker", "name": "dogs", "idle_hours": 0 } }, "when": "daily 02:00", "time_zone": "UTC" } }), "idle_hours"),
        ("a minimum of zero", json!({ "spec": { "action": { "SetMinInstances": { "backend": "SageMaker", "name": "dogs", "min_instances": 0 } }, "when": "weekdays 20:00", "time_zone": "UTC" } }), "min_instances"),
    ];
    for (what, body, field) in cases {
        let (code, answer) = app.call_json("schedules/create", &body).await;
        assert_eq!(code, 400, "{what}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{what}: {message}");
    }
    let (_, listed) = app.call("schedules/list", &[]).await;
    assert_eq!(listed, json!([]), "nothing was kept");
    assert!(journaled(&app, "schedule.create").await.is_empty());
}
