//! The Overview: which backends are live, and the latest recorded changes.

mod page;

pub use page::OverviewPage;

use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendsReport {
    /// The address the console listens on.
    pub listen: String,
    pub local: LocalRuntimeStatus,
    pub store: StoreStatus,
    pub aws: AwsStatus,
}

/// The embedded runtime: libtorch as this process loaded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalRuntimeStatus {
    /// "cpu" or "cuda".
    pub device: String,
    pub cuda_devices: i64,
    pub threads: i32,
    pub mkl: bool,
    /// Time of a small matrix product run through libtorch at this request,
    /// or why it failed.
    pub self_check: Result<f64, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreStatus {
    pub data_dir: String,
    pub database: String,
    pub sqlite_version: String,
    pub journal_mode: String,
    pub migrations_applied: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum AwsStatus {
    /// STS GetCallerIdentity answered.
    Live {
        account: String,
        arn: String,
        region: String,
        endpoint: Option<String>,
    },
    /// No region or no credentials in the standard chain, or AWS turned off.
    NotConfigured { reason: String },
    /// Configured, but the identity call failed.
    Unavailable {
        region: String,
        endpoint: Option<String>,
        reason: String,
    },
}

impl AwsStatus {
    pub fn is_live(&self) -> bool {
        matches!(self, AwsStatus::Live { .. })
    }

    /// The header chip: "AWS 123456789012 · us-east-1" or "AWS: not configured".
    pub fn chip(&self) -> String {
        match self {
            AwsStatus::Live { account, region, .. } => format!("AWS {account} · {region}"),
            AwsStatus::NotConfigured { .. } => "AWS: not configured".to_string(),
            AwsStatus::Unavailable { .. } => "AWS: unavailable".to_string(),
        }
    }
}

/// One entry of the change journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub backend: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// "ok" or "failed".
    pub outcome: String,
    pub message: Option<String>,
    /// This change undid change #N.
    pub revert_of: Option<i64>,
    /// Change #N undid this one.
    pub reverted_by: Option<i64>,
    /// It succeeded, has not been undone, and is of a kind Sagedeck can undo.
    pub revertible: bool,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait StatusService: Send + Sync {
    async fn report(&self) -> BackendsReport;
    async fn recent_changes(&self, limit: u32) -> Result<Vec<ChangeRecord>, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Status = std::sync::Arc<dyn StatusService>;

#[server(endpoint = "overview/status")]
pub async fn backend_status() -> Result<BackendsReport, ApiError> {
    use crate::error::service;
    Ok(service::<Status>()?.report().await)
}

#[server(endpoint = "journal/recent")]
pub async fn recent_changes(limit: u32) -> Result<Vec<ChangeRecord>, ApiError> {
    use crate::error::service;
    if limit == 0 || limit > 500 {
        return Err(ApiError::Invalid(format!("limit must be 1..=500, got {limit}")));
    }
    service::<Status>()?.recent_changes(limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_names_account_and_region() {
        let live = AwsStatus::Live {
            account: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:user/x".into(),
            region: "eu-west-1".into(),
            endpoint: None,
        };
        assert_eq!(live.chip(), "AWS 123456789012 · eu-west-1");
        assert!(live.is_live());
        let off = AwsStatus::NotConfigured { reason: "no region".into() };
        assert_eq!(off.chip(), "AWS: not configured");
        assert!(!off.is_live());
    }

    #[test]
    fn status_round_trips_as_tagged_json() {
        let s = AwsStatus::NotConfigured { reason: "no credentials".into() };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "NotConfigured");
        assert_eq!(serde_json::from_value::<AwsStatus>(json).unwrap(), s);
    }
}
