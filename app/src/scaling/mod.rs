//! Endpoint auto-scaling: target tracking on invocations per instance, for
//! SageMaker variants (Application Auto Scaling) and local endpoints (the
//! embedded runtime adds and removes replicas by the same rules). The pure
//! parts, the policy's decision and the what-if simulator, compile into the
//! browser too, so a policy is simulated as it is typed.

mod page;
pub mod policy;
pub mod simulate;

pub use page::{summary, ScalingEndpointPage, ScalingPage};
pub use policy::{ScalingDecision, ScalingPolicy, TargetTracker};

use crate::endpoints::Backend;
use crate::names::{EndpointName, VariantName};
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The name Sagedeck gives the target-tracking policy it adds to a variant
/// that has none on invocations per instance. A variant that already has one
/// (made by hand, under its own name) has that one edited instead; policies
/// on other metrics and step scaling are shown and left alone.
pub const POLICY_NAME: &str = "sagedeck-invocations-per-instance";

/// What Application Auto Scaling does when a target has several policies,
/// in the words of its documentation: shown wherever two policies meet.
pub const SEVERAL_POLICIES: &str = "Application Auto Scaling runs every policy on a target: it scales out when any target-tracking policy asks for more instances and scales in only when all of them allow it; a step-scaling policy acts on its own alarm regardless. So the policy asking for the most instances wins.";

/// One scaling policy on a target, whoever made it, as Application Auto
/// Scaling describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyOnTarget {
    pub name: String,
    /// TargetTrackingScaling, StepScaling, PredictiveScaling.
    pub policy_type: String,
    /// What it tracks or reacts to and how, in one line.
    pub summary: String,
    /// The policy the editor shows and Apply edits (target tracking on
    /// SageMakerVariantInvocationsPerInstance, the metric the simulator models).
    pub edited_here: bool,
    pub made_by_sagedeck: bool,
}

/// The variant name of a local endpoint: it has one pool of replicas.
pub const LOCAL_VARIANT: &str = "replicas";

/// One scaling activity, as Application Auto Scaling reports it (or as the
/// local runtime records it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingActivity {
    pub at: String,
    pub from: Option<u32>,
    pub to: Option<u32>,
    /// Successful, InProgress, Failed…
    pub status: String,
    pub cause: String,
}

/// One scalable target: a SageMaker production variant, or a local
/// endpoint's replicas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantScaling {
    pub variant: String,
    /// Application Auto Scaling's resource id (`endpoint/NAME/variant/V`).
    pub resource_id: String,
    pub current_instances: u32,
    pub instance_type: String,
    /// The target-tracking policy on invocations per instance, Sagedeck's or
    /// one made by hand (its `name` says which), when the target has one.
    pub policy: Option<ScalingPolicy>,
    /// Min and max registered, with or without a policy.
    pub registered: Option<(u32, u32)>,
    /// Every policy on the target, the edited one included.
    pub policies: Vec<PolicyOnTarget>,
    pub activities: Vec<ScalingActivity>,
    /// Why activities are missing, when they are.
    pub activities_note: Option<String>,
}

/// What one instance can absorb, measured from the endpoint's own metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredCapacity {
    pub per_instance_per_minute: f64,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointScaling {
    pub backend: Backend,
    pub endpoint: String,
    pub status: String,
    pub variants: Vec<VariantScaling>,
    pub measured: Option<MeasuredCapacity>,
    /// Price of one instance-hour when known (SageMaker's list price table).
    pub hourly_price: Option<f64>,
}

/// A row of the Scaling page: every endpoint and its policy at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingRow {
    pub backend: Backend,
    pub endpoint: String,
    pub status: String,
    pub instances: u32,
    pub policy: Option<ScalingPolicy>,
    /// Policies the row's `policy` does not show, as "name (type)".
    pub other_policies: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingOverview {
    pub rows: Vec<ScalingRow>,
    /// Why SageMaker endpoints are missing, when they are.
    pub sagemaker_note: Option<String>,
}

/// Recorded invocations per minute, oldest first, for the simulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationTrace {
    pub per_minute: Vec<f64>,
    /// Unix seconds of the first minute.
    pub start: i64,
    pub source: String,
}

/// The server's side (implemented in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ScalingService: Send + Sync {
    async fn overview(&self) -> Result<ScalingOverview, ApiError>;
    async fn describe(&self, backend: Backend, endpoint: &EndpointName) -> Result<EndpointScaling, ApiError>;
    async fn put_policy(&self, backend: Backend, endpoint: &EndpointName, variant: &VariantName, policy: ScalingPolicy) -> Result<EndpointScaling, ApiError>;
    async fn remove_policy(&self, backend: Backend, endpoint: &EndpointName, variant: &VariantName) -> Result<EndpointScaling, ApiError>;
    async fn trace(&self, backend: Backend, endpoint: &EndpointName, hours: u32) -> Result<InvocationTrace, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Scaling = std::sync::Arc<dyn ScalingService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "scaling/overview")]
pub async fn get_scaling_overview() -> Result<ScalingOverview, ApiError> {
    crate::error::service::<Scaling>()?.overview().await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "scaling/describe")]
pub async fn describe_scaling(backend: Backend, endpoint: EndpointName) -> Result<EndpointScaling, ApiError> {
    crate::error::service::<Scaling>()?.describe(backend, &endpoint).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "scaling/put", input = leptos::server_fn::codec::Json)]
pub async fn put_scaling_policy(backend: Backend, endpoint: EndpointName, variant: VariantName, policy: ScalingPolicy) -> Result<EndpointScaling, ApiError> {
    policy
        .validate(backend == Backend::Local)
        .map_err(|errors| ApiError::Invalid(crate::training::spec::describe(&errors)))?;
    crate::error::service::<Scaling>()?.put_policy(backend, &endpoint, &variant, policy).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "scaling/remove")]
pub async fn remove_scaling_policy(backend: Backend, endpoint: EndpointName, variant: VariantName) -> Result<EndpointScaling, ApiError> {
    crate::error::service::<Scaling>()?.remove_policy(backend, &endpoint, &variant).await
}

#[server(client = crate::csrf::CsrfClient, endpoint = "scaling/trace")]
pub async fn get_invocation_trace(backend: Backend, endpoint: EndpointName, hours: u32) -> Result<InvocationTrace, ApiError> {
    if !(1..=24).contains(&hours) {
        return Err(ApiError::Invalid(format!("a recorded trace covers 1 to 24 hours, not {hours}")));
    }
    crate::error::service::<Scaling>()?.trace(backend, &endpoint, hours).await
}
