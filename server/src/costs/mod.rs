//! The Costs page's figures: every billable thing Sagedeck knows of, priced
//! (`pricing`), the month so far from what it has seen, and what has been
//! idle. Endpoints and training jobs come from the poller's SQLite caches
//! (no AWS call per view); notebooks from ListNotebookInstances; idleness
//! from CloudWatch (SageMaker endpoints) or the local metrics table.

pub mod pricing;

use crate::aws::{from_sdk, Aws};
use crate::endpoints::EndpointHub;
use crate::scaling::sagemaker::{resource_id, AwsScaling};
use app::costs::arithmetic::{self, run_cost, spot_saving};
use app::costs::{CostLine, CostReport, CostService, IdleAction, IdleResource, MonthToDate, ResourceKind, Usage};
use app::notebooks::Notebooks;
use app::training::sagemaker::{SageMakerJobDetail, SageMakerJobSummary};
use app::ApiError;
use pricing::PriceBook;
use sqlx::SqlitePool;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct CostHub {
    pool: SqlitePool,
    aws: Arc<Aws>,
    prices: PriceBook,
    notebooks: Notebooks,
    endpoints: Arc<EndpointHub>,
    scaling: AwsScaling,
    /// Invocations per (endpoint, idle hours) as CloudWatch last answered,
    /// for ten minutes: a page view costs three calls per endpoint otherwise.
    seen_calls: std::sync::Mutex<std::collections::HashMap<(String, u32), (std::time::Instant, f64)>>,
}

const SEEN_CALLS_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// Spending over time: (start, end, USD per hour, what), unix seconds.
type Interval = (i64, i64, f64, &'static str);

/// What one view collects before it is summed.
#[derive(Default)]
struct Gathered {
    lines: Vec<CostLine>,
    idle: Vec<IdleResource>,
    billed: Vec<Interval>,
    local: Vec<Interval>,
    gaps: Vec<String>,
    notes: Vec<String>,
}

fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn store_error(e: sqlx::Error) -> ApiError {
    crate::store::failed("cost figures")(e)
}

fn hours(seconds: i64) -> String {
    let h = seconds as f64 / 3600.0;
    if h >= 48.0 {
        format!("{:.1} days", h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

impl CostHub {
    pub fn new(pool: SqlitePool, aws: Arc<Aws>, notebooks: Notebooks, endpoints: Arc<EndpointHub>) -> Self {
        Self {
            prices: PriceBook::new(pool.clone(), aws.clone()),
            scaling: AwsScaling::new(aws.clone()),
            pool,
            aws,
            notebooks,
            endpoints,
            seen_calls: Default::default(),
        }
    }

    async fn notebooks(&self, g: &mut Gathered, now: i64, idle_hours: u32) {
        let list = match self.notebooks.list().await {
            Ok(list) => list,
            Err(e) => return g.notes.push(format!("Notebooks not counted: {}", e.message())),
        };
        let mut stopped = 0;
        for nb in list {
            // Pending and Updating bill too; Stopped, Failed and Deleting do not.
            if !matches!(nb.status.as_str(), "InService" | "Pending" | "Updating" | "Stopping") {
                stopped += usize::from(nb.status == "Stopped");
                continue;
            }
            let price = self.prices.price(Usage::Notebook, &nb.instance_type).await;
            // The last modification of a running notebook is its start (or a
            // change while it ran): the best start time the API gives.
            let since = nb.last_modified_at.as_deref().or(nb.created_at.as_deref()).and_then(unix);
            let href = format!("/notebooks/{}", nb.name);
            if let (Some(start), Some(p)) = (since, price.hourly_usd) {
                g.billed.push((start, now, p, "notebooks"));
            }
            let running = since.map(|s| now - s);
            g.lines.push(CostLine {
                kind: ResourceKind::Notebook,
                name: nb.name.clone(),
                href: href.clone(),
                status: nb.status.clone(),
                instance_type: nb.instance_type.clone(),
                instances: 1,
                scaling: None,
                hourly_usd: price.hourly_usd,
                price_source: price.source,
                spot: false,
                running_since: nb.last_modified_at.clone(),
                so_far_usd: None,
                detail: running.map(|s| format!("running for {}", hours(s))).unwrap_or_default(),
                billing_now: true,
            });
            if nb.status == "InService" && running.is_some_and(|s| s >= idle_hours as i64 * 3600) {
                g.idle.push(IdleResource {
                    kind: ResourceKind::Notebook,
                    name: nb.name,
                    href,
                    evidence: format!(
                        "InService for {} since its last change. Sagedeck cannot see Jupyter activity (kernels, terminals); \
                         a notebook created with the idle auto-stop lifecycle stops itself",
                        hours(running.unwrap_or_default())
                    ),
                    hourly_usd: price.hourly_usd,
                    action: IdleAction::StopNotebook,
                });
            }
        }
        if stopped > 0 {
            g.gaps.push(format!("{stopped} stopped notebook(s): their earlier running hours this month are not known to Sagedeck"));
        }
    }

    async fn sagemaker_endpoints(&self, g: &mut Gathered, now: i64, month_start: i64, idle_hours: u32) -> Result<(), ApiError> {
        let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT name, status, created_at, instances, instance_type FROM sagemaker_endpoints
             WHERE status IN ('InService', 'Updating', 'SystemUpdating', 'RollingBack', 'UpdateRollbackFailed') ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        if rows.is_empty() {
            return Ok(());
        }
        // Two calls for every endpoint's auto-scaling range.
        let ranges = match self.scaling.states(&[]).await {
            Ok(states) => states,
            Err(e) => {
                g.notes.push(format!("Auto-scaling ranges not shown: {}", e.message()));
                Default::default()
            }
        };
        for (name, status, created, instances, instance_type) in rows {
            let price = self.prices.price(Usage::Hosting, &instance_type).await;
            let prefix = resource_id(&name, "");
            let scaling = ranges.iter().find(|(id, _)| id.starts_with(&prefix)).and_then(|(_, s)| s.registered);
            let since = unix(&created);
            if let (Some(start), Some(p)) = (since, price.hourly_usd) {
                g.billed.push((start.max(month_start), now, p * instances as f64, "endpoints"));
            }
            let href = format!("/endpoints/sagemaker/{name}");
            g.lines.push(CostLine {
                kind: ResourceKind::Endpoint,
                name: name.clone(),
                href: href.clone(),
                status: status.clone(),
                instance_type,
                instances: instances.max(0) as u32,
                scaling,
                hourly_usd: price.hourly_usd,
                price_source: price.source,
                spot: false,
                running_since: Some(created.clone()),
                so_far_usd: None,
                detail: since.map(|s| format!("up for {}", hours(now - s))).unwrap_or_default(),
                billing_now: true,
            });
            if status == "InService" && since.is_some_and(|s| now - s >= idle_hours as i64 * 3600) {
                match self.recent_invocations(&name, idle_hours, now).await {
                    Ok(0.0) => g.idle.push(IdleResource {
                        kind: ResourceKind::Endpoint,
                        name: name.clone(),
                        href,
                        evidence: format!("no invocations in the last {idle_hours} h (CloudWatch AWS/SageMaker Invocations, every variant)"),
                        hourly_usd: price.hourly_usd.map(|p| p * instances as f64),
                        action: IdleAction::DeleteSageMakerEndpoint,
                    }),
                    Ok(_) => {}
                    Err(e) => g.notes.push(format!("Idleness of {name} not known: {}", e.message())),
                }
            }
        }
        g.gaps.push("endpoints are counted at their current instance count since they were created (or since the 1st)".into());
        Ok(())
    }

    /// Invocations of an endpoint in the last `hours` hours: CloudWatch's
    /// for a SageMaker endpoint, its own counts for a local one.
    pub async fn calls_in(&self, backend: app::endpoints::Backend, name: &str, hours: u32) -> Result<f64, ApiError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match backend {
            app::endpoints::Backend::SageMaker => self.invocations(name, hours, now).await,
            app::endpoints::Backend::Local => self.local_calls(name, hours, now).await.map(|n| n as f64),
        }
    }

    async fn local_calls(&self, name: &str, hours: u32, now: i64) -> Result<i64, ApiError> {
        let _ = self.endpoints.metrics.flush().await;
        sqlx::query_scalar("SELECT COALESCE(SUM(invocations), 0) FROM endpoint_metrics WHERE endpoint = ?1 AND minute >= ?2")
            .bind(name)
            .bind((now - hours as i64 * 3600) / 60)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)
    }

    /// `invocations`, remembered for ten minutes (the Costs page; a
    /// schedule asks CloudWatch afresh).
    async fn recent_invocations(&self, endpoint: &str, hours: u32, now: i64) -> Result<f64, ApiError> {
        let key = (endpoint.to_string(), hours);
        if let Some((at, calls)) = self.seen_calls.lock().expect("seen calls").get(&key) {
            if at.elapsed() < SEEN_CALLS_FOR {
                return Ok(*calls);
            }
        }
        let calls = self.invocations(endpoint, hours, now).await?;
        self.seen_calls.lock().expect("seen calls").insert(key, (std::time::Instant::now(), calls));
        Ok(calls)
    }

    /// Invocations of every variant of a SageMaker endpoint in the last `hours` hours.
    async fn invocations(&self, endpoint: &str, hours: u32, now: i64) -> Result<f64, ApiError> {
        let detail = self.endpoints.sagemaker.describe(endpoint).await?;
        let client = &self.aws.clients()?.cloudwatch;
        // GetMetricStatistics answers at most 1,440 datapoints.
        let span = hours as i64 * 3600;
        let period = ((span / 1440).max(3600) + 59) / 60 * 60;
        let mut total = 0.0;
        for variant in &detail.variants {
            let answer = client
                .get_metric_statistics()
                .namespace("AWS/SageMaker")
                .metric_name("Invocations")
                .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("EndpointName").value(endpoint).build())
                .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("VariantName").value(&variant.name).build())
                .start_time(aws_smithy_types::DateTime::from_secs(now - span))
                .end_time(aws_smithy_types::DateTime::from_secs(now + 60))
                .period(period as i32)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
                .send()
                .await
                .map_err(|e| from_sdk("CloudWatch GetMetricStatistics", e))?;
            total += answer.datapoints().iter().filter_map(|d| d.sum()).sum::<f64>();
        }
        Ok(total)
    }

    async fn training_jobs(&self, g: &mut Gathered, now: i64, month_start: i64) -> Result<(), ApiError> {
        // A job ends at most 28 days after it is created (MaxRuntimeInSeconds):
        // one that billed this month was created after this.
        let created_after = time::OffsetDateTime::from_unix_timestamp(month_start - 28 * 86_400)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default();
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT summary, detail FROM sagemaker_training_jobs
             WHERE status IN ('InProgress', 'Stopping') OR created_at >= ?1",
        )
        .bind(created_after)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut unpriced = 0;
        for (summary, detail) in rows {
            let Ok(job) = serde_json::from_str::<SageMakerJobSummary>(&summary) else { continue };
            let spot = detail.as_deref().and_then(|d| serde_json::from_str::<SageMakerJobDetail>(d).ok()).is_some_and(|d| d.spot);
            let price = self.prices.price(Usage::Training, &job.instance_type).await;
            let count = job.instance_count.max(1) as u32;
            let running = matches!(job.status.as_str(), "InProgress" | "Stopping");
            if running {
                let start = job.created_at.as_deref().and_then(unix);
                let so_far = match (price.hourly_usd, start) {
                    (Some(p), Some(s)) => {
                        g.billed.push((s.max(month_start), now, p * count as f64, "training"));
                        Some(run_cost(p, count, (now - s) as f64))
                    }
                    _ => None,
                };
                g.lines.push(CostLine {
                    kind: ResourceKind::TrainingJob,
                    name: job.name.clone(),
                    href: format!("/training/sagemaker/{}", job.name),
                    status: job.secondary_status.clone().unwrap_or(job.status.clone()),
                    instance_type: job.instance_type.clone(),
                    instances: count,
                    scaling: None,
                    hourly_usd: price.hourly_usd,
                    price_source: price.source,
                    spot,
                    running_since: job.created_at.clone(),
                    so_far_usd: so_far,
                    detail: if spot {
                        "managed spot: billed for the time it holds instances, up to 90 % below this on-demand price; the saving is known when it ends".into()
                    } else {
                        start.map(|s| format!("running for {}", hours(now - s))).unwrap_or_default()
                    },
                    billing_now: true,
                });
                continue;
            }
            // Ended: its billable seconds (per instance), placed before its end.
            let (Some(end), Some(billable)) = (job.ended_at.as_deref().and_then(unix), job.billable_seconds.or(job.training_seconds)) else {
                continue;
            };
            if end < month_start {
                continue;
            }
            match price.hourly_usd {
                Some(p) => g.billed.push((end - billable, end, p * count as f64, if spot { "training (spot)" } else { "training" })),
                None => unpriced += 1,
            }
            if spot {
                if let Some(saved) = spot_saving(job.training_seconds, job.billable_seconds) {
                    if let Some(p) = price.hourly_usd {
                        let would = run_cost(p, count, job.training_seconds.unwrap_or_default() as f64);
                        g.gaps.push(format!("{}: spot saved {:.0} % ({} of {})", job.name, saved * 100.0, arithmetic::usd(would * saved), arithmetic::usd(would)));
                    }
                }
            }
        }
        if unpriced > 0 {
            g.gaps.push(format!("{unpriced} training job(s) this month have no price for their instance type"));
        }
        Ok(())
    }

    async fn local_training(&self, g: &mut Gathered, now: i64, month_start: i64) -> Result<(), ApiError> {
        let start_text = time::OffsetDateTime::from_unix_timestamp(month_start)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default();
        let rows: Vec<(i64, String, String, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, name, status, started_at, finished_at, device FROM local_jobs
             WHERE status = 'Running' OR (finished_at >= ?1 AND started_at IS NOT NULL)",
        )
        .bind(start_text)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        for (id, name, status, started, finished, device) in rows {
            let device = device.unwrap_or_default();
            let (instance_type, why) = arithmetic::equivalent_instance(threads_of(&device), device.starts_with("cuda"));
            let price = self.prices.price(Usage::Training, instance_type).await;
            let Some(start) = started.as_deref().and_then(unix) else { continue };
            let end = finished.as_deref().and_then(unix).unwrap_or(now);
            if let Some(p) = price.hourly_usd {
                g.local.push((start.max(month_start), end, p, "local training"));
            }
            if status == "Running" {
                g.lines.push(CostLine {
                    kind: ResourceKind::LocalTraining,
                    name: format!("#{id} {name}"),
                    href: format!("/training/local/{id}"),
                    status,
                    instance_type: instance_type.to_string(),
                    instances: 1,
                    scaling: None,
                    hourly_usd: price.hourly_usd,
                    price_source: price.source,
                    spot: false,
                    running_since: started.clone(),
                    so_far_usd: price.hourly_usd.map(|p| run_cost(p, 1, (now - start) as f64)),
                    detail: format!("runs here on {device}; on SageMaker: {instance_type} ({why})"),
                    billing_now: false,
                });
            }
        }
        Ok(())
    }

    async fn local_endpoints(&self, g: &mut Gathered, now: i64, month_start: i64, idle_hours: u32) -> Result<(), ApiError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, created_at, instances FROM local_endpoints WHERE status = 'InService' ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
        if rows.is_empty() {
            return Ok(());
        }
        for (name, created, configured) in rows {
            let instances = self.endpoints.runtime(&name).map(|r| r.instances() as u32).unwrap_or(configured.max(1) as u32);
            // One replica answers one request at a time on the CPU threads it
            // shares: priced as one small CPU hosting instance per replica.
            let instance_type = "ml.c5.large";
            let price = self.prices.price(Usage::Hosting, instance_type).await;
            let since = unix(&created);
            if let (Some(s), Some(p)) = (since, price.hourly_usd) {
                g.local.push((s.max(month_start), now, p * instances as f64, "local endpoints"));
            }
            let href = format!("/endpoints/local/{name}");
            g.lines.push(CostLine {
                kind: ResourceKind::LocalEndpoint,
                name: name.clone(),
                href: href.clone(),
                status: "InService".into(),
                instance_type: instance_type.into(),
                instances,
                scaling: None,
                hourly_usd: price.hourly_usd,
                price_source: price.source.clone(),
                spot: false,
                running_since: Some(created.clone()),
                so_far_usd: None,
                detail: "serves here; on SageMaker: one ml.c5.large (2 vCPUs, the smallest compute-optimised hosting type) per replica".into(),
                billing_now: false,
            });
            if since.is_some_and(|s| now - s >= idle_hours as i64 * 3600) {
                let calls = self.local_calls(&name, idle_hours, now).await?;
                if calls == 0 {
                    g.idle.push(IdleResource {
                        kind: ResourceKind::LocalEndpoint,
                        name,
                        href,
                        evidence: format!("no invocations in the last {idle_hours} h (its own request counts); it holds memory and {instances} replica(s) here"),
                        hourly_usd: None,
                        action: IdleAction::DeleteLocalEndpoint,
                    });
                }
            }
        }
        Ok(())
    }
}

/// "cpu (2 threads)" → 2; anything else → 1.
fn threads_of(device: &str) -> u32 {
    device
        .split_once('(')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The month's sums from the intervals: total, per part, per day.
fn month_to_date(billed: &[Interval], local: &[Interval], month_start: i64, now: i64, gaps: Vec<String>) -> MonthToDate {
    let spend: Vec<(i64, i64, f64)> = billed.iter().map(|&(s, e, h, _)| (s, e, h)).collect();
    let daily = arithmetic::spread_over_days(&spend, month_start, now);
    let mut parts: BTreeMap<&str, f64> = BTreeMap::new();
    for &(s, e, h, what) in billed {
        let overlap = (e.min(now) - s.max(month_start)).max(0);
        *parts.entry(what).or_default() += h * overlap as f64 / 3600.0;
    }
    let local_equivalent_usd = local.iter().map(|&(s, e, h, _)| h * (e.min(now) - s.max(month_start)).max(0) as f64 / 3600.0).sum();
    MonthToDate {
        usd: parts.values().sum(),
        parts: parts.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        daily,
        gaps,
        local_equivalent_usd,
    }
}

#[async_trait::async_trait]
impl CostService for CostHub {
    async fn view(&self, idle_hours: u32) -> Result<CostReport, ApiError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let month_start = arithmetic::month_start(now);
        let mut g = Gathered::default();
        let region = self.prices.region();
        match self.aws.unconfigured_reason() {
            None => {
                self.notebooks(&mut g, now, idle_hours).await;
                self.sagemaker_endpoints(&mut g, now, month_start, idle_hours).await?;
                self.training_jobs(&mut g, now, month_start).await?;
            }
            Some(reason) => g.notes.push(format!("Only local work is shown: AWS is not configured: {reason}")),
        }
        self.local_training(&mut g, now, month_start).await?;
        self.local_endpoints(&mut g, now, month_start, idle_hours).await?;
        let month = month_to_date(&g.billed, &g.local, month_start, now, g.gaps);
        Ok(CostReport {
            region,
            price_source: self.prices.describe(),
            lines: g.lines,
            idle_hours,
            idle: g.idle,
            month,
            notes: g.notes,
            computed_at: crate::store::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_read_from_the_device_the_trainer_recorded() {
        assert_eq!(threads_of("cpu (2 threads)"), 2);
        assert_eq!(threads_of("cpu (16 threads)"), 16);
        assert_eq!(threads_of("cuda:0"), 1);
        assert_eq!(threads_of(""), 1);
    }

    #[test]
    fn the_month_counts_only_its_own_part_of_each_interval() {
        let month_start = 1_796_083_200; // 2026-12-01
        let now = month_start + 2 * 86_400;
        // An endpoint up since November at $0.5/h, a training job of one hour at $2/h.
        let billed = [(month_start - 86_400, now, 0.5, "endpoints"), (month_start + 3600, month_start + 7200, 2.0, "training")];
        let local = [(month_start, month_start + 1800, 1.0, "local training")];
        let m = month_to_date(&billed, &local, month_start, now, vec![]);
        assert!((m.usd - (48.0 * 0.5 + 2.0)).abs() < 1e-9, "{m:?}");
        assert_eq!(m.parts, vec![("endpoints".to_string(), 24.0), ("training".to_string(), 2.0)]);
        assert_eq!(m.daily.len(), 2);
        assert!((m.daily[0].1 - 14.0).abs() < 1e-9 && (m.daily[1].1 - 12.0).abs() < 1e-9, "{:?}", m.daily);
        assert!((m.local_equivalent_usd - 0.5).abs() < 1e-9);
    }
}
