//! Local functions' metrics, named and aggregated as CloudWatch's AWS/Lambda
//! namespace does (Invocations, Errors, Throttles: Sum; Duration: Average;
//! ConcurrentExecutions: Maximum), kept per minute in SQLite. Invocations
//! add to an in-memory minute bucket; a flush every few seconds (and before
//! every read, and at shutdown) adds the buckets to the table.

use crate::minutes::{now_minute, MinuteBuffer};
use app::endpoints::{MetricSeries, MetricWindow};
use app::ApiError;
use sqlx::SqlitePool;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FnBucket {
    pub invocations: i64,
    pub errors: i64,
    pub throttles: i64,
    pub duration_us_sum: i64,
    pub concurrent_max: i64,
}

/// What happened to one call of a function.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    /// It ran for `duration` (the handler's time) beside `concurrent - 1` others.
    Ran { duration: Duration, failed: bool, concurrent: u32 },
    Throttled,
}

impl FnBucket {
    pub fn add(&mut self, call: Call) {
        match call {
            Call::Ran { duration, failed, concurrent } => {
                self.invocations += 1;
                self.errors += i64::from(failed);
                self.duration_us_sum += duration.as_micros() as i64;
                self.concurrent_max = self.concurrent_max.max(i64::from(concurrent));
            }
            Call::Throttled => self.throttles += 1,
        }
    }

    fn merge(&mut self, other: &FnBucket) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.throttles += other.throttles;
        self.duration_us_sum += other.duration_us_sum;
        self.concurrent_max = self.concurrent_max.max(other.concurrent_max);
    }
}

pub struct FunctionMetrics {
    pool: SqlitePool,
    pending: MinuteBuffer<FnBucket>,
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("function metrics store")(e)
}

impl FunctionMetrics {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, pending: MinuteBuffer::default() }
    }

    pub fn record(&self, function: &str, call: Call) {
        self.pending.add(function, |b| b.add(call));
    }

    /// Adds the buffered buckets to the table, in one transaction.
    pub async fn flush(&self) -> Result<(), ApiError> {
        let buckets = self.pending.take();
        if buckets.is_empty() {
            return Ok(());
        }
        let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
        for ((function, minute), b) in &buckets {
            sqlx::query(
                "INSERT INTO function_metrics (function, minute, invocations, errors, throttles, duration_us_sum, concurrent_max)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (function, minute) DO UPDATE SET
                    invocations = invocations + excluded.invocations,
                    errors = errors + excluded.errors,
                    throttles = throttles + excluded.throttles,
                    duration_us_sum = duration_us_sum + excluded.duration_us_sum,
                    concurrent_max = max(concurrent_max, excluded.concurrent_max)",
            )
            .bind(function)
            .bind(minute)
            .bind(b.invocations)
            .bind(b.errors)
            .bind(b.throttles)
            .bind(b.duration_us_sum)
            .bind(b.concurrent_max)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Flushes every `every` until the process ends.
    pub fn spawn_flusher(self: &std::sync::Arc<Self>, every: Duration) {
        crate::minutes::spawn_flusher(self.clone(), every, "function metrics", |m| async move { m.flush().await });
    }

    pub async fn series(&self, function: &str, window: MetricWindow) -> Result<Vec<MetricSeries>, ApiError> {
        self.flush().await?;
        let now = now_minute();
        let from = window.range(now * 60).0 / 60;
        let rows: Vec<(i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT minute, invocations, errors, throttles, duration_us_sum, concurrent_max
             FROM function_metrics WHERE function = ? AND minute >= ? ORDER BY minute",
        )
        .bind(function)
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let minutes: Vec<(i64, FnBucket)> = rows
            .into_iter()
            .map(|(m, invocations, errors, throttles, duration_us_sum, concurrent_max)| {
                (m, FnBucket { invocations, errors, throttles, duration_us_sum, concurrent_max })
            })
            .collect();
        Ok(to_series(&minutes, window, now))
    }
}

/// Rolls minute buckets into the window's periods as CloudWatch would:
/// counts summed (zero in quiet periods), Duration averaged over the
/// invocations, ConcurrentExecutions the period's maximum.
pub fn to_series(minutes: &[(i64, FnBucket)], window: MetricWindow, now_minute: i64) -> Vec<MetricSeries> {
    let period = window.period_seconds();
    let (start, end) = window.range(now_minute * 60);
    let mut rolled: Vec<(i64, FnBucket)> = (start..end).step_by(period as usize).map(|t| (t, FnBucket::default())).collect();
    for (minute, b) in minutes {
        let index = (minute * 60 - start).div_euclid(period);
        if let Some((_, acc)) = usize::try_from(index).ok().and_then(|i| rolled.get_mut(i)) {
            acc.merge(b);
        }
    }
    let series = |name: &str, statistic: &str, unit: &str, points: Vec<(i64, f64)>| MetricSeries {
        name: name.into(),
        statistic: statistic.into(),
        unit: unit.into(),
        points,
    };
    let all = |f: fn(&FnBucket) -> f64| rolled.iter().map(|(t, b)| (*t, f(b))).collect::<Vec<_>>();
    vec![
        series("Invocations", "Sum", "Count", all(|b| b.invocations as f64)),
        series("Errors", "Sum", "Count", all(|b| b.errors as f64)),
        series("Throttles", "Sum", "Count", all(|b| b.throttles as f64)),
        series(
            "Duration",
            "Average",
            "Milliseconds",
            rolled.iter().filter(|(_, b)| b.invocations > 0).map(|(t, b)| (*t, b.duration_us_sum as f64 / b.invocations as f64 / 1000.0)).collect(),
        ),
        series(
            "ConcurrentExecutions",
            "Maximum",
            "Count",
            rolled.iter().filter(|(_, b)| b.invocations > 0).map(|(t, b)| (*t, b.concurrent_max as f64)).collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(ms: u64, failed: bool, concurrent: u32) -> Call {
        Call::Ran { duration: Duration::from_millis(ms), failed, concurrent }
    }

    #[test]
    fn a_bucket_counts_throttles_apart_and_keeps_the_most_at_once() {
        let mut b = FnBucket::default();
        b.add(ran(100, false, 1));
        b.add(ran(300, true, 3));
        b.add(Call::Throttled);
        assert_eq!(b, FnBucket { invocations: 2, errors: 1, throttles: 1, duration_us_sum: 400_000, concurrent_max: 3 });
    }

    #[test]
    fn minutes_roll_into_the_window_as_cloudwatch_aggregates_them() {
        let now = 1_000_000;
        let mut a = FnBucket::default();
        a.add(ran(100, false, 2));
        a.add(ran(300, false, 1));
        let mut b = FnBucket::default();
        b.add(Call::Throttled);
        let hour = to_series(&[(now - 60, a), (now, b), (now - 500, a)], MetricWindow::Hour, now);
        let get = |name: &str| hour.iter().find(|s| s.name == name).unwrap().points.clone();
        assert_eq!(get("Invocations").len(), 61, "every minute of the hour, the current one included");
        assert_eq!(get("Invocations").iter().map(|p| p.1).sum::<f64>(), 2.0, "the minute outside the hour is left out");
        assert_eq!(get("Throttles").last(), Some(&(now * 60, 1.0)));
        assert_eq!(get("Duration"), vec![((now - 60) * 60, 200.0)]);
        assert_eq!(get("ConcurrentExecutions"), vec![((now - 60) * 60, 2.0)]);
        let day = to_series(&[(now - 60, a), (now - 61, a)], MetricWindow::Day, now);
        let inv = &day.iter().find(|s| s.name == "Invocations").unwrap().points;
        assert_eq!(inv.len(), 97);
        assert_eq!(inv.iter().map(|p| p.1).sum::<f64>(), 4.0);
        assert!(inv.iter().all(|p| p.0 % 900 == 0));
    }
}
