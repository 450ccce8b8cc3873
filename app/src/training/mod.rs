//! Training. This module holds local ("EC2") training with the embedded
//! libtorch worker: the job spec and its validation, the job and dataset
//! reports the pages show, and the server functions. The worker itself lives
//! in the server crate (`server/src/training/`).

pub mod history;
mod dataset_view;
mod job_page;
mod job_select;
mod page;
pub mod sagemaker;
mod sagemaker_page;
pub mod spec;
pub mod tuning;
mod tuning_page;
pub mod upload;
mod upload_panel;

pub use job_page::LocalJobPage;
pub use job_select::CompletedJobSelect;
pub use page::TrainingPage;
pub use sagemaker_page::SageMakerJobPage;
pub use tuning_page::TuningJobPage;
pub use spec::{Architecture, LocalJobSpec};

use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a local job is in its life. Stored as these words in SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// The server stopped during the job and it could not be resumed; the
    /// job's message says why.
    Interrupted,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "Queued",
            JobStatus::Running => "Running",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Interrupted => "Interrupted",
        }
    }

    pub fn parse(word: &str) -> Option<JobStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// Nothing more will happen to a job in a terminal state.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    pub fn can_cancel(self) -> bool {
        !self.is_terminal()
    }

    /// The badge colour class.
    pub fn tone(self) -> &'static str {
        match self {
            JobStatus::Completed => "ok",
            JobStatus::Queued | JobStatus::Running => "busy",
            JobStatus::Failed | JobStatus::Interrupted => "bad",
            JobStatus::Cancelled => "off",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One class of a dataset: its folder and the name shown (numeric prefix dropped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassInfo {
    pub folder: String,
    pub name: String,
}

/// Images found in one split, in total and per class (same order as the classes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitCount {
    pub split: String,
    pub total: u32,
    pub per_class: Vec<u32>,
}

/// A file the dataset check left out, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Relative to the dataset root.
    pub path: String,
    pub reason: String,
}

/// What the dataset check found. `problems` non-empty means it can't train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    pub root: String,
    pub classes: Vec<ClassInfo>,
    pub splits: Vec<SplitCount>,
    pub skipped: Vec<SkippedFile>,
    /// Reasons the dataset can't be trained on (no classes, an empty split…).
    pub problems: Vec<String>,
    /// Things worth knowing that do not stop training.
    pub warnings: Vec<String>,
    /// SHA-256 over every usable file's relative path and bytes.
    pub digest: String,
    pub seconds: f64,
}

impl DatasetReport {
    pub fn can_train(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn usable_images(&self) -> u32 {
        self.splits.iter().map(|s| s.total).sum()
    }
}

/// The metrics of one finished epoch. Losses are mean cross-entropy,
/// accuracies fractions in 0..=1, both computed in floating point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub valid_loss: f64,
    pub valid_accuracy: f64,
    pub seconds: f64,
    pub images_per_s: f64,
}

/// The training loss of one optimisation step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLoss {
    pub step: u64,
    pub loss: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: String,
    pub line: String,
}

/// Where a running job is right now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// 1-based epoch being worked on (0 before the first).
    pub epoch: u32,
    pub epochs: u32,
    /// Steps done in this epoch, and how many it has.
    pub step: u32,
    pub steps_per_epoch: u32,
    /// "train", "valid", "test" or empty.
    pub phase: String,
    pub images_per_s: Option<f64>,
    pub eta_seconds: Option<f64>,
}

impl JobProgress {
    /// The fraction of the whole job done, for the progress bar.
    pub fn fraction(&self) -> f64 {
        if self.epochs == 0 || self.epoch == 0 {
            return 0.0;
        }
        let in_epoch = if self.steps_per_epoch == 0 {
            0.0
        } else {
            f64::from(self.step.min(self.steps_per_epoch)) / f64::from(self.steps_per_epoch)
        };
        ((f64::from(self.epoch - 1) + in_epoch) / f64::from(self.epochs)).clamp(0.0, 1.0)
    }
}

/// The artifact a completed job leaves: what the endpoints deploy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    pub dir: String,
    /// File name and size in bytes.
    pub files: Vec<(String, u64)>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub best_epoch: u32,
    pub classes: Vec<String>,
}

/// One row of the local job list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalJobSummary {
    pub id: i64,
    pub name: String,
    pub status: JobStatus,
    pub architecture: Architecture,
    pub dataset: String,
    pub epochs: u32,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: JobProgress,
    pub test_accuracy: Option<f64>,
    /// The error, cancellation or interruption reason.
    pub message: Option<String>,
}

/// Everything the job page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalJobDetail {
    pub summary: LocalJobSummary,
    pub spec: LocalJobSpec,
    pub epochs: Vec<EpochMetrics>,
    /// Per-step training loss, thinned to at most a few hundred points.
    pub steps: Vec<StepLoss>,
    /// The newest log lines, oldest first.
    pub logs: Vec<LogLine>,
    pub dataset: Option<DatasetReport>,
    pub artifact: Option<ArtifactInfo>,
    pub device: Option<String>,
}

/// The demo dataset as made (or found) on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DemoDataset {
    pub path: String,
    pub created: bool,
    pub report: DatasetReport,
}

/// Values the "New local training job" form starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingDefaults {
    pub spec: LocalJobSpec,
    /// Where the demo set is (or would be) made.
    pub demo_path: String,
    pub demo_exists: bool,
    pub device: String,
    pub cpu_threads: u32,
}

/// The server's side of local training (the worker in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait LocalTrainingService: Send + Sync {
    async fn defaults(&self) -> Result<TrainingDefaults, ApiError>;
    async fn list(&self) -> Result<Vec<LocalJobSummary>, ApiError>;
    async fn get(&self, id: i64) -> Result<LocalJobDetail, ApiError>;
    /// Checks the dataset, then queues the job; refuses a dataset that can't train.
    async fn create(&self, spec: LocalJobSpec) -> Result<LocalJobSummary, ApiError>;
    async fn cancel(&self, id: i64) -> Result<LocalJobSummary, ApiError>;
    async fn check_dataset(&self, path: String) -> Result<DatasetReport, ApiError>;
    async fn make_demo(&self) -> Result<DemoDataset, ApiError>;
}

#[cfg(feature = "ssr")]
pub type LocalTraining = std::sync::Arc<dyn LocalTrainingService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "training/local/defaults")]
pub async fn get_training_defaults() -> Result<TrainingDefaults, ApiError> {
    crate::error::service::<LocalTraining>()?.defaults().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/local/list")]
pub async fn list_local_jobs() -> Result<Vec<LocalJobSummary>, ApiError> {
    crate::error::service::<LocalTraining>()?.list().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/local/get")]
pub async fn get_local_job(id: i64) -> Result<LocalJobDetail, ApiError> {
    crate::error::service::<LocalTraining>()?.get(id).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/local/create", input = leptos::server_fn::codec::Json)]
pub async fn create_local_job(spec: LocalJobSpec) -> Result<LocalJobSummary, ApiError> {
    let spec = spec.validate().map_err(|errors| ApiError::Invalid(spec::describe(&errors)))?;
    crate::error::service::<LocalTraining>()?.create(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/local/cancel")]
pub async fn cancel_local_job(id: i64) -> Result<LocalJobSummary, ApiError> {
    crate::error::service::<LocalTraining>()?.cancel(id).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/datasets/check")]
pub async fn check_dataset(path: String) -> Result<DatasetReport, ApiError> {
    if path.trim().is_empty() {
        return Err(ApiError::Invalid("Give the dataset folder's path.".into()));
    }
    crate::error::service::<LocalTraining>()?.check_dataset(path.trim().to_string()).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/datasets/demo")]
pub async fn make_demo_dataset() -> Result<DemoDataset, ApiError> {
    crate::error::service::<LocalTraining>()?.make_demo().await
}

/// Drops a numeric prefix such as `001.` from a class folder's name:
/// `001.Affenpinscher` → `Affenpinscher`, `Border_collie` → `Border collie`.
pub fn class_display_name(folder: &str) -> String {
    let trimmed = match folder.split_once('.') {
        Some((prefix, rest)) if !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty() => rest,
        _ => folder,
    };
    trimmed.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_drop_the_numeric_prefix() {
        assert_eq!(class_display_name("001.Affenpinscher"), "Affenpinscher");
        assert_eq!(class_display_name("042.Border_collie"), "Border collie");
        assert_eq!(class_display_name("cats"), "cats");
        assert_eq!(class_display_name("v1.2"), "v1.2");
        assert_eq!(class_display_name("007."), "007.");
    }

    #[test]
    fn statuses_round_trip_and_know_when_they_end() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert!(JobStatus::Running.can_cancel());
        assert!(JobStatus::Queued.can_cancel());
        assert!(!JobStatus::Completed.can_cancel());
        assert!(JobStatus::Interrupted.is_terminal());
        assert_eq!(JobStatus::parse("running"), None);
    }

    #[test]
    fn progress_fraction_counts_finished_epochs_and_steps() {
        let mut p = JobProgress { epoch: 0, epochs: 4, step: 0, steps_per_epoch: 10, ..Default::default() };
        assert_eq!(p.fraction(), 0.0);
        p.epoch = 1;
        p.step = 5;
        assert!((p.fraction() - 0.125).abs() < 1e-9);
        p.epoch = 4;
        p.step = 10;
        assert!((p.fraction() - 1.0).abs() < 1e-9);
        p.step = 99; // never past the end
        assert!((p.fraction() - 1.0).abs() < 1e-9);
    }
}
