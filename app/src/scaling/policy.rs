//! A target-tracking policy and the decision it makes on each datapoint,
//! modelled on how Application Auto Scaling documents target tracking for
//! SageMaker variants: the metric is invocations per instance per minute; a
//! scale-out alarm fires after 3 consecutive datapoints above the target, a
//! scale-in alarm after 15 consecutive datapoints below 90 % of it; the new
//! capacity is `ceil(capacity × metric / target)` within min and max; a
//! scale-out cooldown blocks further scale-outs unless a larger one is
//! needed; a scale-in cooldown blocks further scale-ins, and a scale-out
//! interrupts it. The same code drives local replicas and the simulator.

use crate::training::spec::FieldError;
use serde::{Deserialize, Serialize};

/// Consecutive datapoints above target before the scale-out alarm fires.
pub const SCALE_OUT_DATAPOINTS: u32 = 3;
/// Consecutive datapoints below [`SCALE_IN_FRACTION`] × target before scale-in.
pub const SCALE_IN_DATAPOINTS: u32 = 15;
pub const SCALE_IN_FRACTION: f64 = 0.9;
/// CloudWatch's datapoint for SageMaker's invocation metrics.
pub const AWS_DATAPOINT_SECONDS: u32 = 60;
/// Upper bounds this console accepts (AWS takes larger cooldowns, but an hour
/// of blocked scaling is already more than any seed uses).
pub const MAX_COOLDOWN_SECONDS: u32 = 3600;
pub const MAX_LOCAL_INSTANCES: u32 = crate::endpoints::LocalDeploySpec::MAX_INSTANCES;
pub const MAX_SAGEMAKER_INSTANCES: u32 = 100;

/// Target tracking on invocations per instance per minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    pub min_instances: u32,
    pub max_instances: u32,
    /// Invocations per instance per minute the policy keeps the endpoint at
    /// (SageMakerVariantInvocationsPerInstance).
    pub target_value: f64,
    pub scale_in_cooldown_s: u32,
    pub scale_out_cooldown_s: u32,
    pub disable_scale_in: bool,
    /// How long one datapoint is. AWS: 60 s. Local endpoints may use less,
    /// which compresses time (3 datapoints of 2 s instead of 3 minutes) for
    /// watching the policy work; the rate is still per minute.
    pub datapoint_seconds: u32,
    /// The Application Auto Scaling policy's name when it is not Sagedeck's
    /// own ([`super::POLICY_NAME`]): a policy made by hand is edited, and
    /// put back by a revert, under its own name. Always `None` locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ScalingPolicy {
    /// What the seeds set by hand: min 1, max 4, target 25, 30 s cooldowns.
    pub fn seeds_default() -> Self {
        ScalingPolicy {
            min_instances: 1,
            max_instances: 4,
            target_value: 25.0,
            scale_in_cooldown_s: 30,
            scale_out_cooldown_s: 30,
            disable_scale_in: false,
            datapoint_seconds: AWS_DATAPOINT_SECONDS,
            name: None,
        }
    }

    /// Every field's problem at once. `local` endpoints need at least one
    /// replica to serve and allow shorter datapoints; SageMaker's alarms
    /// use one-minute datapoints.
    pub fn validate(&self, local: bool) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| errors.push(FieldError { field, message });
        let cap = if local { MAX_LOCAL_INSTANCES } else { MAX_SAGEMAKER_INSTANCES };
        if local && self.min_instances < 1 {
            fail("min_instances", "A local endpoint needs at least 1 replica to serve.".into());
        }
        if self.max_instances < 1 {
            fail("max_instances", "Maximum instances must be at least 1.".into());
        } else if self.max_instances < self.min_instances {
            fail(
                "max_instances",
                format!("Maximum ({}) must be at least the minimum ({}).", self.max_instances, self.min_instances),
            );
        } else if self.max_instances > cap {
            fail("max_instances", format!("At most {cap} instances here."));
        }
        if !self.target_value.is_finite() || self.target_value <= 0.0 {
            fail("target_value", "The target must be a number of invocations per instance per minute above 0.".into());
        } else if self.target_value > 1_000_000.0 {
            fail("target_value", "A target above 1,000,000 invocations per instance per minute is not plausible.".into());
        }
        for (field, value, name) in [
            ("scale_in_cooldown_s", self.scale_in_cooldown_s, "Scale-in cooldown"),
            ("scale_out_cooldown_s", self.scale_out_cooldown_s, "Scale-out cooldown"),
        ] {
            if value > MAX_COOLDOWN_SECONDS {
                fail(field, format!("{name} must be 0 to {MAX_COOLDOWN_SECONDS} seconds."));
            }
        }
        match (&self.name, local) {
            (Some(_), true) => fail("name", "A local endpoint has one policy, Sagedeck's: it takes no name.".into()),
            (Some(n), false) if n.is_empty() || n.chars().count() > 256 || n.chars().any(char::is_control) => {
                fail("name", "A policy name is 1 to 256 printable characters.".into())
            }
            _ => {}
        }
        if local {
            if !(1..=60).contains(&self.datapoint_seconds) {
                fail("datapoint_seconds", "A local datapoint lasts 1 to 60 seconds.".into());
            }
        } else if self.datapoint_seconds != AWS_DATAPOINT_SECONDS {
            fail("datapoint_seconds", "SageMaker's alarms use one-minute datapoints (60 s).".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// One change of capacity and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingDecision {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// The alarms' memory between datapoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetTracker {
    above: u32,
    below: u32,
    /// Time (seconds) and capacity of the last scale-out.
    last_out: Option<(f64, u32)>,
    last_in: Option<f64>,
}

impl TargetTracker {
    /// Takes one datapoint: `load` is invocations per in-service instance per
    /// minute over the datapoint that ended at `now_s`; `capacity` is the
    /// desired count (warming instances included). Returns the change to
    /// make, if any.
    pub fn observe(&mut self, policy: &ScalingPolicy, now_s: f64, capacity: u32, load: f64) -> Option<ScalingDecision> {
        self.observe_warming(policy, now_s, capacity, capacity, load)
    }

    /// As [`observe`](Self::observe), with `serving` of the `capacity`
    /// instances past their warm-up: the metric is their average, so the
    /// capacity that brings it to the target is `ceil(serving × load / target)`
    /// (warming instances are not counted twice).
    pub fn observe_warming(
        &mut self,
        policy: &ScalingPolicy,
        now_s: f64,
        capacity: u32,
        serving: u32,
        load: f64,
    ) -> Option<ScalingDecision> {
        let (min, max) = (policy.min_instances, policy.max_instances.max(policy.min_instances));
        // Min and max are enforced at once, as RegisterScalableTarget does.
        if capacity < min {
            return Some(ScalingDecision { from: capacity, to: min, reason: format!("below the minimum of {min}") });
        }
        if capacity > max {
            return Some(ScalingDecision { from: capacity, to: max, reason: format!("above the maximum of {max}") });
        }
        let target = policy.target_value;
        if load > target {
            self.above += 1;
            self.below = 0;
        } else if load < target * SCALE_IN_FRACTION {
            self.below += 1;
            self.above = 0;
        } else {
            self.above = 0;
            self.below = 0;
        }
        let wanted = desired_capacity(serving, load, target).clamp(min, max);
        if self.above >= SCALE_OUT_DATAPOINTS && wanted > capacity {
            if let Some((at, to)) = self.last_out {
                if now_s - at < f64::from(policy.scale_out_cooldown_s) && wanted <= to {
                    return None;
                }
            }
            self.last_out = Some((now_s, wanted));
            // A scale-out ends any scale-in cooldown.
            self.last_in = None;
            return Some(ScalingDecision {
                from: capacity,
                to: wanted,
                reason: format!(
                    "{SCALE_OUT_DATAPOINTS} datapoints above the target: {load:.1} invocations per instance per minute > {target}"
                ),
            });
        }
        if self.below >= SCALE_IN_DATAPOINTS && !policy.disable_scale_in && wanted < capacity {
            if let Some(at) = self.last_in {
                if now_s - at < f64::from(policy.scale_in_cooldown_s) {
                    return None;
                }
            }
            self.last_in = Some(now_s);
            return Some(ScalingDecision {
                from: capacity,
                to: wanted,
                reason: format!(
                    "{SCALE_IN_DATAPOINTS} datapoints below 90 % of the target: {load:.1} < {:.1} invocations per instance per minute",
                    target * SCALE_IN_FRACTION
                ),
            });
        }
        None
    }
}

/// Target tracking's proportional rule: the capacity at which the metric
/// would sit at the target.
pub fn desired_capacity(capacity: u32, load: f64, target: f64) -> u32 {
    if !(load.is_finite() && target > 0.0) {
        return capacity;
    }
    let wanted = (f64::from(capacity.max(1)) * load / target).ceil();
    if wanted < 0.0 {
        0
    } else {
        wanted.min(f64::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScalingPolicy {
        ScalingPolicy { scale_in_cooldown_s: 300, scale_out_cooldown_s: 300, ..ScalingPolicy::seeds_default() }
    }

    #[test]
    fn the_seeds_policy_is_valid_everywhere() {
        assert!(ScalingPolicy::seeds_default().validate(false).is_ok());
        assert!(ScalingPolicy::seeds_default().validate(true).is_ok());
    }

    #[test]
    fn bad_values_are_named_field_by_field() {
        let bad = ScalingPolicy {
            min_instances: 5,
            max_instances: 2,
            target_value: 0.0,
            scale_in_cooldown_s: 99_999,
            scale_out_cooldown_s: 30,
            disable_scale_in: false,
            datapoint_seconds: 5,
            name: Some(String::new()),
        };
        let errors = bad.validate(false).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["max_instances", "target_value", "scale_in_cooldown_s", "name", "datapoint_seconds"]);
        assert!(ScalingPolicy { name: Some("flowers-invocations".into()), ..ScalingPolicy::seeds_default() }.validate(false).is_ok());
        assert!(ScalingPolicy { name: Some("by-hand".into()), datapoint_seconds: 5, ..ScalingPolicy::seeds_default() }.validate(true).is_err());
        assert!(errors[0].message.contains("at least the minimum (5)"));
        // Locally 5 s datapoints are fine, zero replicas are not.
        let local = ScalingPolicy { min_instances: 0, max_instances: 2, datapoint_seconds: 5, ..policy() };
        let errors = local.validate(true).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "min_instances");
        assert!(ScalingPolicy { min_instances: 0, ..policy() }.validate(false).is_ok(), "SageMaker takes min 0 and answers for itself");
        assert!(ScalingPolicy { target_value: f64::NAN, ..policy() }.validate(false).is_err());
        assert!(ScalingPolicy { max_instances: 9, ..policy() }.validate(true).is_err());
    }

    #[test]
    fn scale_out_needs_three_datapoints_above_target() {
        let p = policy();
        let mut t = TargetTracker::default();
        assert_eq!(t.observe(&p, 60.0, 1, 80.0), None);
        assert_eq!(t.observe(&p, 120.0, 1, 80.0), None);
        let d = t.observe(&p, 180.0, 1, 80.0).unwrap();
        // ceil(1 × 80 / 25) = 4, the maximum.
        assert_eq!((d.from, d.to), (1, 4));
        // A dip resets the count.
        let mut t = TargetTracker::default();
        t.observe(&p, 60.0, 1, 80.0);
        t.observe(&p, 120.0, 1, 20.0);
        t.observe(&p, 180.0, 1, 80.0);
        assert_eq!(t.observe(&p, 240.0, 1, 80.0), None);
        assert!(t.observe(&p, 300.0, 1, 80.0).is_some());
    }

    #[test]
    fn scale_out_cooldown_blocks_only_equal_or_smaller_scale_outs() {
        let p = ScalingPolicy { max_instances: 10, ..policy() };
        let mut t = TargetTracker::default();
        for m in 1..=3 {
            t.observe(&p, f64::from(m) * 60.0, 1, 50.0);
        }
        // Scaled 1 → 2 at 180 s. Still 30/instance on 2: wants 3 but 3 > 2, allowed.
        let d = t.observe(&p, 240.0, 2, 30.0).unwrap();
        assert_eq!(d.to, 3);
        // Wants ceil(3 × 26 / 25) = 4 > 3: a larger scale-out still goes.
        assert_eq!(t.observe(&p, 300.0, 3, 26.0).map(|d| d.to), Some(4));
        // Wants ceil(4 × 25.5 / 25) = 5 > 4: larger again.
        assert_eq!(t.observe(&p, 330.0, 4, 25.5).map(|d| d.to), Some(5));
    }

    #[test]
    fn scale_in_waits_fifteen_datapoints_then_the_cooldown() {
        let p = ScalingPolicy { max_instances: 4, ..policy() };
        let mut t = TargetTracker::default();
        let mut capacity = 4;
        let mut changes = Vec::new();
        for minute in 1..=40u32 {
            if let Some(d) = t.observe(&p, f64::from(minute) * 60.0, capacity, 5.0 * 4.0 / f64::from(capacity)) {
                changes.push((minute, d.from, d.to));
                capacity = d.to;
            }
        }
        // 20 invocations per minute in all: at minute 15, 4 × 5/25 → 1.
        assert_eq!(changes, vec![(15, 4, 1)]);
        // A policy that may not scale in never does.
        let p = ScalingPolicy { disable_scale_in: true, ..p };
        let mut t = TargetTracker::default();
        assert!((1..=40).all(|m| t.observe(&p, f64::from(m) * 60.0, 4, 1.0).is_none()));
    }

    #[test]
    fn scale_in_cooldown_spaces_scale_ins_and_min_max_are_enforced_at_once() {
        let p = ScalingPolicy { max_instances: 8, min_instances: 1, scale_in_cooldown_s: 600, ..policy() };
        let mut t = TargetTracker::default();
        let mut capacity = 8;
        let mut at = Vec::new();
        // 80 invocations a minute, then 20 from minute 16: 8 → 4 at minute 15;
        // 4 → 1 is wanted from minute 16 but waits for the 600 s cooldown.
        for minute in 1..=60u32 {
            let total = if minute <= 15 { 80.0 } else { 20.0 };
            if let Some(d) = t.observe(&p, f64::from(minute) * 60.0, capacity, total / f64::from(capacity)) {
                at.push((minute, d.to));
                capacity = d.to;
            }
        }
        assert_eq!(at, vec![(15, 4), (25, 1)]);
        let mut t = TargetTracker::default();
        assert_eq!(t.observe(&p, 0.0, 0, 0.0).map(|d| d.to), Some(1));
        assert_eq!(t.observe(&p, 0.0, 12, 0.0).map(|d| d.to), Some(8));
    }

    #[test]
    fn desired_capacity_is_proportional_and_rounds_up() {
        assert_eq!(desired_capacity(2, 50.0, 25.0), 4);
        assert_eq!(desired_capacity(3, 26.0, 25.0), 4);
        assert_eq!(desired_capacity(4, 0.0, 25.0), 0);
        assert_eq!(desired_capacity(2, f64::NAN, 25.0), 2);
    }
}
