//! The IAM risk review: policy documents normalised ([`policy`]) and judged
//! ([`analyze`]), roles read from authorization details ([`details`]); all
//! pure Rust that runs in the server and in the browser (an exported file is
//! reviewed in the browser itself, and the live editor re-checks on every
//! keystroke).

pub mod analyze;
pub mod details;
pub mod fix;
pub mod graph;
mod page;
pub mod policy;
pub mod rank;

pub use page::IamPage;

use crate::ApiError;
use analyze::{analyze_role, RoleInput, RoleReport};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A role as read, and its review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewedRole {
    pub input: RoleInput,
    pub report: RoleReport,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountReview {
    /// "AWS account 123456789012" or the file's name.
    pub source: String,
    pub unused_days: u32,
    /// Riskiest first.
    pub roles: Vec<ReviewedRole>,
}

/// Reviews every role, riskiest first.
pub fn review(source: String, roles: Vec<RoleInput>, now: i64, unused_days: u32) -> AccountReview {
    let mut roles: Vec<ReviewedRole> = roles
        .into_iter()
        .map(|input| ReviewedRole { report: analyze_role(&input, now, unused_days), input })
        .collect();
    roles.sort_by(|a, b| b.report.score.cmp(&a.report.score).then_with(|| a.report.name.cmp(&b.report.name)));
    AccountReview { source, unused_days, roles }
}

/// Reviews `get-account-authorization-details` output.
pub fn review_file(source: &str, text: &str, now: i64, unused_days: u32) -> Result<AccountReview, String> {
    Ok(review(source.to_string(), details::roles(text)?, now, unused_days))
}

/// The server's side (implemented in the `server` crate).
/// What applying a fix did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixOutcome {
    pub plan: fix::FixPlan,
    pub steps: Vec<String>,
    /// The journal entry, for the one-click rollback.
    pub change_id: Option<i64>,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait IamService: Send + Sync {
    async fn review_account(&self, unused_days: u32) -> Result<AccountReview, ApiError>;
    /// The least-privilege fix for a role, built from the deployment that uses it.
    async fn plan_fix(&self, role: &str) -> Result<fix::FixPlan, ApiError>;
    /// Applies it (all steps or none), journaled and revertible.
    async fn apply_fix(&self, role: &str) -> Result<FixOutcome, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Iam = std::sync::Arc<dyn IamService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "iam/review")]
pub async fn get_account_review(unused_days: u32) -> Result<AccountReview, ApiError> {
    if !(1..=3650).contains(&unused_days) {
        return Err(ApiError::Invalid("unused days must be 1 to 3650".into()));
    }
    crate::error::service::<Iam>()?.review_account(unused_days).await
}

#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
fn check_role_name(role: &str) -> Result<(), ApiError> {
    let ok = !role.is_empty() && role.len() <= 64 && role.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!("{role:?} is not a role name")))
    }
}

#[server(client = crate::csrf::CsrfClient, endpoint = "iam/fix/plan")]
pub async fn plan_role_fix(role: String) -> Result<fix::FixPlan, ApiError> {
    check_role_name(&role)?;
    crate::error::service::<Iam>()?.plan_fix(&role).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "iam/fix/apply")]
pub async fn apply_role_fix(role: String) -> Result<FixOutcome, ApiError> {
    check_role_name(&role)?;
    crate::error::service::<Iam>()?.apply_fix(&role).await
}
