//! What the account and the local runtime cost: every billable thing running
//! now with its price, the month so far, and what sits idle. The page, the
//! shared types, the arithmetic and the recorded price table; the server
//! gathers the figures (`server/src/costs`).

pub mod arithmetic;
mod page;
pub mod prices;

pub use page::CostsPage;

use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What an instance is used for: SageMaker prices each use on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Usage {
    Notebook,
    Training,
    Hosting,
}

impl Usage {
    /// The Pricing API's `component` attribute of SageMaker's "ML Instance" products.
    pub fn component(self) -> &'static str {
        match self {
            Usage::Notebook => "Notebook",
            Usage::Training => "Training",
            Usage::Hosting => "Hosting",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Notebook => "notebook",
            Usage::Training => "training",
            Usage::Hosting => "hosting",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceKind {
    Notebook,
    Endpoint,
    TrainingJob,
    LocalTraining,
    LocalEndpoint,
}

impl ResourceKind {
    pub fn label(self) -> &'static str {
        match self {
            ResourceKind::Notebook => "notebook",
            ResourceKind::Endpoint => "SageMaker endpoint",
            ResourceKind::TrainingJob => "SageMaker training",
            ResourceKind::LocalTraining => "local training",
            ResourceKind::LocalEndpoint => "local endpoint",
        }
    }
}

/// One billable thing that runs now (or, for local work, would bill on SageMaker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    pub kind: ResourceKind,
    pub name: String,
    pub href: String,
    pub status: String,
    /// The type priced: the resource's own, or for local work the SageMaker
    /// instance it is compared with.
    pub instance_type: String,
    pub instances: u32,
    /// Auto-scaling's registered (min, max) instances.
    pub scaling: Option<(u32, u32)>,
    /// Per instance-hour; `None` when no price is known (said in `price_source`).
    pub hourly_usd: Option<f64>,
    pub price_source: String,
    pub spot: bool,
    /// RFC 3339, UTC: when it started billing (as far as Sagedeck can tell).
    pub running_since: Option<String>,
    /// A job's cost so far (instances × price × elapsed, spot's billable time when known).
    pub so_far_usd: Option<f64>,
    /// What the figure rests on, in words ("local: 2 CPU threads, priced as…").
    pub detail: String,
    /// Counts in the per-hour totals: local work is shown for comparison
    /// and bills nothing.
    pub billing_now: bool,
}

/// What can be done about an idle resource from the Costs page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IdleAction {
    /// StopNotebookInstance (its volume and files stay).
    StopNotebook,
    /// DeleteEndpoint, the endpoint configuration kept so the journal can
    /// recreate it.
    DeleteSageMakerEndpoint,
    DeleteLocalEndpoint,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdleResource {
    pub kind: ResourceKind,
    pub name: String,
    pub href: String,
    /// What shows it idle, or what Sagedeck cannot see.
    pub evidence: String,
    /// Per hour while it idles; `None` when unpriced.
    pub hourly_usd: Option<f64>,
    pub action: IdleAction,
}

/// Spend this calendar month (UTC) from what Sagedeck has seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthToDate {
    pub usd: f64,
    /// (what, USD) per kind of resource.
    pub parts: Vec<(String, f64)>,
    /// Per UTC day, for the chart.
    pub daily: Vec<(String, f64)>,
    /// What could not be priced or measured, in words.
    pub gaps: Vec<String>,
    /// What local work would have cost on SageMaker this month (not in `usd`).
    pub local_equivalent_usd: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// The AWS region priced, `None` on the embedded default.
    pub region: Option<String>,
    /// Where prices came from: "AWS Pricing API (read 2026-12-02 09:14 UTC)"
    /// or the recorded table, and why.
    pub price_source: String,
    pub lines: Vec<CostLine>,
    pub idle_hours: u32,
    pub idle: Vec<IdleResource>,
    pub month: MonthToDate,
    /// What could not be read (AWS unreachable, a call refused), in words.
    pub notes: Vec<String>,
    pub computed_at: String,
}

/// The longest idle window the page accepts: CloudWatch keeps hourly
/// datapoints for 63 days.
pub const MAX_IDLE_HOURS: u32 = 24 * 63;

/// The idle window from its text (a whole number of hours), so that a
/// malformed one is refused naming the field.
pub fn validate_idle_hours(text: &str) -> Result<u32, ApiError> {
    let refuse = || ApiError::Invalid(format!("idle_hours must be a whole number of hours from 1 to {MAX_IDLE_HOURS}, not {text:?}"));
    let hours: i64 = text.trim().parse().map_err(|_| refuse())?;
    if !(1..=MAX_IDLE_HOURS as i64).contains(&hours) {
        return Err(refuse());
    }
    Ok(hours as u32)
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait CostService: Send + Sync {
    async fn view(&self, idle_hours: u32) -> Result<CostReport, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Costs = std::sync::Arc<dyn CostService>;

/// Every billable thing, the month so far, and what has been idle for `idle_hours`.
#[server(client = crate::csrf::CsrfClient, endpoint = "costs/view")]
pub async fn costs_view(idle_hours: String) -> Result<CostReport, ApiError> {
    let hours = validate_idle_hours(&idle_hours)?;
    crate::error::service::<Costs>()?.view(hours).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_windows_outside_what_cloudwatch_keeps_are_refused_by_name() {
        assert_eq!(validate_idle_hours("24").unwrap(), 24);
        assert_eq!(validate_idle_hours(" 1512 ").unwrap(), MAX_IDLE_HOURS);
        for bad in ["0", "-3", "1513", "soon", "2.5", ""] {
            let e = validate_idle_hours(bad).unwrap_err();
            assert!(matches!(e, ApiError::Invalid(_)), "{e:?}");
            assert!(e.message().contains("idle_hours"), "{e:?}");
        }
    }
}
