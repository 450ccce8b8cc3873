//! Auto-scaling for both kinds of endpoint behind one service: SageMaker
//! variants through Application Auto Scaling ([`sagemaker`]), local
//! endpoints through the embedded runtime ([`local`]). Every change is
//! journaled with the policy before and after as JSON, which is what a
//! revert puts back.

pub mod local;
pub mod sagemaker;

use crate::endpoints::EndpointHub;
use crate::journal::{Change, Journal};
use app::names::{EndpointName, VariantName};
use app::endpoints::{Backend, EndpointService, MetricWindow};
use app::journal::ReverterService;
use app::overview::ChangeRecord;
use app::scaling::{
    EndpointScaling, InvocationTrace, MeasuredCapacity, ScalingOverview, ScalingPolicy, ScalingRow, ScalingService, VariantScaling,
    LOCAL_VARIANT,
};
use app::ApiError;
use local::LocalScaler;
use sagemaker::{resource_id, AwsScaling};
use sqlx::SqlitePool;
use std::sync::Arc;

pub struct ScalingHub {
    journal: Journal,
    endpoints: Arc<EndpointHub>,
    pub local: Arc<LocalScaler>,
    aws: AwsScaling,
}

/// The journal's target for a variant: `local/NAME/replicas`,
/// `sagemaker/NAME/AllTraffic`.
pub fn journal_target(backend: Backend, endpoint: &str, variant: &str) -> String {
    format!("{}/{endpoint}/{variant}", backend.slug())
}

fn parse_target(target: &str) -> Result<(Backend, &str, &str), ApiError> {
    let mut parts = target.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(b), Some(e), Some(v)) => Ok((Backend::from_slug(b)?, e, v)),
        _ => Err(ApiError::Invalid(format!("{target:?} is not a scaling target"))),
    }
}

fn as_json(policy: &Option<ScalingPolicy>) -> String {
    serde_json::to_string(policy).unwrap_or_else(|_| "null".into())
}

/// What a change does to a variant's auto-scaling.
#[derive(Clone, Debug, PartialEq)]
enum ScalingChange {
    /// Puts the policy (under its own name when it was made by hand).
    Put(ScalingPolicy),
    /// Removes the invocations policy of that name (`None`: Sagedeck's).
    Remove(Option<String>),
}

impl ScalingChange {
    /// What undoes a journaled change, from its before- and after-states.
    fn undoing(before: Option<ScalingPolicy>, after: Option<ScalingPolicy>) -> Self {
        match (before, after) {
            (Some(p), _) => ScalingChange::Put(p),
            (None, after) => ScalingChange::Remove(after.and_then(|p| p.name)),
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            ScalingChange::Put(p) => p.name.as_deref(),
            ScalingChange::Remove(name) => name.as_deref(),
        }
    }
}

impl ScalingHub {
    pub async fn start(pool: SqlitePool, journal: Journal, endpoints: Arc<EndpointHub>, aws: Arc<crate::aws::Aws>) -> Arc<Self> {
        let local = LocalScaler::start(pool, endpoints.clone()).await;
        Arc::new(ScalingHub { journal, endpoints, local, aws: AwsScaling::new(aws) })
    }

    /// The invocations policy of that name on the variant, as it is now.
    async fn current(&self, backend: Backend, endpoint: &str, variant: &str, name: Option<&str>) -> Result<Option<ScalingPolicy>, ApiError> {
        match backend {
            Backend::Local => self.local.policy(endpoint).await,
            Backend::SageMaker => Ok(self.aws.state(endpoint, variant).await?.tracking(name)),
        }
    }

    fn check_local_variant(backend: Backend, variant: &str) -> Result<(), ApiError> {
        if backend == Backend::Local && variant != LOCAL_VARIANT {
            return Err(ApiError::Invalid(format!("a local endpoint has one variant, {LOCAL_VARIANT:?}, not {variant:?}")));
        }
        Ok(())
    }

    /// Applies the change and journals the attempt; `revert_of` names the
    /// change this one undoes.
    async fn change(
        &self,
        backend: Backend,
        endpoint: &EndpointName,
        variant: &VariantName,
        change: ScalingChange,
        revert_of: Option<i64>,
    ) -> Result<Option<i64>, ApiError> {
        Self::check_local_variant(backend, variant)?;
        if let ScalingChange::Put(p) = &change {
            p.validate(backend == Backend::Local)
                .map_err(|errors| ApiError::Invalid(app::training::spec::describe(&errors)))?;
        }
        // Unknown endpoints and variants are refused before anything is
        // attempted (and so are not journaled as changes).
        let detail = self.endpoints.describe(backend, endpoint).await?;
        if backend == Backend::SageMaker {
            if !detail.variants.iter().any(|v| v.name == variant.as_str()) {
                let names: Vec<&str> = detail.variants.iter().map(|v| v.name.as_str()).collect();
                return Err(ApiError::NotFound(format!("endpoint {endpoint} has no variant {variant:?} (it has {})", names.join(", "))));
            }
        }
        let before = self.current(backend, endpoint, variant, change.name()).await?;
        let result = match (&change, backend) {
            (ScalingChange::Put(p), Backend::Local) => self.local.put(endpoint, p).await,
            (ScalingChange::Put(p), Backend::SageMaker) => self.aws.put(endpoint, variant, p).await,
            (ScalingChange::Remove(_), Backend::Local) => match before {
                Some(_) => self.local.remove(endpoint).await,
                None => Err(ApiError::NotFound(format!("local endpoint {endpoint} has no auto-scaling to remove"))),
            },
            (ScalingChange::Remove(name), Backend::SageMaker) => self.aws.remove(endpoint, variant, name.as_deref()).await,
        };
        let target = journal_target(backend, endpoint, variant);
        let after = match &change {
            ScalingChange::Put(p) => Some(p.clone()),
            ScalingChange::Remove(_) => None,
        };
        let record = Change {
            backend: if backend == Backend::Local { "local" } else { "aws" },
            action: if after.is_some() { "scaling.put" } else { "scaling.remove" },
            target: &target,
            before: Some(as_json(&before)),
            // A removal names the policy it removed, so that it reads (and reverts) right.
            after: Some(as_json(&after)),
            outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
        };
        let id = match revert_of {
            Some(of) => self.journal.record_revert(record, of).await,
            None => self.journal.record(record).await,
        };
        result.map(|()| id)
    }

    /// The most instances an endpoint can have: its policy's maximum, or
    /// its current count when it does not scale.
    pub async fn max_instances(&self, backend: Backend, endpoint: &EndpointName) -> Option<u32> {
        match backend {
            Backend::Local => match self.local.policy(endpoint).await.ok().flatten() {
                Some(p) => Some(p.max_instances),
                None => self.endpoints.runtime(endpoint).map(|r| r.instances() as u32),
            },
            Backend::SageMaker => {
                let detail = self.endpoints.describe(Backend::SageMaker, endpoint).await.ok()?;
                let variant = detail.variants.first()?;
                let state = self.aws.state(endpoint, &variant.name).await.ok()?;
                state.registered.map(|(_, max)| max).or(variant.current_instances.map(|n| n.max(0) as u32))
            }
        }
    }

    /// What one instance absorbs, from the endpoint's measured latency.
    async fn measured(&self, backend: Backend, endpoint: &EndpointName) -> Option<MeasuredCapacity> {
        let (m, source) = crate::endpoints::measured_latency(&self.endpoints, backend, endpoint).await?;
        Some(MeasuredCapacity {
            per_instance_per_minute: m.per_instance_per_minute(),
            source: format!("one request at a time per instance at {}", m.describe(&source)),
        })
    }

    async fn local_scaling(&self, endpoint: &EndpointName) -> Result<EndpointScaling, ApiError> {
        let detail = self.endpoints.describe(Backend::Local, endpoint).await?;
        let policy = self.local.policy(endpoint).await?;
        let activities = self.local.activities(endpoint, 30).await?;
        let measured = self.measured(Backend::Local, endpoint).await;
        Ok(EndpointScaling {
            backend: Backend::Local,
            endpoint: endpoint.to_string(),
            status: detail.summary.status.clone(),
            variants: vec![VariantScaling {
                variant: LOCAL_VARIANT.to_string(),
                resource_id: journal_target(Backend::Local, endpoint, LOCAL_VARIANT),
                current_instances: detail.summary.instances,
                instance_type: detail.summary.instance_type.clone(),
                registered: policy.as_ref().map(|p| (p.min_instances, p.max_instances)),
                policies: policy
                    .iter()
                    .map(|p| app::scaling::PolicyOnTarget {
                        name: app::scaling::POLICY_NAME.to_string(),
                        policy_type: "TargetTrackingScaling".into(),
                        summary: format!("target tracking: keeps invocations per replica per minute at {}", p.target_value),
                        edited_here: true,
                        made_by_sagedeck: true,
                    })
                    .collect(),
                policy,
                activities_note: activities.is_empty().then(|| "No scaling activity yet.".to_string()),
                activities,
            }],
            measured,
            hourly_price: None,
        })
    }

    async fn sagemaker_scaling(&self, endpoint: &EndpointName) -> Result<EndpointScaling, ApiError> {
        let detail = self.endpoints.describe(Backend::SageMaker, endpoint).await?;
        let ids: Vec<String> = detail.variants.iter().map(|v| resource_id(endpoint, &v.name)).collect();
        let mut states = self.aws.states(&ids).await?;
        let mut variants = Vec::new();
        for v in &detail.variants {
            let state = states.remove(&resource_id(endpoint, &v.name)).unwrap_or_default();
            let (activities, activities_note) = self.aws.activities(endpoint, &v.name).await;
            variants.push(VariantScaling {
                variant: v.name.clone(),
                resource_id: resource_id(endpoint, &v.name),
                current_instances: v.current_instances.unwrap_or(0).max(0) as u32,
                instance_type: v.instance_type.clone(),
                policy: state.policy,
                registered: state.registered,
                policies: state.policies,
                activities,
                activities_note,
            });
        }
        Ok(EndpointScaling {
            backend: Backend::SageMaker,
            endpoint: endpoint.to_string(),
            status: detail.summary.status.clone(),
            hourly_price: detail.variants.first().and_then(|v| app::notebooks::pricing::hourly_usd(&v.instance_type)),
            variants,
            measured: self.measured(Backend::SageMaker, endpoint).await,
        })
    }
}

#[async_trait::async_trait]
impl ScalingService for ScalingHub {
    async fn overview(&self) -> Result<ScalingOverview, ApiError> {
        // The newest page of endpoints: each SageMaker one costs a look at
        // its scalable target, so the overview stays a page long.
        let list = self.endpoints.list(app::endpoints::list::EndpointQuery::default()).await?;
        let more = (list.list.total() as usize > list.endpoints.len())
            .then(|| format!("showing the newest {} of {} endpoints; an endpoint's own page shows its scaling", list.endpoints.len(), list.list.total()));
        let local: std::collections::HashMap<String, ScalingPolicy> = self.local.all().await?.into_iter().collect();
        let has_sagemaker = list.endpoints.iter().any(|e| e.backend == Backend::SageMaker);
        let (aws_states, aws_note) = if has_sagemaker {
            match self.aws.states(&[]).await {
                Ok(s) => (s, None),
                Err(e) => (Default::default(), Some(format!("their auto-scaling could not be read: {}", e.message()))),
            }
        } else {
            (Default::default(), None)
        };
        let rows = list
            .endpoints
            .into_iter()
            .map(|e| {
                let (policy, other_policies) = match e.backend {
                    Backend::Local => (local.get(&e.name).cloned(), Vec::new()),
                    Backend::SageMaker => {
                        let prefix = format!("endpoint/{}/variant/", e.name);
                        let mine: Vec<&sagemaker::VariantState> =
                            aws_states.iter().filter(|(id, _)| id.starts_with(&prefix)).map(|(_, s)| s).collect();
                        (mine.iter().find_map(|s| s.policy.clone()), mine.iter().flat_map(|s| s.others()).collect())
                    }
                };
                ScalingRow { backend: e.backend, endpoint: e.name, status: e.status, instances: e.instances, policy, other_policies }
            })
            .collect();
        Ok(ScalingOverview { rows, sagemaker_note: list.list.sagemaker_note.or(aws_note).or(more) })
    }

    async fn describe(&self, backend: Backend, endpoint: &EndpointName) -> Result<EndpointScaling, ApiError> {
        match backend {
            Backend::Local => self.local_scaling(endpoint).await,
            Backend::SageMaker => self.sagemaker_scaling(endpoint).await,
        }
    }

    async fn put_policy(&self, backend: Backend, endpoint: &EndpointName, variant: &VariantName, policy: ScalingPolicy) -> Result<EndpointScaling, ApiError> {
        self.change(backend, endpoint, variant, ScalingChange::Put(policy), None).await?;
        self.describe(backend, endpoint).await
    }

    async fn remove_policy(&self, backend: Backend, endpoint: &EndpointName, variant: &VariantName) -> Result<EndpointScaling, ApiError> {
        // The policy the page shows is the one removed.
        let name = match backend {
            Backend::Local => None,
            Backend::SageMaker => self.aws.state(endpoint, variant).await?.policy.and_then(|p| p.name),
        };
        self.change(backend, endpoint, variant, ScalingChange::Remove(name), None).await?;
        self.describe(backend, endpoint).await
    }

    async fn trace(&self, backend: Backend, endpoint: &EndpointName, hours: u32) -> Result<InvocationTrace, ApiError> {
        let minutes = i64::from(hours) * 60;
        match backend {
            Backend::Local => {
                self.endpoints.describe(Backend::Local, endpoint).await?;
                let (start, per_minute) = self.endpoints.metrics.invocations_per_minute(endpoint, minutes).await?;
                Ok(InvocationTrace { per_minute, start, source: "Recorded by Sagedeck per minute".into() })
            }
            Backend::SageMaker => {
                // CloudWatch's 15-minute sums, spread evenly over their minutes.
                let window = if hours <= 1 { MetricWindow::Hour } else { MetricWindow::Day };
                let metrics = self.endpoints.metrics(Backend::SageMaker, endpoint, window).await?;
                let period_min = (metrics.period_seconds / 60).max(1);
                let points = metrics.series.iter().find(|s| s.name == "Invocations").map(|s| s.points.clone()).unwrap_or_default();
                let mut per_minute: Vec<f64> =
                    points.iter().flat_map(|(_, v)| std::iter::repeat_n(v / period_min as f64, period_min as usize)).collect();
                let start = points.first().map(|p| p.0).unwrap_or(0);
                let skip = per_minute.len().saturating_sub(minutes as usize);
                per_minute.drain(..skip);
                Ok(InvocationTrace {
                    per_minute,
                    start: start + skip as i64 * 60,
                    source: format!("CloudWatch AWS/SageMaker Invocations, {period_min}-minute sums"),
                })
            }
        }
    }
}

#[async_trait::async_trait]
impl ReverterService for ScalingHub {
    async fn revert(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        let change = self.journal.get(id).await?;
        if !crate::journal::REVERTIBLE.contains(&change.action.as_str()) {
            return Err(ApiError::Conflict(format!("change #{id} ({}) cannot be reverted from Sagedeck", change.action)));
        }
        if let Some(by) = change.reverted_by {
            return Err(ApiError::Conflict(format!("change #{id} was already reverted by #{by}")));
        }
        if change.outcome != "ok" {
            return Err(ApiError::Conflict(format!("change #{id} failed, so there is nothing to revert")));
        }
        let (backend, endpoint, variant) = parse_target(&change.target)?;
        let read = |json: Option<&str>, what: &str| -> Result<Option<ScalingPolicy>, ApiError> {
            serde_json::from_str(json.unwrap_or("null"))
                .map_err(|e| ApiError::Internal(format!("change #{id} has an unreadable {what}-state: {e}")))
        };
        let undo = ScalingChange::undoing(read(change.before.as_deref(), "before")?, read(change.after.as_deref(), "after")?);
        let (endpoint, variant) = (EndpointName::parse(endpoint)?, VariantName::parse(variant)?);
        let new_id = self.change(backend, &endpoint, &variant, undo, Some(id)).await?;
        match new_id {
            Some(new_id) => self.journal.get(new_id).await,
            None => Err(ApiError::Internal("the revert was applied but the journal could not record it".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_targets_round_trip() {
        let t = journal_target(Backend::SageMaker, "dogs", "AllTraffic");
        assert_eq!(t, "sagemaker/dogs/AllTraffic");
        assert_eq!(parse_target(&t).unwrap(), (Backend::SageMaker, "dogs", "AllTraffic"));
        assert!(parse_target("dogs").is_err());
        assert!(parse_target("cloud/dogs/x").is_err());
    }

    #[test]
    fn a_revert_puts_back_or_removes_the_policy_by_its_own_name() {
        let by_hand = ScalingPolicy { name: Some("my-scaling".into()), ..ScalingPolicy::seeds_default() };
        let edited = ScalingPolicy { target_value: 40.0, ..by_hand.clone() };
        assert_eq!(ScalingChange::undoing(Some(by_hand.clone()), Some(edited.clone())), ScalingChange::Put(by_hand.clone()));
        assert_eq!(ScalingChange::undoing(None, Some(edited)), ScalingChange::Remove(Some("my-scaling".into())));
        assert_eq!(ScalingChange::undoing(None, Some(ScalingPolicy::seeds_default())), ScalingChange::Remove(None));
        assert_eq!(ScalingChange::undoing(Some(by_hand.clone()), None), ScalingChange::Put(by_hand));
    }
}
