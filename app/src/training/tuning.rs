//! SageMaker hyperparameter tuning jobs, as the seeds run them: a continuous
//! learning-rate range and a categorical batch size, an objective metric read
//! from the training log by a regex, max jobs and parallel jobs. The spec and
//! its checks, the CreateHyperParameterTuningJob request, the types the pages
//! show, and the server functions.

use super::sagemaker::SageMakerJobSpec;
use super::spec::FieldError;
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningSpec {
    /// Tuning job names are at most 32 characters.
    pub name: String,
    /// The training job every trial runs; its lr and batch size are tuned.
    pub base: SageMakerJobSpec,
    pub lr_min: f64,
    pub lr_max: f64,
    pub lr_log_scale: bool,
    pub batch_sizes: Vec<u32>,
    pub objective_metric: String,
    /// The regex that finds the metric's value in the training log.
    pub metric_regex: String,
    pub minimize: bool,
    pub max_jobs: u32,
    pub max_parallel: u32,
}

impl TuningSpec {
    pub fn example(base: SageMakerJobSpec) -> Self {
        TuningSpec {
            name: String::new(),
            base,
            lr_min: 0.001,
            lr_max: 0.1,
            lr_log_scale: true,
            batch_sizes: vec![32, 64, 128, 256, 512],
            objective_metric: "average test loss".into(),
            metric_regex: "Test set: Average loss: ([0-9\\.]+)".into(),
            minimize: true,
            max_jobs: 4,
            max_parallel: 2,
        }
    }

    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        // The trial definition's own checks, minus its name (trials are named by SageMaker).
        let base = SageMakerJobSpec { name: "trial".into(), ..self.base.clone() };
        if let Err(e) = base.validate() {
            errors.extend(e.into_iter().filter(|e| !matches!(e.field, "learning_rate" | "batch_size")));
        }
        let mut fail = |field: &'static str, message: &str| errors.push(FieldError { field, message: message.into() });
        if crate::endpoints::validate_endpoint_name(&self.name).is_err() || self.name.len() > 32 {
            fail("tuning_name", "Use 1 to 32 letters, digits or hyphens, starting and ending with a letter or digit.");
        }
        if !(self.lr_min > 0.0 && self.lr_min < self.lr_max && self.lr_max < 10.0) {
            fail("lr_range", "The learning-rate range needs 0 < minimum < maximum < 10.");
        }
        let mut sizes = self.batch_sizes.clone();
        sizes.sort();
        sizes.dedup();
        if self.batch_sizes.is_empty() || sizes.len() != self.batch_sizes.len() || sizes.iter().any(|b| !(1..=4096).contains(b)) || sizes.len() > 30 {
            fail("batch_sizes", "List 1 to 30 different batch sizes from 1 to 4096, separated by commas.");
        }
        if self.objective_metric.trim().is_empty() || self.objective_metric.len() > 255 {
            fail("objective_metric", "Name the objective metric (up to 255 characters).");
        }
        if self.metric_regex.trim().is_empty() || self.metric_regex.len() > 500 {
            fail("metric_regex", "Give the regex that finds the metric in the training log, with one capture group.");
        }
        if !(1..=500).contains(&self.max_jobs) {
            fail("max_jobs", "Max jobs must be 1 to 500.");
        }
        if !(1..=100).contains(&self.max_parallel) || self.max_parallel > self.max_jobs {
            fail("max_parallel", "Parallel jobs must be 1 to 100 and not more than max jobs.");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The hyperparameters every trial gets unchanged.
    pub fn static_hyperparameters(&self) -> Vec<(String, String)> {
        self.base.hyperparameters().into_iter().filter(|(k, _)| k != "lr" && k != "batch-size").collect()
    }

    pub fn request_json(&self) -> serde_json::Value {
        let mut definition = self.base.request_json();
        if let Some(obj) = definition.as_object_mut() {
            obj.remove("TrainingJobName");
            obj.insert(
                "StaticHyperParameters".into(),
                self.static_hyperparameters().into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect::<serde_json::Map<_, _>>().into(),
            );
            obj.remove("HyperParameters");
            if let Some(algo) = obj.get_mut("AlgorithmSpecification") {
                algo["MetricDefinitions"] = serde_json::json!([{ "Name": self.objective_metric, "Regex": self.metric_regex }]);
            }
        }
        serde_json::json!({
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": { "Type": if self.minimize { "Minimize" } else { "Maximize" }, "MetricName": self.objective_metric },
                "ResourceLimits": { "MaxNumberOfTrainingJobs": self.max_jobs, "MaxParallelTrainingJobs": self.max_parallel },
                "ParameterRanges": {
                    "ContinuousParameterRanges": [{ "Name": "lr", "MinValue": self.lr_min.to_string(), "MaxValue": self.lr_max.to_string(),
                        "ScalingType": if self.lr_log_scale { "Logarithmic" } else { "Auto" } }],
                    "CategoricalParameterRanges": [{ "Name": "batch-size", "Values": self.batch_sizes.iter().map(u32::to_string).collect::<Vec<_>>() }]
                }
            },
            "TrainingJobDefinition": definition,
        })
    }

    pub fn cli_command(&self) -> String {
        let json = serde_json::to_string_pretty(&self.request_json()).unwrap_or_default().replace('\'', "'\\''");
        format!("aws sagemaker create-hyper-parameter-tuning-job --cli-input-json '{json}'")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningJobSummary {
    pub name: String,
    pub status: String,
    pub strategy: String,
    pub objective: String,
    pub max_jobs: i32,
    pub max_parallel: i32,
    pub completed: i32,
    pub in_progress: i32,
    pub failed: i32,
    pub created_at: Option<String>,
    pub ended_at: Option<String>,
    pub best_training_job: Option<String>,
    pub best_value: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningTrial {
    pub name: String,
    pub status: String,
    pub hyperparameters: Vec<(String, String)>,
    pub objective_value: Option<f64>,
    pub best: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningJobDetail {
    pub summary: TuningJobSummary,
    pub ranges: Vec<String>,
    pub trials: Vec<TuningTrial>,
    /// Why the trials could not be listed, if they could not.
    pub trials_note: Option<String>,
    pub failure_reason: Option<String>,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait TuningService: Send + Sync {
    async fn list_tuning(&self) -> Result<Vec<TuningJobSummary>, ApiError>;
    async fn describe_tuning(&self, name: &str) -> Result<TuningJobDetail, ApiError>;
    async fn launch_tuning(&self, spec: TuningSpec) -> Result<TuningJobDetail, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Tuning = std::sync::Arc<dyn TuningService>;

#[server(endpoint = "training/tuning/list")]
pub async fn list_tuning_jobs() -> Result<Vec<TuningJobSummary>, ApiError> {
    crate::error::service::<Tuning>()?.list_tuning().await
}

#[server(endpoint = "training/tuning/describe")]
pub async fn describe_tuning_job(name: String) -> Result<TuningJobDetail, ApiError> {
    let name = crate::endpoints::validate_endpoint_name(&name)?;
    crate::error::service::<Tuning>()?.describe_tuning(name).await
}

#[server(endpoint = "training/tuning/launch", input = leptos::server_fn::codec::Json)]
pub async fn launch_tuning_job(spec: TuningSpec) -> Result<TuningJobDetail, ApiError> {
    if let Err(errors) = spec.validate() {
        return Err(ApiError::Invalid(errors.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(" ")));
    }
    crate::error::service::<Tuning>()?.launch_tuning(spec).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> TuningSpec {
        let base = SageMakerJobSpec {
            name: String::new(),
            train_s3: "s3://dogs/train".into(),
            output_s3: "s3://dogs/output".into(),
            ..SageMakerJobSpec::example("us-east-1", "arn:aws:iam::123456789012:role/SageMakerRole")
        };
        TuningSpec { name: "dogs-hpo".into(), ..TuningSpec::example(base) }
    }

    #[test]
    fn the_seeds_tuning_job_is_valid_and_bad_ranges_are_named() {
        assert_eq!(good().validate(), Ok(()));
        let mut bad = good();
        bad.name = "a".repeat(33);
        bad.lr_min = 0.1;
        bad.lr_max = 0.01;
        bad.batch_sizes = vec![32, 32];
        bad.max_jobs = 2;
        bad.max_parallel = 3;
        bad.base.train_s3 = "dogs".into();
        let fields: Vec<&str> = bad.validate().unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["train_s3", "tuning_name", "lr_range", "batch_sizes", "max_parallel"]);
    }

    #[test]
    fn the_request_tunes_lr_and_batch_size_and_keeps_the_rest_static() {
        let r = good().request_json();
        let config = &r["HyperParameterTuningJobConfig"];
        assert_eq!(config["ParameterRanges"]["ContinuousParameterRanges"][0]["Name"], "lr");
        assert_eq!(config["ParameterRanges"]["ContinuousParameterRanges"][0]["ScalingType"], "Logarithmic");
        assert_eq!(config["ParameterRanges"]["CategoricalParameterRanges"][0]["Values"], serde_json::json!(["32", "64", "128", "256", "512"]));
        assert_eq!(config["HyperParameterTuningJobObjective"]["Type"], "Minimize");
        let definition = &r["TrainingJobDefinition"];
        assert_eq!(definition["StaticHyperParameters"], serde_json::json!({ "epochs": "5" }));
        assert!(definition.get("HyperParameters").is_none() && definition.get("TrainingJobName").is_none());
        assert_eq!(definition["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"], "average test loss");
        assert!(good().cli_command().starts_with("aws sagemaker create-hyper-parameter-tuning-job"));
    }
}
