//! Endpoints, local and on SageMaker: the types the pages show, the checks on
//! deploy forms, the top-k arithmetic shared by server and browser, and the
//! server-function declarations. Invocations themselves go through the HTTP
//! route `POST /endpoints/{name}/invocations` (SageMaker's shape), not
//! through a server function, because the body is the image's own bytes.

pub mod guardrails;
mod guardrails_panel;
pub mod latency;
pub mod list;
mod page;
pub mod rollout;
mod versions;
mod test_panel;
mod evaluation;

pub use page::{metric_series, metric_total, status_tone, EndpointPage, EndpointsPage, WindowPicker};

use crate::names::{EndpointName, TrainingJobName};
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Where an endpoint runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// In this process, through libtorch.
    Local,
    SageMaker,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Local => "Local",
            Backend::SageMaker => "SageMaker",
        }
    }

    /// The path segment of the endpoint's page and invoke route.
    pub fn slug(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::SageMaker => "sagemaker",
        }
    }

    pub fn from_slug(slug: &str) -> Result<Backend, ApiError> {
        match slug {
            "local" => Ok(Backend::Local),
            "sagemaker" => Ok(Backend::SageMaker),
            other => Err(ApiError::Invalid(format!("unknown endpoint backend {other:?} (local or sagemaker)"))),
        }
    }

    /// The invoke route: SageMaker's path for local endpoints; SageMaker
    /// endpoints go through the console's proxy to sagemaker-runtime.
    pub fn invoke_path(self, name: &str) -> String {
        match self {
            Backend::Local => format!("/endpoints/{name}/invocations"),
            Backend::SageMaker => format!("/aws/endpoints/{name}/invocations"),
        }
    }

    pub fn page_path(self, name: &str) -> String {
        format!("/endpoints/{}/{name}", self.slug())
    }
}

/// One row of the endpoint list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointSummary {
    pub name: String,
    pub backend: Backend,
    /// SageMaker's words: Creating, InService, Updating, Deleting, Failed…
    pub status: String,
    /// Serving instances (local: replicas).
    pub instances: u32,
    /// "local (cpu)" or the ML instance type.
    pub instance_type: String,
    /// What it serves: the local job, or the SageMaker model.
    pub model: String,
    pub created_at: Option<String>,
}


/// A production variant as DescribeEndpoint(+Config) tell it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantInfo {
    pub name: String,
    pub model: String,
    pub instance_type: String,
    pub current_instances: Option<i32>,
    pub desired_instances: Option<i32>,
    pub weight: Option<f32>,
}

/// How a local endpoint queues and batches requests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batching {
    pub max_batch: u32,
    pub max_wait_ms: u32,
    pub queue_capacity: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointDetail {
    pub summary: EndpointSummary,
    pub arn: Option<String>,
    pub config_name: Option<String>,
    pub variants: Vec<VariantInfo>,
    pub failure_reason: Option<String>,
    /// Class names in logit order, when known (local artifacts carry them).
    pub classes: Vec<String>,
    pub batching: Option<Batching>,
    /// Local: the artifact folder and its job.
    pub artifact_dir: Option<String>,
    pub job_id: Option<i64>,
    pub input_size: Option<u32>,
    pub device: Option<String>,
    /// Requests waiting in the queue right now (local only).
    pub queued: Option<u32>,
    pub invoke_path: String,
}

/// Last hour (1-minute points) or last day (15-minute points).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricWindow {
    Hour,
    Day,
}

impl MetricWindow {
    pub fn seconds(self) -> i64 {
        match self {
            MetricWindow::Hour => 3600,
            MetricWindow::Day => 86_400,
        }
    }
    pub fn period_seconds(self) -> i64 {
        match self {
            MetricWindow::Hour => 60,
            MetricWindow::Day => 900,
        }
    }

    /// The whole periods that cover the window ending `now` (unix seconds):
    /// from the period holding `now - window` to the end of the current
    /// one, so neither the window's first minutes nor this very second are
    /// left out (an hour is 61 one-minute periods).
    pub fn range(self, now: i64) -> (i64, i64) {
        let period = self.period_seconds();
        ((now - self.seconds()).div_euclid(period) * period, (now.div_euclid(period) + 1) * period)
    }
}

/// One CloudWatch-style series: (unix seconds, value) per period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// SageMaker's metric name: Invocations, ModelLatency…
    pub name: String,
    /// Sum, Average or Maximum.
    pub statistic: String,
    /// Count, Microseconds.
    pub unit: String,
    pub points: Vec<(i64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointMetrics {
    pub window: MetricWindow,
    pub period_seconds: i64,
    pub series: Vec<MetricSeries>,
    /// Where the figures come from, or why there are none.
    pub source: String,
}

/// The local deploy form: a local job's artifact, or a SageMaker job's
/// model.tar.gz (downloaded, unpacked and served by the same runtime).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalDeploySpec {
    pub name: String,
    pub job_id: i64,
    /// A completed SageMaker training job to serve instead of `job_id`.
    #[serde(default)]
    pub sagemaker_job: Option<String>,
    pub instances: u32,
    pub batching: Batching,
}

impl LocalDeploySpec {
    pub const DEFAULT_BATCHING: Batching = Batching { max_batch: 16, max_wait_ms: 0, queue_capacity: 64 };
    pub const MAX_INSTANCES: u32 = 8;

    pub fn validate(&self) -> Result<(), ApiError> {
        EndpointName::parse(&self.name)?;
        if let Some(job) = &self.sagemaker_job {
            TrainingJobName::parse(job)?;
        }
        let b = &self.batching;
        let checks = [
            (self.instances >= 1 && self.instances <= Self::MAX_INSTANCES, format!("instances must be 1 to {}", Self::MAX_INSTANCES)),
            (b.max_batch >= 1 && b.max_batch <= 64, "max batch size must be 1 to 64".to_string()),
            (b.max_wait_ms <= 100, "max wait must be 0 to 100 ms".to_string()),
            (b.queue_capacity >= 1 && b.queue_capacity <= 4096, "queue capacity must be 1 to 4096".to_string()),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(ApiError::Invalid(why)),
            None => Ok(()),
        }
    }
}

/// The SageMaker deploy form: CreateModel → CreateEndpointConfig → CreateEndpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerDeploySpec {
    pub name: String,
    /// The SageMaker training job whose model.tar.gz to deploy…
    pub training_job: String,
    /// …or a completed local job, whose artifact Sagedeck packs as
    /// model.tar.gz (weights, classes, code/inference.py) and uploads first.
    #[serde(default)]
    pub local_job: Option<i64>,
    /// Where that model.tar.gz goes: `s3://bucket/prefix` (a local job only).
    #[serde(default)]
    pub model_s3: String,
    /// Inference image URI; empty means the PyTorch inference image of the region.
    pub image: String,
    /// Execution role ARN; empty means the training job's role.
    pub role_arn: String,
    pub instance_type: String,
    pub instance_count: u32,
}

impl SageMakerDeploySpec {
    pub fn validate(&self) -> Result<(), ApiError> {
        EndpointName::parse(&self.name)?;
        match self.local_job {
            Some(_) => {
                if !crate::names::is_s3_uri(self.model_s3.trim()) {
                    return Err(ApiError::Invalid(format!(
                        "{:?} is not an S3 location for the packed model: give s3://bucket/prefix",
                        self.model_s3
                    )));
                }
                if self.role_arn.is_empty() {
                    return Err(ApiError::Invalid("a local job has no SageMaker role: choose the execution role the model runs as".into()));
                }
            }
            None if self.training_job.trim().is_empty() => {
                return Err(ApiError::Invalid("choose the training job whose model to deploy".into()))
            }
            None => {}
        }
        if !self.instance_type.starts_with("ml.") {
            return Err(ApiError::Invalid(format!(
                "{:?} is not a SageMaker instance type (they start with \"ml.\", e.g. ml.m5.large)",
                self.instance_type
            )));
        }
        if !(1..=10).contains(&self.instance_count) {
            return Err(ApiError::Invalid("instance count must be 1 to 10".into()));
        }
        if !self.role_arn.is_empty() && !self.role_arn.starts_with("arn:aws") {
            return Err(ApiError::Invalid(format!("{:?} is not a role ARN", self.role_arn)));
        }
        Ok(())
    }
}

/// A completed SageMaker training job that can be deployed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployableJob {
    pub name: String,
    pub model_artifact: String,
    pub role_arn: String,
    pub finished_at: Option<String>,
}

/// One class of an answer, best first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    pub index: usize,
    pub class: String,
    pub probability: f64,
}

/// The top `k` classes of one logit row, by softmax probability. Names come
/// from `classes` when it is as long as the row, else "class N".
pub fn top_k(logits: &[f32], classes: &[String], k: usize) -> Vec<ClassScore> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return Vec::new();
    }
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let mut scores: Vec<ClassScore> = exps
        .iter()
        .enumerate()
        .map(|(index, e)| ClassScore {
            index,
            class: match classes.get(index) {
                Some(name) if classes.len() == logits.len() => name.clone(),
                _ => format!("class {index}"),
            },
            probability: e / sum,
        })
        .collect();
    scores.sort_by(|a, b| b.probability.total_cmp(&a.probability).then(a.index.cmp(&b.index)));
    scores.truncate(k);
    scores
}

/// The verbose answer (`?top_k=N`): what the Test panel shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerboseAnswer {
    pub predictions: Vec<ClassScore>,
    /// Exactly what `Accept: application/json` returns: one logit row per image.
    pub logits: Vec<Vec<f32>>,
    /// The endpoint's answer body as it came.
    pub raw: String,
    pub total_latency_ms: f64,
    /// Decode, resize and forward, as the model container sees them (local
    /// endpoints; SageMaker reports it only as a CloudWatch metric).
    pub model_latency_ms: Option<f64>,
    /// Everything else: reading the request, queueing, batching, encoding.
    pub overhead_latency_ms: Option<f64>,
    /// How many requests shared the forward pass.
    pub batch_size: Option<u32>,
    pub image: Option<ImageFacts>,
}

/// What the decoder found in the upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageFacts {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub color: String,
    pub bytes: usize,
}

/// The image test bench: a labelled folder through an endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestBenchReport {
    pub folder: String,
    /// The folder's classes, named as the model names them (numeric prefix
    /// dropped, underscores as spaces), in the confusion matrix's order.
    pub classes: Vec<String>,
    /// The folders they come from (`003.digit_2`).
    #[serde(default)]
    pub class_folders: Vec<String>,
    pub images: u32,
    pub correct: u32,
    pub failed: Vec<(String, String)>,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<u32>>,
    /// Upper bounds of the latency bins in ms, and the count in each.
    pub latency_bins_ms: Vec<(f64, u32)>,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// The images it got wrong: `wrong_total` of them, the first ones in `wrong`.
    pub wrong: Vec<WrongImage>,
    #[serde(default)]
    pub wrong_total: u32,
    pub seconds: f64,
}

impl TestBenchReport {
    pub fn accuracy(&self) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            f64::from(self.correct) / f64::from(self.images)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WrongImage {
    pub path: String,
    pub truth: String,
    pub predicted: String,
    pub probability: f64,
    /// A small PNG as a data: URL.
    pub thumbnail: String,
}

/// The server's side (implemented in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait EndpointService: Send + Sync {
    async fn list(&self, query: list::EndpointQuery) -> Result<list::EndpointPage, ApiError>;
    /// Reads the SageMaker endpoints again now (the Refresh button).
    async fn refresh(&self) -> Result<(), ApiError>;
    async fn describe(&self, backend: Backend, name: &EndpointName) -> Result<EndpointDetail, ApiError>;
    async fn metrics(&self, backend: Backend, name: &EndpointName, window: MetricWindow) -> Result<EndpointMetrics, ApiError>;
    async fn deploy_local(&self, spec: LocalDeploySpec) -> Result<EndpointDetail, ApiError>;
    async fn deploy_sagemaker(&self, spec: SageMakerDeploySpec) -> Result<EndpointDetail, ApiError>;
    async fn delete(&self, backend: Backend, name: &EndpointName, with_config: bool) -> Result<(), ApiError>;
    async fn deployable_jobs(&self) -> Result<Vec<DeployableJob>, ApiError>;
    async fn test_bench(&self, backend: Backend, name: &EndpointName, folder: &str, limit: u32) -> Result<TestBenchReport, ApiError>;
    /// A local endpoint's versions and rollouts.
    async fn versions(&self, name: &EndpointName) -> Result<rollout::VersionsView, ApiError>;
    /// Loads the next version beside the live one and starts shifting traffic.
    async fn start_rollout(&self, spec: rollout::RolloutSpec) -> Result<rollout::VersionsView, ApiError>;
    /// Sends all traffic back to the live version and unloads the new one.
    async fn roll_back(&self, name: &EndpointName) -> Result<rollout::VersionsView, ApiError>;
    /// A labelled folder through the live version and a proposed one, side by side; nothing is routed to the proposed one.
    async fn shadow_test(&self, name: &EndpointName, source: rollout::VersionSource, folder: &str, limit: u32) -> Result<rollout::ShadowReport, ApiError>;
    /// A SageMaker endpoint's rollouts (their state refreshed from DescribeEndpoint) and alarms.
    async fn sagemaker_rollouts(&self, name: &EndpointName) -> Result<guardrails::SageMakerRollouts, ApiError>;
    /// UpdateEndpoint to a new configuration with a blue/green deployment configuration.
    async fn start_sagemaker_rollout(&self, spec: guardrails::SageMakerRolloutSpec) -> Result<guardrails::SageMakerRollouts, ApiError>;
    /// UpdateEndpoint back to the configuration before the last completed rollout.
    async fn roll_back_sagemaker(&self, name: &EndpointName) -> Result<guardrails::SageMakerRollouts, ApiError>;
    /// An endpoint's alarms: CloudWatch's for SageMaker, Sagedeck's own for local endpoints.
    async fn alarms(&self, backend: Backend, name: &EndpointName) -> Result<Vec<guardrails::EndpointAlarm>, ApiError>;
    /// Creates (or replaces) the endpoint's alarm of that kind.
    async fn put_alarm(&self, backend: Backend, spec: guardrails::AlarmSpec) -> Result<Vec<guardrails::EndpointAlarm>, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Endpoints = std::sync::Arc<dyn EndpointService>;

/// A page of the endpoint list, from SQLite: SageMaker endpoints as the
/// poller last read them (no AWS call per view).
#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/list", input = leptos::server_fn::codec::Json)]
pub async fn list_endpoints(query: list::EndpointQuery) -> Result<list::EndpointPage, ApiError> {
    query.validate()?;
    crate::error::service::<Endpoints>()?.list(query).await
}

/// Lists the account's SageMaker endpoints again now, then answers the page.
#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/refresh", input = leptos::server_fn::codec::Json)]
pub async fn refresh_endpoints(query: list::EndpointQuery) -> Result<list::EndpointPage, ApiError> {
    query.validate()?;
    let service = crate::error::service::<Endpoints>()?;
    service.refresh().await?;
    service.list(query).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/describe")]
pub async fn describe_endpoint(backend: Backend, name: EndpointName) -> Result<EndpointDetail, ApiError> {
    crate::error::service::<Endpoints>()?.describe(backend, &name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/metrics")]
pub async fn get_endpoint_metrics(backend: Backend, name: EndpointName, window: MetricWindow) -> Result<EndpointMetrics, ApiError> {
    crate::error::service::<Endpoints>()?.metrics(backend, &name, window).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/local/deploy", input = leptos::server_fn::codec::Json)]
pub async fn deploy_local_endpoint(spec: LocalDeploySpec) -> Result<EndpointDetail, ApiError> {
    spec.validate()?;
    crate::error::service::<Endpoints>()?.deploy_local(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/sagemaker/deploy", input = leptos::server_fn::codec::Json)]
pub async fn deploy_sagemaker_endpoint(spec: SageMakerDeploySpec) -> Result<EndpointDetail, ApiError> {
    spec.validate()?;
    crate::error::service::<Endpoints>()?.deploy_sagemaker(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/delete")]
pub async fn delete_endpoint(backend: Backend, name: EndpointName, with_config: bool) -> Result<(), ApiError> {
    crate::error::service::<Endpoints>()?.delete(backend, &name, with_config).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/sagemaker/deployable")]
pub async fn deployable_training_jobs() -> Result<Vec<DeployableJob>, ApiError> {
    crate::error::service::<Endpoints>()?.deployable_jobs().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/versions")]
pub async fn endpoint_versions(name: EndpointName) -> Result<rollout::VersionsView, ApiError> {
    crate::error::service::<Endpoints>()?.versions(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/rollout/start", input = leptos::server_fn::codec::Json)]
pub async fn start_rollout(spec: rollout::RolloutSpec) -> Result<rollout::VersionsView, ApiError> {
    spec.validate()?;
    crate::error::service::<Endpoints>()?.start_rollout(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/shadow", input = leptos::server_fn::codec::Json)]
pub async fn shadow_test(name: EndpointName, source: rollout::VersionSource, folder: String, limit: u32) -> Result<rollout::ShadowReport, ApiError> {
    if folder.trim().is_empty() {
        return Err(ApiError::Invalid("give the labelled folder to send through both versions".into()));
    }
    crate::error::service::<Endpoints>()?.shadow_test(&name, source, folder.trim(), limit.clamp(1, 2000)).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/rollout/rollback")]
pub async fn roll_back_rollout(name: EndpointName) -> Result<rollout::VersionsView, ApiError> {
    crate::error::service::<Endpoints>()?.roll_back(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/sagemaker/rollouts")]
pub async fn sagemaker_rollouts(name: EndpointName) -> Result<guardrails::SageMakerRollouts, ApiError> {
    crate::error::service::<Endpoints>()?.sagemaker_rollouts(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/sagemaker/rollout/start", input = leptos::server_fn::codec::Json)]
pub async fn start_sagemaker_rollout(spec: guardrails::SageMakerRolloutSpec) -> Result<guardrails::SageMakerRollouts, ApiError> {
    // The fleet's size is checked again once the live one is known.
    spec.plan(spec.instance_count.unwrap_or(2))?;
    crate::error::service::<Endpoints>()?.start_sagemaker_rollout(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/sagemaker/rollout/rollback")]
pub async fn roll_back_sagemaker(name: EndpointName) -> Result<guardrails::SageMakerRollouts, ApiError> {
    crate::error::service::<Endpoints>()?.roll_back_sagemaker(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/alarms")]
pub async fn endpoint_alarms(backend: Backend, name: EndpointName) -> Result<Vec<guardrails::EndpointAlarm>, ApiError> {
    crate::error::service::<Endpoints>()?.alarms(backend, &name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/alarms/put", input = leptos::server_fn::codec::Json)]
pub async fn put_endpoint_alarm(backend: Backend, spec: guardrails::AlarmSpec) -> Result<Vec<guardrails::EndpointAlarm>, ApiError> {
    spec.validate()?;
    crate::error::service::<Endpoints>()?.put_alarm(backend, spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "endpoints/testbench")]
pub async fn run_test_bench(backend: Backend, name: EndpointName, folder: String, limit: u32) -> Result<TestBenchReport, ApiError> {
    if folder.trim().is_empty() {
        return Err(ApiError::Invalid("give the labelled folder to run through the endpoint".into()));
    }
    crate::error::service::<Endpoints>()?.test_bench(backend, &name, folder.trim(), limit.clamp(1, 2000)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_covers_its_first_minutes_and_this_second() {
        let now = 1_764_600_000 + 37; // 37 s into a minute
        let (start, end) = MetricWindow::Hour.range(now);
        assert!(start <= now - 3600 && end > now, "{start}..{end}");
        assert_eq!((end - start) / 60, 61);
        assert_eq!(start % 60, 0);
        let (start, end) = MetricWindow::Day.range(now);
        assert!(start <= now - 86_400 && end > now && (end - start) % 900 == 0);
    }

    #[test]
    fn top_k_is_a_softmax_sorted_best_first() {
        let classes: Vec<String> = ["cat", "dog", "fox"].map(String::from).to_vec();
        let top = top_k(&[1.0, 3.0, 2.0], &classes, 2);
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].class.as_str(), top[1].class.as_str()), ("dog", "fox"));
        let all: f64 = top_k(&[1.0, 3.0, 2.0], &classes, 9).iter().map(|s| s.probability).sum();
        assert!((all - 1.0).abs() < 1e-9);
        assert!((top[0].probability - 0.665_240_955).abs() < 1e-6);
        // Huge logits do not overflow: the maximum is subtracted first.
        let top = top_k(&[1000.0, 999.0], &[], 1);
        assert_eq!(top[0].class, "class 0");
        assert!(top[0].probability > 0.7);
        assert!(top_k(&[], &classes, 3).is_empty());
    }

    #[test]
    fn local_deploy_limits() {
        let mut spec = LocalDeploySpec { name: "e".into(), job_id: 1, sagemaker_job: None, instances: 2, batching: LocalDeploySpec::DEFAULT_BATCHING };
        assert!(spec.validate().is_ok());
        spec.instances = 0;
        assert!(spec.validate().unwrap_err().message().contains("instances"));
        spec.instances = 1;
        spec.batching.max_batch = 65;
        assert!(spec.validate().unwrap_err().message().contains("batch"));
        spec.batching.max_batch = 16;
        spec.sagemaker_job = Some("bad name".into());
        assert!(spec.validate().unwrap_err().message().contains("SageMaker training job"));
    }

    #[test]
    fn sagemaker_deploy_checks_instance_type_and_count() {
        let mut spec = SageMakerDeploySpec {
            name: "dogs".into(),
            training_job: "job".into(),
            local_job: None,
            model_s3: String::new(),
            image: String::new(),
            role_arn: String::new(),
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
        };
        assert!(spec.validate().is_ok());
        // A local job's model needs a place in S3 and a role to run as.
        let local = SageMakerDeploySpec { local_job: Some(3), training_job: String::new(), ..spec.clone() };
        assert!(local.validate().unwrap_err().message().contains("S3 location"));
        let local = SageMakerDeploySpec { model_s3: "s3://models/shapes".into(), ..local };
        assert!(local.validate().unwrap_err().message().contains("role"));
        let local = SageMakerDeploySpec { role_arn: "arn:aws:iam::123456789012:role/SageMakerRole".into(), ..local };
        assert!(local.validate().is_ok());
        spec.instance_type = "m5.large".into();
        assert!(spec.validate().unwrap_err().message().contains("ml."));
        spec.instance_type = "ml.m5.large".into();
        spec.instance_count = 0;
        assert!(spec.validate().is_err());
    }
}
