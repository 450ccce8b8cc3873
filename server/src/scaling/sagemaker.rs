//! SageMaker variant auto-scaling through Application Auto Scaling
//! (namespace `sagemaker`, dimension `sagemaker:variant:DesiredInstanceCount`,
//! resource `endpoint/NAME/variant/VARIANT`). Sagedeck manages one
//! target-tracking policy per variant, named [`POLICY_NAME`]; other policies
//! on the same target are listed and left alone.

use crate::aws::{from_sdk, Aws};
use app::scaling::policy::AWS_DATAPOINT_SECONDS;
use app::scaling::{ScalingActivity, ScalingPolicy, POLICY_NAME};
use app::ApiError;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
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
    pub policy: Option<ScalingPolicy>,
    pub other_policies: Vec<String>,
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
                let state = out.entry(p.resource_id().to_string()).or_default();
                let ours = p.policy_name() == POLICY_NAME;
                match (ours, p.target_tracking_scaling_policy_configuration()) {
                    (true, Some(c)) => {
                        let (min, max) = state.registered.unwrap_or((1, 1));
                        state.policy = Some(ScalingPolicy {
                            min_instances: min,
                            max_instances: max,
                            target_value: c.target_value(),
                            scale_in_cooldown_s: c.scale_in_cooldown().unwrap_or(300).max(0) as u32,
                            scale_out_cooldown_s: c.scale_out_cooldown().unwrap_or(300).max(0) as u32,
                            disable_scale_in: c.disable_scale_in().unwrap_or(false),
                            datapoint_seconds: AWS_DATAPOINT_SECONDS,
                        });
                    }
                    _ => state.other_policies.push(format!("{} ({})", p.policy_name(), p.policy_type().as_str())),
                }
            }
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
                    from_sdk("Application Auto Scaling DescribeScalingActivities", e).message()
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
            .policy_name(POLICY_NAME)
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

    /// Deletes Sagedeck's policy, and deregisters the target unless other
    /// policies still use it.
    pub async fn remove(&self, endpoint: &str, variant: &str) -> Result<(), ApiError> {
        let client = self.client()?;
        let id = resource_id(endpoint, variant);
        let state = self.state(endpoint, variant).await?;
        if state.registered.is_none() && state.policy.is_none() {
            return Err(ApiError::NotFound(format!("{id} has no auto-scaling to remove")));
        }
        if state.policy.is_some() {
            client
                .delete_scaling_policy()
                .policy_name(POLICY_NAME)
                .service_namespace(ServiceNamespace::Sagemaker)
                .scalable_dimension(DIMENSION)
                .resource_id(&id)
                .send()
                .await
                .map_err(|e| from_sdk("Application Auto Scaling DeleteScalingPolicy", e))?;
        }
        if state.other_policies.is_empty() && state.registered.is_some() {
            self.deregister(&id).await?;
        }
        Ok(())
    }
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
    fn resource_ids_and_activity_descriptions() {
        assert_eq!(resource_id("dogs", "AllTraffic"), "endpoint/dogs/variant/AllTraffic");
        assert_eq!(capacity_in("Setting desired instance count to 3."), Some(3));
        assert_eq!(capacity_in("Something else"), None);
    }
}
