//! Rollouts of a local endpoint: the next version's replicas load and warm
//! up beside the live ones, traffic moves to them step by step (the plan of
//! [`app::endpoints::rollout`]), every step is judged against the
//! operator's guardrails, and the rollout ends in one of two states that are
//! stored at once: completed (the new version serves everything and is what
//! a restart loads) or rolled back (the live version never stopped serving).
//!
//! No request is dropped by a shift: each request takes a reference to the
//! runtime it was routed to, so a runtime taken out of the routing table
//! finishes what it holds before its replicas stop.

use super::serving::Runtime;
use super::{db, EndpointHub};
use crate::journal::{self, Change};
use crate::store::now;
use app::auth::Principal;
use app::endpoints::rollout::{breach, quantile, to_candidate, RolloutSpec, RolloutState, RolloutView, Step, VersionStats};
use app::endpoints::Batching;
use app::ApiError;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running step is judged.
const JUDGE_EVERY: Duration = Duration::from_millis(200);
/// Latency samples kept per version per step (the newest).
const SAMPLES: usize = 4096;

/// The stored facts of a version (a row of `endpoint_versions`).
#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: u32,
    pub job_id: i64,
    pub sagemaker_job: Option<String>,
    pub artifact_dir: String,
    pub instances: u32,
    pub batching: Batching,
}

/// Stores a version of `endpoint`; `live_from` when it serves all traffic from the start.
pub async fn insert_version(
    tx: &mut sqlx::SqliteConnection,
    endpoint: &str,
    v: &VersionRow,
    created_at: &str,
    created_by: &str,
    live_from: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO endpoint_versions (endpoint, version, job_id, sagemaker_job, artifact_dir, instances, max_batch, max_wait_ms,
                                        queue_capacity, created_at, created_by, live_from)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(endpoint)
    .bind(i64::from(v.version))
    .bind(v.job_id)
    .bind(&v.sagemaker_job)
    .bind(&v.artifact_dir)
    .bind(i64::from(v.instances))
    .bind(i64::from(v.batching.max_batch))
    .bind(i64::from(v.batching.max_wait_ms))
    .bind(i64::from(v.batching.queue_capacity))
    .bind(created_at)
    .bind(created_by)
    .bind(live_from)
    .execute(tx)
    .await
    .map(|_| ())
}

/// One version's answers.
#[derive(Default)]
struct Side {
    requests: u64,
    errors: u64,
    /// The newest SAMPLES latencies (a ring: each request adds one, in O(1)).
    latencies_ms: std::collections::VecDeque<f64>,
    compared: u64,
    agreed: u64,
}

impl Side {
    fn add(&mut self, server_error: bool, ms: f64) {
        self.requests += 1;
        self.errors += u64::from(server_error);
        if self.latencies_ms.len() == SAMPLES {
            self.latencies_ms.pop_front();
        }
        self.latencies_ms.push_back(ms);
    }

    fn stats(&self) -> VersionStats {
        let latencies: Vec<f64> = self.latencies_ms.iter().copied().collect();
        VersionStats {
            requests: self.requests,
            errors: self.errors,
            p50_ms: quantile(&latencies, 0.5),
            p99_ms: quantile(&latencies, 0.99),
            compared: self.compared,
            agreed: self.agreed,
        }
    }
}

#[derive(Default)]
struct Tally {
    live: Side,
    candidate: Side,
}

/// A rollout this process is driving.
pub struct LiveRollout {
    pub id: i64,
    pub spec: RolloutSpec,
    pub steps: Vec<Step>,
    pub from_version: u32,
    pub next: VersionRow,
    /// The next version's replicas, loaded and warm.
    pub candidate: Arc<Runtime>,
    pub started_by: String,
    pub started_at: String,
    percent: AtomicU32,
    step: AtomicU32,
    arrivals: AtomicU64,
    step_started: Mutex<Instant>,
    /// This step's answers, and the whole rollout's.
    this_step: Mutex<Tally>,
    overall: Mutex<Tally>,
    /// Who asked for a rollback, once someone did.
    back: Mutex<Option<String>>,
    asked: AtomicBool,
    wake: tokio::sync::Notify,
}

impl LiveRollout {
    pub fn new(id: i64, spec: RolloutSpec, from_version: u32, next: VersionRow, candidate: Arc<Runtime>, started_by: String) -> LiveRollout {
        LiveRollout {
            id,
            steps: spec.shift.steps(spec.bake_seconds),
            spec,
            from_version,
            next,
            candidate,
            started_by,
            started_at: now(),
            percent: AtomicU32::new(0),
            step: AtomicU32::new(0),
            arrivals: AtomicU64::new(0),
            step_started: Mutex::new(Instant::now()),
            this_step: Mutex::new(Tally::default()),
            overall: Mutex::new(Tally::default()),
            back: Mutex::new(None),
            asked: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Whether the next request goes to the new version.
    pub fn pick(&self) -> bool {
        to_candidate(self.arrivals.fetch_add(1, Ordering::SeqCst), self.percent.load(Ordering::SeqCst))
    }

    /// Counts one answer; `server_error` is a 5xx.
    pub fn record(&self, candidate: bool, server_error: bool, ms: f64) {
        for tally in [&self.this_step, &self.overall] {
            let mut t = tally.lock().expect("tally");
            if candidate { &mut t.candidate } else { &mut t.live }.add(server_error, ms);
        }
    }

    /// One image the new version answered, scored by the live one as well.
    pub fn record_agreement(&self, agreed: bool) {
        for tally in [&self.this_step, &self.overall] {
            let mut t = tally.lock().expect("tally");
            t.candidate.compared += 1;
            t.candidate.agreed += u64::from(agreed);
        }
    }

    /// Whether the new version's answers are still being compared.
    pub fn compares(&self) -> bool {
        self.spec.guardrails.min_agreement_percent.is_some() && !self.asked.load(Ordering::SeqCst)
    }

    /// Asks the driver to roll back now.
    pub fn ask_back(&self, who: &str) {
        self.back.lock().expect("back").get_or_insert_with(|| who.to_string());
        self.asked.store(true, Ordering::SeqCst);
        self.percent.store(0, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn enter(&self, index: usize, step: Step) {
        *self.this_step.lock().expect("tally") = Tally::default();
        *self.step_started.lock().expect("step") = Instant::now();
        self.step.store(index as u32, Ordering::SeqCst);
        self.percent.store(step.percent, Ordering::SeqCst);
    }

    fn step_stats(&self) -> (VersionStats, VersionStats) {
        let t = self.this_step.lock().expect("tally");
        (t.live.stats(), t.candidate.stats())
    }

    pub fn overall_stats(&self) -> (VersionStats, VersionStats) {
        let t = self.overall.lock().expect("tally");
        (t.live.stats(), t.candidate.stats())
    }

    pub fn view(&self) -> RolloutView {
        let (live, candidate) = self.step_stats();
        RolloutView {
            id: self.id,
            from_version: self.from_version,
            to_version: self.next.version,
            plan: self.spec.plan_text(),
            steps: self.steps.clone(),
            step: self.step.load(Ordering::SeqCst),
            percent: self.percent.load(Ordering::SeqCst),
            step_seconds: Some(self.step_started.lock().expect("step").elapsed().as_secs_f64()),
            state: RolloutState::Running,
            outcome: None,
            started_by: self.started_by.clone(),
            started_at: self.started_at.clone(),
            ended_at: None,
            live,
            candidate,
        }
    }
}

/// How a rollout ended.
enum Ending {
    Completed,
    RolledBack(String),
}

/// Follows the plan to its end, then stores and journals how it ended.
/// Runs as the user who started it, so the journal names them.
pub async fn drive(hub: Arc<EndpointHub>, rollout: Arc<LiveRollout>, principal: Option<Principal>) {
    let work = async {
        let ending = follow_plan(&hub, &rollout).await;
        finish(&hub, &rollout, ending).await;
    };
    match principal {
        Some(p) => journal::acting_as(p, work).await,
        None => work.await,
    }
}

async fn follow_plan(hub: &EndpointHub, rollout: &LiveRollout) -> Ending {
    let rails = rollout.spec.guardrails;
    for (index, step) in rollout.steps.iter().enumerate() {
        if rollout.asked.load(Ordering::SeqCst) {
            break;
        }
        rollout.enter(index, *step);
        let _ = sqlx::query("UPDATE endpoint_rollouts SET step = ?, percent = ? WHERE id = ?")
            .bind(index as i64)
            .bind(i64::from(step.percent))
            .bind(rollout.id)
            .execute(&hub.pool)
            .await;
        tracing::info!(endpoint = %rollout.spec.endpoint, rollout = rollout.id, step = index, percent = step.percent, "rollout step");
        let until = Instant::now() + Duration::from_secs(u64::from(step.hold_seconds));
        loop {
            if rollout.asked.load(Ordering::SeqCst) {
                break;
            }
            let (_, candidate) = rollout.step_stats();
            if let Some(why) = breach(&candidate, &rails) {
                rollout.percent.store(0, Ordering::SeqCst);
                return Ending::RolledBack(format!("rolled back by itself at {} %: {why}", step.percent));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = tokio::time::timeout(left.min(JUDGE_EVERY), rollout.wake.notified()).await;
        }
    }
    match rollout.back.lock().expect("back").clone() {
        Some(who) => Ending::RolledBack(format!("rolled back by {who} at step {} of {}", rollout.step.load(Ordering::SeqCst) + 1, rollout.steps.len())),
        None => Ending::Completed,
    }
}

async fn finish(hub: &EndpointHub, rollout: &LiveRollout, ending: Ending) {
    let name = rollout.spec.endpoint.as_str();
    let ending = match ending {
        Ending::Completed => match hub.make_live(rollout).await {
            Ok(()) => Ending::Completed,
            Err(e) => Ending::RolledBack(format!("rolled back: version {} could not be stored as live ({})", rollout.next.version, e.message())),
        },
        other => other,
    };
    let (live, candidate) = rollout.overall_stats();
    let (state, outcome) = match &ending {
        Ending::Completed => {
            // Serve the new version from the routing table, then stop
            // splitting: a request routed either way is answered.
            hub.runtimes.write().expect("runtimes").insert(name.to_string(), rollout.candidate.clone());
            hub.rollouts.write().expect("rollouts").remove(name);
            (RolloutState::Completed, format!("version {} serves all traffic", rollout.next.version))
        }
        Ending::RolledBack(why) => {
            hub.rollouts.write().expect("rollouts").remove(name);
            (RolloutState::RolledBack, format!("{why}; version {} serves all traffic", rollout.from_version))
        }
    };
    let counts = serde_json::to_string(&[&live, &candidate]).unwrap_or_default();
    let stored = sqlx::query("UPDATE endpoint_rollouts SET state = ?, outcome = ?, counts = ?, ended_at = coalesce(ended_at, ?) WHERE id = ?")
        .bind(state.as_str())
        .bind(&outcome)
        .bind(&counts)
        .bind(now())
        .bind(rollout.id)
        .execute(&hub.pool)
        .await;
    if let Err(e) = stored {
        tracing::error!(endpoint = name, rollout = rollout.id, error = %e, "the rollout's end could not be stored");
    }
    let answered = format!(
        "version {}: {} requests ({} failed); version {}: {} requests ({} failed){}",
        rollout.from_version,
        live.requests,
        live.errors,
        rollout.next.version,
        candidate.requests,
        candidate.errors,
        candidate.agreement_percent().map(|a| format!(", agreeing on {a:.1} % of {} images", candidate.compared)).unwrap_or_default()
    );
    tracing::info!(endpoint = name, rollout = rollout.id, state = state.as_str(), %outcome, %answered, "rollout ended");
    hub.journal
        .record(Change {
            backend: "local",
            action: "endpoint.local.rollout.end",
            target: name,
            before: Some(format!("rollout #{} to version {}", rollout.id, rollout.next.version)),
            after: Some(format!("{outcome} ({answered})")),
            outcome: match ending {
                Ending::Completed => Ok(()),
                Ending::RolledBack(_) => Err(outcome.clone()),
            },
        })
        .await;
}

crate::store::sqlite_row! {
    /// An `endpoint_rollouts` row as sqlx decodes it ([`ROLLOUT_COLUMNS`]).
    pub struct StoredRollout {
        id: i64,
        from_version: u32,
        to_version: u32,
        spec: String,
        state: String,
        step: u32,
        percent: u32,
        outcome: Option<String>,
        counts: Option<String>,
        started_by: String,
        started_at: String,
        ended_at: Option<String>,
    }
}

const ROLLOUT_COLUMNS: &str = "id, from_version, to_version, spec, state, step, percent, outcome, counts, started_by, started_at, ended_at";

impl StoredRollout {
    /// An ended rollout as the versions page shows it.
    pub fn ended_view(self) -> RolloutView {
        let spec: Option<RolloutSpec> = serde_json::from_str(&self.spec).ok();
        let counts: Option<[VersionStats; 2]> = self.counts.and_then(|c| serde_json::from_str(&c).ok());
        let [live, candidate] = counts.unwrap_or_default();
        RolloutView {
            id: self.id,
            from_version: self.from_version,
            to_version: self.to_version,
            plan: spec.as_ref().map(RolloutSpec::plan_text).unwrap_or_default(),
            steps: spec.as_ref().map(|s| s.shift.steps(s.bake_seconds)).unwrap_or_default(),
            step: self.step,
            percent: self.percent,
            step_seconds: None,
            // The table's CHECK admits only the four words.
            state: RolloutState::parse(&self.state).unwrap_or(RolloutState::Interrupted),
            outcome: self.outcome,
            started_by: self.started_by,
            started_at: self.started_at,
            ended_at: self.ended_at,
            live,
            candidate,
        }
    }
}

crate::store::sqlite_row! {
    /// An `endpoint_versions` row as sqlx decodes it ([`VERSION_COLUMNS`]).
    struct StoredVersion {
        version: u32,
        job_id: i64,
        sagemaker_job: Option<String>,
        artifact_dir: String,
        instances: u32,
        created_at: String,
        created_by: String,
        live_from: Option<String>,
        live_until: Option<String>,
    } flatten {
        batching: super::StoredBatching,
    }
}

const VERSION_COLUMNS: &str =
    "version, job_id, sagemaker_job, artifact_dir, instances, max_batch, max_wait_ms, queue_capacity, created_at, created_by, live_from, live_until";

/// At start: a rollout stored as running was cut short by a stop of the
/// console; what serves is the version `local_endpoints` names (the old
/// one, or the new one if its shift had been stored as finished).
pub async fn settle_interrupted(hub: &EndpointHub) -> Result<(), ApiError> {
    let rows: Vec<(i64, String, i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT r.id, r.endpoint, r.to_version, r.step, r.percent, e.version AS live
         FROM endpoint_rollouts r LEFT JOIN local_endpoints e ON e.name = r.endpoint WHERE r.state = 'running'",
    )
    .fetch_all(&hub.pool)
    .await
    .map_err(db)?;
    for (id, endpoint, to_version, step, percent, serving) in rows {
        let outcome = format!(
            "interrupted: the console stopped at step {} ({percent} % to version {to_version}); version {} serves all traffic",
            step + 1,
            serving.map(|v| v.to_string()).unwrap_or_else(|| "none (the endpoint is gone)".into())
        );
        sqlx::query("UPDATE endpoint_rollouts SET state = 'interrupted', outcome = ?, ended_at = ? WHERE id = ?")
            .bind(&outcome)
            .bind(now())
            .bind(id)
            .execute(&hub.pool)
            .await
            .map_err(db)?;
        tracing::warn!(endpoint = %endpoint, rollout = id, %outcome, "a rollout was interrupted by a restart");
        hub.journal
            .record(Change {
                backend: "local",
                action: "endpoint.local.rollout.end",
                target: &endpoint,
                before: Some(format!("rollout #{id} to version {to_version}")),
                after: Some(outcome.clone()),
                outcome: Err(outcome.clone()),
            })
            .await;
    }
    Ok(())
}

/// Where one request goes: the version it was routed to, the live one, and
/// the rollout that routed it (and whether to the new version).
pub struct Routed {
    pub runtime: Arc<Runtime>,
    pub live: Arc<Runtime>,
    pub rollout: Option<(Arc<LiveRollout>, bool)>,
}

impl Routed {
    /// Counts the request's answer in its rollout, if one routed it.
    pub fn record(&self, server_error: bool, ms: f64) {
        if let Some((rollout, candidate)) = &self.rollout {
            rollout.record(*candidate, server_error, ms);
        }
    }
}

/// The top class's name, as the page and the agreement compare it.
fn top_class(logits: &[f32], classes: &[String]) -> Option<String> {
    app::endpoints::top_k(logits, classes, 1).into_iter().next().map(|c| c.class)
}

impl EndpointHub {
    /// Routes one request of local endpoint `name`; `None` when it is not serving.
    pub fn route(&self, name: &str) -> Option<Routed> {
        let live = self.runtime(name)?;
        let rollout = self.rollouts.read().expect("rollouts").get(name).cloned();
        Some(match rollout {
            Some(r) => {
                let candidate = r.pick();
                Routed { runtime: if candidate { r.candidate.clone() } else { live.clone() }, live, rollout: Some((r, candidate)) }
            }
            None => Routed { runtime: live.clone(), live, rollout: None },
        })
    }

    /// One image through the version it was routed to. An image the new
    /// version answers is also given to the live version (when there is room
    /// in its queue), off the request's path, to measure how often they agree.
    pub async fn run_routed(&self, name: &str, routed: &Routed, bytes: axum::body::Bytes) -> Result<super::LocalAnswer, ApiError> {
        let prepared = self.prepare(bytes, routed.runtime.info.size()).await?;
        let mirror = match &routed.rollout {
            Some((r, true)) if r.compares() && routed.live.info.size() == routed.runtime.info.size() => Some(prepared.pixels.clone()),
            _ => None,
        };
        let answer = self.score(name, &routed.runtime, prepared).await;
        if let (Some(pixels), Ok(scored), Some((rollout, _))) = (mirror, &answer, &routed.rollout) {
            let mine = top_class(&scored.logits, &routed.runtime.info.metadata.classes);
            if let Ok(reply) = routed.live.submit(pixels) {
                let (rollout, live) = (rollout.clone(), routed.live.clone());
                tokio::spawn(tracing::Instrument::in_current_span(async move {
                    if let Ok(Ok(theirs)) = reply.await {
                        rollout.record_agreement(top_class(&theirs.logits, &live.info.metadata.classes) == mine);
                    }
                }));
            }
        }
        answer
    }

    /// Stores the rollout's new version as what serves, in one transaction:
    /// the endpoint's row (what a restart loads), both versions' live
    /// times, and the rollout's state.
    async fn make_live(&self, rollout: &LiveRollout) -> Result<(), ApiError> {
        let (name, next, at) = (rollout.spec.endpoint.as_str(), &rollout.next, now());
        let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
        let updated = sqlx::query(
            "UPDATE local_endpoints SET version = ?, job_id = ?, sagemaker_job = ?, artifact_dir = ?, instances = ?, max_batch = ?,
                    max_wait_ms = ?, queue_capacity = ?, status = 'InService', message = NULL, updated_at = ? WHERE name = ?",
        )
        .bind(i64::from(next.version))
        .bind(next.job_id)
        .bind(&next.sagemaker_job)
        .bind(&next.artifact_dir)
        .bind(i64::from(next.instances))
        .bind(i64::from(next.batching.max_batch))
        .bind(i64::from(next.batching.max_wait_ms))
        .bind(i64::from(next.batching.queue_capacity))
        .bind(&at)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if updated.rows_affected() != 1 {
            return Err(ApiError::NotFound(format!("local endpoint {name} is gone")));
        }
        sqlx::query("UPDATE endpoint_versions SET live_until = ? WHERE endpoint = ? AND version = ?")
            .bind(&at)
            .bind(name)
            .bind(i64::from(rollout.from_version))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE endpoint_versions SET live_from = ?, live_until = NULL WHERE endpoint = ? AND version = ?")
            .bind(&at)
            .bind(name)
            .bind(i64::from(next.version))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE endpoint_rollouts SET state = 'completed', step = ?, percent = 100, ended_at = ? WHERE id = ?")
            .bind(rollout.steps.len() as i64 - 1)
            .bind(&at)
            .bind(rollout.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// A stored version of `name`.
    async fn version_row(&self, name: &str, version: u32) -> Result<VersionRow, ApiError> {
        let r: StoredVersion = sqlx::query_as(&format!("SELECT {VERSION_COLUMNS} FROM endpoint_versions WHERE endpoint = ? AND version = ?"))
            .bind(name)
            .bind(i64::from(version))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| ApiError::NotFound(format!("endpoint {name} has no version {version}")))?;
        Ok(VersionRow { version, job_id: r.job_id, sagemaker_job: r.sagemaker_job, artifact_dir: r.artifact_dir, instances: r.instances, batching: r.batching.into() })
    }

    /// The versions page of local endpoint `name`.
    pub async fn versions_view(&self, name: &str) -> Result<app::endpoints::rollout::VersionsView, ApiError> {
        self.row(name).await?;
        // One read transaction: the live version, the versions and the
        // rollouts as of one moment (a rollout's completion changes all three).
        let mut read = self.pool.begin().await.map_err(db)?;
        let live_version = sqlx::query_scalar::<_, i64>("SELECT version FROM local_endpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *read)
            .await
            .map_err(db)?
            .ok_or_else(|| ApiError::NotFound(format!("there is no local endpoint named {name:?}")))? as u32;
        let rows: Vec<StoredVersion> = sqlx::query_as(&format!("SELECT {VERSION_COLUMNS} FROM endpoint_versions WHERE endpoint = ? ORDER BY version DESC"))
            .bind(name)
            .fetch_all(&mut *read)
            .await
            .map_err(db)?;
        let versions = rows
            .into_iter()
            .map(|r| {
                let metadata = crate::training::trainer::read_artifact(std::path::Path::new(&r.artifact_dir));
                app::endpoints::rollout::EndpointVersion {
                    version: r.version,
                    source: match &r.sagemaker_job {
                        Some(job) => format!("SageMaker job {job}"),
                        None => format!("local job #{}", r.job_id),
                    },
                    job_id: r.sagemaker_job.is_none().then_some(r.job_id),
                    test_accuracy: metadata.as_ref().map(|m| m.metrics.test_accuracy),
                    classes: metadata.map(|m| m.classes).unwrap_or_default(),
                    artifact_dir: r.artifact_dir,
                    instances: r.instances,
                    batching: r.batching.into(),
                    created_at: r.created_at,
                    created_by: r.created_by,
                    live_from: r.live_from,
                    live_until: r.live_until,
                    live: r.version == live_version,
                }
            })
            .collect();
        let running = self.rollouts.read().expect("rollouts").get(name).cloned();
        let stored: Vec<StoredRollout> = sqlx::query_as(&format!("SELECT {ROLLOUT_COLUMNS} FROM endpoint_rollouts WHERE endpoint = ? ORDER BY id DESC LIMIT 10"))
            .bind(name)
            .fetch_all(&mut *read)
            .await
            .map_err(db)?;
        let mut rollouts: Vec<RolloutView> = stored
            .into_iter()
            .filter(|r| running.as_ref().is_none_or(|run| run.id != r.id))
            .map(StoredRollout::ended_view)
            .collect();
        if let Some(run) = running {
            rollouts.insert(0, run.view());
        }
        Ok(app::endpoints::rollout::VersionsView { endpoint: name.to_string(), live_version, versions, rollouts })
    }

    /// Starts a rollout: the next version is loaded and warmed up (a
    /// version that cannot be served is refused before any traffic moves),
    /// its classes checked against the live version's, stored, and driven
    /// in the background.
    pub async fn begin_rollout(&self, spec: RolloutSpec) -> Result<app::endpoints::rollout::VersionsView, ApiError> {
        use app::endpoints::rollout::class_change;
        let _one_at_a_time = self.rollout_gate.lock().await;
        let name = spec.endpoint.clone();
        let live = self.row(&name).await?;
        let live_runtime = self.runtime(&name).ok_or_else(|| {
            ApiError::Conflict(format!("endpoint {name} is not serving ({}): deploy it again before rolling out", live.message.clone().unwrap_or(live.status.clone())))
        })?;
        if let Some(running) = self.rollouts.read().expect("rollouts").get(&name) {
            return Err(ApiError::Conflict(format!(
                "rollout #{} to version {} is running on {name}: wait for it or roll it back first",
                running.id, running.next.version
            )));
        }
        // What the next version serves, and its number (an earlier version keeps its own).
        let (reused, job_id, sagemaker_job, artifact_dir) = self.resolve_source(&name, &spec.source).await?;
        let base = match reused {
            Some(v) => self.version_row(&name, v).await?,
            None => VersionRow {
                version: 0,
                job_id,
                sagemaker_job: sagemaker_job.clone(),
                artifact_dir: artifact_dir.display().to_string(),
                instances: live.instances,
                batching: live.batching,
            },
        };
        let instances = spec.instances.unwrap_or(base.instances);
        let batching = spec.batching.unwrap_or(base.batching);
        if reused == Some(live.version) && instances == live_runtime.instances() as u32 && batching == live.batching {
            return Err(ApiError::Conflict(format!("version {} is already live on {name} with these replicas and batching", live.version)));
        }
        // The live version on other replicas or batching is a new version: the
        // live one's row keeps describing what serves until the shift is done.
        let reused = reused.filter(|v| *v != live.version);
        let number = match reused {
            Some(v) => v,
            None => {
                let max: i64 = sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM endpoint_versions WHERE endpoint = ?")
                    .bind(&name)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                max as u32 + 1
            }
        };
        let next = VersionRow { version: number, job_id, sagemaker_job, artifact_dir: artifact_dir.display().to_string(), instances, batching };
        let what = format!("version {number} ({})", spec.source.describe());
        let before = format!("version {} · {} × {}", live.version, self.describe_source(&live), live_runtime.instances());
        let after = format!("{what} × {instances}: {}", spec.plan_text());
        let refused = |e: ApiError, before: &str, after: &str| {
            let (before, after, target) = (before.to_string(), after.to_string(), name.clone());
            async move {
                self.record("endpoint.local.rollout", &target, Some(before), Some(after), &Err(e.clone())).await;
                Err(e)
            }
        };
        // Loaded and warmed beside the live replicas; the live version serves meanwhile.
        let (dir, label) = (artifact_dir.clone(), name.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let info = ModelInfo::read(&dir)?;
            Runtime::start(&label, info, instances as usize, batching).map(|r| r.versioned(number))
        })
        .await
        .map_err(|e| format!("loading crashed: {e}"))
        .and_then(|r| r);
        let candidate = match loaded {
            Ok(runtime) => Arc::new(runtime),
            Err(e) => {
                let why = ApiError::Unprocessable(format!(
                    "{what} cannot be served, so no traffic moved (version {} serves all of it): {e}",
                    live.version
                ));
                return refused(why, &before, &after).await;
            }
        };
        if let Some(change) = class_change(&live_runtime.info.metadata.classes, &candidate.info.metadata.classes) {
            if !spec.accept_class_change {
                let why = ApiError::Conflict(format!(
                    "{what} has other classes than the live version: {change}. A client that reads class indices would get other answers; \
                     confirm the class change to roll it out anyway"
                ));
                return refused(why, &before, &after).await;
            }
        }
        let (actor, started) = (journal::current().map(|p| p.name).unwrap_or_else(|| "system".into()), now());
        let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
        if reused.is_none() {
            insert_version(&mut tx, &name, &next, &started, &actor, None).await.map_err(db)?;
        } else {
            // An earlier version with other replicas or batching: what it serves with now.
            sqlx::query("UPDATE endpoint_versions SET instances = ?, max_batch = ?, max_wait_ms = ?, queue_capacity = ? WHERE endpoint = ? AND version = ?")
                .bind(i64::from(instances))
                .bind(i64::from(batching.max_batch))
                .bind(i64::from(batching.max_wait_ms))
                .bind(i64::from(batching.queue_capacity))
                .bind(&name)
                .bind(i64::from(number))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO endpoint_rollouts (endpoint, from_version, to_version, spec, state, started_by, started_at)
             VALUES (?, ?, ?, ?, 'running', ?, ?) RETURNING id",
        )
        .bind(&name)
        .bind(i64::from(live.version))
        .bind(i64::from(number))
        .bind(serde_json::to_string(&spec).unwrap_or_default())
        .bind(&actor)
        .bind(&started)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let rollout = Arc::new(LiveRollout::new(id, spec.clone(), live.version, next, candidate, actor));
        self.rollouts.write().expect("rollouts").insert(name.clone(), rollout.clone());
        self.record("endpoint.local.rollout", &name, Some(before), Some(format!("rollout #{id}: {after}")), &Ok(())).await;
        if let Some(hub) = self.me.upgrade() {
            use tracing::Instrument;
            let span = tracing::info_span!("rollout", endpoint = %name, rollout = id);
            tokio::spawn(drive(hub, rollout, journal::current()).instrument(span));
        }
        drop(_one_at_a_time);
        self.versions_view(&name).await
    }

    /// Where a proposed version's model is: (the earlier version it is, the
    /// local job, the SageMaker job, the artifact folder).
    async fn resolve_source(
        &self,
        name: &str,
        source: &app::endpoints::rollout::VersionSource,
    ) -> Result<(Option<u32>, i64, Option<String>, std::path::PathBuf), ApiError> {
        use app::endpoints::rollout::VersionSource;
        Ok(match source {
            VersionSource::LocalJob { job_id } => (None, *job_id, None, self.local_artifact(*job_id).await?),
            VersionSource::SageMakerJob { name: job } => (None, 0, Some(job.clone()), self.sagemaker.import_model(job, &self.imports).await?),
            VersionSource::Version { version } => {
                let earlier = self.version_row(name, *version).await?;
                (Some(*version), earlier.job_id, earlier.sagemaker_job, std::path::PathBuf::from(earlier.artifact_dir))
            }
        })
    }

    /// Sends a labelled folder through the live version and a proposed one
    /// (loaded on one replica beside it, reached by nothing else), four
    /// images at a time, and compares their accuracy, answers and latency.
    pub async fn shadow(
        &self,
        name: &str,
        source: app::endpoints::rollout::VersionSource,
        folder: &str,
        limit: u32,
    ) -> Result<app::endpoints::rollout::ShadowReport, ApiError> {
        use app::endpoints::rollout::{ShadowDisagreement, ShadowReport, ShadowSide};
        use futures_util::StreamExt;
        let started = Instant::now();
        let live = self.runtime(name).ok_or_else(|| ApiError::NotFound(format!("there is no running local endpoint named {name:?}")))?;
        let (_, _, _, artifact_dir) = self.resolve_source(name, &source).await?;
        let shadow_name = format!("{name}-shadow");
        let (label, batching) = (shadow_name.clone(), live.batching);
        let proposed = tokio::task::spawn_blocking(move || Runtime::start(&label, ModelInfo::read(&artifact_dir)?, 1, batching))
            .await
            .map_err(|e| ApiError::Internal(format!("loading crashed: {e}")))?
            .map_err(|e| ApiError::Unprocessable(format!("{} cannot be served: {e}", source.describe())))?;
        let path = self.roots.resolve(folder, "folder")?;
        let labelled = tokio::task::spawn_blocking(move || super::evaluation::scan(&path, limit as usize))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
        // Each version's class i is which of the folder's classes (by folder name, else class name).
        let folder_index = |r: &Runtime| -> Vec<Option<usize>> {
            let m = &r.info.metadata;
            let names = if m.class_folders.len() == m.classes.len() { &m.class_folders } else { &m.classes };
            names.iter().map(|c| labelled.classes.iter().position(|f| f == c)).collect()
        };
        let (live_index, proposed_index) = (folder_index(&live), folder_index(&proposed));
        if live_index.iter().chain(&proposed_index).all(Option::is_none) {
            return Err(ApiError::Invalid(format!("none of the folder's classes ({}) is one of the endpoint's", labelled.classes.join(", "))));
        }
        let roots = self.roots.paths().to_vec();
        let (live_ref, proposed_ref, roots, shadow_ref) = (&*live, &proposed, &roots, shadow_name.as_str());
        let answers: Vec<(String, usize, Option<(usize, f64)>, Option<(usize, f64)>)> = futures_util::stream::iter(labelled.images.iter().cloned())
            .map(|(path, truth)| async move {
                let (file, allowed) = (path.clone(), roots.clone());
                let bytes = tokio::task::spawn_blocking(move || crate::images::read_regular_file(&file, crate::body::MAX_PAYLOAD as u64, &allowed))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let Ok(bytes) = bytes else { return (path.display().to_string(), truth, None, None) };
                let bytes = axum::body::Bytes::from(bytes);
                let mut got = Vec::new();
                for (runtime, label) in [(live_ref, name), (proposed_ref, shadow_ref)] {
                    let t = Instant::now();
                    let answer = self.run_local(label, runtime, bytes.clone()).await.ok();
                    got.push(answer.and_then(|a| app::endpoints::top_k(&a.logits, &[], 1).first().map(|b| (b.index, t.elapsed().as_secs_f64() * 1000.0))));
                }
                (path.display().to_string(), truth, got[0], got[1])
            })
            .buffered(4)
            .collect()
            .await;
        let side = |label: String, index: &[Option<usize>], pick: &dyn Fn(&(String, usize, Option<(usize, f64)>, Option<(usize, f64)>)) -> Option<(usize, f64)>| {
            let ms: Vec<f64> = answers.iter().filter_map(|a| pick(a).map(|p| p.1)).collect();
            ShadowSide {
                label,
                judged: ms.len() as u32,
                correct: answers.iter().filter(|a| pick(a).is_some_and(|(i, _)| index.get(i).copied().flatten() == Some(a.1))).count() as u32,
                failed: answers.iter().filter(|a| pick(a).is_none()).count() as u32,
                p50_ms: quantile(&ms, 0.5),
                p99_ms: quantile(&ms, 0.99),
            }
        };
        let class_name = |r: &Runtime, i: usize| r.info.metadata.classes.get(i).cloned().unwrap_or_else(|| format!("class {i}"));
        let both: Vec<_> = answers.iter().filter_map(|a| Some((a, a.2?.0, a.3?.0))).collect();
        let agreed = both.iter().filter(|(_, l, p)| class_name(&live, *l) == class_name(&proposed, *p)).count() as u32;
        let disagreements = both
            .iter()
            .filter(|(_, l, p)| class_name(&live, *l) != class_name(&proposed, *p))
            .take(12)
            .map(|(a, l, p)| ShadowDisagreement {
                path: a.0.clone(),
                truth: labelled.classes.get(a.1).cloned().unwrap_or_default(),
                live: class_name(&live, *l),
                proposed: class_name(&proposed, *p),
            })
            .collect();
        Ok(ShadowReport {
            images: answers.len() as u32,
            live: side(format!("version {} (live)", live.version), &live_index, &|a| a.2),
            proposed: side(format!("{} (proposed)", source.describe()), &proposed_index, &|a| a.3),
            compared: both.len() as u32,
            agreed,
            disagreements,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Asks the running rollout of `name` to send everything back to the
    /// live version, and waits (a few seconds at most) until it has.
    pub async fn end_rollout(&self, name: &str) -> Result<app::endpoints::rollout::VersionsView, ApiError> {
        self.row(name).await?;
        let running = self.rollouts.read().expect("rollouts").get(name).cloned();
        let Some(rollout) = running else {
            return Err(ApiError::Conflict(format!(
                "no rollout is running on {name}; to go back to an earlier version, roll that version out (its row has the button)"
            )));
        };
        rollout.ask_back(&journal::current().map(|p| p.name).unwrap_or_else(|| "system".into()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.rollouts.read().expect("rollouts").get(name).is_some_and(|r| r.id == rollout.id) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.versions_view(name).await
    }

    /// Whether a rollout runs on `name` (a delete waits for it to end).
    pub fn rollout_running(&self, name: &str) -> Option<(i64, u32)> {
        self.rollouts.read().expect("rollouts").get(name).map(|r| (r.id, r.next.version))
    }
}

use super::serving::ModelInfo;
