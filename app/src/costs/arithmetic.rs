//! The cost arithmetic, pure so the page and the tests share it: prices per
//! instance-hour times instances and time, auto-scaling's range, spot's
//! saving, spend spread over the days of the month, and the SageMaker
//! instance a piece of local work is priced as.

use super::CostLine;
use crate::calendar::{civil_from_days, days_from_civil};

/// Hours in an average month (365 × 24 / 12), as AWS's calculator uses.
pub const HOURS_PER_MONTH: f64 = 730.0;
const DAY: i64 = 86_400;

/// What `instances` instances cost for `seconds` at `hourly_usd` each.
pub fn run_cost(hourly_usd: f64, instances: u32, seconds: f64) -> f64 {
    hourly_usd * instances as f64 * seconds.max(0.0) / 3600.0
}

/// The share of a spot job's time that was not billed, from SageMaker's
/// TrainingTimeInSeconds and BillableTimeInSeconds (both per instance):
/// `Some(0.7)` means 70 % saved. `None` when either is unknown or zero.
pub fn spot_saving(training_seconds: Option<i64>, billable_seconds: Option<i64>) -> Option<f64> {
    let (t, b) = (training_seconds?, billable_seconds?);
    (t > 0 && b >= 0).then(|| (1.0 - b as f64 / t as f64).clamp(0.0, 1.0))
}

/// What the resources that bill now cost per hour: the current figure, the
/// range auto-scaling allows (min to max instances), and how many billing
/// lines have no price (they are left out of the sums, never guessed).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub hourly: f64,
    pub hourly_low: f64,
    pub hourly_high: f64,
    pub unpriced: usize,
}

impl Totals {
    pub fn daily(&self) -> f64 {
        self.hourly * 24.0
    }

    pub fn monthly(&self) -> f64 {
        self.hourly * HOURS_PER_MONTH
    }
}

/// The hourly cost of one line now, and its range under auto-scaling.
pub fn line_hourly(line: &CostLine) -> Option<(f64, f64, f64)> {
    let price = line.hourly_usd?;
    let now = price * line.instances as f64;
    let (low, high) = match line.scaling {
        Some((min, max)) => (price * min as f64, price * max as f64),
        None => (now, now),
    };
    Some((now, low, high))
}

pub fn totals(lines: &[CostLine]) -> Totals {
    let mut t = Totals::default();
    for line in lines.iter().filter(|l| l.billing_now) {
        match line_hourly(line) {
            Some((now, low, high)) => {
                t.hourly += now;
                t.hourly_low += low;
                t.hourly_high += high;
            }
            None => t.unpriced += 1,
        }
    }
    t
}

/// The first second of the UTC month `unix` falls in.
pub fn month_start(unix: i64) -> i64 {
    let (year, month, _) = civil_from_days(unix.div_euclid(DAY));
    days_from_civil(year, month, 1) * DAY
}

/// "2026-12-02" for a unix time (UTC).
pub fn day_label(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Spreads spending intervals (start, end, USD per hour) over the UTC days
/// from `from` to `to`: one figure per day, the part of each interval inside
/// it. An interval still running has `to` as its end.
pub fn spread_over_days(intervals: &[(i64, i64, f64)], from: i64, to: i64) -> Vec<(String, f64)> {
    let first = from.div_euclid(DAY);
    let last = (to - 1).max(from).div_euclid(DAY);
    (first..=last)
        .map(|day| {
            let (d0, d1) = ((day * DAY).max(from), ((day + 1) * DAY).min(to));
            let usd = intervals
                .iter()
                .map(|&(s, e, hourly)| {
                    let overlap = (e.min(d1) - s.max(d0)).max(0);
                    hourly * overlap as f64 / 3600.0
                })
                .sum();
            (day_label(day * DAY), usd)
        })
        .collect()
}

/// The SageMaker instance a piece of local work is priced as, and why: the
/// smallest compute-optimised type with at least as many vCPUs as the
/// threads it used, or one NVIDIA T4 (ml.g4dn.xlarge) for a GPU.
pub fn equivalent_instance(threads: u32, gpu: bool) -> (&'static str, String) {
    if gpu {
        return ("ml.g4dn.xlarge", "one GPU: the smallest GPU instance (one NVIDIA T4, 4 vCPUs)".into());
    }
    const C5: &[(&str, u32)] = &[("ml.c5.large", 2), ("ml.c5.xlarge", 4), ("ml.c5.2xlarge", 8), ("ml.c5.4xlarge", 16), ("ml.c5.9xlarge", 36)];
    let threads = threads.max(1);
    let (name, vcpus) = C5.iter().find(|(_, v)| *v >= threads).copied().unwrap_or(C5[C5.len() - 1]);
    (name, format!("{threads} CPU thread{}: the smallest compute-optimised instance with as many vCPUs ({vcpus})", if threads == 1 { "" } else { "s" }))
}

/// "$1.23", "$0.0460" below a dollar, "$12,345" above ten thousand.
pub fn usd(amount: f64) -> String {
    if amount.abs() >= 10_000.0 {
        let whole = amount.round() as i64;
        let digits = whole.abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{}${out}", if whole < 0 { "-" } else { "" })
    } else if amount != 0.0 && amount.abs() < 1.0 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::{CostLine, ResourceKind};

    fn line(hourly: Option<f64>, instances: u32, scaling: Option<(u32, u32)>, billing_now: bool) -> CostLine {
        CostLine {
            kind: ResourceKind::Endpoint,
            name: "dogs".into(),
            href: "/endpoints/sagemaker/dogs".into(),
            status: "InService".into(),
            instance_type: "ml.m5.large".into(),
            instances,
            scaling,
            hourly_usd: hourly,
            price_source: String::new(),
            spot: false,
            running_since: None,
            so_far_usd: None,
            detail: String::new(),
            billing_now,
        }
    }

    #[test]
    fn partial_hours_cost_their_share() {
        assert!((run_cost(0.23, 2, 1800.0) - 0.23).abs() < 1e-9);
        assert!((run_cost(3.825, 1, 90.0) - 0.095625).abs() < 1e-9);
        assert_eq!(run_cost(1.0, 4, -5.0), 0.0, "a clock skew never makes a negative cost");
    }

    #[test]
    fn spot_saving_is_the_unbilled_share_of_training_time() {
        assert_eq!(spot_saving(Some(1000), Some(300)), Some(0.7));
        assert_eq!(spot_saving(Some(1000), Some(1000)), Some(0.0));
        assert_eq!(spot_saving(Some(0), Some(0)), None);
        assert_eq!(spot_saving(None, Some(10)), None);
        assert_eq!(spot_saving(Some(100), Some(150)), Some(0.0), "billed more than trained reads as no saving, not a negative one");
    }

    #[test]
    fn totals_sum_billing_lines_with_their_scaling_range_and_count_the_unpriced() {
        let lines = vec![
            line(Some(0.115), 2, Some((1, 4)), true),
            line(Some(0.05), 1, None, true),
            line(None, 1, None, true),
            line(Some(10.0), 1, None, false), // stopped: not billing now
        ];
        let t = totals(&lines);
        assert!((t.hourly - 0.28).abs() < 1e-9, "{t:?}");
        assert!((t.hourly_low - 0.165).abs() < 1e-9, "{t:?}");
        assert!((t.hourly_high - 0.51).abs() < 1e-9, "{t:?}");
        assert_eq!(t.unpriced, 1);
        assert!((t.daily() - 6.72).abs() < 1e-9);
        assert!((t.monthly() - 204.4).abs() < 1e-9);
    }

    #[test]
    fn month_start_and_day_labels_follow_the_utc_calendar() {
        // 2026-12-02T00:47:30Z
        assert_eq!(day_label(1_796_172_450), "2026-12-02");
        assert_eq!(day_label(month_start(1_796_172_450)), "2026-12-01");
        // 2024-02-29 (a leap day) starts February; 2027-01-01 starts itself.
        assert_eq!(day_label(month_start(1_709_200_000)), "2024-02-01");
        assert_eq!(month_start(1_798_761_600), 1_798_761_600);
        assert_eq!(day_label(1_798_761_600), "2027-01-01");
    }

    #[test]
    fn spending_is_spread_over_the_days_it_happened() {
        let d = 86_400;
        let from = 1_796_083_200; // 2026-12-01T00:00Z
        // $1/h from 22:00 on day 1 to 02:00 on day 2; $2/h for the first hour of day 3.
        let intervals = [(from + 22 * 3600, from + d + 2 * 3600, 1.0), (from + 2 * d, from + 2 * d + 3600, 2.0)];
        let days = spread_over_days(&intervals, from, from + 2 * d + 7200);
        assert_eq!(days.len(), 3);
        assert_eq!(days[0], ("2026-12-01".to_string(), 2.0));
        assert_eq!(days[1], ("2026-12-02".to_string(), 2.0));
        assert_eq!(days[2], ("2026-12-03".to_string(), 2.0));
        // An interval outside the window adds nothing.
        assert_eq!(spread_over_days(&[(0, 3600, 5.0)], from, from + 60)[0].1, 0.0);
    }

    #[test]
    fn local_work_is_priced_as_the_smallest_instance_that_matches_it() {
        assert_eq!(equivalent_instance(2, false).0, "ml.c5.large");
        assert_eq!(equivalent_instance(3, false).0, "ml.c5.xlarge");
        assert_eq!(equivalent_instance(0, false).0, "ml.c5.large");
        assert_eq!(equivalent_instance(64, false).0, "ml.c5.9xlarge");
        assert_eq!(equivalent_instance(2, true).0, "ml.g4dn.xlarge");
        assert!(equivalent_instance(2, false).1.contains("2 CPU threads"));
    }

    #[test]
    fn amounts_read_as_money() {
        assert_eq!(usd(0.046), "$0.0460");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(36.5), "$36.50");
        assert_eq!(usd(12_345.6), "$12,346");
        assert_eq!(usd(1_234_567.0), "$1,234,567");
    }
}
