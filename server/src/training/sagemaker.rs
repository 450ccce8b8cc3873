//! SageMaker training jobs: one background poller keeps a SQLite cache of
//! ListTrainingJobs + DescribeTrainingJob current, with backoff when AWS
//! fails or throttles; the pages read the cache only. Launching, the launch
//! form's roles and the per-host CloudWatch logs are read on demand.

use crate::aws::{from_sdk, Aws};
use crate::journal::{Change, Journal};
use app::training::sagemaker::{
    AwsCallCounts, CacheState, HostLogLine, JobLogs, LaunchDefaults, SageMakerJobDetail, SageMakerJobList, SageMakerJobSpec,
    SageMakerJobSummary, SageMakerTrainingService, StatusTransition,
};
use app::ApiError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, DataSource, OutputDataConfig, ResourceConfig, S3DataDistribution, S3DataSource, S3DataType,
    SortBy, SortOrder, StoppingCondition, TrainingInputMode, TrainingInstanceType,
};
use aws_smithy_types::date_time::Format;
use sqlx::{Row, SqlitePool};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// ListTrainingJobs allows 2 requests per second; pages are spaced by this.
const LIST_PAGE_GAP: Duration = Duration::from_millis(600);
/// At most this many pages (100 jobs each) per refresh.
const MAX_PAGES: usize = 5;
/// How often the cache is refreshed while some job runs, and otherwise.
const BUSY_EVERY: Duration = Duration::from_secs(10);
const IDLE_EVERY: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const LOG_GROUP: &str = "/aws/sagemaker/TrainingJobs";
const ROLES_TTL: Duration = Duration::from_secs(300);

fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap_or_default()
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "Completed" | "Failed" | "Stopped")
}

/// The wait after a refresh: short while jobs run, long when idle, doubling
/// after each failure up to five minutes.
pub fn next_wait(any_running: bool, failures: u32) -> Duration {
    let base = if any_running { BUSY_EVERY } else { IDLE_EVERY };
    if failures == 0 {
        base
    } else {
        (base * 2u32.saturating_pow(failures.min(8))).min(MAX_BACKOFF)
    }
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

struct PollState {
    refreshed_at: Option<String>,
    error: Option<String>,
    next_at: Instant,
    failures: u32,
}

pub struct SageMakerJobs {
    pool: SqlitePool,
    aws: Arc<Aws>,
    journal: Journal,
    wake: tokio::sync::Notify,
    refreshing: tokio::sync::Mutex<()>,
    state: Mutex<PollState>,
    roles: Mutex<Option<(Instant, Vec<String>)>>,
}

fn db(e: sqlx::Error) -> ApiError {
    ApiError::Internal(format!("training job cache: {e}"))
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
    }
}

impl SageMakerJobs {
    /// Opens the cache and starts its poller.
    pub fn start(pool: SqlitePool, aws: Arc<Aws>, journal: Journal) -> Arc<Self> {
        let jobs = Arc::new(SageMakerJobs {
            pool,
            aws,
            journal,
            wake: tokio::sync::Notify::new(),
            refreshing: tokio::sync::Mutex::new(()),
            state: Mutex::new(PollState { refreshed_at: None, error: None, next_at: Instant::now(), failures: 0 }),
            roles: Mutex::new(None),
        });
        if jobs.aws.clients().is_ok() {
            let poller = jobs.clone();
            tokio::spawn(async move { poller.poll().await });
        }
        jobs
    }

    async fn poll(self: Arc<Self>) {
        loop {
            let wait = self.refresh_now().await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// One refresh, unless one is already running: then waits for it.
    /// Returns the wait before the next one.
    async fn refresh_now(&self) -> Duration {
        let guard = match self.refreshing.try_lock() {
            Ok(g) => g,
            Err(_) => {
                let _ = self.refreshing.lock().await;
                return self.state.lock().expect("poll state").next_at.saturating_duration_since(Instant::now());
            }
        };
        let result = self.refresh_once().await;
        let mut state = self.state.lock().expect("poll state");
        let wait = match result {
            Ok(any_running) => {
                state.failures = 0;
                state.error = None;
                state.refreshed_at = Some(now());
                next_wait(any_running, 0)
            }
            Err(e) => {
                state.failures += 1;
                state.error = Some(e.message().to_string());
                next_wait(false, state.failures)
            }
        };
        state.next_at = Instant::now() + wait;
        tracing::debug!(error = ?state.error, next_in = ?wait, "SageMaker training jobs refreshed");
        drop(guard);
        wait
    }

    /// Lists every job (paced under ListTrainingJobs' rate) and describes the
    /// new ones and those not finished. Says whether any job still runs.
    async fn refresh_once(&self) -> Result<bool, ApiError> {
        let client = &self.aws.clients()?.sagemaker;
        let cached: std::collections::HashMap<String, String> = sqlx::query("SELECT name, status FROM sagemaker_training_jobs")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| (r.get("name"), r.get("status")))
            .collect();
        let mut pages = client
            .list_training_jobs()
            .sort_by(SortBy::CreationTime)
            .sort_order(SortOrder::Descending)
            .max_results(100)
            .into_paginator()
            .send();
        let mut to_describe = Vec::new();
        let mut any_running = false;
        let mut page_count = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SageMaker ListTrainingJobs", e))?;
            let more = page.next_token().is_some_and(|t| !t.is_empty());
            for job in page.training_job_summaries() {
                let (Some(name), Some(status)) = (job.training_job_name(), job.training_job_status()) else { continue };
                let status = status.as_str();
                any_running |= !is_terminal(status);
                if cached.get(name).map(String::as_str) != Some(status) || !is_terminal(status) {
                    to_describe.push(name.to_string());
                }
            }
            page_count += 1;
            if !more || page_count >= MAX_PAGES {
                break;
            }
            tokio::time::sleep(LIST_PAGE_GAP).await;
        }
        for name in to_describe {
            self.describe_into_cache(&name).await?;
        }
        let tuning_running = self.refresh_tuning().await?;
        Ok(any_running || tuning_running)
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
        self.wake.notify_one();
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
        sqlx::query(
            "INSERT INTO sagemaker_training_jobs (name, status, created_at, summary, detail, refreshed_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET status = excluded.status, created_at = excluded.created_at, summary = excluded.summary,
                detail = excluded.detail, refreshed_at = excluded.refreshed_at",
        )
        .bind(&detail.summary.name)
        .bind(&detail.summary.status)
        .bind(&detail.summary.created_at)
        .bind(serde_json::to_string(&detail.summary).unwrap_or_default())
        .bind(serde_json::to_string(&detail).unwrap_or_default())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(detail)
    }

    fn cache_state(&self) -> CacheState {
        let state = self.state.lock().expect("poll state");
        CacheState {
            refreshed_at: state.refreshed_at.clone(),
            error: state.error.clone(),
            next_refresh_seconds: state.next_at.saturating_duration_since(Instant::now()).as_secs(),
        }
    }

    async fn roles(&self) -> Result<Vec<String>, ApiError> {
        if let Some((at, roles)) = self.roles.lock().expect("roles").clone() {
            if at.elapsed() < ROLES_TTL {
                return Ok(roles);
            }
        }
        let iam = &self.aws.clients()?.iam;
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
        let rows = sqlx::query(
            "SELECT summary FROM sagemaker_training_jobs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0)
             ORDER BY created_at DESC, name LIMIT 500",
        )
        .bind(status)
        .bind(name_contains)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let jobs = rows.iter().filter_map(|r| serde_json::from_str(&r.get::<String, _>("summary")).ok()).collect();
        Ok(SageMakerJobList { jobs, cache: self.cache_state(), note: None })
    }

    async fn describe(&self, name: &str) -> Result<SageMakerJobDetail, ApiError> {
        let cached: Option<String> = sqlx::query_scalar("SELECT detail FROM sagemaker_training_jobs WHERE name = ?")
            .bind(name)
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
        let client = &self.aws.clients()?.sagemaker;
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
        let mut request = client
            .create_training_job()
            .training_job_name(&spec.name)
            .role_arn(&spec.role_arn)
            .algorithm_specification(
                AlgorithmSpecification::builder().training_image(&spec.image).training_input_mode(TrainingInputMode::File).build(),
            )
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
        for (k, v) in spec.hyperparameters() {
            request = request.hyper_parameters(k, v);
        }
        let result = request.send().await.map(|_| ()).map_err(|e| from_sdk("SageMaker CreateTrainingJob", e));
        self.journal
            .record(Change {
                backend: "aws",
                action: "training.sagemaker.create",
                target: &spec.name,
                before: None,
                after: Some(format!(
                    "{} × {}, {}, lr {}, batch {}, epochs {}",
                    spec.instance_count, spec.instance_type, spec.image, spec.learning_rate, spec.batch_size, spec.epochs
                )),
                outcome: result.clone().map_err(|e| e.message().to_string()),
            })
            .await;
        result?;
        let detail = self.describe_into_cache(&spec.name).await?;
        self.wake.notify_one();
        Ok(detail)
    }

    async fn logs(&self, name: &str, after: i64) -> Result<JobLogs, ApiError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_are_quick_while_jobs_run_and_back_off_on_errors() {
        assert_eq!(next_wait(true, 0), BUSY_EVERY);
        assert_eq!(next_wait(false, 0), IDLE_EVERY);
        assert_eq!(next_wait(false, 1), IDLE_EVERY * 2);
        assert_eq!(next_wait(false, 2), IDLE_EVERY * 4);
        assert_eq!(next_wait(false, 30), MAX_BACKOFF);
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
