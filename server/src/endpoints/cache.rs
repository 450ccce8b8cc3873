//! The account's SageMaker endpoints, cached in SQLite by one poller, so the
//! endpoint list (any number of tabs, any filter, any page) is answered from
//! the database with the local endpoints and adds no AWS call.
//!
//! Each round lists every endpoint (ListEndpoints, 100 a page) and describes
//! only those that are new, whose LastModifiedTime or status changed, or
//! that are still changing (Creating, Updating…): an account of 1,000 quiet
//! endpoints costs 10 list calls a round and no describe. Endpoints the
//! listing no longer shows are dropped once a listing has read to its end.
//! A DescribeEndpoint made anywhere else (an endpoint's page, a deploy)
//! writes what it read here too.

use super::describe::{describe_endpoint, Described};
use crate::aws::{from_sdk, Aws};
use crate::poller::{Pace, Poller};
use app::endpoints::list::{is_changing, statuses_of, EndpointCursor, EndpointPage, EndpointQuery, PAGE_SIZE};
use app::list_view::MixedPage;
use app::endpoints::{Backend, EndpointSummary};
use app::list_view::Direction;
use app::training::sagemaker::CacheState;
use app::ApiError;
use aws_sdk_sagemaker::types::{EndpointSortKey, OrderKey};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The list is read again after 10 s while an endpoint is changing, after
/// a minute otherwise.
const PACE: Pace = Pace { busy: Duration::from_secs(10), idle: Duration::from_secs(60), max_backoff: Duration::from_secs(300) };
/// Between list pages, to stay well under ListEndpoints' rate.
const LIST_PAGE_GAP: Duration = Duration::from_millis(200);
/// At most this many DescribeEndpoint calls a round; the rest keep what the
/// listing says (status, times) and are described in the next rounds.
const MAX_DESCRIBES: usize = 50;
/// How long a list request waits for the very first listing before it
/// answers with what the cache has.
const FIRST_LISTING_WAIT: Duration = Duration::from_secs(15);

pub struct EndpointCache {
    pool: SqlitePool,
    aws: Arc<Aws>,
    /// Its rounds are listing rounds: a row listed in an older round than
    /// the last completed one is gone from the account.
    poller: Poller,
    /// Set once the first listing has finished, well or not.
    listed: tokio::sync::watch::Sender<bool>,
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("endpoint cache")(e)
}

/// Whether a listed endpoint must be described this round.
pub fn needs_describe(cached: Option<&(String, Option<String>, bool)>, status: &str, last_modified: Option<&str>) -> bool {
    match cached {
        None => true,
        Some((cached_status, cached_modified, described)) => {
            !described || cached_status != status || cached_modified.as_deref() != last_modified || is_changing(status)
        }
    }
}

impl EndpointCache {
    /// Opens the cache and, with AWS configured, starts its poller.
    pub fn start(pool: SqlitePool, aws: Arc<Aws>) -> Arc<Self> {
        let cache = Arc::new(EndpointCache {
            pool,
            aws,
            poller: Poller::new(PACE),
            listed: tokio::sync::watch::Sender::new(false),
        });
        if cache.aws.clients().is_ok() {
            let poller = cache.clone();
            use tracing::Instrument;
            tokio::spawn(async move { poller.poll().await }.instrument(tracing::info_span!("sagemaker_endpoints_poller")));
        }
        cache
    }

    async fn poll(self: Arc<Self>) {
        loop {
            let wait = self.refresh_now().await;
            self.poller.sleep(wait).await;
        }
    }

    /// Asks the poller to look again now (after a deploy or a delete).
    pub fn wake(&self) {
        self.poller.wake();
    }

    /// One round, unless one is running: then waits for it. Returns the
    /// wait before the next.
    pub async fn refresh_now(&self) -> Duration {
        let wait = self.poller.round(|round| self.refresh_once(round)).await;
        self.listed.send_replace(true);
        wait
    }

    /// Lists every endpoint, describes those that need it, drops those
    /// gone. Says whether any endpoint is changing.
    async fn refresh_once(&self, round: i64) -> Result<bool, ApiError> {
        let client = &self.aws.clients()?.sagemaker;
        let mut pages = client
            .list_endpoints()
            .sort_by(EndpointSortKey::CreationTime)
            .sort_order(OrderKey::Descending)
            .max_results(100)
            .into_paginator()
            .send();
        let mut to_describe = Vec::new();
        let mut any_changing = false;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("SageMaker ListEndpoints", e))?;
            let names: Vec<&str> = page.endpoints().iter().filter_map(|e| e.endpoint_name()).collect();
            let cached = self.cached(&names).await?;
            let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
            for e in page.endpoints() {
                let (Some(name), Some(status)) = (e.endpoint_name(), e.endpoint_status()) else { continue };
                let status = status.as_str();
                let created = e.creation_time().map(crate::aws::created_key).unwrap_or_default();
                let modified = e.last_modified_time().map(crate::aws::created_key);
                any_changing |= is_changing(status);
                if needs_describe(cached.get(name), status, modified.as_deref()) {
                    to_describe.push(name.to_string());
                }
                // What the listing says; the figures stay until a describe.
                sqlx::query(
                    "INSERT INTO sagemaker_endpoints (name, status, created_at, listed_round) VALUES (?, ?, ?, ?)
                     ON CONFLICT (name) DO UPDATE SET status = excluded.status, created_at = excluded.created_at, listed_round = excluded.listed_round",
                )
                .bind(name)
                .bind(status)
                .bind(&created)
                .bind(round)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            if page.next_token().is_some_and(|t| !t.is_empty()) {
                tokio::time::sleep(LIST_PAGE_GAP).await;
            }
        }
        // The listing read to its end: what it did not show is gone.
        sqlx::query("DELETE FROM sagemaker_endpoints WHERE listed_round < ?").bind(round).execute(&self.pool).await.map_err(db)?;
        for name in to_describe.into_iter().take(MAX_DESCRIBES) {
            match describe_endpoint(client, &name).await {
                Ok(d) => self.store(&d).await?,
                // Deleted between the listing and now.
                Err(ApiError::NotFound(_)) => self.forget(&name).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(any_changing)
    }

    /// Cached status, last modification and whether it was described, by name.
    async fn cached(&self, names: &[&str]) -> Result<HashMap<String, (String, Option<String>, bool)>, ApiError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new("SELECT name, status, last_modified, described FROM sagemaker_endpoints WHERE name IN (");
        let mut names_list = q.separated(", ");
        for n in names {
            names_list.push_bind(*n);
        }
        q.push(")");
        let rows: Vec<(String, String, Option<String>, bool)> = q.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.into_iter().map(|(name, status, last_modified, described)| (name, (status, last_modified, described))).collect())
    }

    /// Writes what a DescribeEndpoint read.
    pub async fn store(&self, d: &Described) -> Result<(), ApiError> {
        let s = &d.detail.summary;
        // The round in progress (or the next): a listing that has already
        // passed this endpoint's place does not drop it.
        let round = self.poller.next_round();
        sqlx::query(
            "INSERT INTO sagemaker_endpoints (name, status, created_at, last_modified, instances, instance_type, model, described, listed_round)
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)
             ON CONFLICT (name) DO UPDATE SET status = excluded.status, created_at = excluded.created_at, last_modified = excluded.last_modified,
               instances = excluded.instances, instance_type = excluded.instance_type, model = excluded.model, described = 1,
               listed_round = max(listed_round, excluded.listed_round)",
        )
        .bind(&s.name)
        .bind(&s.status)
        .bind(&d.created_key)
        .bind(&d.last_modified)
        .bind(i64::from(s.instances))
        .bind(&s.instance_type)
        .bind(&s.model)
        .bind(round)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// An endpoint SageMaker no longer has.
    pub async fn forget(&self, name: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM sagemaker_endpoints WHERE name = ?").bind(name).execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    /// Marks an endpoint Deleting (DeleteEndpoint answered) and looks again soon.
    pub async fn deleting(&self, name: &str) -> Result<(), ApiError> {
        sqlx::query("UPDATE sagemaker_endpoints SET status = 'Deleting' WHERE name = ?").bind(name).execute(&self.pool).await.map_err(db)?;
        self.wake();
        Ok(())
    }

    pub fn state(&self) -> CacheState {
        self.poller.cache_state()
    }

    /// Until the first listing has finished (a new console, a first look),
    /// waits for it, a bounded time: an empty list must not claim the
    /// account has no endpoints while it is being read.
    pub async fn first_listing(&self) {
        let mut listed = self.listed.subscribe();
        let _ = tokio::time::timeout(FIRST_LISTING_WAIT, listed.wait_for(|done| *done)).await;
    }
}

/// The rows of `query`'s page, local and SageMaker in one keyset order
/// (creation time, where it runs, name; newest first), up to `size + 1`,
/// in reading order (newest first, or oldest first for a "newer" page).
/// Local rows carry their stored facts; the caller fills in their live ones.
pub async fn page_rows(pool: &SqlitePool, query: &EndpointQuery, with_sagemaker: bool, size: usize) -> Result<Vec<EndpointSummary>, ApiError> {
    // validate() refuses a query with both cursors.
    let newer_side = query.direction() == Direction::Newer;
    let cursor = query.cursor().map(EndpointCursor::parse).transpose()?;
    let mut q = QueryBuilder::<Sqlite>::new("SELECT backend, name, status, created_at, instances, instance_type, model FROM (");
    union(&mut q, query, with_sagemaker);
    q.push(") WHERE 1 = 1");
    if let Some(c) = &cursor {
        q.push(if newer_side { " AND (created_at, backend, name) > (" } else { " AND (created_at, backend, name) < (" });
        q.push_bind(c.created_at.clone()).push(", ").push_bind(c.backend.slug()).push(", ").push_bind(c.name.clone()).push(")");
    }
    q.push(if newer_side { " ORDER BY created_at, backend, name" } else { " ORDER BY created_at DESC, backend DESC, name DESC" });
    q.push(" LIMIT ").push_bind((size + 1) as i64);
    let rows: Vec<(String, String, String, String, i64, String, String)> = q.build_query_as().fetch_all(pool).await.map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(backend, name, status, created_at, instances, instance_type, model)| EndpointSummary {
            name,
            backend: if backend == "local" { Backend::Local } else { Backend::SageMaker },
            status,
            instances: instances.max(0) as u32,
            instance_type,
            model,
            created_at: Some(created_at),
        })
        .collect())
}

/// How many endpoints match `query`'s filters, local and SageMaker.
pub async fn totals(pool: &SqlitePool, query: &EndpointQuery, with_sagemaker: bool) -> Result<(u64, u64), ApiError> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT backend, count(*) AS n FROM (");
    union(&mut q, query, with_sagemaker);
    q.push(") GROUP BY backend");
    let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(pool).await.map_err(db)?;
    let count = |b: &str| rows.iter().find(|(backend, _)| backend == b).map(|(_, n)| *n as u64).unwrap_or(0);
    Ok((count("local"), count("sagemaker")))
}

/// Both tables as one, each filtered by `query` (status group, name).
fn union(q: &mut QueryBuilder<'_, Sqlite>, query: &EndpointQuery, with_sagemaker: bool) {
    let mut parts = 0;
    if query.wants(Backend::Local) {
        q.push("SELECT 'local' AS backend, name, status, created_at, instances, '' AS instance_type, '' AS model FROM local_endpoints WHERE 1 = 1");
        filters(q, query);
        parts += 1;
    }
    if with_sagemaker && query.wants(Backend::SageMaker) {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT 'sagemaker' AS backend, name, status, created_at, instances, instance_type, model FROM sagemaker_endpoints WHERE 1 = 1");
        filters(q, query);
        parts += 1;
    }
    if parts == 0 {
        q.push("SELECT '' AS backend, '' AS name, '' AS status, '' AS created_at, 0 AS instances, '' AS instance_type, '' AS model WHERE 0");
    }
}

fn filters(q: &mut QueryBuilder<'_, Sqlite>, query: &EndpointQuery) {
    if !query.status.is_empty() {
        q.push(" AND status IN (");
        let mut list = q.separated(", ");
        for s in statuses_of(&query.status) {
            list.push_bind(*s);
        }
        q.push(")");
    }
    if !query.name.is_empty() {
        // Any (ASCII) case; the name's own % and _ are matched as themselves.
        q.push(" AND name LIKE ").push_bind(crate::store::contains_pattern(&query.name)).push(" ESCAPE '\\'");
    }
}

/// A page for the list, from the rows `page_rows` read.
pub fn page(rows: Vec<EndpointSummary>, query: &EndpointQuery, totals: (u64, u64), cache: Option<CacheState>, note: Option<String>) -> EndpointPage {
    let (endpoints, older, newer) = app::endpoints::list::page_of(rows, PAGE_SIZE, query.direction(), query.from_cursor());
    EndpointPage { endpoints, list: MixedPage { local_total: totals.0, sagemaker_total: totals.1, older, newer, cache, sagemaker_note: note } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_changed_or_changing_endpoints_are_described() {
        let settled = ("InService".to_string(), Some("2026-12-01T00:00:00.000Z".to_string()), true);
        assert!(needs_describe(None, "InService", None), "new");
        assert!(!needs_describe(Some(&settled), "InService", Some("2026-12-01T00:00:00.000Z")), "unchanged");
        assert!(needs_describe(Some(&settled), "Updating", Some("2026-12-01T00:00:00.000Z")), "status changed");
        assert!(needs_describe(Some(&settled), "InService", Some("2026-12-02T00:00:00.000Z")), "modified");
        let listed_only = ("InService".to_string(), Some("2026-12-01T00:00:00.000Z".to_string()), false);
        assert!(needs_describe(Some(&listed_only), "InService", Some("2026-12-01T00:00:00.000Z")), "never described");
        let creating = ("Creating".to_string(), None, true);
        assert!(needs_describe(Some(&creating), "Creating", None), "still changing");
    }

    #[test]
    fn rounds_are_quick_while_an_endpoint_changes_and_back_off_on_errors() {
        assert_eq!(PACE.next_wait(true, 0), Duration::from_secs(10));
        assert_eq!(PACE.next_wait(false, 0), Duration::from_secs(60));
        assert_eq!(PACE.next_wait(false, 1), Duration::from_secs(120));
        assert_eq!(PACE.next_wait(false, 30), Duration::from_secs(300));
    }
}
