//! SageMaker training jobs: the launch spec and its checks (made before any
//! call), the equivalent AWS CLI command, the types the pages show, and the
//! server functions. Pages read jobs from the server's cache, which one
//! background poller keeps current; they never call AWS per view.

use super::spec::FieldError;
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the launch form sends: the seeds' estimator arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerJobSpec {
    pub name: String,
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
    /// Free hyperparameters, sent as strings as SageMaker takes them.
    pub extra_hyperparameters: Vec<(String, String)>,
    pub train_s3: String,
    pub valid_s3: String,
    pub test_s3: String,
    pub output_s3: String,
}

impl SageMakerJobSpec {
    /// The seeds' defaults: ml.m5.xlarge, 10 GB, 1 hour, lr 0.001, batch 32, 5 epochs.
    pub fn example(region: &str, role_arn: &str) -> Self {
        SageMakerJobSpec {
            name: String::new(),
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
        if let Err(e) = crate::endpoints::validate_endpoint_name(&self.name) {
            fail("name", e.message().replace("endpoint name", "training job name"));
        }
        if !(self.image.contains('/') && !self.image.contains(char::is_whitespace)) {
            fail("image", "Give the training image's URI (account.dkr.ecr.region.amazonaws.com/repository:tag).".into());
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
        let mut seen = vec!["lr", "batch-size", "epochs"];
        for (k, v) in &self.extra_hyperparameters {
            if k.trim().is_empty() || k.len() > 256 || v.len() > 2500 {
                fail("extra_hyperparameters", format!("Hyperparameter {k:?}: keys are 1 to 256 characters, values up to 2500."));
            } else if seen.contains(&k.as_str()) {
                fail("extra_hyperparameters", format!("Hyperparameter {k:?} is given twice."));
            } else {
                seen.push(k);
            }
        }
        if seen.len() > 100 {
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
    /// the seeds' train script reads them.
    pub fn hyperparameters(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("lr".to_string(), format!("{}", self.learning_rate)),
            ("batch-size".to_string(), self.batch_size.to_string()),
            ("epochs".to_string(), self.epochs.to_string()),
        ];
        h.extend(self.extra_hyperparameters.iter().cloned());
        h
    }

    pub fn channels(&self) -> Vec<(&'static str, &str)> {
        [("train", self.train_s3.as_str()), ("valid", self.valid_s3.as_str()), ("test", self.test_s3.as_str())]
            .into_iter()
            .filter(|(_, uri)| !uri.is_empty())
            .collect()
    }

    /// The CreateTrainingJob request in the API's own shape.
    pub fn request_json(&self) -> serde_json::Value {
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
        if let (true, Some(wait)) = (self.spot, self.max_wait_seconds) {
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = wait.into();
        }
        // Hyperparameter values are strings in the API.
        request["HyperParameters"] = self
            .hyperparameters()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        request
    }

    /// What the operator would type to make the same call.
    pub fn cli_command(&self) -> String {
        let json = serde_json::to_string_pretty(&self.request_json()).unwrap_or_default().replace('\'', "'\\''");
        format!("aws sagemaker create-training-job --cli-input-json '{json}'")
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

/// The AWS Deep Learning Containers PyTorch training image of a region.
pub fn pytorch_training_image(region: &str) -> String {
    format!("763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:2.5-cpu-py311")
}

pub fn is_role_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:aws:iam::").or_else(|| arn.strip_prefix("arn:aws-cn:iam::")).or_else(|| arn.strip_prefix("arn:aws-us-gov:iam::")) else {
        return false;
    };
    let Some((account, role)) = rest.split_once(":role/") else { return false };
    account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) && !role.is_empty()
}

pub fn is_s3_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("s3://") else { return false };
    let bucket = rest.split('/').next().unwrap_or_default();
    (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && bucket.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// One row of the SageMaker half of the job list, from the cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

/// The cache's freshness, shown above the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheState {
    pub refreshed_at: Option<String>,
    /// The last refresh's error in words, while the cache is served instead.
    pub error: Option<String>,
    pub next_refresh_seconds: u64,
}

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
    async fn describe(&self, name: &str) -> Result<SageMakerJobDetail, ApiError>;
    async fn launch(&self, spec: SageMakerJobSpec) -> Result<SageMakerJobDetail, ApiError>;
    async fn logs(&self, name: &str, after: i64) -> Result<JobLogs, ApiError>;
    async fn launch_defaults(&self) -> Result<LaunchDefaults, ApiError>;
    async fn refresh(&self) -> Result<CacheState, ApiError>;
    fn aws_calls(&self) -> AwsCallCounts;
}

#[cfg(feature = "ssr")]
pub type SageMakerTraining = std::sync::Arc<dyn SageMakerTrainingService>;

#[server(endpoint = "training/sagemaker/list")]
pub async fn list_sagemaker_jobs(status: Option<String>, name_contains: Option<String>) -> Result<SageMakerJobList, ApiError> {
    crate::error::service::<SageMakerTraining>()?.list(status.filter(|s| !s.is_empty()), name_contains.filter(|s| !s.is_empty())).await
}

#[server(endpoint = "training/sagemaker/describe")]
pub async fn describe_sagemaker_job(name: String) -> Result<SageMakerJobDetail, ApiError> {
    let name = crate::endpoints::validate_endpoint_name(&name)?;
    crate::error::service::<SageMakerTraining>()?.describe(name).await
}

#[server(endpoint = "training/sagemaker/launch", input = leptos::server_fn::codec::Json)]
pub async fn launch_sagemaker_job(spec: SageMakerJobSpec) -> Result<SageMakerJobDetail, ApiError> {
    if let Err(errors) = spec.validate() {
        return Err(ApiError::Invalid(errors.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(" ")));
    }
    crate::error::service::<SageMakerTraining>()?.launch(spec).await
}

#[server(endpoint = "training/sagemaker/logs")]
pub async fn sagemaker_job_logs(name: String, after: i64) -> Result<JobLogs, ApiError> {
    let name = crate::endpoints::validate_endpoint_name(&name)?;
    crate::error::service::<SageMakerTraining>()?.logs(name, after).await
}

#[server(endpoint = "training/sagemaker/defaults")]
pub async fn sagemaker_launch_defaults() -> Result<LaunchDefaults, ApiError> {
    crate::error::service::<SageMakerTraining>()?.launch_defaults().await
}

#[server(endpoint = "training/sagemaker/refresh")]
pub async fn refresh_sagemaker_jobs() -> Result<CacheState, ApiError> {
    crate::error::service::<SageMakerTraining>()?.refresh().await
}

#[server(endpoint = "aws/calls")]
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
                "max_wait_seconds", "learning_rate", "batch_size", "epochs", "extra_hyperparameters", "train_s3", "valid_s3", "output_s3"
            ]
        );
    }

    #[test]
    fn the_request_has_string_hyperparameters_channels_and_the_cli_equivalent() {
        let mut spec = good();
        spec.instance_count = 4;
        spec.extra_hyperparameters = vec![("momentum".into(), "0.9".into())];
        let r = spec.request_json();
        assert_eq!(r["HyperParameters"]["lr"], "0.001");
        assert_eq!(r["HyperParameters"]["batch-size"], "32");
        assert_eq!(r["HyperParameters"]["momentum"], "0.9");
        assert_eq!(r["ResourceConfig"]["InstanceCount"], 4);
        assert_eq!(r["InputDataConfig"].as_array().unwrap().len(), 2);
        assert_eq!(r["InputDataConfig"][1]["ChannelName"], "valid");
        assert!(r["StoppingCondition"].get("MaxWaitTimeInSeconds").is_none());
        let cli = spec.cli_command();
        assert!(cli.starts_with("aws sagemaker create-training-job --cli-input-json '{"));
        assert!(cli.contains("\"TrainingJobName\": \"dog-breeds-1\""));
    }

    #[test]
    fn parity_helpers_carry_the_shared_hyperparameters_and_make_valid_names() {
        let hp = vec![("batch-size".to_string(), "64".to_string()), ("epochs".to_string(), "\"7\"".to_string()), ("lr".to_string(), "0.01".to_string())];
        assert_eq!(shared_hyperparameters(&hp), (Some(0.01), Some(64), Some(7)));
        assert_eq!(shared_hyperparameters(&[]), (None, None, None));
        let name = sagemaker_name_for_local(12, "Dogs: ResNet_18 (try 2)");
        assert_eq!(name, "local-12-dogs-resnet-18-try-2");
        assert!(crate::endpoints::validate_endpoint_name(&name).is_ok());
        assert!(sagemaker_name_for_local(1, &"x".repeat(100)).len() <= 63);
    }

    #[test]
    fn role_arns_and_s3_uris() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/service-role/X"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/X"));
        assert!(!is_role_arn("arn:aws:iam::12345678901:role/X"));
        assert!(is_s3_uri("s3://my.bucket-1/a/b"));
        assert!(!is_s3_uri("s3://ab"));
        assert!(!is_s3_uri("https://my-bucket/a"));
        assert!(!is_s3_uri("s3://My-Bucket/a"));
    }
}
