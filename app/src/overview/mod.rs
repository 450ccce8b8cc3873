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
    /// The line diff of `before` and `after` when either is a document (a
    /// policy), computed by the server.
    #[serde(default)]
    pub diff: Option<Vec<crate::journal::state::DiffLine>>,
}

/// A filter over the journal; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalQuery {
    /// One entry by id.
    #[serde(default)]
    pub id: Option<i64>,
    /// Who: a user name, "local" (open console) or "system" (background work).
    #[serde(default)]
    pub actor: Option<String>,
    /// "ok" or "failed".
    #[serde(default)]
    pub outcome: Option<String>,
    /// "aws" or "local".
    #[serde(default)]
    pub backend: Option<String>,
    /// An action or its prefix ("scaling." matches every scaling change).
    #[serde(default)]
    pub action: Option<String>,
    /// Words anywhere in the action, target, message or actor.
    #[serde(default)]
    pub text: String,
    /// Entries older than this id (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    pub limit: u32,
}

impl JournalQuery {
    /// The longest search words and filters: longer ones are refused with 400
    /// (SQLite gives up on LIKE patterns of some tens of KB).
    pub const MAX_TEXT: usize = 200;

    pub fn check_lengths(&self) -> Result<(), ApiError> {
        let fields = [("text", Some(self.text.as_str())), ("actor", self.actor.as_deref()), ("action", self.action.as_deref()), ("backend", self.backend.as_deref())];
        for (field, value) in fields {
            if let Some(v) = value.filter(|v| v.chars().count() > Self::MAX_TEXT) {
                return Err(ApiError::Invalid(format!(
                    "the journal's {field} filter is {} characters long; at most {} are searched",
                    v.chars().count(),
                    Self::MAX_TEXT
                )));
            }
        }
        Ok(())
    }
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait StatusService: Send + Sync {
    async fn report(&self) -> BackendsReport;
    async fn search_changes(&self, query: JournalQuery) -> Result<Vec<ChangeRecord>, ApiError>;
    /// How many entries match the query's filters, on every page.
    async fn count_changes(&self, query: JournalQuery) -> Result<u64, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Status = std::sync::Arc<dyn StatusService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "overview/status")]
pub async fn backend_status() -> Result<BackendsReport, ApiError> {
    use crate::error::service;
    Ok(service::<Status>()?.report().await)
}

#[server(client = crate::csrf::CsrfClient, endpoint = "journal/recent")]
pub async fn recent_changes(limit: u32) -> Result<Vec<ChangeRecord>, ApiError> {
    use crate::error::service;
    if limit == 0 || limit > 500 {
        return Err(ApiError::Invalid(format!("limit must be 1..=500, got {limit}")));
    }
    service::<Status>()?.search_changes(JournalQuery { limit, ..Default::default() }).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "journal/count", input = leptos::server_fn::codec::Json)]
pub async fn count_changes(query: JournalQuery) -> Result<u64, ApiError> {
    use crate::error::service;
    query.check_lengths()?;
    service::<Status>()?.count_changes(query).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "journal/search", input = leptos::server_fn::codec::Json)]
pub async fn search_changes(query: JournalQuery) -> Result<Vec<ChangeRecord>, ApiError> {
    use crate::error::service;
    if query.limit == 0 || query.limit > 500 {
        return Err(ApiError::Invalid(format!("limit must be 1..=500, got {}", query.limit)));
    }
    if let Some(o) = query.outcome.as_deref().filter(|o| !o.is_empty() && !matches!(*o, "ok" | "failed")) {
        return Err(ApiError::Invalid(format!("outcome is \"ok\" or \"failed\", not {o:?}")));
    }
    query.check_lengths()?;
    service::<Status>()?.search_changes(query).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_searches_are_bounded() {
        let ok = JournalQuery { text: "x".repeat(200), limit: 10, ..Default::default() };
        assert!(ok.check_lengths().is_ok());
        let long = JournalQuery { text: "x".repeat(60_000), limit: 10, ..Default::default() };
        assert_eq!(long.check_lengths().unwrap_err().status(), 400);
        let actor = JournalQuery { actor: Some("a".repeat(201)), limit: 10, ..Default::default() };
        assert!(actor.check_lengths().unwrap_err().message().contains("actor"));
    }

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
