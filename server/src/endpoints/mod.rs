//! Endpoints: local ones served in-process from a training artifact, and
//! SageMaker's. [`EndpointHub`] implements the pages' service and owns the
//! running local endpoints that the invoke route reaches.

pub mod bench;
pub mod cache;
pub mod describe;
pub mod guardrails;
pub mod invoke;
pub mod metrics;
pub mod rollout;
pub mod sagemaker;
pub mod serving;
pub mod evaluation;

use crate::aws::Aws;
use crate::journal::{Change, Journal};
use crate::training::jobs::JobStore;
use crate::training::trainer::Paths;
use app::names::EndpointName;
use app::endpoints::{
    list::{self, EndpointPage, EndpointQuery},
    Backend, Batching, DeployableJob, EndpointDetail, EndpointMetrics, EndpointService, EndpointSummary,
    LocalDeploySpec, MetricWindow, SageMakerDeploySpec, TestBenchReport,
};
use app::training::JobStatus;
use app::ApiError;
use axum::body::Bytes;
use invoke::UrlFetcher;
use metrics::{Metrics, Outcome};
use serving::{ModelInfo, Prepared, Runtime};
use sqlx::SqlitePool;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The memory all image decodes together may use (a 16,384² RGB image takes
/// 768 MB for its pixels and as much for its RGB copy, so one such image at a
/// time; ordinary photos hundreds at once).
pub const DECODE_BUDGET_MIB: u32 = 1536;
/// The longest one decode may take before its request is answered.
pub const DECODE_TIME: Duration = Duration::from_secs(10);

pub struct EndpointHub {
    /// Itself, for the rollouts it drives in the background.
    me: std::sync::Weak<EndpointHub>,
    pool: SqlitePool,
    journal: Journal,
    jobs: JobStore,
    pub metrics: Arc<Metrics>,
    pub sagemaker: sagemaker::SageMakerEndpoints,
    pub fetcher: UrlFetcher,
    /// Where test-bench folders may be read from.
    pub roots: crate::paths::ReadableRoots,
    /// Where SageMaker jobs' models are unpacked for local endpoints.
    imports: std::path::PathBuf,
    /// The live version of each local endpoint.
    runtimes: RwLock<HashMap<String, Arc<Runtime>>>,
    /// Rollouts in progress: the next version, beside the live one.
    rollouts: RwLock<HashMap<String, Arc<rollout::LiveRollout>>>,
    /// One rollout starts at a time (each checks that none runs).
    rollout_gate: tokio::sync::Mutex<()>,
    /// The account's SageMaker endpoint alarms as last read (endpoint,
    /// alarm), kept 20 s: DescribeAlarms pages through every alarm in the
    /// account, and an endpoint's page asks every few seconds while it deploys.
    alarm_memo: std::sync::Mutex<Option<(Instant, Vec<(String, app::endpoints::guardrails::EndpointAlarm)>)>>,
    /// Decoding is CPU-bound: at most this many decode at once...
    decoding: Semaphore,
    /// ...and together they may use at most this much memory.
    pub budget: crate::images::DecodeBudget,
    /// Invocations per local endpoint since auto-scaling last looked: the
    /// datapoint its target tracking reads.
    demand: std::sync::Mutex<HashMap<String, u64>>,
}

/// What a local endpoint answered for one image.
pub struct LocalAnswer {
    pub logits: Vec<f32>,
    /// Decode, resize and forward: the model container's share.
    pub model: Duration,
    pub batch_size: u32,
    pub image: app::endpoints::ImageFacts,
}

struct LocalRow {
    name: String,
    /// The version serving all traffic.
    version: u32,
    /// The local job served; 0 when `sagemaker_job` is.
    job_id: i64,
    sagemaker_job: Option<String>,
    artifact_dir: String,
    instances: u32,
    batching: Batching,
    status: String,
    message: Option<String>,
    created_at: String,
}

crate::store::sqlite_row! {
    /// The batching columns of a `local_endpoints` or `endpoint_versions` row.
    pub(super) struct StoredBatching {
        max_batch: u32,
        max_wait_ms: u32,
        queue_capacity: u32,
    }
}

impl From<StoredBatching> for Batching {
    fn from(b: StoredBatching) -> Self {
        Batching { max_batch: b.max_batch, max_wait_ms: b.max_wait_ms, queue_capacity: b.queue_capacity }
    }
}

/// A `local_endpoints` row, decoded by type: a column that does not match
/// is an error the page is told, not a panic.
impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for LocalRow {
    fn from_row(r: &'r sqlx::sqlite::SqliteRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        Ok(LocalRow {
            name: r.try_get("name")?,
            version: r.try_get("version")?,
            job_id: r.try_get("job_id")?,
            sagemaker_job: r.try_get("sagemaker_job")?,
            artifact_dir: r.try_get("artifact_dir")?,
            instances: r.try_get("instances")?,
            batching: StoredBatching::from_row(r)?.into(),
            status: r.try_get("status")?,
            message: r.try_get("message")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("endpoint store")(e)
}

use crate::store::now;

impl EndpointHub {
    /// Opens the hub and starts every local endpoint stored as InService.
    pub async fn start(
        pool: SqlitePool,
        journal: Journal,
        jobs: JobStore,
        aws: Arc<Aws>,
        fetcher: UrlFetcher,
        roots: crate::paths::ReadableRoots,
        imports: std::path::PathBuf,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new(pool.clone()));
        metrics.spawn_flusher(Duration::from_secs(5));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let hub = Arc::new_cyclic(|me| EndpointHub {
            me: me.clone(),
            sagemaker: sagemaker::SageMakerEndpoints::new(aws, journal.clone(), pool.clone()),
            pool,
            journal,
            jobs,
            metrics,
            fetcher,
            roots,
            imports,
            runtimes: RwLock::new(HashMap::new()),
            rollouts: RwLock::new(HashMap::new()),
            rollout_gate: tokio::sync::Mutex::new(()),
            alarm_memo: std::sync::Mutex::new(None),
            decoding: Semaphore::new(threads * 2),
            budget: crate::images::DecodeBudget::new(DECODE_BUDGET_MIB, Duration::from_secs(10)),
            demand: std::sync::Mutex::new(HashMap::new()),
        });
        if let Err(e) = rollout::settle_interrupted(&hub).await {
            tracing::error!(error = %e, "cannot settle the rollouts a stop interrupted");
        }
        hub.follow_open_sagemaker_rollouts().await;
        match hub.rows().await {
            Ok(rows) => {
                for row in rows.into_iter().filter(|r| r.status == "InService") {
                    let name = row.name.clone();
                    match hub.launch(&row).await {
                        Ok(()) => tracing::info!(endpoint = %name, instances = row.instances, "local endpoint started again"),
                        Err(e) => {
                            tracing::error!(endpoint = %name, error = %e, "a stored local endpoint could not start");
                            let _ = hub.set_failed(&name, &e).await;
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the stored local endpoints"),
        }
        hub
    }

    /// Why a stored local endpoint is not serving (its start failed), or
    /// `None` when there is no such endpoint.
    pub async fn not_serving(&self, name: &str) -> Option<String> {
        let row = self.row(name).await.ok()?;
        Some(row.message.unwrap_or_else(|| format!("it is {}", row.status)))
    }

    pub fn runtime(&self, name: &str) -> Option<Arc<Runtime>> {
        self.runtimes.read().expect("runtimes").get(name).cloned()
    }

    /// Decodes and prepares an upload off the async threads, bounded: the
    /// header is planned first (bombs and floods refused unread), the plan's
    /// memory reserved from the shared budget (held until the decode really
    /// ends, even if the caller went away: a caller that leaves while waiting
    /// for room decodes nothing), and a decode that runs past DECODE_TIME is
    /// answered as refused.
    pub async fn prepare(&self, bytes: Bytes, size: usize) -> Result<Prepared, ApiError> {
        let plan = crate::images::plan(&bytes).map_err(ApiError::Unprocessable)?;
        let _cpu = self.decoding.acquire().await.map_err(|_| ApiError::Internal("the decoder is shut down".into()))?;
        let memory = self.budget.reserve(&plan).await?;
        let decode = tokio::task::spawn_blocking(move || {
            let prepared = serving::prepare_planned(&bytes, &plan, size);
            drop(memory);
            prepared
        });
        match tokio::time::timeout(DECODE_TIME, decode).await {
            Ok(joined) => joined.map_err(|e| ApiError::Internal(format!("the decoder crashed: {e}")))?.map_err(ApiError::Unprocessable),
            Err(_) => Err(ApiError::Unprocessable(format!("decoding this image took over {} s; it is refused", DECODE_TIME.as_secs()))),
        }
    }

    /// One image through a local endpoint: decoded (bounded), queued, batched
    /// with what else is waiting, forwarded.
    pub async fn run_local(&self, name: &str, runtime: &Runtime, bytes: Bytes) -> Result<LocalAnswer, ApiError> {
        let prepared = self.prepare(bytes, runtime.info.size()).await?;
        self.score(name, runtime, prepared).await
    }

    /// A prepared image through `runtime`'s queue and replicas.
    pub async fn score(&self, name: &str, runtime: &Runtime, prepared: Prepared) -> Result<LocalAnswer, ApiError> {
        let answer = runtime.submit(prepared.pixels).map_err(|refused| match refused {
            serving::Refused::QueueFull { capacity } => ApiError::Throttled(format!(
                "endpoint {name} is at capacity ({capacity} requests already queued); retry after a moment"
            )),
            serving::Refused::Stopped => ApiError::Conflict(format!("endpoint {name} is being deleted")),
        })?;
        let scored = answer
            .await
            .map_err(|_| ApiError::Internal(format!("endpoint {name} stopped before answering")))?
            .map_err(|e| ApiError::Internal(format!("the model failed on this request: {e}")))?;
        Ok(LocalAnswer {
            logits: scored.logits,
            model: prepared.took + scored.forward,
            batch_size: scored.batch_size,
            image: prepared.facts,
        })
    }

    /// Counts one request in the endpoint's metrics; `total` is the whole
    /// time the request took, so overhead = total − model.
    pub fn record_outcome(&self, name: &str, instances: usize, total: Duration, result: Result<&LocalAnswer, &ApiError>) {
        let outcome = match result {
            Ok(a) => Outcome::Ok { model: a.model, overhead: total.saturating_sub(a.model), batch_size: a.batch_size },
            Err(e) if e.status() >= 500 => Outcome::ServerError,
            Err(_) => Outcome::ClientError,
        };
        self.metrics.record(name, instances, outcome);
        *self.demand.lock().expect("demand").entry(name.to_string()).or_insert(0) += 1;
    }

    /// Invocations of a local endpoint since the last call (every outcome
    /// counts, throttled ones included: they are demand the replicas missed).
    pub fn take_invocations(&self, name: &str) -> u64 {
        self.demand.lock().expect("demand").remove(name).unwrap_or(0)
    }

    /// Changes a local endpoint's replica count and stores it, so a restart
    /// comes back at the scaled size. Returns the count before.
    pub async fn scale_local(&self, name: &str, instances: u32) -> Result<u32, ApiError> {
        let runtime = self.runtime(name).ok_or_else(|| ApiError::NotFound(format!("there is no running local endpoint named {name:?}")))?;
        let before = runtime.instances() as u32;
        if before != instances {
            let scaled = runtime.clone();
            tokio::task::spawn_blocking(move || scaled.scale_to(instances as usize))
                .await
                .map_err(|e| ApiError::Internal(format!("scaling crashed: {e}")))?
                .map_err(|e| ApiError::Conflict(format!("cannot start another replica: {e}")))?;
        }
        sqlx::query("UPDATE local_endpoints SET instances = ?, updated_at = ? WHERE name = ?")
            .bind(i64::from(instances))
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(before)
    }

    /// Local endpoints as (name, status, replicas now).
    pub async fn local_endpoints(&self) -> Result<Vec<(String, String, u32)>, ApiError> {
        Ok(self
            .rows()
            .await?
            .into_iter()
            .map(|r| {
                let n = self.runtime(&r.name).map(|rt| rt.instances() as u32).unwrap_or(r.instances);
                (r.name, r.status, n)
            })
            .collect())
    }

    /// Serves an artifact without storing it (the benchmark).
    pub async fn serve_unrecorded(&self, name: &str, info: ModelInfo, instances: usize, batching: Batching) -> Result<(), String> {
        let owned = name.to_string();
        let runtime = tokio::task::spawn_blocking(move || Runtime::start(&owned, info, instances, batching))
            .await
            .map_err(|e| format!("loading the model crashed: {e}"))??;
        self.runtimes.write().expect("runtimes").insert(name.to_string(), Arc::new(runtime));
        Ok(())
    }

    async fn rows(&self) -> Result<Vec<LocalRow>, ApiError> {
        self.select_rows(None).await
    }

    async fn row(&self, name: &str) -> Result<LocalRow, ApiError> {
        self.select_rows(Some(name))
            .await?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("there is no local endpoint named {name:?}")))
    }

    async fn select_rows(&self, name: Option<&str>) -> Result<Vec<LocalRow>, ApiError> {
        let rows: Vec<LocalRow> = sqlx::query_as(
            "SELECT name, version, job_id, sagemaker_job, artifact_dir, instances, max_batch, max_wait_ms, queue_capacity, status, message, created_at
             FROM local_endpoints WHERE ?1 IS NULL OR name = ?1 ORDER BY created_at DESC",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows)
    }

    /// A new endpoint's row and its version 1, stored together.
    async fn store_new_endpoint(&self, row: &LocalRow) -> Result<(), sqlx::Error> {
        let mut tx = crate::store::write_tx(&self.pool).await?;
        sqlx::query(
            "INSERT INTO local_endpoints (name, version, job_id, sagemaker_job, artifact_dir, instances, max_batch, max_wait_ms, queue_capacity, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'InService', ?, ?)",
        )
        .bind(&row.name)
        .bind(i64::from(row.version))
        .bind(row.job_id)
        .bind(&row.sagemaker_job)
        .bind(&row.artifact_dir)
        .bind(i64::from(row.instances))
        .bind(i64::from(row.batching.max_batch))
        .bind(i64::from(row.batching.max_wait_ms))
        .bind(i64::from(row.batching.queue_capacity))
        .bind(&row.created_at)
        .bind(&row.created_at)
        .execute(&mut *tx)
        .await?;
        // A name used before starts its history again.
        sqlx::query("DELETE FROM endpoint_versions WHERE endpoint = ?").bind(&row.name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM endpoint_rollouts WHERE endpoint = ?").bind(&row.name).execute(&mut *tx).await?;
        let first = rollout::VersionRow {
            version: row.version,
            job_id: row.job_id,
            sagemaker_job: row.sagemaker_job.clone(),
            artifact_dir: row.artifact_dir.clone(),
            instances: row.instances,
            batching: row.batching,
        };
        let by = crate::journal::current().map(|p| p.name).unwrap_or_else(|| "system".into());
        rollout::insert_version(&mut tx, &row.name, &first, &row.created_at, &by, Some(&row.created_at)).await?;
        tx.commit().await
    }

    /// What a local endpoint serves, in words.
    fn describe_source(&self, row: &LocalRow) -> String {
        row.sagemaker_job.clone().map(|j| format!("SageMaker job {j}")).unwrap_or_else(|| format!("job #{}", row.job_id))
    }

    /// Removes a local endpoint's row, versions and rollouts.
    async fn forget(&self, name: &str) -> Result<(), sqlx::Error> {
        let mut tx = crate::store::write_tx(&self.pool).await?;
        for table in ["DELETE FROM local_endpoints WHERE name = ?", "DELETE FROM endpoint_versions WHERE endpoint = ?", "DELETE FROM endpoint_rollouts WHERE endpoint = ?"] {
            sqlx::query(table).bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    async fn set_failed(&self, name: &str, why: &str) -> Result<(), ApiError> {
        sqlx::query("UPDATE local_endpoints SET status = 'Failed', message = ?, updated_at = ? WHERE name = ?")
            .bind(why)
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Loads the weights into `instances` replicas and makes the endpoint reachable.
    async fn launch(&self, row: &LocalRow) -> Result<(), String> {
        let dir = std::path::PathBuf::from(&row.artifact_dir);
        let (name, instances, batching, version) = (row.name.clone(), row.instances as usize, row.batching, row.version);
        let runtime = tokio::task::spawn_blocking(move || {
            let info = ModelInfo::read(&dir)?;
            Runtime::start(&name, info, instances, batching).map(|r| r.versioned(version))
        })
        .await
        .map_err(|e| format!("loading the model crashed: {e}"))??;
        self.runtimes.write().expect("runtimes").insert(row.name.clone(), Arc::new(runtime));
        Ok(())
    }

    fn local_detail(&self, row: &LocalRow) -> EndpointDetail {
        let runtime = self.runtime(&row.name);
        let info = runtime.as_ref().map(|r| r.info.clone());
        let device = info.as_ref().map(|i| crate::training::trainer::device_name(i.device));
        EndpointDetail {
            summary: EndpointSummary {
                name: row.name.clone(),
                backend: Backend::Local,
                status: row.status.clone(),
                instances: runtime.as_ref().map(|r| r.instances() as u32).unwrap_or(row.instances),
                instance_type: format!("local ({})", device.clone().unwrap_or_else(|| "not loaded".into())),
                model: match &row.sagemaker_job {
                    Some(job) => format!("SageMaker job {job}"),
                    None => format!("local job #{}", row.job_id),
                },
                created_at: Some(row.created_at.clone()),
            },
            arn: None,
            config_name: None,
            variants: Vec::new(),
            failure_reason: row.message.clone(),
            classes: info.as_ref().map(|i| i.metadata.classes.clone()).unwrap_or_default(),
            batching: Some(row.batching),
            artifact_dir: Some(row.artifact_dir.clone()),
            job_id: row.sagemaker_job.is_none().then_some(row.job_id),
            input_size: info.as_ref().map(|i| i.metadata.input_size),
            device,
            queued: runtime.map(|r| r.queued() as u32),
            invoke_path: Backend::Local.invoke_path(&row.name),
        }
    }

    async fn record(&self, action: &str, target: &str, before: Option<String>, after: Option<String>, outcome: &Result<(), ApiError>) {
        self.journal
            .record(Change {
                backend: "local",
                action,
                target,
                before,
                after,
                outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
    }

    /// A completed local job's artifact folder.
    async fn local_artifact(&self, job_id: i64) -> Result<std::path::PathBuf, ApiError> {
        let job = self.jobs.get(job_id).await?;
        if job.status != JobStatus::Completed {
            return Err(ApiError::Conflict(format!("local job #{job_id} is {}: only a completed job has an artifact to deploy", job.status)));
        }
        Ok(Paths::new(Path::new(&job.work_dir)).artifact)
    }

    async fn deploy_local_inner(&self, spec: &LocalDeploySpec) -> Result<(), ApiError> {
        if self.row(&spec.name).await.is_ok() {
            return Err(ApiError::Conflict(format!("a local endpoint named {} already exists: delete it first or pick another name", spec.name)));
        }
        let (job_id, artifact) = match &spec.sagemaker_job {
            Some(job) => (0, self.sagemaker.import_model(job, &self.imports).await?),
            None => (spec.job_id, self.local_artifact(spec.job_id).await?),
        };
        let row = LocalRow {
            name: spec.name.clone(),
            version: 1,
            job_id,
            sagemaker_job: spec.sagemaker_job.clone(),
            artifact_dir: artifact.display().to_string(),
            instances: spec.instances,
            batching: spec.batching,
            status: "InService".into(),
            message: None,
            created_at: now(),
        };
        let what = match &spec.sagemaker_job {
            Some(job) => format!("the model of SageMaker job {job}"),
            None => format!("the artifact of job #{}", spec.job_id),
        };
        self.launch(&row).await.map_err(|e| ApiError::Conflict(format!("{what} cannot be served: {e}")))?;
        let stored = self.store_new_endpoint(&row).await;
        if let Err(e) = stored {
            // Not stored means it would not come back after a restart: take
            // it down rather than serve something the console forgets.
            self.runtimes.write().expect("runtimes").remove(&row.name);
            return Err(if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                ApiError::Conflict(format!("a local endpoint named {} already exists", row.name))
            } else {
                db(e)
            });
        }
        Ok(())
    }
}

/// The endpoint's mean latencies over the last hour (else the last day)
/// from its own metrics (CloudWatch for SageMaker, Sagedeck's counts
/// locally), with where they come from; `None` before any invocation.
pub async fn measured_latency(
    hub: &EndpointHub,
    backend: Backend,
    endpoint: &EndpointName,
) -> Option<(app::endpoints::latency::MeasuredLatency, String)> {
    for window in [MetricWindow::Hour, MetricWindow::Day] {
        match hub.metrics(backend, endpoint, window).await {
            Ok(m) => {
                if let Some(found) = app::endpoints::latency::measured_latency(&m.series) {
                    return Some((found, m.source));
                }
            }
            Err(e) => {
                tracing::debug!(%endpoint, error = %e.message(), "no metrics to measure the endpoint's latency");
                return None;
            }
        }
    }
    None
}

#[async_trait::async_trait]
impl EndpointService for EndpointHub {
    async fn list(&self, query: EndpointQuery) -> Result<EndpointPage, ApiError> {
        let aws_note = self.sagemaker.aws_note();
        let with_sagemaker = aws_note.is_none();
        if with_sagemaker && query.wants(Backend::SageMaker) {
            self.sagemaker.cache.first_listing().await;
        }
        let (rows, totals) =
            tokio::try_join!(cache::page_rows(&self.pool, &query, with_sagemaker, list::PAGE_SIZE), cache::totals(&self.pool, &query, with_sagemaker))?;
        // Local rows: what the runtime says now (replicas, device, model).
        let mut filled = Vec::with_capacity(rows.len());
        for row in rows {
            filled.push(match row.backend {
                Backend::Local => match self.row(&row.name).await {
                    Ok(local) => EndpointSummary { created_at: row.created_at, ..self.local_detail(&local).summary },
                    Err(_) => row,
                },
                Backend::SageMaker => row,
            });
        }
        let cache_state = with_sagemaker.then(|| self.sagemaker.cache.state());
        let note = aws_note.or_else(|| cache_state.as_ref().and_then(|c| c.error.clone().map(|e| format!("the last look failed ({e}); showing what was read before"))));
        Ok(cache::page(filled, &query, totals, cache_state, note))
    }

    async fn refresh(&self) -> Result<(), ApiError> {
        if let Some(note) = self.sagemaker.aws_note() {
            return Err(ApiError::NotConfigured(note));
        }
        self.sagemaker.cache.refresh_now().await;
        match self.sagemaker.cache.state().error {
            Some(e) => Err(ApiError::Upstream(e)),
            None => Ok(()),
        }
    }

    async fn describe(&self, backend: Backend, name: &EndpointName) -> Result<EndpointDetail, ApiError> {
        match backend {
            Backend::Local => Ok(self.local_detail(&self.row(name).await?)),
            Backend::SageMaker => self.sagemaker.describe(name).await,
        }
    }

    async fn metrics(&self, backend: Backend, name: &EndpointName, window: MetricWindow) -> Result<EndpointMetrics, ApiError> {
        match backend {
            Backend::Local => {
                self.row(name).await?;
                Ok(EndpointMetrics {
                    window,
                    period_seconds: window.period_seconds(),
                    series: self.metrics.series(name, window).await?,
                    source: "Recorded by Sagedeck per minute (kept in SQLite)".into(),
                })
            }
            Backend::SageMaker => Ok(EndpointMetrics {
                window,
                period_seconds: window.period_seconds(),
                series: self.sagemaker.metrics(name, window).await?,
                source: "CloudWatch, namespace AWS/SageMaker".into(),
            }),
        }
    }

    async fn deploy_local(&self, spec: LocalDeploySpec) -> Result<EndpointDetail, ApiError> {
        let result = self.deploy_local_inner(&spec).await;
        let source = match &spec.sagemaker_job {
            Some(job) => format!("SageMaker job {job}'s model.tar.gz"),
            None => format!("job #{}", spec.job_id),
        };
        let after = format!(
            "{source} × {} instance(s), batch ≤ {}, wait ≤ {} ms, queue {}",
            spec.instances, spec.batching.max_batch, spec.batching.max_wait_ms, spec.batching.queue_capacity
        );
        self.record("endpoint.local.create", &spec.name, None, Some(after), &result).await;
        result?;
        self.describe(Backend::Local, &EndpointName::parse(&spec.name)?).await
    }

    async fn deploy_sagemaker(&self, spec: SageMakerDeploySpec) -> Result<EndpointDetail, ApiError> {
        let Some(job_id) = spec.local_job else {
            return self.sagemaker.deploy(&spec).await;
        };
        // A local job's artifact: packed as model.tar.gz and uploaded first.
        let uploaded = async {
            let artifact = self.local_artifact(job_id).await?;
            self.sagemaker.upload_local_model(&artifact, &spec).await
        }
        .await;
        match uploaded {
            Ok(at) => self.sagemaker.create_from(&spec, &at.to_string(), &spec.role_arn, Some(&at)).await,
            Err(e) => {
                self.sagemaker.journal_create(&spec, None, &Err(e.clone())).await;
                Err(e)
            }
        }
    }

    async fn delete(&self, backend: Backend, name: &EndpointName, with_config: bool) -> Result<(), ApiError> {
        match backend {
            Backend::SageMaker => self.sagemaker.delete(name, with_config).await,
            Backend::Local => {
                let row = self.row(name).await?;
                let before = format!("{} · version {} · {} × {}", row.status, row.version, self.describe_source(&row), row.instances);
                let result = match self.rollout_running(name) {
                    Some((id, version)) => Err(ApiError::Conflict(format!(
                        "rollout #{id} to version {version} is running on {name}: roll it back (or let it finish) before deleting the endpoint"
                    ))),
                    None => self.forget(name).await.map_err(db),
                };
                if result.is_ok() {
                    // Dropping the runtime closes its queue; replicas finish
                    // the batch in hand and stop.
                    self.runtimes.write().expect("runtimes").remove(name.as_str());
                }
                self.record("endpoint.local.delete", name, Some(before), Some("deleted".into()), &result).await;
                result
            }
        }
    }

    async fn deployable_jobs(&self) -> Result<Vec<DeployableJob>, ApiError> {
        self.sagemaker.deployable_jobs().await
    }

    async fn versions(&self, name: &EndpointName) -> Result<app::endpoints::rollout::VersionsView, ApiError> {
        self.versions_view(name).await
    }

    async fn start_rollout(&self, spec: app::endpoints::rollout::RolloutSpec) -> Result<app::endpoints::rollout::VersionsView, ApiError> {
        self.begin_rollout(spec).await
    }

    async fn roll_back(&self, name: &EndpointName) -> Result<app::endpoints::rollout::VersionsView, ApiError> {
        self.end_rollout(name).await
    }

    async fn shadow_test(&self, name: &EndpointName, source: app::endpoints::rollout::VersionSource, folder: &str, limit: u32) -> Result<app::endpoints::rollout::ShadowReport, ApiError> {
        self.shadow(name, source, folder, limit).await
    }

    async fn sagemaker_rollouts(&self, name: &EndpointName) -> Result<app::endpoints::guardrails::SageMakerRollouts, ApiError> {
        self.sagemaker_rollouts_view(name).await
    }

    async fn start_sagemaker_rollout(&self, spec: app::endpoints::guardrails::SageMakerRolloutSpec) -> Result<app::endpoints::guardrails::SageMakerRollouts, ApiError> {
        self.begin_sagemaker_rollout(spec).await
    }

    async fn roll_back_sagemaker(&self, name: &EndpointName) -> Result<app::endpoints::guardrails::SageMakerRollouts, ApiError> {
        self.sagemaker_rollback(name).await
    }

    async fn alarms(&self, backend: Backend, name: &EndpointName) -> Result<Vec<app::endpoints::guardrails::EndpointAlarm>, ApiError> {
        self.endpoint_alarms(backend, name).await
    }

    async fn put_alarm(&self, backend: Backend, spec: app::endpoints::guardrails::AlarmSpec) -> Result<Vec<app::endpoints::guardrails::EndpointAlarm>, ApiError> {
        self.put_endpoint_alarm(backend, spec).await
    }

    async fn test_bench(&self, backend: Backend, name: &EndpointName, folder: &str, limit: u32) -> Result<TestBenchReport, ApiError> {
        let started = Instant::now();
        let (folder_path, limit) = (self.roots.resolve(folder, "folder")?, limit as usize);
        let labelled = tokio::task::spawn_blocking(move || evaluation::scan(&folder_path, limit))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
        let runtime = match backend {
            Backend::Local => Some(self.runtime(name).ok_or_else(|| ApiError::NotFound(format!("there is no local endpoint named {name:?}")))?),
            Backend::SageMaker => {
                self.sagemaker.describe(name).await?;
                None
            }
        };
        // The model's class order: a local artifact names its classes (and the
        // folders they came from); otherwise the sorted folder order, as
        // torchvision's ImageFolder assigns indices.
        let (model_classes, labels): (Vec<String>, Vec<String>) = match &runtime {
            Some(r) => {
                let m = &r.info.metadata;
                (if m.class_folders.len() == m.classes.len() { m.class_folders.clone() } else { m.classes.clone() }, m.classes.clone())
            }
            None => (labelled.classes.clone(), labelled.classes.clone()),
        };
        // The folder's class i is the model's class index_of[i].
        let index_of: Vec<Option<usize>> = labelled.classes.iter().map(|c| model_classes.iter().position(|m| m == c)).collect();
        if index_of.iter().all(Option::is_none) {
            return Err(ApiError::Invalid(format!(
                "none of the folder's classes ({}) is one of the endpoint's ({})",
                labelled.classes.join(", "),
                model_classes.join(", ")
            )));
        }
        // Four requests in flight at once, as a client would send them; the
        // answers come back in the folder's order.
        let (runtime, index_of, labels) = (runtime.as_deref(), &index_of, &labels);
        let roots = self.roots.paths().to_vec();
        let roots = &roots;
        let judged: Vec<evaluation::Judged> = futures_util::stream::iter(labelled.images.iter().cloned())
            .map(|(path, truth)| async move {
                // A regular file within the roots, no larger than an invocation's payload.
                let (file, allowed) = (path.clone(), roots.clone());
                let read = tokio::task::spawn_blocking(move || crate::images::read_regular_file(&file, crate::body::MAX_PAYLOAD as u64, &allowed))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let result = match read {
                    Err(e) => Err(format!("not read: {e}")),
                    Ok(bytes) => self.classify(name, runtime, bytes).await,
                };
                let result = result.map(|(logits, ms)| {
                    let best = app::endpoints::top_k(&logits, &[], 1);
                    let (index, probability) = best.first().map(|b| (b.index, b.probability)).unwrap_or((usize::MAX, 0.0));
                    evaluation::Prediction {
                        folder_class: index_of.iter().position(|m| *m == Some(index)),
                        label: labels.get(index).cloned().unwrap_or_else(|| format!("class {index}")),
                        probability,
                        ms,
                    }
                });
                evaluation::Judged { path, truth, result }
            })
            .buffered(4)
            .collect()
            .await;
        let mut report = evaluation::summarize(&labelled, &judged, started.elapsed().as_secs_f64());
        report.wrong.truncate(24);
        let wrong_paths: Vec<String> = report.wrong.iter().map(|w| w.path.clone()).collect();
        let allowed = self.roots.paths().to_vec();
        let thumbs = tokio::task::spawn_blocking(move || wrong_paths.iter().map(|p| evaluation::thumbnail(Path::new(p), &allowed)).collect::<Vec<_>>())
            .await
            .unwrap_or_default();
        for (w, t) in report.wrong.iter_mut().zip(thumbs) {
            w.thumbnail = t;
        }
        Ok(report)
    }
}

impl EndpointHub {
    /// One test-bench image through the endpoint: logits and latency in ms.
    async fn classify(&self, name: &str, runtime: Option<&Runtime>, bytes: Vec<u8>) -> Result<(Vec<f32>, f64), String> {
        let started = Instant::now();
        let ms = |started: Instant| started.elapsed().as_secs_f64() * 1000.0;
        match runtime {
            Some(runtime) => {
                let result = self.run_local(name, runtime, Bytes::from(bytes)).await;
                self.record_outcome(name, runtime.instances(), started.elapsed(), result.as_ref());
                result.map(|a| (a.logits, ms(started))).map_err(|e| e.message().to_string())
            }
            None => {
                let content_type = if bytes.starts_with(&[0x89, b'P', b'N', b'G']) { "image/png" } else { "image/jpeg" };
                let (_, body) = self.sagemaker.invoke(name, content_type, Bytes::from(bytes)).await.map_err(|e| e.message().to_string())?;
                let rows: Vec<Vec<f32>> =
                    serde_json::from_slice(&body).map_err(|e| format!("the endpoint's answer is not a list of logit rows: {e}"))?;
                Ok((rows.into_iter().next().unwrap_or_default(), ms(started)))
            }
        }
    }
}
