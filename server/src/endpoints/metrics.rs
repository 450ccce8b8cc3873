//! Local endpoint metrics, named as SageMaker names them in CloudWatch and
//! kept per minute in SQLite. Requests add to an in-memory minute bucket; a
//! flush every few seconds (and before every read, and at shutdown) adds the
//! buckets to the table, so the series survives a restart.

use crate::minutes::{now_minute, MinuteBuffer};
use app::endpoints::{MetricSeries, MetricWindow};
use app::ApiError;
use sqlx::SqlitePool;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bucket {
    pub instances: i64,
    pub invocations: i64,
    pub invocation_4xx: i64,
    pub invocation_5xx: i64,
    pub model_latency_us_sum: i64,
    pub model_latency_us_max: i64,
    pub overhead_latency_us_sum: i64,
    pub overhead_latency_us_max: i64,
    pub batches: i64,
}

/// What happened to one request.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Ok { model: Duration, overhead: Duration, batch_size: u32 },
    ClientError,
    ServerError,
}

impl Bucket {
    pub fn add(&mut self, outcome: Outcome, instances: usize) {
        self.instances = instances as i64;
        self.invocations += 1;
        match outcome {
            Outcome::Ok { model, overhead, batch_size } => {
                let (m, o) = (model.as_micros() as i64, overhead.as_micros() as i64);
                self.model_latency_us_sum += m;
                self.model_latency_us_max = self.model_latency_us_max.max(m);
                self.overhead_latency_us_sum += o;
                self.overhead_latency_us_max = self.overhead_latency_us_max.max(o);
                // Each request of a batch of n counts 1/n of the batch; kept as
                // a sum of reciprocals ×1000 to stay an integer.
                self.batches += 1000 / i64::from(batch_size.max(1));
            }
            Outcome::ClientError => self.invocation_4xx += 1,
            Outcome::ServerError => self.invocation_5xx += 1,
        }
    }

    fn successes(&self) -> i64 {
        self.invocations - self.invocation_4xx - self.invocation_5xx
    }
}

pub struct Metrics {
    pool: SqlitePool,
    pending: MinuteBuffer<Bucket>,
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("endpoint metrics store")(e)
}

impl Metrics {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, pending: MinuteBuffer::default() }
    }

    pub fn record(&self, endpoint: &str, instances: usize, outcome: Outcome) {
        self.pending.add(endpoint, |b| b.add(outcome, instances));
    }

    /// Adds the buffered buckets to the table, in one transaction.
    pub async fn flush(&self) -> Result<(), ApiError> {
        let buckets = self.pending.take();
        if buckets.is_empty() {
            return Ok(());
        }
        let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
        for ((endpoint, minute), b) in &buckets {
            sqlx::query(
                "INSERT INTO endpoint_metrics (endpoint, minute, instances, invocations, invocation_4xx, invocation_5xx,
                    model_latency_us_sum, model_latency_us_max, overhead_latency_us_sum, overhead_latency_us_max, batches)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (endpoint, minute) DO UPDATE SET
                    instances = excluded.instances,
                    invocations = invocations + excluded.invocations,
                    invocation_4xx = invocation_4xx + excluded.invocation_4xx,
                    invocation_5xx = invocation_5xx + excluded.invocation_5xx,
                    model_latency_us_sum = model_latency_us_sum + excluded.model_latency_us_sum,
                    model_latency_us_max = max(model_latency_us_max, excluded.model_latency_us_max),
                    overhead_latency_us_sum = overhead_latency_us_sum + excluded.overhead_latency_us_sum,
                    overhead_latency_us_max = max(overhead_latency_us_max, excluded.overhead_latency_us_max),
                    batches = batches + excluded.batches",
            )
            .bind(endpoint)
            .bind(minute)
            .bind(b.instances)
            .bind(b.invocations)
            .bind(b.invocation_4xx)
            .bind(b.invocation_5xx)
            .bind(b.model_latency_us_sum)
            .bind(b.model_latency_us_max)
            .bind(b.overhead_latency_us_sum)
            .bind(b.overhead_latency_us_max)
            .bind(b.batches)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Flushes every `every` until the process ends.
    pub fn spawn_flusher(self: &std::sync::Arc<Self>, every: Duration) {
        crate::minutes::spawn_flusher(self.clone(), every, "endpoint metrics", |m| async move { m.flush().await });
    }

    /// The last `count` complete periods of `period` seconds, oldest first,
    /// for an alarm: (5XX share of invocations, highest ModelLatency in µs),
    /// `None` for a period without invocations.
    pub async fn alarm_periods(&self, endpoint: &str, period: i64, count: i64) -> Result<Vec<Option<(f64, f64)>>, ApiError> {
        self.flush().await?;
        let minutes_per = (period / 60).max(1);
        let end = now_minute().div_euclid(minutes_per) * minutes_per; // the current, incomplete period starts here
        let start = end - count * minutes_per;
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT (minute - ?1) / ?2 AS slot, sum(invocations), sum(invocation_5xx), max(model_latency_us_max)
             FROM endpoint_metrics WHERE endpoint = ?3 AND minute >= ?1 AND minute < ?4 GROUP BY slot",
        )
        .bind(start)
        .bind(minutes_per)
        .bind(endpoint)
        .bind(end)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut periods = vec![None; count as usize];
        for (slot, invocations, errors, latency) in rows {
            if invocations > 0 {
                if let Some(p) = periods.get_mut(slot as usize) {
                    *p = Some((errors as f64 / invocations as f64, latency as f64));
                }
            }
        }
        Ok(periods)
    }

    pub async fn series(&self, endpoint: &str, window: MetricWindow) -> Result<Vec<MetricSeries>, ApiError> {
        self.flush().await?;
        let from = window.range(now_minute() * 60).0 / 60 - 1;
        let rows: Vec<(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT minute, instances, invocations, invocation_4xx, invocation_5xx, model_latency_us_sum,
                    model_latency_us_max, overhead_latency_us_sum, overhead_latency_us_max, batches
             FROM endpoint_metrics WHERE endpoint = ? AND minute > ? ORDER BY minute",
        )
        .bind(endpoint)
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let minutes = rows
            .into_iter()
            .map(|r| {
                (r.0, Bucket {
                    instances: r.1,
                    invocations: r.2,
                    invocation_4xx: r.3,
                    invocation_5xx: r.4,
                    model_latency_us_sum: r.5,
                    model_latency_us_max: r.6,
                    overhead_latency_us_sum: r.7,
                    overhead_latency_us_max: r.8,
                    batches: r.9,
                })
            })
            .collect::<Vec<_>>();
        Ok(to_series(&minutes, window, now_minute()))
    }

    /// Invocations per minute over the last `minutes` minutes, oldest first
    /// (zero where nothing came), and the unix time of the first minute.
    pub async fn invocations_per_minute(&self, endpoint: &str, minutes: i64) -> Result<(i64, Vec<f64>), ApiError> {
        self.flush().await?;
        let last = now_minute();
        let first = last - minutes + 1;
        let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT minute, invocations FROM endpoint_metrics WHERE endpoint = ? AND minute >= ?")
            .bind(endpoint)
            .bind(first)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = vec![0.0; minutes.max(0) as usize];
        for (minute, n) in rows {
            if let Some(slot) = usize::try_from(minute - first).ok().and_then(|i| out.get_mut(i)) {
                *slot = n as f64;
            }
        }
        Ok((first * 60, out))
    }
}

/// Rolls minute buckets up into the window's periods, as CloudWatch's
/// GetMetricStatistics would: Sum for counts, Average for latencies.
/// Periods without traffic count zero invocations and have no latency.
pub fn to_series(minutes: &[(i64, Bucket)], window: MetricWindow, now_minute: i64) -> Vec<MetricSeries> {
    let period_min = window.period_seconds() / 60;
    let (start, end) = window.range(now_minute * 60);
    let periods = (end - start) / window.period_seconds();
    let last = now_minute.div_euclid(period_min);
    let mut rolled: Vec<(i64, Bucket, f64)> = (0..periods).map(|i| ((last - periods + 1 + i) * period_min * 60, Bucket::default(), 0.0)).collect();
    for (minute, b) in minutes {
        let index = minute.div_euclid(period_min) - (last - periods + 1);
        let Some((_, acc, per_instance)) = usize::try_from(index).ok().and_then(|i| rolled.get_mut(i)) else { continue };
        *per_instance += b.invocations as f64 / b.instances.max(1) as f64;
        acc.invocations += b.invocations;
        acc.invocation_4xx += b.invocation_4xx;
        acc.invocation_5xx += b.invocation_5xx;
        acc.model_latency_us_sum += b.model_latency_us_sum;
        acc.overhead_latency_us_sum += b.overhead_latency_us_sum;
        acc.batches += b.batches;
    }
    let count = |name: &str, f: &dyn Fn(&Bucket, f64) -> f64| MetricSeries {
        name: name.into(),
        statistic: "Sum".into(),
        unit: "Count".into(),
        points: rolled.iter().map(|(t, b, pi)| (*t, f(b, *pi))).collect(),
    };
    let average = |name: &str, sum: &dyn Fn(&Bucket) -> i64| MetricSeries {
        name: name.into(),
        statistic: "Average".into(),
        unit: "Microseconds".into(),
        points: rolled
            .iter()
            .filter(|(_, b, _)| b.successes() > 0)
            .map(|(t, b, _)| (*t, sum(b) as f64 / b.successes() as f64))
            .collect(),
    };
    vec![
        count("Invocations", &|b, _| b.invocations as f64),
        count("InvocationsPerInstance", &|_, pi| pi),
        average("ModelLatency", &|b| b.model_latency_us_sum),
        average("OverheadLatency", &|b| b.overhead_latency_us_sum),
        count("Invocation4XXErrors", &|b, _| b.invocation_4xx as f64),
        count("Invocation5XXErrors", &|b, _| b.invocation_5xx as f64),
        MetricSeries {
            name: "BatchSize".into(),
            statistic: "Average".into(),
            unit: "Count".into(),
            points: rolled
                .iter()
                .filter(|(_, b, _)| b.batches > 0)
                .map(|(t, b, _)| (*t, 1000.0 * b.successes() as f64 / b.batches as f64))
                .collect(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(model_us: u64, overhead_us: u64, batch: u32) -> Outcome {
        Outcome::Ok { model: Duration::from_micros(model_us), overhead: Duration::from_micros(overhead_us), batch_size: batch }
    }

    #[test]
    fn buckets_count_errors_apart_from_latencies() {
        let mut b = Bucket::default();
        b.add(ok(1000, 100, 1), 2);
        b.add(ok(3000, 300, 2), 2);
        b.add(Outcome::ClientError, 2);
        b.add(Outcome::ServerError, 2);
        assert_eq!((b.invocations, b.invocation_4xx, b.invocation_5xx, b.successes()), (4, 1, 1, 2));
        assert_eq!((b.model_latency_us_sum, b.model_latency_us_max), (4000, 3000));
        assert_eq!(b.batches, 1500);
    }

    #[test]
    fn hour_window_has_sixty_one_minute_points_with_sums_and_averages() {
        let mut b = Bucket::default();
        b.add(ok(1000, 100, 1), 2);
        b.add(ok(3000, 300, 1), 2);
        b.add(Outcome::ClientError, 2);
        let now = 1_000_000;
        // The window's first minute (60 ago) counts; 500 ago does not.
        let series = to_series(&[(now - 1, b), (now - 60, b), (now - 500, b)], MetricWindow::Hour, now);
        let get = |n: &str| series.iter().find(|s| s.name == n).unwrap();
        let inv = get("Invocations");
        assert_eq!(inv.points.len(), 61);
        assert_eq!(inv.points.iter().map(|p| p.1).sum::<f64>(), 6.0, "the minute 500 ago is outside the hour");
        assert_eq!(inv.points[0], ((now - 60) * 60, 3.0));
        assert_eq!(inv.points[59], ((now - 1) * 60, 3.0));
        assert_eq!(get("InvocationsPerInstance").points[59].1, 1.5);
        assert_eq!(get("ModelLatency").points, vec![((now - 60) * 60, 2000.0), ((now - 1) * 60, 2000.0)]);
        assert_eq!(get("OverheadLatency").points, vec![((now - 60) * 60, 200.0), ((now - 1) * 60, 200.0)]);
        assert_eq!(get("Invocation4XXErrors").points[59].1, 1.0);
        assert_eq!(get("BatchSize").points, vec![((now - 60) * 60, 1.0), ((now - 1) * 60, 1.0)]);
    }

    #[test]
    fn day_window_rolls_minutes_into_quarter_hours() {
        let mut b = Bucket::default();
        b.add(ok(10, 10, 1), 1);
        let now = 15 * 1000 + 7;
        let series = to_series(&[(now, b), (now - 3, b), (now - 20, b)], MetricWindow::Day, now);
        let inv = &series[0];
        assert_eq!(inv.points.len(), 97, "a day of quarter hours, the first one whole");
        assert_eq!(inv.points[96], (15 * 1000 * 60, 2.0));
        assert_eq!(inv.points[95].1, 1.0);
    }
}
