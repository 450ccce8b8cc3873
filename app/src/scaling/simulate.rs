//! The what-if simulator: a per-minute invocation trace (recorded or
//! synthetic) replayed through a policy with [`TargetTracker`], minute by
//! minute. New instances bill at once but serve only after the warm-up; an
//! instance serves at most `instance_capacity_per_minute` invocations, and
//! what the in-service instances cannot absorb counts as throttled. Pure and
//! fast, so the browser re-runs it on every keystroke.

use super::policy::{ScalingDecision, ScalingPolicy, TargetTracker};
use serde::{Deserialize, Serialize};

/// The longest trace the simulator takes: two weeks of minutes.
pub const MAX_TRACE_MINUTES: usize = 14 * 24 * 60;

/// A synthetic load, in invocations per minute for the whole endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Pattern {
    Steady { level: f64 },
    /// Linear from `from` to `to` over the whole trace.
    Ramp { from: f64, to: f64 },
    /// `base`, with `peak` for `width` minutes starting at minute `at`.
    Spike { base: f64, peak: f64, at: u32, width: u32 },
    /// A day compressed or not: a cosine between `low` (midnight) and
    /// `high` (noon) with the given period.
    Daily { low: f64, high: f64, period_minutes: u32 },
}

impl Pattern {
    pub fn trace(&self, minutes: usize) -> Vec<f64> {
        let minutes = minutes.min(MAX_TRACE_MINUTES);
        (0..minutes)
            .map(|m| {
                let v = match *self {
                    Pattern::Steady { level } => level,
                    Pattern::Ramp { from, to } => {
                        let f = if minutes > 1 { m as f64 / (minutes - 1) as f64 } else { 0.0 };
                        from + (to - from) * f
                    }
                    Pattern::Spike { base, peak, at, width } => {
                        if m as u32 >= at && (m as u32) < at.saturating_add(width) {
                            peak
                        } else {
                            base
                        }
                    }
                    Pattern::Daily { low, high, period_minutes } => {
                        let phase = (m as f64 / f64::from(period_minutes.max(2))) * std::f64::consts::TAU;
                        low + (high - low) * (1.0 - phase.cos()) / 2.0
                    }
                };
                if v.is_finite() { v.max(0.0) } else { 0.0 }
            })
            .collect()
    }
}

/// What the simulation is run under, besides the policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    pub start_instances: u32,
    /// Minutes from a scale-out until the new instance serves (SageMaker
    /// takes several; a local replica a second).
    pub warmup_minutes: u32,
    /// What one instance can serve per minute; 0 means unlimited.
    pub instance_capacity_per_minute: f64,
    /// Price of one instance-hour, for the cost line.
    pub hourly_price: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    pub minute: u32,
    pub demand: f64,
    /// Billed instances (warming ones included).
    pub desired: u32,
    pub in_service: u32,
    /// Invocations per in-service instance: the metric the policy tracks.
    pub load_per_instance: f64,
    pub throttled: f64,
    pub cost_so_far: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimEvent {
    pub minute: u32,
    pub decision: ScalingDecision,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    pub minutes: Vec<Minute>,
    pub events: Vec<SimEvent>,
    pub total_cost: f64,
    pub throttled: f64,
    pub peak_instances: u32,
    /// Minutes the metric spent above the target.
    pub minutes_above_target: u32,
}

/// Replays `demand` (invocations per minute) through `policy`.
pub fn simulate(policy: &ScalingPolicy, conditions: &Conditions, demand: &[f64]) -> Simulation {
    let mut tracker = TargetTracker::default();
    // The minute each billed instance starts to serve.
    let start = conditions.start_instances.clamp(policy.min_instances, policy.max_instances.max(policy.min_instances));
    let mut ready_at: Vec<u32> = vec![0; start as usize];
    let per_minute_price = conditions.hourly_price.max(0.0) / 60.0;
    let mut out = Simulation {
        minutes: Vec::with_capacity(demand.len()),
        events: Vec::new(),
        total_cost: 0.0,
        throttled: 0.0,
        peak_instances: start,
        minutes_above_target: 0,
    };
    for (m, &d) in demand.iter().take(MAX_TRACE_MINUTES).enumerate() {
        let minute = m as u32;
        let d = if d.is_finite() { d.max(0.0) } else { 0.0 };
        let in_service = ready_at.iter().filter(|&&r| r <= minute).count() as u32;
        // No instance in service: every request fails and the metric is the
        // demand itself, which drives a scale-out like CloudWatch would.
        let load = d / f64::from(in_service.max(1));
        let served_max = if conditions.instance_capacity_per_minute > 0.0 {
            conditions.instance_capacity_per_minute * f64::from(in_service)
        } else if in_service > 0 {
            f64::INFINITY
        } else {
            0.0
        };
        let throttled = (d - served_max).max(0.0);
        out.total_cost += per_minute_price * ready_at.len() as f64;
        out.throttled += throttled;
        if load > policy.target_value {
            out.minutes_above_target += 1;
        }
        out.minutes.push(Minute {
            minute,
            demand: d,
            desired: ready_at.len() as u32,
            in_service,
            load_per_instance: load,
            throttled,
            cost_so_far: out.total_cost,
        });
        let capacity = ready_at.len() as u32;
        if let Some(decision) = tracker.observe_warming(policy, f64::from(minute + 1) * 60.0, capacity, in_service, load) {
            if decision.to > capacity {
                let ready = minute + 1 + conditions.warmup_minutes;
                ready_at.extend(std::iter::repeat_n(ready, (decision.to - capacity) as usize));
            } else {
                // Scale-in removes the newest (still warming first) instances.
                ready_at.sort_unstable();
                ready_at.truncate(decision.to as usize);
            }
            out.peak_instances = out.peak_instances.max(decision.to);
            out.events.push(SimEvent { minute: minute + 1, decision });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScalingPolicy {
        ScalingPolicy { max_instances: 5, ..ScalingPolicy::seeds_default() }
    }

    fn conditions(warmup: u32) -> Conditions {
        Conditions { start_instances: 1, warmup_minutes: warmup, instance_capacity_per_minute: 0.0, hourly_price: 0.6 }
    }

    fn timeline(sim: &Simulation) -> Vec<(u32, u32)> {
        sim.events.iter().map(|e| (e.minute, e.decision.to)).collect()
    }

    #[test]
    fn a_step_scales_out_after_three_minutes_and_back_in_after_fifteen() {
        // 10 quiet minutes, 30 minutes at 100/min, then quiet again.
        let mut demand = vec![10.0; 10];
        demand.extend(vec![100.0; 30]);
        demand.extend(vec![10.0; 40]);
        let sim = simulate(&policy(), &conditions(0), &demand);
        // Minutes 10, 11, 12 are above 25 on 1 instance: at the end of
        // minute 12, ceil(1 × 100/25) = 4. From minute 40 the load is
        // 10/4 = 2.5 < 22.5; 15 datapoints later (end of minute 54) the
        // target is ceil(4 × 2.5/25) = 1.
        assert_eq!(timeline(&sim), vec![(13, 4), (55, 1)]);
        assert_eq!(sim.peak_instances, 4);
        assert_eq!(sim.minutes[13].desired, 4);
        assert_eq!(sim.minutes[13].in_service, 4);
        assert!((sim.minutes[20].load_per_instance - 25.0).abs() < 1e-9);
        // Billed: 13 min × 1 + 42 × 4 + 25 × 1 instance-minutes at 0.01 each.
        assert!((sim.total_cost - (13.0 + 42.0 * 4.0 + 25.0) * 0.01).abs() < 1e-9, "{}", sim.total_cost);
    }

    #[test]
    fn warm_up_delays_service_but_not_billing_and_throttles_meanwhile() {
        let mut demand = vec![10.0; 5];
        demand.extend(vec![100.0; 20]);
        let c = Conditions { instance_capacity_per_minute: 30.0, ..conditions(5) };
        let sim = simulate(&policy(), &c, &demand);
        assert_eq!(timeline(&sim)[0], (8, 4));
        // Billed from minute 8, serving from minute 13.
        assert_eq!((sim.minutes[8].desired, sim.minutes[8].in_service), (4, 1));
        assert_eq!(sim.minutes[13].in_service, 4);
        // Minutes 5..13 at 100 with 30 served: 70 throttled each.
        assert!((sim.throttled - 8.0 * 70.0).abs() < 1e-9, "{}", sim.throttled);
        // While warming, the metric stays high, but the scale-out cooldown
        // blocks a second scale-out to the same capacity.
        assert_eq!(sim.events.len(), 1);
    }

    #[test]
    fn a_short_spike_is_absorbed_without_scaling() {
        let demand = Pattern::Spike { base: 10.0, peak: 200.0, at: 20, width: 2 }.trace(60);
        let sim = simulate(&policy(), &conditions(0), &demand);
        assert!(sim.events.is_empty(), "{:?}", sim.events);
        assert_eq!(sim.minutes_above_target, 2);
        let long = Pattern::Spike { base: 10.0, peak: 200.0, at: 20, width: 5 }.trace(60);
        let sim = simulate(&policy(), &conditions(0), &long);
        // Capped at the maximum of 5.
        assert_eq!(timeline(&sim)[0], (23, 5));
    }

    #[test]
    fn two_policies_differ_in_cost_and_instances() {
        let demand = Pattern::Daily { low: 5.0, high: 120.0, period_minutes: 240 }.trace(480);
        let tight = simulate(&ScalingPolicy { target_value: 10.0, max_instances: 20, ..policy() }, &conditions(0), &demand);
        let loose = simulate(&ScalingPolicy { target_value: 60.0, max_instances: 20, ..policy() }, &conditions(0), &demand);
        assert!(tight.peak_instances > loose.peak_instances);
        assert!(tight.total_cost > loose.total_cost);
    }

    #[test]
    fn patterns_have_the_requested_shape() {
        assert_eq!(Pattern::Steady { level: 3.0 }.trace(3), vec![3.0; 3]);
        assert_eq!(Pattern::Ramp { from: 0.0, to: 10.0 }.trace(3), vec![0.0, 5.0, 10.0]);
        let spike = Pattern::Spike { base: 1.0, peak: 9.0, at: 1, width: 2 }.trace(4);
        assert_eq!(spike, vec![1.0, 9.0, 9.0, 1.0]);
        let day = Pattern::Daily { low: 0.0, high: 100.0, period_minutes: 4 }.trace(5);
        assert!((day[0]).abs() < 1e-9 && (day[2] - 100.0).abs() < 1e-9 && day[4].abs() < 1e-9);
        assert!(Pattern::Steady { level: -5.0 }.trace(1)[0] == 0.0);
        assert_eq!(Pattern::Steady { level: 1.0 }.trace(usize::MAX).len(), MAX_TRACE_MINUTES);
    }
}
