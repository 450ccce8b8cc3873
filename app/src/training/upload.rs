//! Datasets to S3: a checked local dataset copied to an S3 prefix so a
//! SageMaker job can read it, with the seeds' layout kept (`train/`,
//! `valid/`, `test/`, a folder per class). The server uploads in the
//! background (multipart for large files, several parts at once, files
//! already there unchanged skipped), keeps its progress in SQLite so a restart
//! resumes it, and journals it; the page polls the progress.

use crate::names::is_s3_uri;
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the upload form sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadSpec {
    /// The dataset folder (under the console's readable roots).
    pub dataset: String,
    /// `s3://bucket/prefix`: the dataset's splits go under it.
    pub destination: String,
}

impl UploadSpec {
    /// The spec with its fields trimmed and the destination without a
    /// trailing slash, or the first problem.
    pub fn validate(&self) -> Result<UploadSpec, ApiError> {
        let dataset = self.dataset.trim().to_string();
        let destination = self.destination.trim().trim_end_matches('/').to_string();
        if dataset.is_empty() {
            return Err(ApiError::Invalid("Give the dataset folder to upload.".into()));
        }
        if !is_s3_uri(&destination) {
            return Err(ApiError::Invalid(format!(
                "{destination:?} is not an S3 location: give s3://bucket/prefix (bucket names are 3 to 63 lower-case letters, digits, dots or hyphens)"
            )));
        }
        if destination.contains("//") && destination.trim_start_matches("s3://").contains("//") {
            return Err(ApiError::Invalid("The S3 prefix has an empty folder name (//).".into()));
        }
        Ok(UploadSpec { dataset, destination })
    }
}

/// Where an upload is in its life. Stored as these words in SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadStatus {
    /// Checking the dataset and listing what the destination already holds.
    Preparing,
    Uploading,
    Completed,
    Failed,
    Cancelled,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Preparing => "Preparing",
            UploadStatus::Uploading => "Uploading",
            UploadStatus::Completed => "Completed",
            UploadStatus::Failed => "Failed",
            UploadStatus::Cancelled => "Cancelled",
        }
    }

    pub fn parse(word: &str) -> Option<UploadStatus> {
        [UploadStatus::Preparing, UploadStatus::Uploading, UploadStatus::Completed, UploadStatus::Failed, UploadStatus::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == word)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, UploadStatus::Completed | UploadStatus::Failed | UploadStatus::Cancelled)
    }

    pub fn tone(self) -> &'static str {
        match self {
            UploadStatus::Completed => "ok",
            UploadStatus::Preparing | UploadStatus::Uploading => "busy",
            UploadStatus::Failed => "bad",
            UploadStatus::Cancelled => "off",
        }
    }
}

/// One upload as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetUpload {
    pub id: i64,
    pub dataset: String,
    pub destination: String,
    pub status: UploadStatus,
    pub files_total: u64,
    /// Files sent in this upload, and files left alone because the same
    /// bytes were already there (same size and checksum).
    pub files_uploaded: u64,
    pub files_skipped: u64,
    pub bytes_total: u64,
    pub bytes_uploaded: u64,
    pub bytes_skipped: u64,
    /// The pace over the last seconds, and the time left at that pace.
    pub bytes_per_s: Option<f64>,
    pub eta_seconds: Option<f64>,
    /// The file being sent, relative to the dataset.
    pub current: Option<String>,
    /// Why it failed or was cancelled, or what it resumed from.
    pub message: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub by: String,
}

impl DatasetUpload {
    /// Done so far (skipped files count as done), for the progress bar.
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            return if self.status == UploadStatus::Completed { 1.0 } else { 0.0 };
        }
        ((self.bytes_uploaded + self.bytes_skipped) as f64 / self.bytes_total as f64).clamp(0.0, 1.0)
    }

    /// The SageMaker channels that read this upload: one per split.
    pub fn channels(&self) -> Vec<(&'static str, String)> {
        ["train", "valid", "test"].into_iter().map(|split| (split, format!("{}/{split}", self.destination))).collect()
    }
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait UploadService: Send + Sync {
    async fn start(&self, spec: UploadSpec) -> Result<DatasetUpload, ApiError>;
    async fn list(&self) -> Result<Vec<DatasetUpload>, ApiError>;
    async fn get(&self, id: i64) -> Result<DatasetUpload, ApiError>;
    async fn cancel(&self, id: i64) -> Result<DatasetUpload, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Uploads = std::sync::Arc<dyn UploadService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "training/uploads/start", input = leptos::server_fn::codec::Json)]
pub async fn start_dataset_upload(spec: UploadSpec) -> Result<DatasetUpload, ApiError> {
    let spec = spec.validate()?;
    crate::error::service::<Uploads>()?.start(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/uploads/list")]
pub async fn list_dataset_uploads() -> Result<Vec<DatasetUpload>, ApiError> {
    crate::error::service::<Uploads>()?.list().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/uploads/get")]
pub async fn get_dataset_upload(id: i64) -> Result<DatasetUpload, ApiError> {
    crate::error::service::<Uploads>()?.get(id).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "training/uploads/cancel")]
pub async fn cancel_dataset_upload(id: i64) -> Result<DatasetUpload, ApiError> {
    crate::error::service::<Uploads>()?.cancel(id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_s3_prefixes_without_a_trailing_slash() {
        let spec = UploadSpec { dataset: " /data/demo ".into(), destination: "s3://my-bucket/datasets/demo/".into() };
        assert_eq!(spec.validate().unwrap(), UploadSpec { dataset: "/data/demo".into(), destination: "s3://my-bucket/datasets/demo".into() });
        for bad in ["", "my-bucket/x", "s3://My_Bucket/x", "https://b/x", "s3://bucket//x"] {
            let spec = UploadSpec { dataset: "/d".into(), destination: bad.into() };
            assert_eq!(spec.validate().unwrap_err().status(), 400, "{bad}");
        }
        assert!(UploadSpec { dataset: " ".into(), destination: "s3://bucket/x".into() }.validate().is_err());
    }

    #[test]
    fn progress_counts_skipped_bytes_as_done() {
        let mut u = DatasetUpload {
            id: 1,
            dataset: "/d".into(),
            destination: "s3://b/p".into(),
            status: UploadStatus::Uploading,
            files_total: 4,
            files_uploaded: 1,
            files_skipped: 1,
            bytes_total: 400,
            bytes_uploaded: 100,
            bytes_skipped: 100,
            bytes_per_s: None,
            eta_seconds: None,
            current: None,
            message: None,
            created_at: String::new(),
            finished_at: None,
            by: "ana".into(),
        };
        assert_eq!(u.fraction(), 0.5);
        assert_eq!(u.channels()[1], ("valid", "s3://b/p/valid".to_string()));
        u.bytes_total = 0;
        u.status = UploadStatus::Completed;
        assert_eq!(u.fraction(), 1.0);
        assert_eq!(UploadStatus::parse("Cancelled"), Some(UploadStatus::Cancelled));
        assert!(UploadStatus::parse("Done").is_none());
    }
}
