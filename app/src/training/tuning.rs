//! SageMaker hyperparameter tuning jobs, as the seeds run them: a continuous
//! learning-rate range and a categorical batch size, an objective metric read
//! from the training log by a regex, max jobs and parallel jobs. The spec and
//! its checks, the CreateHyperParameterTuningJob request, the types the pages
//! show, and the server functions.

use super::sagemaker::{SageMakerJobSpec, TrainingCode, METRIC_DEFINITIONS};
use super::spec::FieldError;
use crate::names::TrainingJobName;
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
    /// The seeds' tuning job; its objective is train.py's validation loss.
    pub fn example(base: SageMakerJobSpec) -> Self {
        let objective = METRIC_DEFINITIONS.iter().find(|d| d.name == "valid:loss").expect("valid:loss is defined");
        TuningSpec {
            name: String::new(),
            base,
            lr_min: 0.001,
            lr_max: 0.1,
            lr_log_scale: true,
            batch_sizes: vec![32, 64, 128, 256, 512],
            objective_metric: objective.name.into(),
            metric_regex: objective.regex.into(),
            minimize: objective.minimize,
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
        if TrainingJobName::parse(&self.name).is_err() || self.name.len() > 32 {
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
        if self.base.code == TrainingCode::Sagedeck {
            if !METRIC_DEFINITIONS.iter().any(|d| d.name == self.objective_metric) {
                fail("objective_metric", "Choose one of the metrics train.py prints (train, valid or test loss or accuracy).");
            }
        } else {
            if self.objective_metric.trim().is_empty() || self.objective_metric.len() > 255 {
                fail("objective_metric", "Name the objective metric (up to 255 characters).");
            }
            if self.metric_regex.trim().is_empty() || self.metric_regex.len() > 500 || !self.metric_regex.contains('(') {
                fail("metric_regex", "Give the regex that finds the metric in the training log, with one capture group.");
            }
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

    /// The trial definition: the base spec under the tuning job's name, so
    /// Sagedeck's code goes to `<output>/<tuning job>/source/`.
    pub fn trial(&self) -> SageMakerJobSpec {
        SageMakerJobSpec { name: self.name.clone(), ..self.base.clone() }
    }

    /// The hyperparameters every trial gets unchanged.
    pub fn static_hyperparameters(&self, region: &str) -> Vec<(String, String)> {
        self.trial().hyperparameters(region).into_iter().filter(|(k, _)| k != "lr" && k != "batch-size").collect()
    }

    /// Every metric train.py prints (the objective among them) with
    /// Sagedeck's code; the operator's one regex for an image's own code.
    pub fn metric_definitions(&self) -> Vec<(String, String)> {
        match self.base.code {
            TrainingCode::Sagedeck => METRIC_DEFINITIONS.iter().map(|d| (d.name.to_string(), d.regex.to_string())).collect(),
            TrainingCode::Image => vec![(self.objective_metric.clone(), self.metric_regex.clone())],
        }
    }

    /// The objective's direction: a loss is minimised, an accuracy maximised
    /// (train.py's metrics); the operator's choice otherwise.
    pub fn minimize(&self) -> bool {
        match self.base.code {
            TrainingCode::Sagedeck => METRIC_DEFINITIONS.iter().find(|d| d.name == self.objective_metric).map_or(self.minimize, |d| d.minimize),
            TrainingCode::Image => self.minimize,
        }
    }

    pub fn request_json(&self, region: &str) -> serde_json::Value {
        let mut definition = self.trial().request_json(region);
        if let Some(obj) = definition.as_object_mut() {
            obj.remove("TrainingJobName");
            obj.insert(
                "StaticHyperParameters".into(),
                self.static_hyperparameters(region)
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            );
            obj.remove("HyperParameters");
            if let Some(algo) = obj.get_mut("AlgorithmSpecification") {
                algo["MetricDefinitions"] =
                    self.metric_definitions().into_iter().map(|(name, regex)| serde_json::json!({ "Name": name, "Regex": regex })).collect::<Vec<_>>().into();
            }
        }
        serde_json::json!({
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": { "Type": if self.minimize() { "Minimize" } else { "Maximize" }, "MetricName": self.objective_metric },
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

    pub fn cli_command(&self, region: &str) -> String {
        let json = serde_json::to_string_pretty(&self.request_json(region)).unwrap_or_default().replace('\'', "'\\''");
        let create = format!("aws sagemaker create-hyper-parameter-tuning-job --cli-input-json '{json}'");
        match self.base.code {
            TrainingCode::Sagedeck => format!(
                "# Sagedeck's train.py and inference.py, as the console packs them:\n\
                 curl -o sourcedir.tar.gz http://CONSOLE{}\n\
                 aws s3 cp sourcedir.tar.gz {}\n{create}",
                super::sagemaker::SOURCE_DIR_DOWNLOAD,
                self.trial().source_dir_uri()
            ),
            TrainingCode::Image => create,
        }
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

/// A page of the tuning jobs, newest first, from the poller's cache.
/// The tuning list's filters: a status in SageMaker's words (the job
/// history's choices) and part of the name, any case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TuningFilter {
    pub status: String,
    pub name: String,
}

impl TuningFilter {
    pub fn parse(status: &str, name: &str) -> Result<TuningFilter, ApiError> {
        if !status.is_empty() && !super::history::STATUS_FILTERS.contains(&status) {
            return Err(ApiError::Invalid(format!("status: {status:?} is not one of {}.", super::history::STATUS_FILTERS.join(", "))));
        }
        if name.chars().count() > 32 {
            return Err(ApiError::Invalid("name: a tuning job's name has at most 32 characters.".into()));
        }
        Ok(TuningFilter { status: status.to_string(), name: name.to_string() })
    }

    pub fn is_empty(&self) -> bool {
        self.status.is_empty() && self.name.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningJobPage {
    pub jobs: Vec<TuningJobSummary>,
    /// Every tuning job in the cache that matches the filter.
    pub total: u64,
    /// Pass back as `older` for the next page; None on the last.
    pub older: Option<String>,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait TuningService: Send + Sync {
    /// Newest first, `super::history::PAGE_SIZE` a page, from `older` on.
    async fn list_tuning(&self, older: Option<super::history::Cursor>, filter: TuningFilter) -> Result<TuningJobPage, ApiError>;
    async fn describe_tuning(&self, name: &TrainingJobName) -> Result<TuningJobDetail, ApiError>;
    async fn launch_tuning(&self, spec: TuningSpec) -> Result<TuningJobDetail, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Tuning = std::sync::Arc<dyn TuningService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "training/tuning/list")]
pub async fn list_tuning_jobs(older: Option<String>, status: Option<String>, name: Option<String>) -> Result<TuningJobPage, ApiError> {
    let older = older.filter(|c| !c.is_empty()).map(|c| super::history::Cursor::parse(&c)).transpose()?;
    let filter = TuningFilter::parse(status.as_deref().unwrap_or(""), name.as_deref().unwrap_or(""))?;
    crate::error::service::<Tuning>()?.list_tuning(older, filter).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/tuning/describe")]
pub async fn describe_tuning_job(name: TrainingJobName) -> Result<TuningJobDetail, ApiError> {
    crate::error::service::<Tuning>()?.describe_tuning(&name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/tuning/launch", input = leptos::server_fn::codec::Json)]
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
        let r = good().request_json("us-east-1");
        let config = &r["HyperParameterTuningJobConfig"];
        assert_eq!(config["ParameterRanges"]["ContinuousParameterRanges"][0]["Name"], "lr");
        assert_eq!(config["ParameterRanges"]["ContinuousParameterRanges"][0]["ScalingType"], "Logarithmic");
        assert_eq!(config["ParameterRanges"]["CategoricalParameterRanges"][0]["Values"], serde_json::json!(["32", "64", "128", "256", "512"]));
        assert_eq!(config["HyperParameterTuningJobObjective"]["Type"], "Minimize");
        let definition = &r["TrainingJobDefinition"];
        let statics = &definition["StaticHyperParameters"];
        assert_eq!(statics["epochs"], "5");
        assert!(statics.get("lr").is_none() && statics.get("batch-size").is_none());
        // Every trial fetches train.py from beside the tuning job's output.
        assert_eq!(statics["sagemaker_program"], "\"train.py\"");
        assert_eq!(statics["sagemaker_submit_directory"], "\"s3://dogs/output/dogs-hpo/source/sourcedir.tar.gz\"");
        assert!(definition.get("HyperParameters").is_none() && definition.get("TrainingJobName").is_none());
        let names: Vec<&str> =
            definition["AlgorithmSpecification"]["MetricDefinitions"].as_array().unwrap().iter().map(|d| d["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["train:loss", "train:accuracy", "valid:loss", "valid:accuracy", "test:loss", "test:accuracy"]);
        assert_eq!(config["HyperParameterTuningJobObjective"]["MetricName"], "valid:loss");
        let cli = good().cli_command("us-east-1");
        assert!(cli.contains("aws s3 cp sourcedir.tar.gz s3://dogs/output/dogs-hpo/source/sourcedir.tar.gz"));
        assert!(cli.contains("aws sagemaker create-hyper-parameter-tuning-job"));
    }

    #[test]
    fn an_accuracy_objective_is_maximised_and_a_custom_image_brings_its_own_regex() {
        let mut spec = good();
        spec.objective_metric = "test:accuracy".into();
        spec.minimize = true; // the operator's box is overruled: an accuracy is maximised
        assert_eq!(spec.request_json("us-east-1")["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"], "Maximize");
        spec.objective_metric = "average test loss".into();
        assert_eq!(spec.validate().unwrap_err()[0].field, "objective_metric");
        spec.base.code = TrainingCode::Image;
        spec.base.image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:1".into();
        spec.metric_regex = "no group".into();
        assert_eq!(spec.validate().unwrap_err()[0].field, "metric_regex");
        spec.metric_regex = "Test set: Average loss: ([0-9\\.]+)".into();
        assert_eq!(spec.validate(), Ok(()));
        let r = spec.request_json("us-east-1");
        assert_eq!(r["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"].as_array().unwrap().len(), 1);
        assert!(r["TrainingJobDefinition"]["StaticHyperParameters"].get("sagemaker_program").is_none());
    }
}
