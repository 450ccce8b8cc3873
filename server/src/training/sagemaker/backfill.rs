//! The SageMaker job history's backfill: the account's older training jobs
//! read into the cache a page at a time in the background, at a pace under
//! ListTrainingJobs' rate, resumable across restarts (where it stands is a
//! row of `sagemaker_history`).

use super::SageMakerJobs;
use crate::aws::{created_key, from_sdk};
use app::training::sagemaker::SageMakerJobSummary;
use app::ApiError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{SortBy, SortOrder};
use aws_smithy_types::date_time::Format;
use sqlx::SqlitePool;
use std::sync::Arc;
use std::time::Duration;

/// The backfill reads one page of 100 jobs a second: with the poller's
/// calls it stays under ListTrainingJobs' request rate.
pub(crate) const BACKFILL_GAP: Duration = Duration::from_secs(1);
pub(crate) const BACKFILL_PAGE: i32 = 100;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("job history")(e)
}

/// The history row of the sync, as stored.
#[derive(Debug, Default)]
pub struct SyncState {
    pub newest_created: Option<String>,
    pub oldest_created: Option<String>,
    pub backfill_done: bool,
}

pub async fn sync_state(pool: &SqlitePool) -> Result<SyncState, ApiError> {
    let row: Option<(Option<String>, Option<String>, bool)> =
        sqlx::query_as("SELECT newest_created, oldest_created, backfill_done FROM sagemaker_history WHERE kind = 'training'")
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    Ok(row.map(|(newest_created, oldest_created, backfill_done)| SyncState { newest_created, oldest_created, backfill_done }).unwrap_or_default())
}

/// Records what a listing read: the watermark only moves forward, the
/// backfill's edge only backward.
pub async fn record_sync(pool: &SqlitePool, newest: Option<&str>, oldest: Option<&str>, done: bool, pages: i64) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO sagemaker_history (kind, newest_created, oldest_created, backfill_done, pages_read, updated_at)
         VALUES ('training', ?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         ON CONFLICT (kind) DO UPDATE SET
            newest_created = CASE WHEN newest_created IS NULL OR ?1 > newest_created THEN COALESCE(?1, newest_created) ELSE newest_created END,
            oldest_created = CASE WHEN oldest_created IS NULL OR ?2 < oldest_created THEN COALESCE(?2, oldest_created) ELSE oldest_created END,
            backfill_done = MAX(backfill_done, ?3),
            pages_read = pages_read + ?4,
            updated_at = excluded.updated_at",
    )
    .bind(newest)
    .bind(oldest)
    .bind(done as i64)
    .bind(pages)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

/// One millisecond after a stored creation time, as the SDK takes it.
fn just_after(created: &str) -> Option<DateTime> {
    let t = DateTime::from_str(created, Format::DateTime).ok()?;
    Some(DateTime::from_millis(t.to_millis().ok()? + 1))
}

/// Reads the account's older training jobs into the cache, a page at a time
/// backwards from the oldest one read, until ListTrainingJobs has no more.
/// The poller describes the jobs it lists; the backfill keeps what the list
/// says (name, status, times) and a job's page describes it when opened.
pub async fn backfill(jobs: Arc<SageMakerJobs>) {
    let mut failures = 0u32;
    // Each page starts 1 ms after the oldest job read, so jobs created in
    // the same millisecond as a page's last are not skipped; a page that
    // adds nothing then reads strictly before it.
    let mut inclusive = true;
    loop {
        let wait = match backfill_page(&jobs, inclusive).await {
            Ok(Some(added)) => {
                failures = 0;
                inclusive = added > 0;
                BACKFILL_GAP
            }
            Ok(None) => return,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e.message(), "SageMaker history backfill; trying again later");
                (BACKFILL_GAP * 2u32.saturating_pow(failures.min(9))).min(MAX_BACKOFF)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One page of the backfill. `None` when the history is complete; else the
/// number of jobs it added. Waits (answers `Some(0)`) until the poller's
/// first listing has set where the backfill starts.
async fn backfill_page(jobs: &SageMakerJobs, inclusive: bool) -> Result<Option<u64>, ApiError> {
    let pool = jobs.pool();
    let state = sync_state(pool).await?;
    if state.backfill_done {
        return Ok(None);
    }
    let Some(oldest) = state.oldest_created else { return Ok(Some(0)) };
    let before = if inclusive { just_after(&oldest) } else { DateTime::from_str(&oldest, Format::DateTime).ok() };
    let Some(before) = before else {
        return Err(ApiError::Internal(format!("the stored history edge {oldest:?} is not a time")));
    };
    let page = jobs
        .aws()
        .clients()?
        .sagemaker
        .list_training_jobs()
        .creation_time_before(before)
        .sort_by(SortBy::CreationTime)
        .sort_order(SortOrder::Descending)
        .max_results(BACKFILL_PAGE)
        .send()
        .await
        .map_err(|e| from_sdk("SageMaker ListTrainingJobs", e))?;
    let mut added = 0;
    let mut page_oldest: Option<String> = None;
    for job in page.training_job_summaries() {
        let (Some(name), Some(status), Some(created)) = (job.training_job_name(), job.training_job_status(), job.creation_time()) else { continue };
        let created = created_key(created);
        let summary = SageMakerJobSummary {
            name: name.to_string(),
            status: status.as_str().to_string(),
            created_at: Some(created.clone()),
            ended_at: job.training_end_time().and_then(|t| t.fmt(Format::DateTime).ok()),
            ..Default::default()
        };
        let done = sqlx::query(
            "INSERT INTO sagemaker_training_jobs (name, status, created_at, summary, detail, refreshed_at)
             VALUES (?, ?, ?, ?, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(status.as_str())
        .bind(&created)
        .bind(serde_json::to_string(&summary).unwrap_or_default())
        .execute(pool)
        .await
        .map_err(db)?;
        added += done.rows_affected();
        if page_oldest.as_ref().is_none_or(|o| created < *o) {
            page_oldest = Some(created);
        }
    }
    let complete = page.training_job_summaries().is_empty() || page.next_token().is_none_or(str::is_empty);
    record_sync(pool, None, page_oldest.as_deref(), complete, 1).await?;
    tracing::debug!(added, complete, "SageMaker history backfill page");
    Ok(if complete { None } else { Some(added) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backfill_starts_a_millisecond_after_the_oldest_job_read() {
        let t = just_after("2026-03-02T10:00:00.123Z").unwrap();
        assert_eq!(t.to_millis().unwrap(), DateTime::from_str("2026-03-02T10:00:00.124Z", Format::DateTime).unwrap().to_millis().unwrap());
        assert!(just_after("yesterday").is_none());
    }

    #[tokio::test]
    async fn the_watermark_moves_forward_and_the_edge_backward_only() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(&format!("sqlite://{}", dir.path().join("h.db").display())).await.unwrap();
        record_sync(&pool, Some("2026-02-01T00:00:00.000Z"), Some("2026-01-01T00:00:00.000Z"), false, 1).await.unwrap();
        record_sync(&pool, Some("2026-01-15T00:00:00.000Z"), Some("2026-01-20T00:00:00.000Z"), false, 1).await.unwrap();
        let s = sync_state(&pool).await.unwrap();
        assert_eq!(s.newest_created.as_deref(), Some("2026-02-01T00:00:00.000Z"));
        assert_eq!(s.oldest_created.as_deref(), Some("2026-01-01T00:00:00.000Z"));
        record_sync(&pool, None, Some("2025-12-01T00:00:00.000Z"), true, 1).await.unwrap();
        record_sync(&pool, None, None, false, 1).await.unwrap();
        let s = sync_state(&pool).await.unwrap();
        assert_eq!(s.oldest_created.as_deref(), Some("2025-12-01T00:00:00.000Z"));
        assert!(s.backfill_done, "a finished backfill stays finished");
    }
}
