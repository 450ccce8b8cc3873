//! Lambda functions in front of endpoints: on AWS (reserved and provisioned
//! concurrency, test invocations, the console's set-up of the seeds' function
//! with a least-privilege role) and locally (a function route that forwards
//! to a local endpoint and enforces the same concurrency semantics). The
//! checks and the capacity arithmetic are pure and shared with the browser.

mod page;

pub use page::{FunctionPage, LambdaPage};

use crate::endpoints::{EndpointMetrics, MetricWindow};
use crate::names::FunctionName;
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// AWS keeps this many concurrent executions unreserved in every account.
pub const MIN_UNRESERVED: u32 = 100;
/// The concurrency a local function may use when none is reserved (AWS's
/// default account limit).
pub const LOCAL_ACCOUNT_LIMIT: u32 = 1000;

/// Where a function runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FnHome {
    Local,
    Aws,
}

impl FnHome {
    pub fn slug(self) -> &'static str {
        match self {
            FnHome::Local => "local",
            FnHome::Aws => "aws",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            FnHome::Local => "Local",
            FnHome::Aws => "AWS Lambda",
        }
    }
    pub fn from_slug(s: &str) -> Result<FnHome, ApiError> {
        match s {
            "local" => Ok(FnHome::Local),
            "aws" => Ok(FnHome::Aws),
            other => Err(ApiError::Invalid(format!("unknown function home {other:?} (local or aws)"))),
        }
    }
    pub fn page_path(self, name: &str) -> String {
        format!("/lambda/{}/{name}", self.slug())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionSummary {
    pub name: String,
    pub home: FnHome,
    pub runtime: String,
    /// The endpoint it forwards to (its ENDPOINT_NAME), when known.
    pub endpoint: Option<String>,
    pub reserved: Option<u32>,
    pub last_modified: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionList {
    pub functions: Vec<FunctionSummary>,
    pub aws_note: Option<String>,
}

/// Provisioned concurrency on one version or alias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisionedConfig {
    pub qualifier: String,
    pub requested: u32,
    pub available: Option<u32>,
    /// IN_PROGRESS, READY, FAILED (AWS) or Warm (local).
    pub status: String,
    pub reason: Option<String>,
}

/// The account's concurrency: the limit and what no function has reserved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountConcurrency {
    pub limit: u32,
    pub unreserved: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// "error": the values contradict each other; "warning": they will hurt.
    pub severity: String,
    pub message: String,
}

/// What the capacity check needs to know about the function and its endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacityFacts {
    pub reserved: Option<u32>,
    pub provisioned_total: u32,
    pub account: Option<AccountConcurrency>,
    pub endpoint: Option<String>,
    /// The endpoint's auto-scaling maximum, or its fixed instance count.
    pub endpoint_max_instances: Option<u32>,
    /// Invocations one endpoint instance absorbs per minute (measured).
    pub per_instance_per_minute: Option<f64>,
    /// How long one invocation of the endpoint takes, end to end.
    pub latency_ms: Option<f64>,
    /// Which figures the throughput comes from, and from when.
    #[serde(default)]
    pub measured_from: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionDetail {
    pub summary: FunctionSummary,
    pub arn: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub environment: Vec<(String, String)>,
    /// Published versions (not $LATEST) and aliases: what provisioned
    /// concurrency may be put on.
    pub qualifiers: Vec<String>,
    pub provisioned: Vec<ProvisionedConfig>,
    /// Why provisioned concurrency is not shown, when it is not.
    pub provisioned_note: Option<String>,
    /// Whether this endpoint can set provisioned concurrency at all (the
    /// form is disabled when it says it cannot).
    #[serde(default = "yes")]
    pub provisioned_supported: bool,
    pub facts: CapacityFacts,
    /// Local: executions running now, the most ever at once, and warm
    /// environments.
    pub in_flight: Option<u32>,
    pub peak_in_flight: Option<u32>,
    pub warm: Option<u32>,
    /// Local: the function's latest log lines (its "log group"), oldest first.
    #[serde(default)]
    pub recent_log: Vec<String>,
}

/// A test invocation's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvokeOutcome {
    pub status_code: u16,
    pub payload: String,
    pub function_error: Option<String>,
    /// The last lines of the execution log (START … REPORT).
    pub log_tail: String,
    pub duration_ms: f64,
}

/// The local function form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalFunctionSpec {
    pub name: String,
    pub endpoint: String,
    pub reserved: Option<u32>,
    pub provisioned: Option<u32>,
}

/// The AWS set-up form: the seeds' function for one SageMaker endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LambdaSetupSpec {
    pub endpoint: String,
    pub function_name: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
}

/// What the set-up did, step by step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetupReport {
    pub function_name: String,
    pub role_arn: String,
    /// The inline policy document the role got.
    pub policy: String,
    pub steps: Vec<String>,
    pub test: Option<InvokeOutcome>,
}

/// Reserved concurrency: the account must keep [`MIN_UNRESERVED`]
/// unreserved after the change (the function's current reservation is
/// given back first).
pub fn check_reserved(value: u32, account: Option<AccountConcurrency>, current: Option<u32>, provisioned_total: u32) -> Result<(), String> {
    if let Some(a) = account {
        let free = a.unreserved + current.unwrap_or(0);
        if value > free.saturating_sub(MIN_UNRESERVED) {
            return Err(format!(
                "reserving {value} would leave {} unreserved; the account must keep {MIN_UNRESERVED} (at most {} can be reserved here)",
                free.saturating_sub(value.min(free)),
                free.saturating_sub(MIN_UNRESERVED)
            ));
        }
    }
    if provisioned_total > value {
        return Err(format!(
            "{provisioned_total} provisioned concurrency is more than the {value} reserved: provisioned must fit within reserved (lower it first)"
        ));
    }
    Ok(())
}

/// Provisioned concurrency on `qualifier`: a published version or alias,
/// never $LATEST; within the reservation when there is one.
pub fn check_provisioned(qualifier: &str, value: u32, reserved: Option<u32>, others: u32) -> Result<(), String> {
    let q = qualifier.trim();
    if q.is_empty() || q == "$LATEST" {
        return Err("provisioned concurrency needs a published version or an alias, not $LATEST".into());
    }
    if value == 0 {
        return Err("provisioned concurrency must be at least 1 (remove it instead of setting 0)".into());
    }
    if let Some(r) = reserved {
        if value + others > r {
            return Err(format!(
                "{} provisioned in all would exceed the {r} reserved concurrency: provisioned must fit within reserved",
                value + others
            ));
        }
    }
    Ok(())
}

/// What an AWS account may run at once unless AWS raised it (Lambda quotas).
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;

/// Contradictions and overload: the function's concurrency against the
/// endpoint's largest size at its measured throughput.
pub fn capacity_warnings(f: &CapacityFacts) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |severity: &str, message: String| out.push(Warning { severity: severity.into(), message });
    if let Some(r) = f.reserved {
        if r == 0 {
            warn("error", "Reserved concurrency is 0: every invocation is throttled.".into());
        }
        if f.provisioned_total > r {
            warn("error", format!("Provisioned concurrency ({}) exceeds reserved concurrency ({r}).", f.provisioned_total));
        }
    }
    // Without a reservation the function may use what the account leaves
    // unreserved; when even that cannot be read, Lambda's default limit.
    let (concurrency, whose) = match (f.reserved, f.account) {
        (Some(r), _) => (r, "its reserved concurrency"),
        (None, Some(a)) => (a.unreserved, "no reservation: the account's unreserved concurrency"),
        (None, None) => (DEFAULT_ACCOUNT_CONCURRENCY, "no reservation: Lambda's default account limit, the account's own figure could not be read"),
    };
    if let (c, Some(max), Some(per), Some(latency)) = (concurrency, f.endpoint_max_instances, f.per_instance_per_minute, f.latency_ms) {
        if c > 0 && latency > 0.0 && per > 0.0 {
            let sends = f64::from(c) * 60_000.0 / latency;
            let absorbs = f64::from(max) * per;
            if sends > absorbs {
                let fits = (absorbs * latency / 60_000.0).floor().max(1.0);
                let needs = (sends / per).ceil();
                warn(
                    "warning",
                    format!(
                        "At {c} concurrent executions ({whose}) of ~{latency:.0} ms the function can send {sends:.0} invocations/min, but {} absorbs at most {absorbs:.0} ({max} instances × {per:.0}): the excess queues and is throttled. Reserve at most {fits:.0}, or allow up to {needs:.0} instances.",
                        f.endpoint.as_deref().unwrap_or("the endpoint")
                    ),
                );
            }
        }
    }
    out
}

/// The server's side (implemented in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait LambdaService: Send + Sync {
    async fn list(&self) -> Result<FunctionList, ApiError>;
    async fn describe(&self, home: FnHome, name: &FunctionName) -> Result<FunctionDetail, ApiError>;
    async fn metrics(&self, home: FnHome, name: &FunctionName, window: MetricWindow) -> Result<EndpointMetrics, ApiError>;
    async fn set_reserved(&self, home: FnHome, name: &FunctionName, value: Option<u32>) -> Result<FunctionDetail, ApiError>;
    async fn set_provisioned(&self, home: FnHome, name: &FunctionName, qualifier: &str, value: Option<u32>) -> Result<FunctionDetail, ApiError>;
    async fn invoke(&self, home: FnHome, name: &FunctionName, event: &str) -> Result<InvokeOutcome, ApiError>;
    async fn create_local(&self, spec: LocalFunctionSpec) -> Result<FunctionDetail, ApiError>;
    async fn delete(&self, home: FnHome, name: &FunctionName) -> Result<(), ApiError>;
    async fn setup(&self, spec: LambdaSetupSpec) -> Result<SetupReport, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Lambda = std::sync::Arc<dyn LambdaService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/list")]
pub async fn list_functions() -> Result<FunctionList, ApiError> {
    crate::error::service::<Lambda>()?.list().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/describe")]
pub async fn describe_function(home: FnHome, name: FunctionName) -> Result<FunctionDetail, ApiError> {
    crate::error::service::<Lambda>()?.describe(home, &name).await
}

/// The function's Invocations, Errors, Throttles, Duration and
/// ConcurrentExecutions over the window: CloudWatch's AWS/Lambda for AWS
/// functions, Sagedeck's own per-minute counts for local ones.
#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/metrics")]
pub async fn get_function_metrics(home: FnHome, name: FunctionName, window: MetricWindow) -> Result<EndpointMetrics, ApiError> {
    crate::error::service::<Lambda>()?.metrics(home, &name, window).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/reserved")]
pub async fn set_reserved_concurrency(home: FnHome, name: FunctionName, value: Option<u32>) -> Result<FunctionDetail, ApiError> {
    crate::error::service::<Lambda>()?.set_reserved(home, &name, value).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/provisioned")]
pub async fn set_provisioned_concurrency(home: FnHome, name: FunctionName, qualifier: String, value: Option<u32>) -> Result<FunctionDetail, ApiError> {
    crate::error::service::<Lambda>()?.set_provisioned(home, &name, qualifier.trim(), value).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/invoke")]
pub async fn test_invoke_function(home: FnHome, name: FunctionName, event: String) -> Result<InvokeOutcome, ApiError> {
    if event.len() > 256 * 1024 {
        return Err(ApiError::TooLarge("a test event is limited to 256 KB (Lambda's asynchronous limit)".into()));
    }
    serde_json::from_str::<serde_json::Value>(&event).map_err(|e| ApiError::Invalid(format!("the event is not JSON: {e}")))?;
    crate::error::service::<Lambda>()?.invoke(home, &name, &event).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/local/create", input = leptos::server_fn::codec::Json)]
pub async fn create_local_function(spec: LocalFunctionSpec) -> Result<FunctionDetail, ApiError> {
    FunctionName::parse(&spec.name)?;
    crate::names::EndpointName::parse(&spec.endpoint)?;
    crate::error::service::<Lambda>()?.create_local(spec).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/delete")]
pub async fn delete_function(home: FnHome, name: FunctionName) -> Result<(), ApiError> {
    crate::error::service::<Lambda>()?.delete(home, &name).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "lambda/setup", input = leptos::server_fn::codec::Json)]
pub async fn set_up_endpoint_function(spec: LambdaSetupSpec) -> Result<SetupReport, ApiError> {
    FunctionName::parse(&spec.function_name)?;
    crate::names::EndpointName::parse(&spec.endpoint)?;
    if !(128..=10_240).contains(&spec.memory_mb) || !(1..=900).contains(&spec.timeout_s) {
        return Err(ApiError::Invalid("memory must be 128 to 10240 MB and the timeout 1 to 900 s".into()));
    }
    crate::error::service::<Lambda>()?.setup(spec).await
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keeps_one_hundred_unreserved() {
        let account = Some(AccountConcurrency { limit: 1000, unreserved: 1000 });
        assert!(check_reserved(900, account, None, 0).is_ok());
        let err = check_reserved(901, account, None, 0).unwrap_err();
        assert!(err.contains("must keep 100") && err.contains("at most 900"), "{err}");
        // The function's own reservation is given back first.
        let tight = Some(AccountConcurrency { limit: 1000, unreserved: 100 });
        assert!(check_reserved(10, tight, Some(10), 0).is_ok());
        assert!(check_reserved(11, tight, Some(10), 0).is_err());
        // Unknown account limits are left to AWS.
        assert!(check_reserved(5000, None, None, 0).is_ok());
        assert!(check_reserved(2, None, None, 3).unwrap_err().contains("provisioned"));
    }

    #[test]
    fn provisioned_needs_a_version_and_fits_the_reservation() {
        assert!(check_provisioned("$LATEST", 1, None, 0).unwrap_err().contains("$LATEST"));
        assert!(check_provisioned(" ", 1, None, 0).is_err());
        assert!(check_provisioned("live", 0, None, 0).is_err());
        assert!(check_provisioned("live", 3, Some(5), 0).is_ok());
        assert!(check_provisioned("live", 3, Some(5), 2).is_ok());
        assert!(check_provisioned("live", 3, Some(5), 3).unwrap_err().contains("within reserved"));
        assert!(check_provisioned("1", 50, None, 0).is_ok());
    }

    #[test]
    fn capacity_warns_when_the_function_outruns_the_endpoint() {
        let facts = CapacityFacts {
            reserved: Some(10),
            provisioned_total: 2,
            account: None,
            endpoint: Some("dogs".into()),
            endpoint_max_instances: Some(4),
            per_instance_per_minute: Some(600.0),
            latency_ms: Some(50.0),
            measured_from: None,
        };
        // 10 × 60000 / 50 = 12000/min against 4 × 600 = 2400.
        let w = capacity_warnings(&facts);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("12000") && w[0].message.contains("2400"), "{}", w[0].message);
        assert!(w[0].message.contains("Reserve at most 2") && w[0].message.contains("up to 20 instances"), "{}", w[0].message);
        // Within capacity: quiet.
        let fine = CapacityFacts { reserved: Some(2), provisioned_total: 1, latency_ms: Some(100.0), ..facts.clone() };
        assert!(capacity_warnings(&fine).is_empty());
        // Contradictions are errors.
        let bad = CapacityFacts { reserved: Some(1), provisioned_total: 3, endpoint_max_instances: None, ..facts.clone() };
        assert_eq!(capacity_warnings(&bad)[0].severity, "error");
        let zero = CapacityFacts { reserved: Some(0), provisioned_total: 0, endpoint_max_instances: None, ..facts.clone() };
        assert!(capacity_warnings(&zero)[0].message.contains("every invocation is throttled"));
        // No reservation and no account figure: judged at Lambda's default limit, and said so.
        let unreserved = CapacityFacts { reserved: None, provisioned_total: 0, ..facts };
        let w = capacity_warnings(&unreserved);
        assert!(w[0].message.contains("At 1000 concurrent executions (no reservation: Lambda's default account limit"), "{}", w[0].message);
    }
}
