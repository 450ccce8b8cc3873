//! SageMaker training jobs: the launch spec and its checks (made before any
//! call), the equivalent AWS CLI command, the types the pages show, and the
//! server functions. Pages read jobs from the server's cache, which one
//! background poller keeps current; they never call AWS per view.

use super::spec::{Architecture, FieldError};
use crate::names::{is_role_arn, is_s3_uri, TrainingJobName};
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What a training job runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingCode {
    /// Sagedeck's `train.py` (server/sagemaker/), packed as sourcedir.tar.gz
    /// next to the job's output and named in `sagemaker_program`, as the
    /// SageMaker Python SDK's PyTorch estimator does.
    #[default]
    Sagedeck,
    /// The image's own entry point (a custom container); nothing is uploaded.
    Image,
}

/// One metric SageMaker reads from the job's log with a regex (the first
/// group is the value): published to CloudWatch per host, the last value
/// reported as the job's final metric, and what a tuning job optimises.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricDefinition {
    pub name: &'static str,
    pub regex: &'static str,
    /// Lower is better (a loss) or higher (an accuracy): a tuning objective's direction.
    pub minimize: bool,
}

/// The metrics `train.py` prints, one `sagedeck.metrics` line per epoch and
/// one after the test (see train.py): the definitions every job with
/// Sagedeck's code gets.
pub const METRIC_DEFINITIONS: [MetricDefinition; 6] = [
    MetricDefinition { name: "train:loss", regex: "sagedeck\\.metrics epoch=[0-9]+ train_loss=([0-9.eE+-]+)", minimize: true },
    MetricDefinition { name: "train:accuracy", regex: "sagedeck\\.metrics epoch=[0-9]+ .*train_accuracy=([0-9.eE+-]+)", minimize: false },
    MetricDefinition { name: "valid:loss", regex: "sagedeck\\.metrics epoch=[0-9]+ .*valid_loss=([0-9.eE+-]+)", minimize: true },
    MetricDefinition { name: "valid:accuracy", regex: "sagedeck\\.metrics epoch=[0-9]+ .*valid_accuracy=([0-9.eE+-]+)", minimize: false },
    MetricDefinition { name: "test:loss", regex: "sagedeck\\.metrics test_loss=([0-9.eE+-]+)", minimize: true },
    MetricDefinition { name: "test:accuracy", regex: "sagedeck\\.metrics test_loss=[0-9.eE+-]+ test_accuracy=([0-9.eE+-]+)", minimize: false },
];

/// The container log level sent as `sagemaker_container_log_level` (logging.INFO).
pub const CONTAINER_LOG_LEVEL: u32 = 20;
/// Where SageMaker keeps a job's checkpoints on each instance.
pub const CHECKPOINT_LOCAL_PATH: &str = "/opt/ml/checkpoints";

/// What the launch form sends: the seeds' estimator arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerJobSpec {
    pub name: String,
    /// Sagedeck's train.py (the default) or the image's own entry point.
    #[serde(default)]
    pub code: TrainingCode,
    pub image: String,
    pub role_arn: String,
    pub instance_type: String,
    pub instance_count: u32,
    pub volume_gb: u32,
    pub max_runtime_seconds: u32,
    /// Managed spot training; then `max_wait_seconds` must cover the runtime.
    pub spot: bool,
    pub max_wait_seconds: Option<u32>,
    pub learning_rate: f64,
    pub batch_size: u32,
    pub epochs: u32,
    /// train.py's model and input size (`--arch`, `--image-size`) and early
    /// stopping (`--patience`); sent only with Sagedeck's code.
    #[serde(default = "default_architecture")]
    pub architecture: Architecture,
    #[serde(default = "default_image_size")]
    pub image_size: u32,
    #[serde(default = "default_patience")]
    pub patience: u32,
    /// Free hyperparameters, sent as strings as SageMaker takes them.
    pub extra_hyperparameters: Vec<(String, String)>,
    pub train_s3: String,
    pub valid_s3: String,
    pub test_s3: String,
    pub output_s3: String,
}

fn default_architecture() -> Architecture {
    Architecture::Resnet50
}
fn default_image_size() -> u32 {
    224
}
fn default_patience() -> u32 {
    3
}

impl SageMakerJobSpec {
    /// The seeds' defaults: ResNet-50 at 224 px on ml.m5.xlarge, 10 GB,
    /// 1 hour, lr 0.001, batch 32, 5 epochs.
    pub fn example(region: &str, role_arn: &str) -> Self {
        SageMakerJobSpec {
            name: String::new(),
            code: TrainingCode::Sagedeck,
            image: pytorch_training_image(region),
            role_arn: role_arn.to_string(),
            instance_type: "ml.m5.xlarge".into(),
            instance_count: 1,
            volume_gb: 10,
            max_runtime_seconds: 3600,
            spot: false,
            max_wait_seconds: None,
            learning_rate: 0.001,
            batch_size: 32,
            epochs: 5,
            architecture: default_architecture(),
            image_size: default_image_size(),
            patience: default_patience(),
            extra_hyperparameters: Vec::new(),
            train_s3: String::new(),
            valid_s3: String::new(),
            test_s3: String::new(),
            output_s3: String::new(),
        }
    }

    /// Every problem at once, each beside its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| errors.push(FieldError { field, message });
        if let Err(e) = TrainingJobName::parse(&self.name) {
            fail("name", e.message().to_string());
        }
        if !(self.image.contains('/') && !self.image.contains(char::is_whitespace)) {
            fail("image", "Give the training image's URI (account.dkr.ecr.region.amazonaws.com/repository:tag).".into());
        } else if self.code == TrainingCode::Image && is_framework_training_image(&self.image) {
            fail(
                "image",
                "This AWS Deep Learning Containers image has no entry point of its own: it runs the script named in \
                 sagemaker_program, and with none the job fails in its first minute. Run Sagedeck's train.py with it, \
                 or give an image that trains by itself."
                    .into(),
            );
        }
        if !is_role_arn(&self.role_arn) {
            fail("role_arn", "Choose an IAM role ARN (arn:aws:iam::123456789012:role/…) that SageMaker may assume.".into());
        }
        if !self.instance_type.starts_with("ml.") {
            fail("instance_type", "SageMaker instance types start with \"ml.\" (ml.m5.xlarge).".into());
        }
        if !(1..=20).contains(&self.instance_count) {
            fail("instance_count", "Use 1 instance (single) to 20 (multi-instance).".into());
        }
        if !(1..=16_384).contains(&self.volume_gb) {
            fail("volume_gb", "The volume must be 1 to 16384 GB.".into());
        }
        if !(1..=2_419_200).contains(&self.max_runtime_seconds) {
            fail("max_runtime_seconds", "The maximum runtime must be 1 s to 28 days (2419200 s).".into());
        }
        if self.spot && self.max_wait_seconds.is_none_or(|w| w < self.max_runtime_seconds) {
            fail("max_wait_seconds", "Spot training needs a maximum wait at least as long as the maximum runtime.".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 10.0) {
            fail("learning_rate", "The learning rate must be above 0 and below 10.".into());
        }
        if !(1..=4096).contains(&self.batch_size) {
            fail("batch_size", "The batch size must be 1 to 4096.".into());
        }
        if !(1..=10_000).contains(&self.epochs) {
            fail("epochs", "Epochs must be 1 to 10000.".into());
        }
        if self.code == TrainingCode::Sagedeck {
            if !(16..=1024).contains(&self.image_size) {
                fail("image_size", "The image size must be 16 to 1024 pixels.".into());
            }
            if self.patience > 1000 {
                fail("patience", "Patience must be 0 (never stop early) to 1000 epochs.".into());
            }
        }
        let mut seen = vec!["lr", "batch-size", "epochs"];
        if self.code == TrainingCode::Sagedeck {
            seen.extend(["arch", "image-size", "patience"]);
        }
        for (k, v) in &self.extra_hyperparameters {
            if k.trim().is_empty() || k.len() > 256 || v.len() > 2500 {
                fail("extra_hyperparameters", format!("Hyperparameter {k:?}: keys are 1 to 256 characters, values up to 2500."));
            } else if self.code == TrainingCode::Sagedeck && k.starts_with("sagemaker_") {
                fail("extra_hyperparameters", format!("Hyperparameter {k:?} is set by Sagedeck for its train.py; leave it out."));
            } else if seen.contains(&k.as_str()) {
                fail("extra_hyperparameters", format!("Hyperparameter {k:?} is given twice."));
            } else {
                seen.push(k);
            }
        }
        if seen.len() + if self.code == TrainingCode::Sagedeck { 4 } else { 0 } > 100 {
            fail("extra_hyperparameters", "SageMaker takes at most 100 hyperparameters.".into());
        }
        for (field, uri, required) in [("train_s3", &self.train_s3, true), ("valid_s3", &self.valid_s3, false), ("test_s3", &self.test_s3, false), ("output_s3", &self.output_s3, true)] {
            if (required || !uri.is_empty()) && !is_s3_uri(uri) {
                fail(field, "Give an S3 URI: s3://bucket/prefix (bucket names are 3 to 63 lower-case letters, digits, dots or hyphens).".into());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The hyperparameters as SageMaker receives them (all strings), named as
    /// the seeds' train script reads them. With Sagedeck's code, also what
    /// the container's toolkit needs to fetch and run it, encoded as the
    /// SageMaker Python SDK encodes them (JSON strings: `"train.py"` in quotes).
    pub fn hyperparameters(&self, region: &str) -> Vec<(String, String)> {
        let mut h = vec![
            ("lr".to_string(), format!("{}", self.learning_rate)),
            ("batch-size".to_string(), self.batch_size.to_string()),
            ("epochs".to_string(), self.epochs.to_string()),
        ];
        if self.code == TrainingCode::Sagedeck {
            let quoted = |v: &str| serde_json::Value::String(v.to_string()).to_string();
            h.extend([
                ("arch".to_string(), self.architecture.as_str().to_string()),
                ("image-size".to_string(), self.image_size.to_string()),
                ("patience".to_string(), self.patience.to_string()),
                ("sagemaker_program".to_string(), quoted("train.py")),
                ("sagemaker_submit_directory".to_string(), quoted(&self.source_dir_uri())),
                ("sagemaker_region".to_string(), quoted(region)),
                ("sagemaker_container_log_level".to_string(), CONTAINER_LOG_LEVEL.to_string()),
            ]);
        }
        h.extend(self.extra_hyperparameters.iter().cloned());
        h
    }

    /// Where Sagedeck's code goes: beside the job's output, as the Python
    /// SDK puts it (`<output>/<job>/source/sourcedir.tar.gz`).
    pub fn source_dir_uri(&self) -> String {
        format!("{}/{}/source/sourcedir.tar.gz", self.output_s3.trim_end_matches('/'), self.name)
    }

    /// Where managed spot training keeps the checkpoints it resumes from.
    pub fn checkpoint_uri(&self) -> String {
        format!("{}/{}/checkpoints", self.output_s3.trim_end_matches('/'), self.name)
    }

    /// The metric definitions the job sends: train.py's lines with Sagedeck's
    /// code, none for an image's own entry point.
    pub fn metric_definitions(&self) -> &'static [MetricDefinition] {
        match self.code {
            TrainingCode::Sagedeck => &METRIC_DEFINITIONS,
            TrainingCode::Image => &[],
        }
    }

    pub fn channels(&self) -> Vec<(&'static str, &str)> {
        [("train", self.train_s3.as_str()), ("valid", self.valid_s3.as_str()), ("test", self.test_s3.as_str())]
            .into_iter()
            .filter(|(_, uri)| !uri.is_empty())
            .collect()
    }

    /// The CreateTrainingJob request in the API's own shape.
    pub fn request_json(&self, region: &str) -> serde_json::Value {
        let mut request = serde_json::json!({
            "TrainingJobName": self.name,
            "AlgorithmSpecification": { "TrainingImage": self.image, "TrainingInputMode": "File" },
            "RoleArn": self.role_arn,
            "HyperParameters": {},
            "InputDataConfig": self.channels().iter().map(|(name, uri)| serde_json::json!({
                "ChannelName": name,
                "DataSource": { "S3DataSource": { "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated" } }
            })).collect::<Vec<_>>(),
            "OutputDataConfig": { "S3OutputPath": self.output_s3 },
            "ResourceConfig": { "InstanceType": self.instance_type, "InstanceCount": self.instance_count, "VolumeSizeInGB": self.volume_gb },
            "StoppingCondition": { "MaxRuntimeInSeconds": self.max_runtime_seconds },
            "EnableManagedSpotTraining": self.spot,
        });
        let definitions = self.metric_definitions();
        if !definitions.is_empty() {
            request["AlgorithmSpecification"]["MetricDefinitions"] =
                definitions.iter().map(|d| serde_json::json!({ "Name": d.name, "Regex": d.regex })).collect::<Vec<_>>().into();
            request["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] = true.into();
        }
        if let (true, Some(wait)) = (self.spot, self.max_wait_seconds) {
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = wait.into();
            request["CheckpointConfig"] = serde_json::json!({ "S3Uri": self.checkpoint_uri(), "LocalPath": CHECKPOINT_LOCAL_PATH });
        }
        // Hyperparameter values are strings in the API.
        request["HyperParameters"] = self
            .hyperparameters(region)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        request
    }

    /// What the operator would type to make the same calls: with Sagedeck's
    /// code, its upload first (the console serves the same tarball at
    /// `/downloads/sagemaker/sourcedir.tar.gz`).
    pub fn cli_command(&self, region: &str) -> String {
        let json = serde_json::to_string_pretty(&self.request_json(region)).unwrap_or_default().replace('\'', "'\\''");
        let create = format!("aws sagemaker create-training-job --cli-input-json '{json}'");
        match self.code {
            TrainingCode::Sagedeck => format!(
                "# Sagedeck's train.py and inference.py, as the console packs them:\n\
                 curl -o sourcedir.tar.gz http://CONSOLE{SOURCE_DIR_DOWNLOAD}\n\
                 aws s3 cp sourcedir.tar.gz {}\n{create}",
                self.source_dir_uri()
            ),
            TrainingCode::Image => create,
        }
    }
}

/// What a SageMaker job's hyperparameters say of the three a local job
/// shares with it: (learning rate, batch size, epochs), each if present and
/// readable.
pub fn shared_hyperparameters(hyperparameters: &[(String, String)]) -> (Option<f64>, Option<u32>, Option<u32>) {
    let get = |key: &str| hyperparameters.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().trim_matches('"').to_string());
    (
        get("lr").or_else(|| get("learning-rate")).and_then(|v| v.parse().ok()),
        get("batch-size").or_else(|| get("batch_size")).and_then(|v| v.parse().ok()),
        get("epochs").and_then(|v| v.parse().ok()),
    )
}

/// A SageMaker job name for a local job's spec: its name reduced to
/// SageMaker's alphabet, with the local id, at most 63 characters.
pub fn sagemaker_name_for_local(id: i64, name: &str) -> String {
    let mut cleaned = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && cleaned.ends_with('-')) {
            cleaned.push(c);
        }
    }
    let cleaned = cleaned.trim_matches('-');
    let mut out = format!("local-{id}-{cleaned}");
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

/// The console's route that serves the code a job with Sagedeck's code runs.
pub const SOURCE_DIR_DOWNLOAD: &str = "/downloads/sagemaker/sourcedir.tar.gz";

/// The AWS Deep Learning Containers PyTorch training image of a region.
pub fn pytorch_training_image(region: &str) -> String {
    format!("763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:2.5-cpu-py311")
}

/// The AWS Deep Learning Containers training images: framework containers
/// whose entry point runs the script named in `sagemaker_program` (they have
/// no training program of their own).
const FRAMEWORK_TRAINING_REPOSITORIES: [&str; 8] = [
    "pytorch-training",
    "pytorch-training-neuronx",
    "tensorflow-training",
    "mxnet-training",
    "huggingface-pytorch-training",
    "huggingface-tensorflow-training",
    "huggingface-pytorch-trcomp-training",
    "autogluon-training",
];

/// Whether an image URI is one of the framework training containers
/// (`763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311`).
pub fn is_framework_training_image(image: &str) -> bool {
    let Some((registry, rest)) = image.split_once('/') else { return false };
    let repository = rest.split([':', '@']).next().unwrap_or_default();
    registry.contains(".dkr.ecr.") && FRAMEWORK_TRAINING_REPOSITORIES.contains(&repository)
}

/// One row of the SageMaker half of the job list, from the cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SageMakerJobSummary {
    pub name: String,
    pub status: String,
    pub secondary_status: Option<String>,
    pub instance_type: String,
    pub instance_count: i32,
    pub created_at: Option<String>,
    pub ended_at: Option<String>,
    pub training_seconds: Option<i64>,
    pub billable_seconds: Option<i64>,
    pub final_metrics: Vec<(String, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusTransition {
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub message: Option<String>,
}

/// Everything DescribeTrainingJob tells, as cached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerJobDetail {
    pub summary: SageMakerJobSummary,
    pub arn: Option<String>,
    pub image: Option<String>,
    pub role_arn: Option<String>,
    pub hyperparameters: Vec<(String, String)>,
    pub channels: Vec<(String, String)>,
    pub output_path: Option<String>,
    pub model_artifact: Option<String>,
    pub volume_gb: Option<i32>,
    pub max_runtime_seconds: Option<i32>,
    pub spot: bool,
    pub transitions: Vec<StatusTransition>,
    pub failure_reason: Option<String>,
    /// The job's MetricDefinitions: (name, regex).
    #[serde(default)]
    pub metric_definitions: Vec<(String, String)>,
    /// Its CheckpointConfig's S3 URI, when it has one.
    #[serde(default)]
    pub checkpoint_s3: Option<String>,
}

impl SageMakerJobDetail {
    /// Whether StopTrainingJob applies: the job has not ended.
    pub fn can_stop(&self) -> bool {
        self.summary.status == "InProgress"
    }
}

/// One metric of one host over a job: (epoch, value) points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetricSeries {
    pub name: String,
    pub host: String,
    pub points: Vec<(f64, f64)>,
}

/// A job's training metrics, as its MetricDefinitions read them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobMetrics {
    pub series: Vec<TrainingMetricSeries>,
    /// The last value of each metric (what FinalMetricDataList reports).
    pub last: Vec<(String, f64)>,
    /// Where the points come from.
    pub source: String,
    /// Why there are none, when there are none.
    pub note: Option<String>,
}

/// The cache's freshness, defined with the lists that all show it.
pub use crate::list_view::CacheState;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerJobList {
    pub jobs: Vec<SageMakerJobSummary>,
    pub cache: CacheState,
    /// Why there are none: AWS not configured.
    pub note: Option<String>,
}

/// One CloudWatch log line of one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostLogLine {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// The stream's host part: algo-1-1700000000.
    pub host: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobLogs {
    pub hosts: Vec<String>,
    pub lines: Vec<HostLogLine>,
    /// Pass back as `after` to get only newer lines.
    pub last_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchDefaults {
    /// Set when AWS is not configured: the reason, shown instead of the form.
    pub not_configured: Option<String>,
    pub region: String,
    /// Roles whose trust policy lets sagemaker.amazonaws.com assume them.
    pub roles: Vec<String>,
    pub spec: SageMakerJobSpec,
}

/// AWS calls this process made, per operation, since it started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwsCallCounts {
    pub total: u64,
    pub per_operation: Vec<(String, u64)>,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait SageMakerTrainingService: Send + Sync {
    async fn list(&self, status: Option<String>, name_contains: Option<String>) -> Result<SageMakerJobList, ApiError>;
    async fn describe(&self, name: &TrainingJobName) -> Result<SageMakerJobDetail, ApiError>;
    async fn launch(&self, spec: SageMakerJobSpec) -> Result<SageMakerJobDetail, ApiError>;
    async fn logs(&self, name: &TrainingJobName, after: i64) -> Result<JobLogs, ApiError>;
    async fn launch_defaults(&self) -> Result<LaunchDefaults, ApiError>;
    async fn refresh(&self) -> Result<CacheState, ApiError>;
    fn aws_calls(&self) -> AwsCallCounts;
    async fn metrics(&self, name: &TrainingJobName) -> Result<JobMetrics, ApiError>;
    async fn stop(&self, name: &TrainingJobName) -> Result<SageMakerJobDetail, ApiError>;
}

#[cfg(feature = "ssr")]
pub type SageMakerTraining = std::sync::Arc<dyn SageMakerTrainingService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/list")]
pub async fn list_sagemaker_jobs(status: Option<String>, name_contains: Option<String>) -> Result<SageMakerJobList, ApiError> {
    crate::error::service::<SageMakerTraining>()?.list(status.filter(|s| !s.is_empty()), name_contains.filter(|s| !s.is_empty())).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/describe")]
pub async fn describe_sagemaker_job(name: TrainingJobName) -> Result<SageMakerJobDetail, ApiError> {
    crate::error::service::<SageMakerTraining>()?.describe(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/launch", input = leptos::server_fn::codec::Json)]
pub async fn launch_sagemaker_job(spec: SageMakerJobSpec) -> Result<SageMakerJobDetail, ApiError> {
    if let Err(errors) = spec.validate() {
        return Err(ApiError::Invalid(errors.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(" ")));
    }
    crate::error::service::<SageMakerTraining>()?.launch(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/logs")]
pub async fn sagemaker_job_logs(name: TrainingJobName, after: i64) -> Result<JobLogs, ApiError> {
    crate::error::service::<SageMakerTraining>()?.logs(&name, after).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/defaults")]
pub async fn sagemaker_launch_defaults() -> Result<LaunchDefaults, ApiError> {
    crate::error::service::<SageMakerTraining>()?.launch_defaults().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/metrics")]
pub async fn sagemaker_job_metrics(name: TrainingJobName) -> Result<JobMetrics, ApiError> {
    crate::error::service::<SageMakerTraining>()?.metrics(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/stop")]
pub async fn stop_sagemaker_job(name: TrainingJobName) -> Result<SageMakerJobDetail, ApiError> {
    crate::error::service::<SageMakerTraining>()?.stop(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/sagemaker/refresh")]
pub async fn refresh_sagemaker_jobs() -> Result<CacheState, ApiError> {
    crate::error::service::<SageMakerTraining>()?.refresh().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "aws/calls")]
pub async fn get_aws_call_counts() -> Result<AwsCallCounts, ApiError> {
    Ok(crate::error::service::<SageMakerTraining>()?.aws_calls())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> SageMakerJobSpec {
        SageMakerJobSpec {
            name: "dog-breeds-1".into(),
            train_s3: "s3://dogs/train".into(),
            valid_s3: "s3://dogs/valid".into(),
            output_s3: "s3://dogs/output".into(),
            ..SageMakerJobSpec::example("us-east-1", "arn:aws:iam::123456789012:role/service-role/SageMakerRole")
        }
    }

    fn fields(spec: &SageMakerJobSpec) -> Vec<&'static str> {
        spec.validate().err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn the_seeds_job_is_valid_and_every_bad_field_is_named() {
        assert_eq!(fields(&good()), Vec::<&str>::new());
        let bad = SageMakerJobSpec {
            name: "dog_breeds".into(),
            code: TrainingCode::Sagedeck,
            image: "".into(),
            role_arn: "arn:aws:iam::123:role/x".into(),
            instance_type: "m5.xlarge".into(),
            instance_count: 0,
            volume_gb: 0,
            max_runtime_seconds: 0,
            spot: true,
            max_wait_seconds: None,
            learning_rate: 0.0,
            batch_size: 0,
            epochs: 0,
            architecture: Architecture::Resnet18,
            image_size: 8,
            patience: 5000,
            extra_hyperparameters: vec![("lr".into(), "1".into())],
            train_s3: "dogs/train".into(),
            valid_s3: "s3://Dogs/valid".into(),
            test_s3: "".into(),
            output_s3: "s3://x".into(),
        };
        assert_eq!(
            fields(&bad),
            [
                "name", "image", "role_arn", "instance_type", "instance_count", "volume_gb", "max_runtime_seconds",
                "max_wait_seconds", "learning_rate", "batch_size", "epochs", "image_size", "patience", "extra_hyperparameters", "train_s3",
                "valid_s3", "output_s3"
            ]
        );
    }

    #[test]
    fn the_request_has_string_hyperparameters_channels_and_the_cli_equivalent() {
        let mut spec = good();
        spec.instance_count = 4;
        spec.extra_hyperparameters = vec![("momentum".into(), "0.9".into())];
        let r = spec.request_json("eu-west-1");
        assert_eq!(r["HyperParameters"]["lr"], "0.001");
        assert_eq!(r["HyperParameters"]["batch-size"], "32");
        assert_eq!(r["HyperParameters"]["momentum"], "0.9");
        assert_eq!(r["ResourceConfig"]["InstanceCount"], 4);
        assert_eq!(r["InputDataConfig"].as_array().unwrap().len(), 2);
        assert_eq!(r["InputDataConfig"][1]["ChannelName"], "valid");
        assert!(r["StoppingCondition"].get("MaxWaitTimeInSeconds").is_none());
        assert!(r.get("CheckpointConfig").is_none());
        let cli = spec.cli_command("eu-west-1");
        assert!(cli.contains("aws sagemaker create-training-job --cli-input-json '{"));
        assert!(cli.contains("\"TrainingJobName\": \"dog-breeds-1\""));
        assert!(cli.contains("aws s3 cp sourcedir.tar.gz s3://dogs/output/dog-breeds-1/source/sourcedir.tar.gz"));
    }

    /// What the PyTorch container's toolkit needs to find and run train.py,
    /// encoded as the SageMaker Python SDK encodes it (sagemaker-training
    /// json.loads every value, falling back to the raw text).
    #[test]
    fn sagedecks_code_is_named_where_the_toolkit_looks_for_it() {
        let r = good().request_json("eu-west-1");
        let h = &r["HyperParameters"];
        assert_eq!(h["sagemaker_program"], "\"train.py\"");
        assert_eq!(h["sagemaker_submit_directory"], "\"s3://dogs/output/dog-breeds-1/source/sourcedir.tar.gz\"");
        assert_eq!(h["sagemaker_region"], "\"eu-west-1\"");
        assert_eq!(h["sagemaker_container_log_level"], "20");
        assert_eq!((h["arch"].as_str(), h["image-size"].as_str(), h["patience"].as_str()), (Some("resnet50"), Some("224"), Some("3")));
        let definitions = r["AlgorithmSpecification"]["MetricDefinitions"].as_array().unwrap();
        assert_eq!(definitions.len(), 6);
        assert_eq!(definitions[2], serde_json::json!({ "Name": "valid:loss", "Regex": "sagedeck\\.metrics epoch=[0-9]+ .*valid_loss=([0-9.eE+-]+)" }));
        // An image with its own entry point gets none of it.
        let own = SageMakerJobSpec { code: TrainingCode::Image, image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mine:1".into(), ..good() };
        assert_eq!(own.validate(), Ok(()));
        let r = own.request_json("eu-west-1");
        assert!(r["HyperParameters"].get("sagemaker_program").is_none() && r["HyperParameters"].get("arch").is_none());
        assert!(r["AlgorithmSpecification"].get("MetricDefinitions").is_none());
        assert!(!own.cli_command("eu-west-1").contains("aws s3 cp"));
        // Spot training checkpoints beside the output, where train.py resumes from.
        let spot = SageMakerJobSpec { spot: true, max_wait_seconds: Some(7200), ..good() };
        assert_eq!(
            spot.request_json("eu-west-1")["CheckpointConfig"],
            serde_json::json!({ "S3Uri": "s3://dogs/output/dog-breeds-1/checkpoints", "LocalPath": "/opt/ml/checkpoints" })
        );
    }

    #[test]
    fn a_framework_image_without_sagedecks_code_is_refused_in_words() {
        let spec = SageMakerJobSpec { code: TrainingCode::Image, ..good() };
        let errors = spec.validate().unwrap_err();
        assert_eq!(errors[0].field, "image");
        assert!(errors[0].message.contains("no entry point of its own"), "{}", errors[0].message);
        assert!(is_framework_training_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311"));
        assert!(is_framework_training_image("763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-training@sha256:ab"));
        assert!(!is_framework_training_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:latest"));
        assert!(!is_framework_training_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"));
        // Sagedeck sets the toolkit's own hyperparameters; a spec may not override them.
        let clash = SageMakerJobSpec { extra_hyperparameters: vec![("sagemaker_program".into(), "x.py".into())], ..good() };
        assert_eq!(clash.validate().unwrap_err()[0].field, "extra_hyperparameters");
    }

    #[test]
    fn parity_helpers_carry_the_shared_hyperparameters_and_make_valid_names() {
        let hp = vec![("batch-size".to_string(), "64".to_string()), ("epochs".to_string(), "\"7\"".to_string()), ("lr".to_string(), "0.01".to_string())];
        assert_eq!(shared_hyperparameters(&hp), (Some(0.01), Some(64), Some(7)));
        assert_eq!(shared_hyperparameters(&[]), (None, None, None));
        let name = sagemaker_name_for_local(12, "Dogs: ResNet_18 (try 2)");
        assert_eq!(name, "local-12-dogs-resnet-18-try-2");
        assert!(TrainingJobName::parse(&name).is_ok());
        assert!(sagemaker_name_for_local(1, &"x".repeat(100)).len() <= 63);
    }
}
