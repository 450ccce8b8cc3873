//! What an endpoint's own metrics say about its speed: the mean model and
//! overhead latency over a window, weighted by the invocations of each
//! period, and so what one instance absorbs. The capacity check of a Lambda
//! function and the scaling simulator both judge with it, and say which
//! figures they used and from when.

use super::MetricSeries;
use crate::components::clock;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredLatency {
    /// Mean time in the model container per invocation (ModelLatency).
    pub model_ms: f64,
    /// Mean time SageMaker (or the local runtime) adds around it (OverheadLatency).
    pub overhead_ms: f64,
    /// Invocations the means cover (0 when the series carry no counts).
    pub invocations: f64,
    /// Unix seconds of the first and the last period with a figure.
    pub from: i64,
    pub to: i64,
}

impl MeasuredLatency {
    /// What one instance absorbs serving one request at a time.
    pub fn per_instance_per_minute(&self) -> f64 {
        60_000.0 / self.model_ms.max(0.001)
    }

    /// What a caller waits per invocation, end to end.
    pub fn end_to_end_ms(&self) -> f64 {
        self.model_ms + self.overhead_ms
    }

    /// "ModelLatency 183 ms + OverheadLatency 12 ms, mean of 1,234 invocations 14:02–15:01 UTC (source)".
    pub fn describe(&self, source: &str) -> String {
        let count = if self.invocations > 0.0 { format!("mean of {:.0} invocations", self.invocations) } else { "mean".to_string() };
        format!(
            "ModelLatency {:.1} ms + OverheadLatency {:.1} ms, {count} {}–{} UTC ({source})",
            self.model_ms,
            self.overhead_ms,
            clock(self.from),
            clock(self.to)
        )
    }
}

/// The invocation-weighted means of ModelLatency and OverheadLatency
/// (microseconds, per-period averages) over the series' window; `None`
/// when no period has a model latency.
pub fn measured_latency(series: &[MetricSeries]) -> Option<MeasuredLatency> {
    let points = |name: &str| series.iter().find(|s| s.name == name).map(|s| s.points.as_slice()).unwrap_or(&[]);
    let invocations = points("Invocations");
    let weight = |t: i64| invocations.iter().find(|p| p.0 == t).map(|p| p.1).filter(|w| *w > 0.0);
    let mean = |name: &str| -> Option<(f64, f64, i64, i64)> {
        let pts = points(name);
        let weighted = pts.iter().any(|p| weight(p.0).is_some());
        let (mut sum, mut total) = (0.0, 0.0);
        let (mut from, mut to) = (i64::MAX, i64::MIN);
        for (t, v) in pts {
            let w = if weighted { weight(*t).unwrap_or(0.0) } else { 1.0 };
            if w > 0.0 && v.is_finite() {
                sum += v * w;
                total += w;
                from = from.min(*t);
                to = to.max(*t);
            }
        }
        (total > 0.0).then(|| (sum / total / 1000.0, if weighted { total } else { 0.0 }, from, to))
    };
    let (model_ms, invocations, from, to) = mean("ModelLatency")?;
    let overhead_ms = mean("OverheadLatency").map(|m| m.0).unwrap_or(0.0);
    Some(MeasuredLatency { model_ms, overhead_ms, invocations, from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: &[(i64, f64)]) -> MetricSeries {
        MetricSeries { name: name.into(), statistic: "Average".into(), unit: "Microseconds".into(), points: points.to_vec() }
    }

    #[test]
    fn latencies_are_weighted_by_the_invocations_of_each_period() {
        let s = [
            series("Invocations", &[(0, 30.0), (60, 10.0)]),
            series("ModelLatency", &[(0, 200_000.0), (60, 120_000.0)]),
            series("OverheadLatency", &[(0, 10_000.0), (60, 20_000.0)]),
        ];
        let m = measured_latency(&s).unwrap();
        assert!((m.model_ms - 180.0).abs() < 1e-9, "{m:?}");
        assert!((m.overhead_ms - 12.5).abs() < 1e-9, "{m:?}");
        assert_eq!((m.invocations, m.from, m.to), (40.0, 0, 60));
        assert!((m.per_instance_per_minute() - 333.333).abs() < 0.01);
        assert!((m.end_to_end_ms() - 192.5).abs() < 1e-9);
        assert_eq!(
            m.describe("CloudWatch"),
            "ModelLatency 180.0 ms + OverheadLatency 12.5 ms, mean of 40 invocations 00:00–00:01 UTC (CloudWatch)"
        );
    }

    #[test]
    fn without_counts_periods_weigh_alike_and_without_latency_there_is_nothing() {
        let m = measured_latency(&[series("ModelLatency", &[(120, 100_000.0), (180, 300_000.0)])]).unwrap();
        assert_eq!((m.model_ms, m.overhead_ms, m.invocations), (200.0, 0.0, 0.0));
        assert!(measured_latency(&[series("Invocations", &[(0, 5.0)])]).is_none());
        assert!(measured_latency(&[]).is_none());
    }
}
