//! SageMaker rollouts and endpoint alarms: the deployment configuration
//! UpdateEndpoint is sent (blue/green traffic shifting as SageMaker's
//! deployment guardrails define it), the CloudWatch alarms that roll it back,
//! how a rollout's state reads from DescribeEndpoint, and how an alarm is
//! evaluated (the same semantics for local endpoints, on Sagedeck's metrics).

use super::rollout::{seconds_text, Shift};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// SageMaker's own limits (UpdateEndpoint's API reference).
pub const MAX_WAIT_SECONDS: u32 = 3600;
pub const MIN_EXECUTION_SECONDS: u32 = 600;
pub const MAX_EXECUTION_SECONDS: u32 = 28_800;
pub const MAX_ROLLBACK_ALARMS: usize = 10;
/// Provisioning the new fleet comes before any wait: an allowance for it in
/// the deployment's time limit.
pub const PROVISIONING_ALLOWANCE_SECONDS: u32 = 1800;

/// A new version of a SageMaker endpoint, asked for from its page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerRolloutSpec {
    pub endpoint: String,
    /// A completed SageMaker training job whose model serves next; empty to
    /// keep the live model (an instance type or count change).
    pub training_job: String,
    /// …or a completed local job, packed as model.tar.gz (with
    /// code/inference.py) and uploaded under `model_s3` first.
    #[serde(default)]
    pub local_job: Option<i64>,
    #[serde(default)]
    pub model_s3: String,
    /// `None` keeps the live variant's.
    pub instance_type: Option<String>,
    pub instance_count: Option<u32>,
    pub shift: Shift,
    /// All at once: how long the new fleet bakes under the alarms before
    /// the shift is final (canary and linear bake for their own wait).
    pub bake_seconds: u32,
    /// How long the old fleet stays after the shift, for a quick rollback.
    pub termination_wait_seconds: u32,
    /// CloudWatch alarms that roll the deployment back when they fire.
    pub alarms: Vec<String>,
}

/// TrafficRoutingConfiguration, as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficRouting {
    /// ALL_AT_ONCE, CANARY or LINEAR.
    pub kind: String,
    /// CanarySize or LinearStepSize, as CAPACITY_PERCENT.
    pub capacity_percent: Option<u32>,
    pub wait_seconds: u32,
}

/// BlueGreenUpdatePolicy and AutoRollbackConfiguration, as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    pub routing: TrafficRouting,
    pub termination_wait_seconds: u32,
    pub max_execution_seconds: u32,
    pub alarms: Vec<String>,
}

impl SageMakerRolloutSpec {
    /// Checks the spec against SageMaker's rules for blue/green deployments
    /// and gives the plan UpdateEndpoint is sent; `instances` is the new
    /// fleet's size.
    pub fn plan(&self, instances: u32) -> Result<DeploymentPlan, ApiError> {
        crate::names::EndpointName::parse(&self.endpoint)?;
        self.shift.validate()?;
        if self.local_job.is_some() {
            if !self.training_job.trim().is_empty() {
                return Err(ApiError::Invalid("name a SageMaker training job or a local job, not both".into()));
            }
            if !self.model_s3.trim().starts_with("s3://") {
                return Err(ApiError::Invalid("model_s3 must say where the local job's model.tar.gz goes: s3://bucket/prefix".into()));
            }
        }
        let wait = |s: u32, field: &str| {
            if s > MAX_WAIT_SECONDS {
                Err(ApiError::Invalid(format!("{field} must be 0 to {MAX_WAIT_SECONDS} seconds on SageMaker, not {s}")))
            } else {
                Ok(s)
            }
        };
        let (routing, shifts) = match self.shift {
            Shift::AllAtOnce => (TrafficRouting { kind: "ALL_AT_ONCE".into(), capacity_percent: None, wait_seconds: wait(self.bake_seconds, "bake_seconds")? }, 1),
            Shift::Canary { percent, hold_seconds } => {
                if percent > 50 {
                    return Err(ApiError::Invalid(format!("canary percent must be 1 to 50 on SageMaker (at most half the new fleet), not {percent}")));
                }
                (TrafficRouting { kind: "CANARY".into(), capacity_percent: Some(percent), wait_seconds: wait(hold_seconds, "hold_seconds")? }, 2)
            }
            Shift::Linear { steps, interval_seconds } => {
                let step = 100 / steps.max(1);
                if !(10..=50).contains(&step) {
                    return Err(ApiError::Invalid(format!(
                        "steps must be 2 to 10 on SageMaker (each step shifts 10 to 50 % of the new fleet), not {steps}"
                    )));
                }
                (TrafficRouting { kind: "LINEAR".into(), capacity_percent: Some(step), wait_seconds: wait(interval_seconds, "interval_seconds")? }, steps)
            }
        };
        if routing.capacity_percent.is_some() && instances < 2 {
            return Err(ApiError::Invalid(format!(
                "a canary or linear shift moves part of the new fleet's capacity, so it needs at least 2 instances (this one has {instances}): \
                 ask for more instances or shift all at once"
            )));
        }
        let termination = wait(self.termination_wait_seconds, "termination_wait_seconds")?;
        if self.alarms.len() > MAX_ROLLBACK_ALARMS {
            return Err(ApiError::Invalid(format!("at most {MAX_ROLLBACK_ALARMS} alarms can roll a deployment back, not {}", self.alarms.len())));
        }
        if let Some(count) = self.instance_count {
            if !(1..=40).contains(&count) {
                return Err(ApiError::Invalid(format!("instance_count must be 1 to 40, not {count}")));
            }
        }
        if let Some(t) = &self.instance_type {
            if !t.starts_with("ml.") {
                return Err(ApiError::Invalid(format!("{t:?} is not a SageMaker instance type (ml.…)")));
            }
        }
        // The limit must exceed every wait; the fleet's provisioning comes first.
        let waits = routing.wait_seconds * shifts + termination;
        let max_execution = (waits + PROVISIONING_ALLOWANCE_SECONDS).max(MIN_EXECUTION_SECONDS);
        if max_execution > MAX_EXECUTION_SECONDS {
            return Err(ApiError::Invalid(format!(
                "the waits add up to {} ({shifts} × {} + {} termination): with provisioning that passes SageMaker's 8-hour limit on a deployment",
                seconds_text(waits),
                seconds_text(routing.wait_seconds),
                seconds_text(termination)
            )));
        }
        Ok(DeploymentPlan { routing, termination_wait_seconds: termination, max_execution_seconds: max_execution, alarms: self.alarms.clone() })
    }
}

impl DeploymentPlan {
    pub fn describe(&self) -> String {
        let r = &self.routing;
        let shift = match (r.kind.as_str(), r.capacity_percent) {
            ("CANARY", Some(p)) => format!("canary {p} % of the new fleet, baked {}, then the rest", seconds_text(r.wait_seconds)),
            ("LINEAR", Some(p)) => format!("linear, {p} % of the new fleet every {}", seconds_text(r.wait_seconds)),
            _ => format!("all at once, baked {}", seconds_text(r.wait_seconds)),
        };
        let alarms = if self.alarms.is_empty() { "no alarm (nothing rolls it back by itself)".to_string() } else { format!("rolled back by {}", self.alarms.join(", ")) };
        format!("blue/green {shift}; old fleet kept {}; {alarms}; time limit {}", seconds_text(self.termination_wait_seconds), seconds_text(self.max_execution_seconds))
    }
}

/// How a SageMaker rollout stands, read from DescribeEndpoint: `None`
/// while SageMaker is still working on it.
pub fn rollout_outcome(status: &str, config_now: &str, from: &str, to: &str, failure: Option<&str>) -> Option<(&'static str, String)> {
    let why = failure.filter(|f| !f.is_empty());
    match status {
        "InService" if config_now == to => Some(("completed", format!("{to} serves all traffic"))),
        "InService" if config_now == from => Some((
            "rolled_back",
            format!("SageMaker rolled back to {from}{}", why.map(|w| format!(": {w}")).unwrap_or_else(|| " (an alarm fired or the new fleet failed)".into())),
        )),
        "InService" => Some(("completed", format!("another update replaced it: {config_now} serves"))),
        "Failed" | "UpdateRollbackFailed" | "OutOfService" => {
            Some(("failed", format!("the endpoint is {status}{}", why.map(|w| format!(": {w}")).unwrap_or_default())))
        }
        _ => None,
    }
}

/// What an alarm watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmKind {
    /// Invocation5XXErrors, Average: the share of invocations that failed.
    ErrorRate,
    /// ModelLatency, p99 on SageMaker; locally the per-minute maximum
    /// (Sagedeck keeps sums and maxima, not percentiles, per minute).
    LatencyP99,
}

impl AlarmKind {
    pub fn suffix(self) -> &'static str {
        match self {
            AlarmKind::ErrorRate => "5xx-rate",
            AlarmKind::LatencyP99 => "model-latency-p99",
        }
    }
}

/// An alarm asked for from an endpoint's page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmSpec {
    pub endpoint: String,
    pub kind: AlarmKind,
    /// Percent of failed invocations, or milliseconds.
    pub threshold: f64,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
}

impl AlarmSpec {
    /// The name Sagedeck gives the alarm (CloudWatch's limit is 255 characters).
    pub fn name(&self) -> String {
        format!("sagedeck-{}-{}", self.endpoint, self.kind.suffix())
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        crate::names::EndpointName::parse(&self.endpoint)?;
        let bad = |why: String| Err(ApiError::Invalid(why));
        match self.kind {
            AlarmKind::ErrorRate if !(self.threshold > 0.0 && self.threshold <= 100.0) => {
                return bad(format!("threshold must be more than 0 and at most 100 (% of invocations), not {}", self.threshold));
            }
            AlarmKind::LatencyP99 if !(self.threshold >= 1.0 && self.threshold <= 600_000.0) => {
                return bad(format!("threshold must be 1 to 600000 ms, not {}", self.threshold));
            }
            _ => {}
        }
        if self.period_seconds < 60 || self.period_seconds % 60 != 0 || self.period_seconds > 86_400 {
            return bad(format!("period_seconds must be a whole number of minutes, 60 to 86400, not {}", self.period_seconds));
        }
        if !(1..=100).contains(&self.evaluation_periods) {
            return bad(format!("evaluation_periods must be 1 to 100, not {}", self.evaluation_periods));
        }
        if !(1..=self.evaluation_periods).contains(&self.datapoints_to_alarm) {
            return bad(format!("datapoints_to_alarm must be 1 to evaluation_periods ({}), not {}", self.evaluation_periods, self.datapoints_to_alarm));
        }
        Ok(())
    }

    /// The threshold in the metric's own unit: a rate (0..1) or microseconds.
    pub fn metric_threshold(&self) -> f64 {
        match self.kind {
            AlarmKind::ErrorRate => self.threshold / 100.0,
            AlarmKind::LatencyP99 => self.threshold * 1000.0,
        }
    }

    pub fn describe(&self) -> String {
        let what = match self.kind {
            AlarmKind::ErrorRate => format!("5XX errors above {} % of invocations", self.threshold),
            AlarmKind::LatencyP99 => format!("ModelLatency p99 above {} ms", self.threshold),
        };
        format!("{what} in {} of {} periods of {}", self.datapoints_to_alarm, self.evaluation_periods, seconds_text(self.period_seconds))
    }
}

/// An alarm on an endpoint, as its page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointAlarm {
    pub name: String,
    pub description: String,
    /// OK, ALARM or INSUFFICIENT_DATA.
    pub state: String,
    pub reason: String,
    pub updated_at: Option<String>,
    /// Made by Sagedeck (the others were made by hand or by other tools).
    pub ours: bool,
}

/// CloudWatch's evaluation of one alarm over its newest datapoints (oldest
/// first, `None` where a period had no data, treated as not breaching):
/// ALARM when at least `datapoints_to_alarm` of the last
/// `evaluation_periods` breach, OK when they do not, INSUFFICIENT_DATA when
/// no period in the window has data.
pub fn evaluate(values: &[Option<f64>], threshold: f64, evaluation_periods: u32, datapoints_to_alarm: u32) -> (&'static str, String) {
    let window: Vec<Option<f64>> = values.iter().rev().take(evaluation_periods as usize).copied().collect();
    let present: Vec<f64> = window.iter().flatten().copied().collect();
    if present.is_empty() {
        return ("INSUFFICIENT_DATA", format!("no data in the last {evaluation_periods} periods"));
    }
    let breaching = present.iter().filter(|v| **v > threshold).count() as u32;
    let shown: Vec<String> = window.iter().rev().map(|v| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "—".into())).collect();
    let state = if breaching >= datapoints_to_alarm { "ALARM" } else { "OK" };
    (state, format!("{breaching} of the last {evaluation_periods} periods above {threshold} (needs {datapoints_to_alarm}): [{}]", shown.join(", ")))
}

/// A SageMaker rollout, as the endpoint's page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerRolloutView {
    pub id: i64,
    pub from_config: String,
    pub to_config: String,
    pub source: String,
    pub instances: String,
    pub plan: String,
    /// updating, completed, rolled_back, failed.
    pub state: String,
    pub outcome: Option<String>,
    pub started_by: String,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// One variant's progress in a deployment (DescribeEndpoint's PendingDeploymentSummary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantProgress {
    pub variant: String,
    pub instances: String,
    /// Creating, Updating, Deleting, ActivatingTraffic, Baking, with its message and start.
    pub statuses: Vec<(String, String, Option<String>)>,
}

/// A SageMaker endpoint's rollouts and alarms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SageMakerRollouts {
    pub endpoint: String,
    pub status: String,
    pub config: String,
    pub failure: Option<String>,
    pub progress: Vec<VariantProgress>,
    pub rollouts: Vec<SageMakerRolloutView>,
    /// The configuration a rollback goes to: the one before the last completed rollout.
    pub previous_config: Option<String>,
    pub alarms: Vec<EndpointAlarm>,
    /// Why the alarms could not be listed, when they could not.
    pub alarms_note: Option<String>,
}

impl SageMakerRollouts {
    pub fn updating(&self) -> bool {
        matches!(self.status.as_str(), "Updating" | "RollingBack" | "SystemUpdating") || self.rollouts.first().is_some_and(|r| r.state == "updating")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shift: Shift) -> SageMakerRolloutSpec {
        SageMakerRolloutSpec {
            endpoint: "dogs".into(),
            training_job: "dogs-v2".into(),
            local_job: None,
            model_s3: String::new(),
            instance_type: None,
            instance_count: Some(2),
            shift,
            bake_seconds: 300,
            termination_wait_seconds: 600,
            alarms: vec!["sagedeck-dogs-5xx-rate".into()],
        }
    }

    #[test]
    fn shifts_become_sagemakers_traffic_routing() {
        let canary = spec(Shift::Canary { percent: 20, hold_seconds: 600 }).plan(2).unwrap();
        assert_eq!(canary.routing, TrafficRouting { kind: "CANARY".into(), capacity_percent: Some(20), wait_seconds: 600 });
        assert_eq!(canary.max_execution_seconds, 2 * 600 + 600 + PROVISIONING_ALLOWANCE_SECONDS);
        let linear = spec(Shift::Linear { steps: 4, interval_seconds: 120 }).plan(4).unwrap();
        assert_eq!(linear.routing, TrafficRouting { kind: "LINEAR".into(), capacity_percent: Some(25), wait_seconds: 120 });
        let all = spec(Shift::AllAtOnce).plan(1).unwrap();
        assert_eq!(all.routing, TrafficRouting { kind: "ALL_AT_ONCE".into(), capacity_percent: None, wait_seconds: 300 });
        assert!(all.describe().contains("rolled back by sagedeck-dogs-5xx-rate"));
        let quick = SageMakerRolloutSpec { bake_seconds: 0, termination_wait_seconds: 0, ..spec(Shift::AllAtOnce) }.plan(1).unwrap();
        assert_eq!(quick.max_execution_seconds, PROVISIONING_ALLOWANCE_SECONDS.max(MIN_EXECUTION_SECONDS));
    }

    #[test]
    fn sagemakers_rules_are_checked_before_any_call() {
        let e = |s: SageMakerRolloutSpec, n: u32| s.plan(n).unwrap_err().message().to_string();
        assert!(e(spec(Shift::Canary { percent: 60, hold_seconds: 60 }), 2).contains("1 to 50"));
        assert!(e(spec(Shift::Canary { percent: 20, hold_seconds: 3601 }), 2).contains("hold_seconds"));
        assert!(e(spec(Shift::Linear { steps: 1, interval_seconds: 60 }), 2).contains("2 to 10"));
        assert!(e(spec(Shift::Linear { steps: 11, interval_seconds: 60 }), 2).contains("2 to 10"));
        assert!(e(spec(Shift::Canary { percent: 20, hold_seconds: 60 }), 1).contains("at least 2 instances"));
        assert!(e(SageMakerRolloutSpec { termination_wait_seconds: 4000, ..spec(Shift::AllAtOnce) }, 1).contains("termination_wait_seconds"));
        assert!(e(SageMakerRolloutSpec { alarms: vec!["a".into(); 11], ..spec(Shift::AllAtOnce) }, 1).contains("at most 10 alarms"));
        assert!(e(SageMakerRolloutSpec { instance_type: Some("m5.large".into()), ..spec(Shift::AllAtOnce) }, 1).contains("not a SageMaker instance type"));
        assert!(e(SageMakerRolloutSpec { local_job: Some(3), ..spec(Shift::AllAtOnce) }, 1).contains("not both"));
        assert!(e(SageMakerRolloutSpec { local_job: Some(3), training_job: String::new(), ..spec(Shift::AllAtOnce) }, 1).contains("model_s3"));
        // Ten linear steps of an hour each, plus the rest: over eight hours.
        assert!(e(SageMakerRolloutSpec { termination_wait_seconds: 3600, ..spec(Shift::Linear { steps: 10, interval_seconds: 3600 }) }, 10).contains("8-hour"));
    }

    #[test]
    fn a_rollouts_outcome_reads_from_describe_endpoint() {
        assert_eq!(rollout_outcome("Updating", "old", "old", "new", None), None);
        assert_eq!(rollout_outcome("RollingBack", "new", "old", "new", None), None);
        assert_eq!(rollout_outcome("InService", "new", "old", "new", None).unwrap().0, "completed");
        let (state, words) = rollout_outcome("InService", "old", "old", "new", Some("Alarm sagedeck-dogs-5xx-rate fired")).unwrap();
        assert_eq!(state, "rolled_back");
        assert!(words.contains("5xx-rate fired"), "{words}");
        assert_eq!(rollout_outcome("UpdateRollbackFailed", "new", "old", "new", Some("x")).unwrap().0, "failed");
    }

    #[test]
    fn alarms_check_their_numbers_and_convert_units() {
        let a = AlarmSpec { endpoint: "dogs".into(), kind: AlarmKind::LatencyP99, threshold: 250.0, period_seconds: 60, evaluation_periods: 3, datapoints_to_alarm: 2 };
        assert!(a.validate().is_ok());
        assert_eq!(a.name(), "sagedeck-dogs-model-latency-p99");
        assert_eq!(a.metric_threshold(), 250_000.0);
        let rate = AlarmSpec { kind: AlarmKind::ErrorRate, threshold: 5.0, ..a.clone() };
        assert_eq!(rate.metric_threshold(), 0.05);
        assert!(AlarmSpec { threshold: 0.0, ..rate.clone() }.validate().unwrap_err().message().contains("threshold"));
        assert!(AlarmSpec { period_seconds: 90, ..a.clone() }.validate().unwrap_err().message().contains("period_seconds"));
        assert!(AlarmSpec { datapoints_to_alarm: 4, ..a.clone() }.validate().unwrap_err().message().contains("datapoints_to_alarm"));
        assert!(AlarmSpec { evaluation_periods: 0, datapoints_to_alarm: 0, ..a }.validate().unwrap_err().message().contains("evaluation_periods"));
    }

    #[test]
    fn an_alarm_fires_on_m_of_n_breaching_periods() {
        // 2 of 3: the newest three are 0.2, None, 0.3 → two breach.
        assert_eq!(evaluate(&[Some(0.0), Some(0.2), None, Some(0.3)], 0.1, 3, 2).0, "ALARM");
        assert_eq!(evaluate(&[Some(0.5), Some(0.0), None, Some(0.3)], 0.1, 3, 2).0, "OK", "the oldest is outside the window");
        assert_eq!(evaluate(&[Some(0.5), None, None, None], 0.1, 3, 1).0, "INSUFFICIENT_DATA");
        assert_eq!(evaluate(&[], 0.1, 3, 1).0, "INSUFFICIENT_DATA");
        assert_eq!(evaluate(&[Some(0.1)], 0.1, 1, 1).0, "OK", "at the threshold is not above it");
        assert!(evaluate(&[Some(0.2), Some(0.3)], 0.1, 2, 2).1.contains("2 of the last 2 periods"));
    }
}
