//! SageMaker training jobs: one background poller keeps a SQLite cache of
//! ListTrainingJobs + DescribeTrainingJob current, with backoff when AWS
//! fails or throttles; the pages read the cache only. Launching, the launch
//! form's roles and the per-host CloudWatch logs are read on demand.

pub mod backfill;

use crate::aws::{created_key, from_sdk, Aws};
use crate::journal::{Change, Journal};
use crate::poller::{Pace, Poller};
use crate::s3::{self, S3Uri};
use crate::training::sagemaker_code;
use app::names::TrainingJobName;
use app::training::sagemaker::{
    AwsCallCounts, CacheState, HostLogLine, JobLogs, JobMetrics, LaunchDefaults, SageMakerJobDetail, SageMakerJobList, SageMakerJobSpec,
    SageMakerJobSummary, SageMakerTrainingService, StatusTransition, TrainingCode, TrainingMetricSeries, CHECKPOINT_LOCAL_PATH,
};
use app::ApiError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, CheckpointConfig, DataSource, MetricDefinition, OutputDataConfig, ResourceConfig,
    S3DataDistribution, S3DataSource, S3DataType, SortBy, SortOrder, StoppingCondition, TrainingInputMode, TrainingInstanceType,
};
use aws_smithy_types::date_time::Format;
use sqlx::SqlitePool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// ListTrainingJobs allows 2 requests per second; pages are spaced by this.
const LIST_PAGE_GAP: Duration = Duration::from_millis(600);
/// The first listing reads at most this many pages (100 jobs each); the
/// history backfill reads the rest in the background.
const MAX_PAGES: i64 = 5;
const WATERMARK_OVERLAP_MS: i64 = 60_000;
/// The cache is refreshed every 10 s while some job runs, every 30 s otherwise.
const PACE: Pace = Pace { busy: Duration::from_secs(10), idle: Duration::from_secs(30), max_backoff: Duration::from_secs(300) };
const LOG_GROUP: &str = "/aws/sagemaker/TrainingJobs";
const ROLES_TTL: Duration = Duration::from_secs(300);

fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

use crate::store::now;

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "Completed" | "Failed" | "Stopped")
}

/// The ARNs of the roles whose trust policy names sagemaker.amazonaws.com,
/// sorted: what a training job, an endpoint or a notebook may run as.
pub async fn roles_sagemaker_may_assume(iam: &aws_sdk_iam::Client) -> Result<Vec<String>, ApiError> {
    let mut items = iam.list_roles().into_paginator().items().send();
    let mut roles = Vec::new();
    while let Some(role) = items.next().await {
        let role = role.map_err(|e| from_sdk("IAM ListRoles", e))?;
        let trust = role.assume_role_policy_document().map(percent_decode).unwrap_or_default();
        if trust.contains("sagemaker.amazonaws.com") {
            roles.push(role.arn().to_string());
        }
    }
    roles.sort();
    Ok(roles)
}

/// IAM returns policy documents URL-encoded (RFC 3986: `+` stays `+`).
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The instances a spec asks for, as the SDK takes them (training and tuning).
pub fn resource_config(spec: &SageMakerJobSpec) -> ResourceConfig {
    ResourceConfig::builder()
        .instance_type(TrainingInstanceType::from(spec.instance_type.as_str()))
        .instance_count(spec.instance_count as i32)
        .volume_size_in_gb(spec.volume_gb as i32)
        .build()
}

/// The spec's S3 input channels, as the SDK takes them (training and tuning).
pub fn input_channels(spec: &SageMakerJobSpec) -> Vec<Channel> {
    spec.channels()
        .into_iter()
        .map(|(channel, uri)| {
            let source = S3DataSource::builder()
                .s3_data_type(S3DataType::S3Prefix)
                .s3_uri(uri)
                .s3_data_distribution_type(S3DataDistribution::FullyReplicated)
                .build();
            Channel::builder().channel_name(channel).data_source(DataSource::builder().s3_data_source(source).build()).build()
        })
        .collect()
}

pub struct SageMakerJobs {
    pool: SqlitePool,
    aws: Arc<Aws>,
    journal: Journal,
    poller: Poller,
    roles: Mutex<Option<(Instant, Vec<String>)>>,
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("training job cache")(e)
}

fn summary_of(d: &aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput) -> SageMakerJobSummary {
    let resources = d.resource_config();
    SageMakerJobSummary {
        name: d.training_job_name().unwrap_or_default().to_string(),
        status: d.training_job_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        secondary_status: d.secondary_status().map(|s| s.as_str().to_string()),
        instance_type: resources.and_then(|r| r.instance_type()).map(|t| t.as_str().to_string()).unwrap_or_default(),
        instance_count: resources.and_then(|r| r.instance_count()).unwrap_or(0),
        created_at: rfc3339(d.creation_time()),
        ended_at: rfc3339(d.training_end_time()),
        training_seconds: d.training_time_in_seconds().map(i64::from),
        billable_seconds: d.billable_time_in_seconds().map(i64::from),
        final_metrics: d.final_metric_data_list().iter().filter_map(|m| Some((m.metric_name()?.to_string(), f64::from(m.value()?)))).collect(),
    }
}

fn detail_of(d: &aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput) -> SageMakerJobDetail {
    let mut hyperparameters: Vec<(String, String)> = d.hyper_parameters().map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    hyperparameters.sort();
    SageMakerJobDetail {
        summary: summary_of(d),
        arn: d.training_job_arn().map(str::to_string),
        image: d.algorithm_specification().and_then(|a| a.training_image()).map(str::to_string),
        role_arn: d.role_arn().map(str::to_string),
        hyperparameters,
        channels: d
            .input_data_config()
            .iter()
            .map(|c| {
                let uri = c.data_source().and_then(|s| s.s3_data_source()).and_then(|s| s.s3_uri()).unwrap_or_default().to_string();
                (c.channel_name().unwrap_or_default().to_string(), uri)
            })
            .collect(),
        output_path: d.output_data_config().and_then(|o| o.s3_output_path()).map(str::to_string),
        model_artifact: d.model_artifacts().and_then(|a| a.s3_model_artifacts()).map(str::to_string),
        volume_gb: d.resource_config().and_then(|r| r.volume_size_in_gb()),
        max_runtime_seconds: d.stopping_condition().and_then(|s| s.max_runtime_in_seconds()),
        spot: d.enable_managed_spot_training().unwrap_or(false),
        transitions: d
            .secondary_status_transitions()
            .iter()
            .map(|t| StatusTransition {
                status: t.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                started_at: rfc3339(t.start_time()),
                ended_at: rfc3339(t.end_time()),
                message: t.status_message().map(str::to_string),
            })
            .collect(),
        failure_reason: d.failure_reason().map(str::to_string),
        metric_definitions: d
            .algorithm_specification()
            .map(|a| a.metric_definitions().iter().map(|m| (m.name().unwrap_or_default().to_string(), m.regex().unwrap_or_default().to_string())).collect())
            .unwrap_or_default(),
        checkpoint_s3: d.checkpoint_config().and_then(|c| c.s3_uri()).map(str::to_string),
    }
}

/// The metric definitions of Sagedeck's code, as the SDK takes them.
pub fn metric_definitions(spec: &SageMakerJobSpec) -> Vec<MetricDefinition> {
    spec.metric_definitions().iter().map(|d| MetricDefinition::builder().name(d.name).regex(d.regex).build()).collect()
}

/// Uploads Sagedeck's code where `spec` says the container fetches it
/// (`sagemaker_submit_directory`). `None` for an image with its own code.
pub async fn upload_source_dir(s3_client: &aws_sdk_s3::Client, spec: &SageMakerJobSpec) -> Result<Option<S3Uri>, ApiError> {
    if spec.code != TrainingCode::Sagedeck {
        return Ok(None);
    }
    let uri = spec.source_dir_uri();
    let at = S3Uri::parse(&uri)?;
    s3::put(s3_client, &at, sagemaker_code::source_dir(), "application/gzip").await.map_err(|e| {
        e.map_message(|m| format!("Sagedeck's training code could not be put at {uri}, so nothing was created: {m}"))
    })?;
    Ok(Some(at))
}

/// What the metric definitions read from a job's log lines, per host, as
/// SageMaker reads them (the regex's first group is the value). The x of a
/// point is the line's `epoch=` when it has one, else the epoch count so
/// far (the test metrics come after the last epoch).
pub fn read_metrics(definitions: &[(String, String)], lines: &[HostLogLine]) -> JobMetrics {
    let compiled: Vec<(&str, regex::Regex)> =
        definitions.iter().filter_map(|(name, pattern)| Some((name.as_str(), regex::Regex::new(pattern).ok()?))).collect();
    let epoch = regex::Regex::new(r"\bepoch=([0-9]+)").expect("a valid regex");
    let mut series: Vec<TrainingMetricSeries> = Vec::new();
    let mut last_epoch: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for line in lines {
        let at_epoch = epoch.captures(&line.message).and_then(|c| c[1].parse::<f64>().ok());
        if let Some(e) = at_epoch {
            last_epoch.insert(&line.host, e);
        }
        for (name, regex) in &compiled {
            let Some(value) = regex.captures(&line.message).and_then(|c| c.get(1)).and_then(|m| m.as_str().parse::<f64>().ok()) else {
                continue;
            };
            if !value.is_finite() {
                continue;
            }
            let x = at_epoch.unwrap_or_else(|| last_epoch.get(line.host.as_str()).copied().unwrap_or(0.0));
            match series.iter_mut().find(|s| s.name == *name && s.host == line.host) {
                Some(s) => s.points.push((x, value)),
                None => series.push(TrainingMetricSeries { name: name.to_string(), host: line.host.clone(), points: vec![(x, value)] }),
            }
        }
    }
    series.sort_by(|a, b| a.name.cmp(&b.name).then(a.host.cmp(&b.host)));
    // The first host's last value, as SageMaker's FinalMetricDataList reports.
    let mut last: Vec<(String, f64)> = Vec::new();
    for s in &series {
        if !last.iter().any(|(n, _)| *n == s.name) {
            if let Some((_, v)) = s.points.last() {
                last.push((s.name.clone(), *v));
            }
        }
    }
    let note = if definitions.is_empty() {
        Some("This job has no metric definitions: SageMaker reads no metrics from its log.".to_string())
    } else if series.is_empty() {
        Some("No log line has matched the job's metric definitions yet.".to_string())
    } else {
        None
    };
    JobMetrics {
        series,
        last,
        source: "the job's CloudWatch log, read with its metric definitions (the lines SageMaker publishes as training metrics)".into(),
        note,
    }
}

impl SageMakerJobs {
    /// Opens the cache and starts its poller.
    pub fn start(pool: SqlitePool, aws: Arc<Aws>, journal: Journal) -> Arc<Self> {
        let jobs = Arc::new(SageMakerJobs {
            pool,
            aws,
            journal,
            poller: Poller::new(PACE),
            roles: Mutex::new(None),
        });
        if jobs.aws.clients().is_ok() {
            let poller = jobs.clone();
            use tracing::Instrument;
            tokio::spawn(async move { poller.poll().await }.instrument(tracing::info_span!("sagemaker_jobs_poller")));
            tokio::spawn(backfill::backfill(jobs.clone()).instrument(tracing::info_span!("sagemaker_history_backfill")));
        }
        jobs
    }

    async fn poll(self: Arc<Self>) {
        loop {
            let wait = self.refresh_now().await;
            self.poller.sleep(wait).await;
        }
    }

    /// One refresh, unless one is already running: then waits for it.
    /// Returns the wait before the next one.
    async fn refresh_now(&self) -> Duration {
        self.poller.round(|_| self.refresh_once()).await
    }

    /// Lists the jobs created since the watermark (all of them the first
    /// time, up to MAX_PAGES pages: the backfill reads the rest), and
    /// describes the new ones, those whose status changed and those the
    /// cache holds as not finished. Says whether any job still runs.
    async fn refresh_once(&self) -> Result<bool, ApiError> {
        let client = &self.aws.clients()?.sagemaker;
        let sync = backfill::sync_state(&self.pool).await?;
        let first = sync.newest_created.is_none();
        let mut request = client.list_training_jobs().sort_by(SortBy::CreationTime).sort_order(SortOrder::Descending).max_results(100);
        if let Some(watermark) = sync.newest_created.as_deref().and_then(|w| DateTime::from_str(w, Format::DateTime).ok()) {
            // A minute of overlap: a job's creation can show in the list a
            // moment after its creation time.
            request = request.creation_time_after(DateTime::from_millis(watermark.to_millis().unwrap_or(0) - WATERMARK_OVERLAP_MS));
        }
        let mut pages = request.into_paginator().send();
        let mut to_describe = Vec::new();
        let mut any_running = false;
        let (mut newest, mut oldest): (Option<String>, Option<String>) = (None, None);
        let mut page_count = 0;
        let mut complete = false;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SageMaker ListTrainingJobs", e))?;
            let more = page.next_token().is_some_and(|t| !t.is_empty());
            let names: Vec<&str> = page.training_job_summaries().iter().filter_map(|j| j.training_job_name()).collect();
            let cached = self.cached_statuses(&names).await?;
            for job in page.training_job_summaries() {
                let (Some(name), Some(status)) = (job.training_job_name(), job.training_job_status()) else { continue };
                let status = status.as_str();
                any_running |= !is_terminal(status);
                if cached.get(name).map(String::as_str) != Some(status) || !is_terminal(status) {
                    to_describe.push(name.to_string());
                }
                if let Some(created) = job.creation_time().map(created_key) {
                    if newest.as_ref().is_none_or(|n| created > *n) {
                        newest = Some(created.clone());
                    }
                    if oldest.as_ref().is_none_or(|o| created < *o) {
                        oldest = Some(created);
                    }
                }
            }
            page_count += 1;
            if !more {
                complete = true;
                break;
            }
            if first && page_count >= MAX_PAGES {
                break;
            }
            tokio::time::sleep(LIST_PAGE_GAP).await;
        }
        // Jobs the cache holds as running that the listing did not show
        // (older than the watermark): their status is read where it is.
        let unfinished: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sagemaker_training_jobs WHERE status NOT IN ('Completed', 'Failed', 'Stopped') ORDER BY created_at DESC LIMIT 200",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        for name in unfinished {
            if !to_describe.contains(&name) {
                to_describe.push(name);
            }
        }
        for name in to_describe {
            let detail = self.describe_into_cache(&name).await?;
            any_running |= !is_terminal(&detail.summary.status);
        }
        if first {
            // The first listing sets both edges; if it read everything, there
            // is nothing to backfill (an empty account is complete too).
            let now = crate::store::now();
            backfill::record_sync(&self.pool, Some(newest.as_deref().unwrap_or(&now)), Some(oldest.as_deref().unwrap_or(&now)), complete, page_count).await?;
        } else if newest.is_some() || page_count > 0 {
            backfill::record_sync(&self.pool, newest.as_deref(), None, false, page_count).await?;
        }
        let tuning_running = self.refresh_tuning().await?;
        Ok(any_running || tuning_running)
    }

    /// The cached status of each of `names`.
    async fn cached_statuses(&self, names: &[&str]) -> Result<std::collections::HashMap<String, String>, ApiError> {
        if names.is_empty() {
            return Ok(Default::default());
        }
        let sql = format!("SELECT name, status FROM sagemaker_training_jobs WHERE name IN ({})", vec!["?"; names.len()].join(", "));
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for n in names {
            q = q.bind(*n);
        }
        Ok(q.fetch_all(&self.pool).await.map_err(db)?.into_iter().collect())
    }

    pub(super) fn aws(&self) -> &Aws {
        &self.aws
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(super) fn journal(&self) -> &Journal {
        &self.journal
    }

    pub(super) fn wake_poller(&self) {
        self.poller.wake();
    }

    async fn journal_launch(&self, spec: &SageMakerJobSpec, outcome: Result<(), String>) {
        let code = match spec.code {
            TrainingCode::Sagedeck => format!(", Sagedeck's train.py from {}", spec.source_dir_uri()),
            TrainingCode::Image => ", the image's own entry point".to_string(),
        };
        self.journal
            .record(Change {
                backend: "aws",
                action: "training.sagemaker.create",
                target: &spec.name,
                before: None,
                after: Some(format!(
                    "{} × {}, {}{code}, lr {}, batch {}, epochs {}",
                    spec.instance_count, spec.instance_type, spec.image, spec.learning_rate, spec.batch_size, spec.epochs
                )),
                outcome,
            })
            .await;
    }

    async fn describe_into_cache(&self, name: &str) -> Result<SageMakerJobDetail, ApiError> {
        let d = self
            .aws
            .clients()?
            .sagemaker
            .describe_training_job()
            .training_job_name(name)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeTrainingJob", e))?;
        let detail = detail_of(&d);
        let created = d.creation_time().map(created_key).unwrap_or_else(crate::store::now);
        sqlx::query(
            "INSERT INTO sagemaker_training_jobs (name, status, created_at, summary, detail, refreshed_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET status = excluded.status, created_at = excluded.created_at, summary = excluded.summary,
                detail = excluded.detail, refreshed_at = excluded.refreshed_at",
        )
        .bind(&detail.summary.name)
        .bind(&detail.summary.status)
        .bind(&created)
        .bind(serde_json::to_string(&detail.summary).unwrap_or_default())
        .bind(serde_json::to_string(&detail).unwrap_or_default())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(detail)
    }

    pub(super) fn cache_state(&self) -> CacheState {
        self.poller.cache_state()
    }

    async fn roles(&self) -> Result<Vec<String>, ApiError> {
        if let Some((at, roles)) = self.roles.lock().expect("roles").clone() {
            if at.elapsed() < ROLES_TTL {
                return Ok(roles);
            }
        }
        let roles = roles_sagemaker_may_assume(&self.aws.clients()?.iam).await?;
        *self.roles.lock().expect("roles") = Some((Instant::now(), roles.clone()));
        Ok(roles)
    }
}

#[async_trait::async_trait]
impl SageMakerTrainingService for SageMakerJobs {
    async fn list(&self, status: Option<String>, name_contains: Option<String>) -> Result<SageMakerJobList, ApiError> {
        if let Err(e) = self.aws.clients() {
            return Ok(SageMakerJobList { jobs: Vec::new(), cache: self.cache_state(), note: Some(e.message().to_string()) });
        }
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT summary FROM sagemaker_training_jobs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0)
             ORDER BY created_at DESC, name LIMIT 500",
        )
        .bind(status)
        .bind(name_contains)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let jobs = rows.iter().filter_map(|summary| serde_json::from_str(summary).ok()).collect();
        Ok(SageMakerJobList { jobs, cache: self.cache_state(), note: None })
    }

    async fn describe(&self, name: &TrainingJobName) -> Result<SageMakerJobDetail, ApiError> {
        let cached: Option<String> = sqlx::query_scalar("SELECT detail FROM sagemaker_training_jobs WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .flatten();
        match cached.and_then(|d| serde_json::from_str(&d).ok()) {
            Some(detail) => Ok(detail),
            // Not polled yet (made elsewhere a moment ago): read it once.
            None => self.describe_into_cache(name).await,
        }
    }

    async fn launch(&self, spec: SageMakerJobSpec) -> Result<SageMakerJobDetail, ApiError> {
        let clients = self.aws.clients()?;
        let client = &clients.sagemaker;
        // Names are unique per account and region for good; the cache knows
        // most of them, which saves a refused call.
        let known: Option<String> = sqlx::query_scalar("SELECT status FROM sagemaker_training_jobs WHERE name = ?")
            .bind(&spec.name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        if let Some(status) = known {
            return Err(ApiError::Conflict(format!(
                "a training job named {} already exists ({status}); SageMaker job names are unique per account and region for good, so choose another",
                spec.name
            )));
        }
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        // Sagedeck's code goes first: if S3 refuses it, nothing is created.
        let source = match upload_source_dir(&clients.s3, &spec).await {
            Ok(source) => source,
            Err(e) => {
                self.journal_launch(&spec, Err(e.message().to_string())).await;
                return Err(e);
            }
        };
        let mut algorithm = AlgorithmSpecification::builder().training_image(&spec.image).training_input_mode(TrainingInputMode::File);
        let definitions = metric_definitions(&spec);
        if !definitions.is_empty() {
            algorithm = algorithm.set_metric_definitions(Some(definitions)).enable_sage_maker_metrics_time_series(true);
        }
        let mut request = client
            .create_training_job()
            .training_job_name(&spec.name)
            .role_arn(&spec.role_arn)
            .algorithm_specification(algorithm.build())
            .output_data_config(OutputDataConfig::builder().s3_output_path(&spec.output_s3).build())
            .resource_config(resource_config(&spec))
            .set_input_data_config(Some(input_channels(&spec)))
            .stopping_condition({
                let s = StoppingCondition::builder().max_runtime_in_seconds(spec.max_runtime_seconds as i32);
                match (spec.spot, spec.max_wait_seconds) {
                    (true, Some(w)) => s.max_wait_time_in_seconds(w as i32).build(),
                    _ => s.build(),
                }
            })
            .enable_managed_spot_training(spec.spot);
        if spec.spot {
            // Spot capacity can be taken back; train.py resumes from here.
            request = request.checkpoint_config(CheckpointConfig::builder().s3_uri(spec.checkpoint_uri()).local_path(CHECKPOINT_LOCAL_PATH).build());
        }
        for (k, v) in spec.hyperparameters(&region) {
            request = request.hyper_parameters(k, v);
        }
        let mut result = request.send().await.map(|_| ()).map_err(|e| from_sdk("SageMaker CreateTrainingJob", e));
        if let (Err(error), Some(at)) = (&result, &source) {
            // The job was not made: its code must not stay behind.
            let cleanup = match s3::delete(&clients.s3, at).await {
                Ok(()) => format!("the code uploaded for it ({at}) was removed"),
                Err(e) => format!("the code uploaded for it ({at}) could not be removed: {}", e.message()),
            };
            result = Err(error.clone().map_message(|m| format!("{m}; {cleanup}")));
        }
        self.journal_launch(&spec, result.clone().map_err(|e| e.message().to_string())).await;
        result?;
        let detail = self.describe_into_cache(&spec.name).await?;
        self.poller.wake();
        Ok(detail)
    }

    async fn logs(&self, name: &TrainingJobName, after: i64) -> Result<JobLogs, ApiError> {
        let logs = &self.aws.clients()?.logs;
        let prefix = format!("{name}/");
        let mut request = logs.filter_log_events().log_group_name(LOG_GROUP).log_stream_name_prefix(&prefix);
        if after > 0 {
            request = request.start_time(after + 1);
        }
        let mut pages = request.into_paginator().send();
        let mut lines = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                // No log group yet: the job has not written a line.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => break,
                Err(e) => return Err(from_sdk("CloudWatch Logs FilterLogEvents", e)),
            };
            for event in page.events() {
                // The prefix is applied here too: a filter that let other
                // jobs' streams through (moto does) must not mix them in.
                let Some(host) = event.log_stream_name().and_then(|s| s.strip_prefix(&prefix)) else { continue };
                lines.push(HostLogLine {
                    at: event.timestamp().unwrap_or(0),
                    host: host.to_string(),
                    message: event.message().unwrap_or_default().trim_end().to_string(),
                });
            }
            if lines.len() >= 10_000 {
                break;
            }
        }
        lines.sort_by(|a, b| a.at.cmp(&b.at).then(a.host.cmp(&b.host)));
        let mut hosts: Vec<String> = lines.iter().map(|l| l.host.clone()).collect();
        hosts.sort();
        hosts.dedup();
        let last_at = lines.last().map(|l| l.at).unwrap_or(after);
        Ok(JobLogs { hosts, lines, last_at })
    }

    async fn launch_defaults(&self) -> Result<LaunchDefaults, ApiError> {
        // Without AWS the page says why in place of the form; that is an
        // answer, not an error (no failed request in the browser's console).
        let clients = match self.aws.clients() {
            Ok(c) => c,
            Err(e) => {
                return Ok(LaunchDefaults {
                    not_configured: Some(e.message().to_string()),
                    region: String::new(),
                    roles: Vec::new(),
                    spec: SageMakerJobSpec::example("us-east-1", ""),
                })
            }
        };
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        let roles = self.roles().await?;
        let spec = SageMakerJobSpec::example(&region, roles.first().map(String::as_str).unwrap_or_default());
        Ok(LaunchDefaults { not_configured: None, region, roles, spec })
    }

    async fn refresh(&self) -> Result<CacheState, ApiError> {
        self.aws.clients()?;
        self.refresh_now().await;
        Ok(self.cache_state())
    }

    fn aws_calls(&self) -> AwsCallCounts {
        self.aws.call_counts()
    }

    async fn metrics(&self, name: &TrainingJobName) -> Result<JobMetrics, ApiError> {
        let detail = self.describe(name).await?;
        let logs = self.logs(name, 0).await?;
        Ok(read_metrics(&detail.metric_definitions, &logs.lines))
    }

    async fn stop(&self, name: &TrainingJobName) -> Result<SageMakerJobDetail, ApiError> {
        let client = &self.aws.clients()?.sagemaker;
        let before = self.describe(name).await.ok().map(|d| d.summary.status);
        let result = client
            .stop_training_job()
            .training_job_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("SageMaker StopTrainingJob", e));
        self.journal
            .record(Change {
                backend: "aws",
                action: "training.sagemaker.stop",
                target: name,
                before,
                after: Some("Stopping (SageMaker saves the model written so far and stops billing)".into()),
                outcome: result.clone().map_err(|e| e.message().to_string()),
            })
            .await;
        result?;
        let detail = self.describe_into_cache(name).await?;
        self.poller.wake();
        Ok(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_are_quick_while_jobs_run_and_back_off_on_errors() {
        assert_eq!(PACE.next_wait(true, 0), Duration::from_secs(10));
        assert_eq!(PACE.next_wait(false, 0), Duration::from_secs(30));
        assert_eq!(PACE.next_wait(false, 2), Duration::from_secs(120));
        assert_eq!(PACE.next_wait(false, 30), Duration::from_secs(300));
    }

    fn line(host: &str, message: &str) -> HostLogLine {
        HostLogLine { at: 0, host: host.into(), message: message.into() }
    }

    /// The definitions are the contract with train.py's output: each one's
    /// group reads its own value from the lines train.py prints, per host,
    /// at its epoch (the test metrics at the last one).
    #[test]
    fn each_metric_definition_reads_its_value_from_train_py_lines() {
        let definitions: Vec<(String, String)> =
            app::training::sagemaker::METRIC_DEFINITIONS.iter().map(|d| (d.name.to_string(), d.regex.to_string())).collect();
        let lines = [
            line("algo-1", "sagedeck.metrics epoch=1 train_loss=0.900000 train_accuracy=0.400000 valid_loss=1.000000 valid_accuracy=0.350000 images_per_s=99.0"),
            line("algo-1", "2026-12-01 INFO epoch 1 trained on 400 of the 800 training images"),
            line("algo-1", "sagedeck.metrics epoch=2 train_loss=0.412300 train_accuracy=0.851200 valid_loss=0.532100 valid_accuracy=0.812000 images_per_s=123.4"),
            line("algo-2", "sagedeck.metrics epoch=2 train_loss=0.412300 train_accuracy=0.851200 valid_loss=0.532100 valid_accuracy=0.812000 images_per_s=120.0"),
            line("algo-1", "sagedeck.metrics test_loss=0.500000 test_accuracy=0.830000"),
            line("algo-1", "sagedeck.metrics epoch=3 train_loss=nan train_accuracy=0.1 valid_loss=inf valid_accuracy=0.1"),
        ];
        let m = read_metrics(&definitions, &lines[..5]);
        let find = |name: &str, host: &str| m.series.iter().find(|s| s.name == name && s.host == host).map(|s| s.points.clone());
        assert_eq!(find("train:loss", "algo-1"), Some(vec![(1.0, 0.9), (2.0, 0.4123)]));
        assert_eq!(find("valid:accuracy", "algo-2"), Some(vec![(2.0, 0.812)]));
        assert_eq!(find("test:accuracy", "algo-1"), Some(vec![(2.0, 0.83)]), "the test metrics sit at the last epoch");
        assert_eq!(find("test:loss", "algo-2"), None);
        let last: std::collections::HashMap<String, f64> = m.last.into_iter().collect();
        assert_eq!((last["valid:loss"], last["test:loss"], last["train:accuracy"]), (0.5321, 0.5, 0.8512));
        assert!(m.note.is_none());
        // Values that are not numbers are not points.
        let m = read_metrics(&definitions, &lines[5..]);
        assert_eq!(m.series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["train:accuracy", "valid:accuracy"]);
        // Without definitions, or before any line matches, the page says why.
        assert!(read_metrics(&[], &lines).note.unwrap().contains("no metric definitions"));
        assert!(read_metrics(&definitions, &lines[1..2]).note.unwrap().contains("No log line"));
    }

    #[test]
    fn iam_documents_are_url_decoded() {
        assert_eq!(
            percent_decode("%7B%22Principal%22%3A%7B%22Service%22%3A%22sagemaker.amazonaws.com%22%7D%7D"),
            r#"{"Principal":{"Service":"sagemaker.amazonaws.com"}}"#
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
