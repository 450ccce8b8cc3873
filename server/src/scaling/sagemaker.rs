//! SageMaker variant auto-scaling through Application Auto Scaling
//! (namespace `sagemaker`, dimension `sagemaker:variant:DesiredInstanceCount`,
//! resource `endpoint/NAME/variant/VARIANT`). Sagedeck manages one
//! target-tracking policy per variant, named [`POLICY_NAME`]; other policies
//! on the same target are listed and left alone.

use crate::aws::{from_sdk, Aws};
use app::scaling::policy::AWS_DATAPOINT_SECONDS;
use app::scaling::{PolicyOnTarget, ScalingActivity, ScalingPolicy, POLICY_NAME};
use app::ApiError;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ScalingPolicy as AwsPolicy, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_smithy_types::date_time::Format;
use std::collections::HashMap;
use std::sync::Arc;

pub fn resource_id(endpoint: &str, variant: &str) -> String {
    format!("endpoint/{endpoint}/variant/{variant}")
}

const DIMENSION: ScalableDimension = ScalableDimension::SageMakerVariantDesiredInstanceCount;

/// What Application Auto Scaling holds for one variant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VariantState {
    /// Registered min and max.
    pub registered: Option<(u32, u32)>,
    /// The policy the console edits: Sagedeck's, else the first (by name)
    /// target-tracking policy on invocations per instance made by hand.
    pub policy: Option<ScalingPolicy>,
    /// Every policy on the target.
    pub policies: Vec<PolicyOnTarget>,
    /// Every target-tracking policy on invocations per instance, named
    /// (`name` is `None` for Sagedeck's own).
    pub tracking: Vec<ScalingPolicy>,
}

impl VariantState {
    /// The policies other than the edited one, as "name (type)".
    pub fn others(&self) -> Vec<String> {
        self.policies.iter().filter(|p| !p.edited_here).map(|p| format!("{} ({})", p.name, p.policy_type)).collect()
    }

    /// The invocations policy of that name (`None`: Sagedeck's).
    pub fn tracking(&self, name: Option<&str>) -> Option<ScalingPolicy> {
        self.tracking.iter().find(|p| p.name.as_deref() == name).cloned()
    }
}

pub struct AwsScaling {
    aws: Arc<Aws>,
}

fn bad_build(e: aws_smithy_types::error::operation::BuildError) -> ApiError {
    ApiError::Internal(format!("building the request: {e}"))
}

/// Every variant's state, keyed by resource id: two calls for all endpoints.
impl AwsScaling {
    pub fn new(aws: Arc<Aws>) -> Self {
        Self { aws }
    }

    fn client(&self) -> Result<&aws_sdk_applicationautoscaling::Client, ApiError> {
        Ok(&self.aws.clients()?.autoscaling)
    }

    /// The state of the given resources, or of every SageMaker target when
    /// `resource_ids` is empty.
    pub async fn states(&self, resource_ids: &[String]) -> Result<HashMap<String, VariantState>, ApiError> {
        let client = self.client()?;
        let mut out: HashMap<String, VariantState> = HashMap::new();
        let mut targets = client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .scalable_dimension(DIMENSION)
            .set_resource_ids((!resource_ids.is_empty()).then(|| resource_ids.to_vec()))
            .into_paginator()
            .items()
            .send();
        while let Some(t) = targets.next().await {
            let t = t.map_err(|e| from_sdk("Application Auto Scaling DescribeScalableTargets", e))?;
            out.entry(t.resource_id().to_string()).or_default().registered =
                Some((t.min_capacity().max(0) as u32, t.max_capacity().max(0) as u32));
        }
        // DescribeScalingPolicies takes one resource id at most: ask per
        // resource when there are a few, else for the whole namespace.
        let scopes: Vec<Option<&String>> = if resource_ids.is_empty() || resource_ids.len() > 5 {
            vec![None]
        } else {
            resource_ids.iter().map(Some).collect()
        };
        let mut found: Vec<AwsPolicy> = Vec::new();
        for scope in scopes {
            let mut policies = client
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Sagemaker)
                .scalable_dimension(DIMENSION)
                .set_resource_id(scope.cloned())
                .into_paginator()
                .items()
                .send();
            while let Some(p) = policies.next().await {
                let p = p.map_err(|e| from_sdk("Application Auto Scaling DescribeScalingPolicies", e))?;
                found.push(p);
            }
        }
        // Sagedeck's own first, then by name: the first that tracks
        // invocations per instance is the one edited.
        found.sort_by_key(|p| (p.policy_name() != POLICY_NAME, p.policy_name().to_string()));
        for p in &found {
            let state = out.entry(p.resource_id().to_string()).or_default();
            let tracked = invocations_policy(p, state.registered.unwrap_or((1, 1)));
            let edited = state.policy.is_none() && tracked.is_some();
            if edited {
                state.policy = tracked.clone();
            }
            state.tracking.extend(tracked);
            state.policies.push(PolicyOnTarget {
                name: p.policy_name().to_string(),
                policy_type: p.policy_type().as_str().to_string(),
                summary: describe_policy(p),
                edited_here: edited,
                made_by_sagedeck: p.policy_name() == POLICY_NAME,
            });
        }
        Ok(out)
    }

    pub async fn state(&self, endpoint: &str, variant: &str) -> Result<VariantState, ApiError> {
        let id = resource_id(endpoint, variant);
        Ok(self.states(std::slice::from_ref(&id)).await?.remove(&id).unwrap_or_default())
    }

    /// The variant's recent scaling activities, or why there are none.
    pub async fn activities(&self, endpoint: &str, variant: &str) -> (Vec<ScalingActivity>, Option<String>) {
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return (Vec::new(), Some(e.message().to_string())),
        };
        const OPERATION: &str = "Application Auto Scaling DescribeScalingActivities";
        // An endpoint that does not implement it (moto) is not asked again for a while.
        if let Some(known) = self.aws.known_unsupported(OPERATION) {
            return (Vec::new(), Some(format!("This AWS endpoint does not report scaling activities: {}", known.message())));
        }
        let answer = client
            .describe_scaling_activities()
            .service_namespace(ServiceNamespace::Sagemaker)
            .scalable_dimension(DIMENSION)
            .resource_id(resource_id(endpoint, variant))
            .max_results(20)
            .send()
            .await;
        match answer {
            Err(e) => (
                Vec::new(),
                Some(format!(
                    "This AWS endpoint does not report scaling activities: {}",
                    self.aws.remember_unsupported(OPERATION, from_sdk(OPERATION, e)).message()
                )),
            ),
            Ok(a) if a.scaling_activities().is_empty() => (
                Vec::new(),
                Some("Application Auto Scaling reports no activity for this variant yet (it keeps six weeks).".into()),
            ),
            Ok(a) => (
                a.scaling_activities()
                    .iter()
                    .map(|x| ScalingActivity {
                        at: x.start_time().fmt(Format::DateTime).unwrap_or_default(),
                        from: None,
                        to: capacity_in(x.description()),
                        status: x.status_code().as_str().to_string(),
                        cause: format!("{} {}", x.description(), x.cause()).trim().to_string(),
                    })
                    .collect(),
                None,
            ),
        }
    }

    async fn register(&self, id: &str, min: u32, max: u32) -> Result<(), ApiError> {
        self.client()?
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Sagemaker)
            .scalable_dimension(DIMENSION)
            .resource_id(id)
            .min_capacity(min as i32)
            .max_capacity(max as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("Application Auto Scaling RegisterScalableTarget", e))
    }

    async fn deregister(&self, id: &str) -> Result<(), ApiError> {
        self.client()?
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Sagemaker)
            .scalable_dimension(DIMENSION)
            .resource_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("Application Auto Scaling DeregisterScalableTarget", e))
    }

    /// Registers min and max, then puts the target-tracking policy. If the
    /// policy is refused, the target is put back as it was (or deregistered
    /// when it was not registered), and the error says so.
    pub async fn put(&self, endpoint: &str, variant: &str, policy: &ScalingPolicy) -> Result<(), ApiError> {
        let client = self.client()?;
        let id = resource_id(endpoint, variant);
        let before = self.state(endpoint, variant).await?;
        self.register(&id, policy.min_instances, policy.max_instances).await?;
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(policy.target_value)
            .predefined_metric_specification(
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::SageMakerVariantInvocationsPerInstance)
                    .build()
                    .map_err(bad_build)?,
            )
            .scale_in_cooldown(policy.scale_in_cooldown_s as i32)
            .scale_out_cooldown(policy.scale_out_cooldown_s as i32)
            .disable_scale_in(policy.disable_scale_in)
            .build()
            .map_err(bad_build)?;
        let put = client
            .put_scaling_policy()
            .policy_name(policy.name.as_deref().unwrap_or(POLICY_NAME))
            .service_namespace(ServiceNamespace::Sagemaker)
            .scalable_dimension(DIMENSION)
            .resource_id(&id)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(config)
            .send()
            .await;
        let Err(e) = put else { return Ok(()) };
        let error = from_sdk("Application Auto Scaling PutScalingPolicy", e);
        let undo = match before.registered {
            Some((min, max)) => self.register(&id, min, max).await.is_ok(),
            None => self.deregister(&id).await.is_ok(),
        };
        let words = match before.registered {
            Some((min, max)) => format!("min {min} / max {max} were put back"),
            None => "the target registered a moment before was deregistered".to_string(),
        };
        let undone = if undo {
            format!("The policy was not applied; {words}.")
        } else {
            "The policy was not applied, and putting the target back failed too: check its min and max.".to_string()
        };
        Err(match error {
            ApiError::Invalid(m) => ApiError::Invalid(format!("{m} {undone}")),
            ApiError::AccessDenied(m) => ApiError::AccessDenied(format!("{m} {undone}")),
            ApiError::Conflict(m) => ApiError::Conflict(format!("{m} {undone}")),
            ApiError::Throttled(m) => ApiError::Throttled(format!("{m} {undone}")),
            other => ApiError::Upstream(format!("{} {undone}", other.message())),
        })
    }

    /// Deletes the named invocations policy (`None`: Sagedeck's), and
    /// deregisters the target unless other policies still use it.
    pub async fn remove(&self, endpoint: &str, variant: &str, name: Option<&str>) -> Result<(), ApiError> {
        let client = self.client()?;
        let id = resource_id(endpoint, variant);
        let state = self.state(endpoint, variant).await?;
        let policy_name = name.unwrap_or(POLICY_NAME);
        let present = state.policies.iter().any(|p| p.name == policy_name);
        if !present && (state.registered.is_none() || !state.policies.is_empty()) {
            return Err(ApiError::NotFound(format!("{id} has no policy {policy_name:?} to remove")));
        }
        if present {
            client
                .delete_scaling_policy()
                .policy_name(policy_name)
                .service_namespace(ServiceNamespace::Sagemaker)
                .scalable_dimension(DIMENSION)
                .resource_id(&id)
                .send()
                .await
                .map_err(|e| from_sdk("Application Auto Scaling DeleteScalingPolicy", e))?;
        }
        let others_remain = state.policies.iter().any(|p| p.name != policy_name);
        if !others_remain && state.registered.is_some() {
            self.deregister(&id).await?;
        }
        Ok(())
    }
}

/// A target-tracking policy on SageMakerVariantInvocationsPerInstance as
/// the console's policy (with the target's min and max), or `None` for
/// any other kind of policy.
fn invocations_policy(p: &AwsPolicy, (min, max): (u32, u32)) -> Option<ScalingPolicy> {
    let c = p.target_tracking_scaling_policy_configuration()?;
    let metric = c.predefined_metric_specification()?.predefined_metric_type();
    if *metric != MetricType::SageMakerVariantInvocationsPerInstance {
        return None;
    }
    Some(ScalingPolicy {
        min_instances: min,
        max_instances: max,
        target_value: c.target_value(),
        // Application Auto Scaling's default cooldown for SageMaker is 300 s.
        scale_in_cooldown_s: c.scale_in_cooldown().unwrap_or(300).max(0) as u32,
        scale_out_cooldown_s: c.scale_out_cooldown().unwrap_or(300).max(0) as u32,
        disable_scale_in: c.disable_scale_in().unwrap_or(false),
        datapoint_seconds: AWS_DATAPOINT_SECONDS,
        name: (p.policy_name() != POLICY_NAME).then(|| p.policy_name().to_string()),
    })
}

/// One line for any policy: what it tracks or reacts to, and how.
fn describe_policy(p: &AwsPolicy) -> String {
    if let Some(c) = p.target_tracking_scaling_policy_configuration() {
        let metric = if let Some(m) = c.predefined_metric_specification() {
            m.predefined_metric_type().as_str().to_string()
        } else if let Some(m) = c.customized_metric_specification() {
            if m.metrics().is_empty() {
                let dims: Vec<String> = m.dimensions().iter().map(|d| format!("{}={}", d.name(), d.value())).collect();
                format!(
                    "{}/{} ({}{})",
                    m.namespace().unwrap_or("?"),
                    m.metric_name().unwrap_or("?"),
                    m.statistic().map(|s| s.as_str()).unwrap_or("?"),
                    if dims.is_empty() { String::new() } else { format!(", {}", dims.join(", ")) }
                )
            } else {
                format!("a metric-math expression over {} metrics", m.metrics().len())
            }
        } else {
            "an unnamed metric".to_string()
        };
        return tracking_summary(
            &metric,
            c.target_value(),
            c.scale_in_cooldown(),
            c.scale_out_cooldown(),
            c.disable_scale_in().unwrap_or(false),
        );
    }
    if let Some(c) = p.step_scaling_policy_configuration() {
        let steps: Vec<(Option<f64>, Option<f64>, i32)> = c
            .step_adjustments()
            .iter()
            .map(|s| (s.metric_interval_lower_bound(), s.metric_interval_upper_bound(), s.scaling_adjustment()))
            .collect();
        let alarms: Vec<&str> = p.alarms().iter().map(|a| a.alarm_name()).collect();
        return step_summary(c.adjustment_type().map(|a| a.as_str()).unwrap_or("ChangeInCapacity"), &steps, c.cooldown(), &alarms);
    }
    format!("{} policy (shown as Application Auto Scaling reports it; not modelled here)", p.policy_type().as_str())
}

fn tracking_summary(metric: &str, target: f64, scale_in: Option<i32>, scale_out: Option<i32>, no_scale_in: bool) -> String {
    format!(
        "target tracking: keeps {metric} at {target} · cooldown in {} s / out {} s{}",
        scale_in.unwrap_or(300),
        scale_out.unwrap_or(300),
        if no_scale_in { " · scale-in off" } else { "" }
    )
}

/// "step scaling on alarm high-load: [0, 10) → +1, [10, ∞) → +2 (ChangeInCapacity) · cooldown 300 s".
fn step_summary(adjustment: &str, steps: &[(Option<f64>, Option<f64>, i32)], cooldown: Option<i32>, alarms: &[&str]) -> String {
    let bound = |b: Option<f64>, infinite: &str| b.map(|v| format!("{v}")).unwrap_or_else(|| infinite.to_string());
    let steps: Vec<String> = steps
        .iter()
        .map(|(lo, hi, n)| format!("[{}, {}) → {n:+}", bound(*lo, "-∞"), bound(*hi, "∞")))
        .collect();
    let on = if alarms.is_empty() { "no alarm attached yet".to_string() } else { format!("alarm {}", alarms.join(", ")) };
    format!(
        "step scaling on {on}: {} ({adjustment}, bounds relative to the alarm's threshold){}",
        if steps.is_empty() { "no steps".to_string() } else { steps.join(", ") },
        cooldown.map(|c| format!(" · cooldown {c} s")).unwrap_or_default()
    )
}

/// "Setting desired instance count to 3." → 3.
fn capacity_in(description: &str) -> Option<u32> {
    let after = description.rsplit(" to ").next()?;
    after.trim_end_matches('.').trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_made_by_hand_are_described_as_what_they_are() {
        assert_eq!(
            tracking_summary("SageMakerVariantInvocationsPerInstance", 25.0, Some(30), Some(30), false),
            "target tracking: keeps SageMakerVariantInvocationsPerInstance at 25 · cooldown in 30 s / out 30 s"
        );
        assert!(tracking_summary("AWS/SageMaker/CPUUtilization (Average)", 70.0, None, None, true).ends_with("in 300 s / out 300 s · scale-in off"));
        assert_eq!(
            step_summary("ChangeInCapacity", &[(Some(0.0), Some(10.0), 1), (Some(10.0), None, 2), (None, Some(0.0), -1)], Some(120), &["busy"]),
            "step scaling on alarm busy: [0, 10) → +1, [10, ∞) → +2, [-∞, 0) → -1 (ChangeInCapacity, bounds relative to the alarm's threshold) · cooldown 120 s"
        );
        assert!(step_summary("PercentChangeInCapacity", &[], None, &[]).starts_with("step scaling on no alarm attached yet: no steps"));
    }

    #[test]
    fn the_edited_policy_is_sagedecks_else_a_hand_made_invocations_policy() {
        let tracking = |name: &str, metric: MetricType| {
            AwsPolicy::builder()
                .policy_arn("arn")
                .policy_name(name)
                .service_namespace(ServiceNamespace::Sagemaker)
                .resource_id("endpoint/e/variant/v")
                .scalable_dimension(DIMENSION)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(
                    TargetTrackingScalingPolicyConfiguration::builder()
                        .target_value(25.0)
                        .predefined_metric_specification(PredefinedMetricSpecification::builder().predefined_metric_type(metric).build().unwrap())
                        .scale_in_cooldown(30)
                        .build()
                        .unwrap(),
                )
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .unwrap()
        };
        let by_hand = invocations_policy(&tracking("my-endpoint-scaling", MetricType::SageMakerVariantInvocationsPerInstance), (1, 4)).unwrap();
        assert_eq!(by_hand.name.as_deref(), Some("my-endpoint-scaling"));
        assert_eq!((by_hand.min_instances, by_hand.max_instances, by_hand.target_value, by_hand.scale_in_cooldown_s, by_hand.scale_out_cooldown_s), (1, 4, 25.0, 30, 300));
        let ours = invocations_policy(&tracking(POLICY_NAME, MetricType::SageMakerVariantInvocationsPerInstance), (1, 4)).unwrap();
        assert_eq!(ours.name, None);
        assert!(invocations_policy(&tracking("cpu", MetricType::Ec2SpotFleetRequestAverageCpuUtilization), (1, 4)).is_none());
    }

    #[test]
    fn resource_ids_and_activity_descriptions() {
        assert_eq!(resource_id("dogs", "AllTraffic"), "endpoint/dogs/variant/AllTraffic");
        assert_eq!(capacity_in("Setting desired instance count to 3."), Some(3));
        assert_eq!(capacity_in("Something else"), None);
    }
}
