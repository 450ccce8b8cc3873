//! Schedules kept in SQLite and run by the server on time. A runner wakes
//! at the next due time (or when a schedule is added); every run acts as the
//! user "schedule", so the change it makes is journaled under that name,
//! and a `schedule.run` entry says what was due, when, and what happened:
//! done, skipped (already stopped, not idle) or failed. A schedule whose
//! time passed while the server was down runs once when it starts, and the
//! journal says it caught up and how many runs it skipped.

pub mod clock;

use crate::costs::CostHub;
use crate::journal::{self, Change, Journal};
use app::names::{EndpointName, NotebookName, VariantName};
use app::auth::{Principal, Role};
use app::endpoints::Endpoints;
use app::notebooks::Notebooks;
use app::scaling::Scaling;
use app::schedules::{Recurrence, Schedule, ScheduleAction, ScheduleService, ScheduleSpec};
use app::ApiError;
use sqlx::SqlitePool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The runner looks at least this often (a clock change, a missed wake-up).
const LONGEST_SLEEP: Duration = Duration::from_secs(30);

/// What the runner acts through: the same services the pages call.
pub struct Actors {
    pub notebooks: Notebooks,
    pub endpoints: Endpoints,
    pub scaling: Scaling,
    pub costs: Arc<CostHub>,
}

pub struct ScheduleHub {
    pool: SqlitePool,
    journal: Journal,
    actors: Actors,
    wake: Notify,
    /// When this process started: a run due before it caught up after a restart.
    started: i64,
}

type Row = (i64, String, String, String, Option<String>, Option<String>, Option<String>, String, String);
const COLUMNS: &str = "id, action, recurrence, time_zone, next_run_at, last_run_at, last_outcome, created_at, created_by";

/// Store failures, logged; the page is told which store (see `store::failed`).
fn store_error(e: sqlx::Error) -> ApiError {
    crate::store::failed("schedule store")(e)
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl ScheduleHub {
    pub fn start(pool: SqlitePool, journal: Journal, actors: Actors) -> Arc<Self> {
        let hub = Arc::new(Self { pool, journal, actors, wake: Notify::new(), started: now_s() });
        let runner = hub.clone();
        tokio::spawn(tracing::Instrument::instrument(async move {
            loop {
                let sleep = match runner.run_due().await {
                    Ok(next) => next.map(|t| Duration::from_secs((t - now_s()).clamp(0, 30) as u64)).unwrap_or(LONGEST_SLEEP),
                    Err(e) => {
                        tracing::warn!(error = %e.message(), "running schedules");
                        LONGEST_SLEEP
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(sleep.max(Duration::from_millis(200))) => {}
                    _ = runner.wake.notified() => {}
                }
            }
        }, tracing::info_span!("schedules")));
        hub
    }

    fn to_view(row: Row) -> Schedule {
        let (id, action, recurrence, time_zone, next_run_at, last_run_at, last_outcome, _, created_by) = row;
        let tz = clock::zone(&time_zone).ok();
        let next_run_local = match (&next_run_at, &tz) {
            (Some(t), Some(tz)) => clock::parse_rfc3339(t).map(|s| clock::local_label(s, tz)),
            _ => None,
        };
        Schedule {
            id,
            action: serde_json::from_str(&action).unwrap_or(ScheduleAction::StopNotebook { name: "?".into() }),
            described: Recurrence::parse(&recurrence).map(|r| r.describe()).unwrap_or_else(|_| recurrence.clone()),
            when: recurrence,
            time_zone,
            next_run_at,
            next_run_local,
            last_run_at,
            last_outcome,
            created_by,
        }
    }

    /// Runs every schedule whose time has come, oldest due first (two due
    /// at once run in the order they were made); returns the next due time.
    async fn run_due(&self) -> Result<Option<i64>, ApiError> {
        let now = now_s();
        let due: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= ?1 ORDER BY next_run_at, id"
        ))
        .bind(clock::rfc3339(now))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        for row in due {
            let span = tracing::info_span!("schedule", id = row.0);
            tracing::Instrument::instrument(self.run_one(row, now), span).await;
        }
        let next: Option<String> =
            sqlx::query_scalar("SELECT MIN(next_run_at) FROM schedules WHERE next_run_at IS NOT NULL").fetch_one(&self.pool).await.map_err(store_error)?;
        Ok(next.as_deref().and_then(clock::parse_rfc3339))
    }

    async fn run_one(&self, row: Row, now: i64) {
        let (id, action_json, recurrence, zone_name, next_run_at, _, _, created_at, created_by) = row;
        let due = next_run_at.as_deref().and_then(clock::parse_rfc3339).unwrap_or(now);
        let anchor = clock::parse_rfc3339(&created_at).unwrap_or(due);
        let (Ok(action), Ok(rec), Ok(tz)) =
            (serde_json::from_str::<ScheduleAction>(&action_json), Recurrence::parse(&recurrence), clock::zone(&zone_name))
        else {
            // Unreadable: stop it rather than retry forever, and say so.
            let _ = sqlx::query("UPDATE schedules SET next_run_at = NULL, last_outcome = 'failed: unreadable schedule' WHERE id = ?1")
                .bind(id)
                .execute(&self.pool)
                .await;
            return;
        };
        let late = now - due;
        let missed = clock::missed_since(&rec, &tz, anchor, due, now);
        let principal = Principal { name: "schedule".into(), role: Role::Operator, open: false };
        let outcome = journal::acting_as(principal.clone(), self.act(&action)).await;
        let mut said = format!("{} ({}, due {})", action.describe(), rec.describe(), clock::local_label(due, &tz));
        if due < self.started {
            said.push_str(&format!(
                "; caught up {} late (the console was not running at its time){}",
                age(late),
                if missed > 0 { format!(", {missed} later run(s) skipped") } else { String::new() }
            ));
        }
        let (result, summary) = match &outcome {
            Ok(Done::Did(what)) => (Ok(()), format!("done: {what}")),
            Ok(Done::Skipped(why)) => (Ok(()), format!("skipped: {why}")),
            Err(e) => (Err(e.message().to_string()), format!("failed: {}", e.message())),
        };
        let target = format!("schedule #{id} · {}", action.resource());
        journal::acting_as(principal, async {
            self.journal
                .record(Change {
                    backend: backend_of(&action),
                    action: "schedule.run",
                    target: &target,
                    before: None,
                    after: Some(format!("{said}: {summary}")),
                    outcome: result,
                })
                .await
        })
        .await;
        let next = clock::next_after(&rec, &tz, anchor, now.max(due)).map(clock::rfc3339);
        let write = sqlx::query("UPDATE schedules SET next_run_at = ?1, last_run_at = ?2, last_outcome = ?3 WHERE id = ?4")
            .bind(next)
            .bind(clock::rfc3339(now))
            .bind(&summary)
            .bind(id)
            .execute(&self.pool)
            .await;
        if let Err(e) = write {
            tracing::error!(error = %e, id, created_by, "could not record a schedule's run");
        }
    }

    async fn act(&self, action: &ScheduleAction) -> Result<Done, ApiError> {
        let a = &self.actors;
        match action {
            ScheduleAction::StopNotebook { name } | ScheduleAction::StartNotebook { name } => {
                let stop = matches!(action, ScheduleAction::StopNotebook { .. });
                let name = NotebookName::parse(name)?;
                let result = if stop { a.notebooks.stop(&name).await } else { a.notebooks.start(&name).await };
                match result {
                    Ok(change) => Ok(Done::Did(format!("{} → {}", change.status_before, change.after.summary.status))),
                    // Already in the wanted state (or between states): nothing to do.
                    Err(ApiError::Conflict(why)) => Ok(Done::Skipped(why)),
                    Err(e) => Err(e),
                }
            }
            ScheduleAction::DeleteEndpointIfIdle { backend, name, idle_hours } => {
                let calls = a.costs.calls_in(*backend, name, *idle_hours as u32).await?;
                if calls > 0.0 {
                    return Ok(Done::Skipped(format!("{calls} invocation(s) in the last {idle_hours} h")));
                }
                a.endpoints.delete(*backend, &EndpointName::parse(name)?, false).await?;
                Ok(Done::Did(format!("no invocations in {idle_hours} h: deleted (its configuration kept)")))
            }
            ScheduleAction::SetMinInstances { backend, name, min_instances } => {
                let name = EndpointName::parse(name)?;
                let scaling = a.scaling.describe(*backend, &name).await?;
                let Some((variant, mut policy)) = scaling.variants.iter().find_map(|v| v.policy.clone().map(|p| (v.variant.clone(), p))) else {
                    return Err(ApiError::Conflict(format!("endpoint {name} has no auto-scaling policy to set a minimum on; add one on its Scaling page")));
                };
                let min_instances = &(*min_instances as u32);
                if policy.min_instances == *min_instances {
                    return Ok(Done::Skipped(format!("the minimum is already {min_instances}")));
                }
                let before = policy.min_instances;
                policy.min_instances = *min_instances;
                policy.max_instances = policy.max_instances.max(*min_instances);
                a.scaling.put_policy(*backend, &name, &VariantName::parse(&variant)?, policy).await?;
                Ok(Done::Did(format!("minimum {before} → {min_instances}")))
            }
        }
    }

    async fn get(&self, id: i64) -> Result<Schedule, ApiError> {
        let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(Self::to_view).ok_or_else(|| ApiError::NotFound(format!("there is no schedule #{id}")))
    }
}

/// The journal's backend column: where the resource lives.
fn backend_of(action: &ScheduleAction) -> &'static str {
    match action {
        ScheduleAction::DeleteEndpointIfIdle { backend: app::endpoints::Backend::Local, .. }
        | ScheduleAction::SetMinInstances { backend: app::endpoints::Backend::Local, .. } => "local",
        _ => "aws",
    }
}

enum Done {
    Did(String),
    Skipped(String),
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

#[async_trait::async_trait]
impl ScheduleService for ScheduleHub {
    async fn list(&self, resource: Option<String>) -> Result<Vec<Schedule>, ApiError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE (?1 IS NULL OR resource = ?1) ORDER BY next_run_at IS NULL, next_run_at, id LIMIT 500"
        ))
        .bind(resource)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Self::to_view).collect())
    }

    async fn create(&self, spec: ScheduleSpec) -> Result<Schedule, ApiError> {
        let rec = spec.validate()?;
        let tz = clock::zone(&spec.time_zone)?;
        let now = now_s();
        let Some(first) = clock::next_after(&rec, &tz, now, now) else {
            return Err(ApiError::Invalid(format!("when: {} is in the past ({} now)", rec.describe(), clock::local_label(now, &tz))));
        };
        let who = journal::current().map(|p| p.name).unwrap_or_else(|| "system".into());
        let action = serde_json::to_string(&spec.action).map_err(|e| ApiError::Internal(format!("encoding the action: {e}")))?;
        let resource = spec.action.resource();
        let inserted: Result<i64, ApiError> = sqlx::query_scalar(
            "INSERT INTO schedules (resource, action, recurrence, time_zone, next_run_at, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )
        .bind(&resource)
        .bind(&action)
        .bind(spec.when.trim())
        .bind(spec.time_zone.trim())
        .bind(clock::rfc3339(first))
        .bind(clock::rfc3339(now))
        .bind(&who)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error);
        let said = format!("{} ({}, {}); first run {}", spec.action.describe(), rec.describe(), spec.time_zone.trim(), clock::local_label(first, &tz));
        let target = match &inserted {
            Ok(id) => format!("schedule #{id} · {resource}"),
            Err(_) => format!("schedule · {resource}"),
        };
        self.journal
            .record(Change {
                backend: backend_of(&spec.action),
                action: "schedule.create",
                target: &target,
                before: None,
                after: Some(said),
                outcome: inserted.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        let id = inserted?;
        self.wake.notify_one();
        self.get(id).await
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        let schedule = self.get(id).await?;
        let result = sqlx::query("DELETE FROM schedules WHERE id = ?1").bind(id).execute(&self.pool).await.map(|_| ()).map_err(store_error);
        let target = format!("schedule #{id} · {}", schedule.action.resource());
        self.journal
            .record(Change {
                backend: backend_of(&schedule.action),
                action: "schedule.delete",
                target: &target,
                before: Some(format!("{} ({}, {})", schedule.action.describe(), schedule.described, schedule.time_zone)),
                after: None,
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result
    }
}
