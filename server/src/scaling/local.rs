//! Auto-scaling of local endpoints: the policy in SQLite and one task per
//! endpoint with a policy. Each datapoint the task takes the invocations the
//! endpoint counted, turns them into invocations per replica per minute, asks
//! the same [`TargetTracker`] the simulator uses, and adds or stops real
//! replicas. What it did is kept as activities.

use crate::endpoints::serving::Runtime;
use crate::endpoints::EndpointHub;
use app::scaling::{ScalingActivity, ScalingPolicy, TargetTracker};
use app::ApiError;
use sqlx::SqlitePool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub struct LocalScaler {
    pool: SqlitePool,
    endpoints: Arc<EndpointHub>,
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("scaling store")(e)
}

use crate::store::now;

impl LocalScaler {
    /// Starts the policies stored for running endpoints.
    pub async fn start(pool: SqlitePool, endpoints: Arc<EndpointHub>) -> Arc<Self> {
        let scaler = Arc::new(LocalScaler { pool, endpoints, tasks: Mutex::new(HashMap::new()) });
        match scaler.all().await {
            Ok(policies) => {
                for (name, policy) in policies {
                    scaler.spawn(&name, policy);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the local scaling policies"),
        }
        scaler
    }

    pub async fn all(&self) -> Result<Vec<(String, ScalingPolicy)>, ApiError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT endpoint, policy FROM local_scaling_policies")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, json)| match serde_json::from_str(&json) {
                Ok(p) => Some((name, p)),
                Err(e) => {
                    tracing::error!(endpoint = %name, error = %e, "a stored scaling policy cannot be read; it is ignored");
                    None
                }
            })
            .collect())
    }

    pub async fn policy(&self, endpoint: &str) -> Result<Option<ScalingPolicy>, ApiError> {
        let json: Option<String> = sqlx::query_scalar("SELECT policy FROM local_scaling_policies WHERE endpoint = ?")
            .bind(endpoint)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| ApiError::Internal(format!("stored policy: {e}")))).transpose()
    }

    /// Stores the policy, brings the replica count within min and max at
    /// once, and (re)starts the tracking task.
    pub async fn put(self: &Arc<Self>, endpoint: &str, policy: &ScalingPolicy) -> Result<(), ApiError> {
        let runtime = self.endpoints.runtime(endpoint).ok_or_else(|| {
            ApiError::Conflict(format!("local endpoint {endpoint:?} is not serving, so it cannot scale"))
        })?;
        let json = serde_json::to_string(policy).map_err(|e| ApiError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO local_scaling_policies (endpoint, policy, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (endpoint) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
        )
        .bind(endpoint)
        .bind(&json)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let n = runtime.instances() as u32;
        let bounded = n.clamp(policy.min_instances, policy.max_instances);
        if bounded != n {
            self.apply(endpoint, bounded, &format!("the policy's min {} / max {}", policy.min_instances, policy.max_instances))
                .await;
        }
        self.spawn(endpoint, policy.clone());
        Ok(())
    }

    /// Removes the policy; the replicas stay as they are.
    pub async fn remove(&self, endpoint: &str) -> Result<(), ApiError> {
        if let Some(task) = self.tasks.lock().expect("tasks").remove(endpoint) {
            task.abort();
        }
        sqlx::query("DELETE FROM local_scaling_policies WHERE endpoint = ?")
            .bind(endpoint)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub async fn activities(&self, endpoint: &str, limit: u32) -> Result<Vec<ScalingActivity>, ApiError> {
        let rows: Vec<(String, i64, i64, String, String)> = sqlx::query_as(
            "SELECT at, from_instances, to_instances, status, cause FROM local_scaling_activities
             WHERE endpoint = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(endpoint)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(at, from, to, status, cause)| ScalingActivity { at, from: Some(from as u32), to: Some(to as u32), status, cause })
            .collect())
    }

    /// Scales and records the activity, successful or not.
    async fn apply(&self, endpoint: &str, to: u32, cause: &str) -> bool {
        let result = self.endpoints.scale_local(endpoint, to).await;
        let (from, status, cause) = match &result {
            Ok(from) => (*from, "Successful", cause.to_string()),
            Err(e) => (self.endpoints.runtime(endpoint).map(|r| r.instances() as u32).unwrap_or(0), "Failed", format!("{cause}: {}", e.message())),
        };
        tracing::info!(endpoint, from, to, status, %cause, "local auto-scaling");
        let stored = sqlx::query(
            "INSERT INTO local_scaling_activities (endpoint, at, from_instances, to_instances, status, cause) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(endpoint)
        .bind(now())
        .bind(i64::from(from))
        .bind(i64::from(to))
        .bind(status)
        .bind(&cause)
        .execute(&self.pool)
        .await;
        if let Err(e) = stored {
            tracing::error!(error = %e, "cannot record a scaling activity");
        }
        result.is_ok()
    }

    fn spawn(self: &Arc<Self>, endpoint: &str, policy: ScalingPolicy) {
        let Some(runtime) = self.endpoints.runtime(endpoint) else {
            tracing::warn!(endpoint, "a scaling policy is stored for an endpoint that is not serving; it waits until the policy is put again");
            return;
        };
        let scaler = Arc::downgrade(self);
        let name = endpoint.to_string();
        let span = tracing::info_span!("local_scaling", endpoint = %name);
        let task = tokio::spawn(tracing::Instrument::instrument(track(scaler, name.clone(), Arc::downgrade(&runtime), policy), span));
        if let Some(old) = self.tasks.lock().expect("tasks").insert(name, task) {
            old.abort();
        }
    }
}

/// One endpoint's target tracking, until its runtime is gone (deleted, or
/// replaced by a new endpoint of the same name) or the policy changes.
async fn track(scaler: Weak<LocalScaler>, name: String, runtime: Weak<Runtime>, policy: ScalingPolicy) {
    let period = Duration::from_secs(u64::from(policy.datapoint_seconds.max(1)));
    let mut tracker = TargetTracker::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    if let Some(s) = scaler.upgrade() {
        // Count from now: older invocations belong to no datapoint.
        s.endpoints.take_invocations(&name);
    }
    loop {
        tick.tick().await;
        let Some(scaler) = scaler.upgrade() else { return };
        let current = scaler.endpoints.runtime(&name);
        let same = matches!((&current, runtime.upgrade()), (Some(a), Some(b)) if Arc::ptr_eq(a, &b));
        if !same {
            tracing::info!(endpoint = %name, "the endpoint is gone; its auto-scaling stops");
            return;
        }
        let Some(current) = current else { return };
        let count = scaler.endpoints.take_invocations(&name);
        let n = current.instances() as u32;
        let per_minute = count as f64 * 60.0 / period.as_secs_f64();
        let load = per_minute / f64::from(n.max(1));
        tracing::debug!(endpoint = %name, count, n, load, "scaling datapoint");
        if let Some(decision) = tracker.observe(&policy, started.elapsed().as_secs_f64(), n, load) {
            scaler.apply(&name, decision.to, &decision.reason).await;
        }
    }
}
