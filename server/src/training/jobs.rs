//! Local training jobs in SQLite: the job rows, their epochs, steps and log
//! lines, and the recorder that turns the trainer's events into rows.

use crate::training::trainer::Event;
use app::training::{
    DatasetReport, EpochMetrics, JobProgress, JobStatus, LocalJobSpec, LocalJobSummary, LogLine, StepLoss,
};
use app::ApiError;
use sqlx::SqlitePool;
use tokio::sync::mpsc::UnboundedReceiver;

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("job store")(e)
}

#[derive(Clone)]
pub struct JobStore {
    pool: SqlitePool,
}

/// A job row as the worker needs it.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub id: i64,
    pub spec: LocalJobSpec,
    pub status: JobStatus,
    pub work_dir: String,
    pub attempts: i64,
    pub source: String,
    pub summary: LocalJobSummary,
    pub device: Option<String>,
    pub dataset_report: Option<DatasetReport>,
}

pub(crate) const COLUMNS: &str = "id, name, spec, status, created_at, started_at, finished_at, work_dir, epoch, step, \
     steps_per_epoch, phase, images_per_s, eta_seconds, test_accuracy, message, attempts, source, device, dataset_report";

crate::store::sqlite_row! {
    /// A `local_jobs` row as sqlx decodes it (see [`COLUMNS`]): a column of
    /// another type than these is an error the page is told, not a panic.
    pub(crate) struct StoredJob {
        id: i64,
        name: String,
        spec: String,
        status: String,
        created_at: String,
        started_at: Option<String>,
        finished_at: Option<String>,
        work_dir: String,
        epoch: i64,
        step: i64,
        steps_per_epoch: i64,
        phase: String,
        images_per_s: Option<f64>,
        eta_seconds: Option<f64>,
        test_accuracy: Option<f64>,
        message: Option<String>,
        attempts: i64,
        source: String,
        device: Option<String>,
        dataset_report: Option<String>,
    }
}

impl StoredJob {
    /// The row as the worker and the pages see it: the spec and the status parsed.
    pub(crate) fn into_job(self) -> Result<JobRow, ApiError> {
        let spec: LocalJobSpec = serde_json::from_str(&self.spec)
            .map_err(|e| ApiError::Internal(format!("a stored job spec is unreadable: {e}")))?;
        let status = JobStatus::parse(&self.status).ok_or_else(|| ApiError::Internal(format!("unknown job status {}", self.status)))?;
        let summary = LocalJobSummary {
            id: self.id,
            name: self.name,
            status,
            architecture: spec.architecture,
            dataset: spec.dataset.clone(),
            epochs: spec.epochs,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            progress: JobProgress {
                epoch: self.epoch as u32,
                epochs: spec.epochs,
                step: self.step as u32,
                steps_per_epoch: self.steps_per_epoch as u32,
                phase: self.phase,
                images_per_s: self.images_per_s,
                eta_seconds: self.eta_seconds,
            },
            test_accuracy: self.test_accuracy,
            message: self.message,
        };
        Ok(JobRow {
            id: self.id,
            status,
            work_dir: self.work_dir,
            attempts: self.attempts,
            source: self.source,
            device: self.device,
            dataset_report: self.dataset_report.and_then(|r| serde_json::from_str(&r).ok()),
            spec,
            summary,
        })
    }
}

impl JobStore {
    pub fn new(pool: SqlitePool) -> Self {
        JobStore { pool }
    }

    /// Adds a job; its work folder is `jobs_dir/local-<id>` unless given.
    pub async fn insert(&self, spec: &LocalJobSpec, status: JobStatus, source: &str, jobs_dir: &std::path::Path, work_dir: Option<&str>) -> Result<i64, ApiError> {
        let spec_json = serde_json::to_string(spec).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut tx = crate::store::write_tx(&self.pool).await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO local_jobs (name, spec, status, created_at, work_dir, source) VALUES (?, ?, ?, {NOW}, '', ?) RETURNING id"
        ))
        .bind(&spec.name)
        .bind(&spec_json)
        .bind(status.as_str())
        .bind(source)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let dir = work_dir.map(str::to_string).unwrap_or_else(|| jobs_dir.join(format!("local-{id}")).display().to_string());
        sqlx::query("UPDATE local_jobs SET work_dir = ? WHERE id = ?").bind(&dir).bind(id).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    pub async fn get(&self, id: i64) -> Result<JobRow, ApiError> {
        let row: StoredJob = sqlx::query_as(&format!("SELECT {COLUMNS} FROM local_jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| ApiError::NotFound(format!("There is no local training job {id}.")))?;
        row.into_job()
    }

    pub async fn list(&self, limit: i64) -> Result<Vec<JobRow>, ApiError> {
        let rows: Vec<StoredJob> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM local_jobs ORDER BY id DESC LIMIT ?"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(StoredJob::into_job).collect()
    }

    /// The oldest queued job started from the console.
    pub async fn next_queued(&self) -> Result<Option<JobRow>, ApiError> {
        let row: Option<StoredJob> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM local_jobs WHERE status = 'Queued' AND source = 'console' ORDER BY id LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(StoredJob::into_job).transpose()
    }

    /// Console jobs the previous server process left Running.
    pub async fn left_running(&self) -> Result<Vec<JobRow>, ApiError> {
        let rows: Vec<StoredJob> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM local_jobs WHERE status = 'Running' AND source = 'console' ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(StoredJob::into_job).collect()
    }

    pub async fn mark_running(&self, id: i64) -> Result<(), ApiError> {
        sqlx::query(&format!(
            "UPDATE local_jobs SET status = 'Running', started_at = COALESCE(started_at, {NOW}), attempts = attempts + 1, message = NULL WHERE id = ?"
        ))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Puts a job back in the queue (after a restart), keeping what it recorded.
    pub async fn requeue(&self, id: i64, why: &str) -> Result<(), ApiError> {
        sqlx::query("UPDATE local_jobs SET status = 'Queued', phase = '', images_per_s = NULL, eta_seconds = NULL WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.log(id, why).await
    }

    pub async fn set_dataset(&self, id: i64, report: &DatasetReport, device: &str) -> Result<(), ApiError> {
        let json = serde_json::to_string(report).map_err(|e| ApiError::Internal(e.to_string()))?;
        sqlx::query("UPDATE local_jobs SET dataset_report = ?, device = ? WHERE id = ?")
            .bind(json)
            .bind(device)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Forgets epochs and steps after the checkpoint a resumed job restarts from.
    pub async fn rewind(&self, id: i64, epochs_done: u32, global_step: u64) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM local_job_epochs WHERE job_id = ? AND epoch > ?").bind(id).bind(epochs_done).execute(&self.pool).await.map_err(db)?;
        sqlx::query("DELETE FROM local_job_steps WHERE job_id = ? AND step > ?").bind(id).bind(global_step as i64).execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    pub async fn finish(&self, id: i64, status: JobStatus, message: Option<&str>, test: Option<(f64, f64)>) -> Result<(), ApiError> {
        sqlx::query(&format!(
            "UPDATE local_jobs SET status = ?, message = ?, finished_at = {NOW}, phase = '', eta_seconds = NULL,
             test_loss = COALESCE(?, test_loss), test_accuracy = COALESCE(?, test_accuracy) WHERE id = ?"
        ))
        .bind(status.as_str())
        .bind(message)
        .bind(test.map(|t| t.0))
        .bind(test.map(|t| t.1))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Cancels a queued job at once; returns false if it was not queued.
    pub async fn cancel_queued(&self, id: i64) -> Result<bool, ApiError> {
        let done = sqlx::query(&format!(
            "UPDATE local_jobs SET status = 'Cancelled', finished_at = {NOW}, message = 'cancelled before it started' WHERE id = ? AND status = 'Queued'"
        ))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn request_cancel(&self, id: i64) -> Result<(), ApiError> {
        sqlx::query("UPDATE local_jobs SET cancel_requested = 1 WHERE id = ?").bind(id).execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    pub async fn log(&self, id: i64, line: &str) -> Result<(), ApiError> {
        sqlx::query(&format!("INSERT INTO local_job_logs (job_id, at, line) VALUES (?, {NOW}, ?)"))
            .bind(id)
            .bind(line)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub async fn epochs(&self, id: i64) -> Result<Vec<EpochMetrics>, ApiError> {
        let rows: Vec<(i64, f64, f64, f64, f64, f64, f64)> = sqlx::query_as(
            "SELECT epoch, train_loss, train_accuracy, valid_loss, valid_accuracy, seconds, images_per_s
             FROM local_job_epochs WHERE job_id = ? ORDER BY epoch",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(epoch, train_loss, train_accuracy, valid_loss, valid_accuracy, seconds, images_per_s)| EpochMetrics {
                epoch: epoch as u32,
                train_loss,
                train_accuracy,
                valid_loss,
                valid_accuracy,
                seconds,
                images_per_s,
            })
            .collect())
    }

    /// The per-step losses, thinned to about `max_points` for the chart
    /// (every k-th step, always keeping the newest).
    pub async fn steps(&self, id: i64, max_points: i64) -> Result<Vec<StepLoss>, ApiError> {
        // One statement: the count that sets the thinning and the rows it keeps.
        let rows: Vec<(i64, f64)> = sqlx::query_as(
            "WITH n AS (SELECT COUNT(*) AS count, MAX(step) AS last FROM local_job_steps WHERE job_id = ?1)
             SELECT step, loss FROM local_job_steps, n WHERE job_id = ?1
             AND (step % MAX(1, (n.count + ?2 - 1) / ?2) = 0 OR step = n.last) ORDER BY step",
        )
        .bind(id)
        .bind(max_points.max(1))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|(step, loss)| StepLoss { step: step as u64, loss }).collect())
    }

    pub async fn logs(&self, id: i64, limit: i64) -> Result<Vec<LogLine>, ApiError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT at, line FROM (SELECT id, at, line FROM local_job_logs WHERE job_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id")
            .bind(id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(|(at, line)| LogLine { at, line }).collect())
    }

    /// Writes the trainer's events as they come, several per transaction
    /// when they arrive faster than one commit.
    pub async fn record(&self, id: i64, mut events: UnboundedReceiver<Event>) {
        let mut pending = Vec::new();
        while events.recv_many(&mut pending, 512).await > 0 {
            if let Err(e) = self.write_events(id, &pending).await {
                tracing::error!(job = id, error = %e, "could not record training progress");
            }
            pending.clear();
        }
    }

    async fn write_events(&self, id: i64, events: &[Event]) -> sqlx::Result<()> {
        let mut tx = crate::store::write_tx(&self.pool).await?;
        // Only the newest progress of the batch matters for the row.
        let mut progress = None;
        for event in events {
            match event {
                Event::Log(line) => {
                    sqlx::query(&format!("INSERT INTO local_job_logs (job_id, at, line) VALUES (?, {NOW}, ?)"))
                        .bind(id)
                        .bind(line)
                        .execute(&mut *tx)
                        .await?;
                }
                Event::Phase { epoch, phase, steps } => {
                    sqlx::query("UPDATE local_jobs SET epoch = ?, phase = ?, step = 0, steps_per_epoch = CASE WHEN ? = 'train' THEN ? ELSE steps_per_epoch END WHERE id = ?")
                        .bind(epoch)
                        .bind(*phase)
                        .bind(*phase)
                        .bind(steps)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                Event::Step { epoch, step, global_step, loss, images_per_s, eta_seconds, .. } => {
                    sqlx::query("INSERT OR REPLACE INTO local_job_steps (job_id, step, epoch, loss) VALUES (?, ?, ?, ?)")
                        .bind(id)
                        .bind(*global_step as i64)
                        .bind(epoch)
                        .bind(loss)
                        .execute(&mut *tx)
                        .await?;
                    progress = Some((*step, *images_per_s, *eta_seconds));
                }
                Event::Epoch(m) => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO local_job_epochs (job_id, epoch, train_loss, train_accuracy, valid_loss, valid_accuracy, seconds, images_per_s)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(m.epoch)
                    .bind(m.train_loss)
                    .bind(m.train_accuracy)
                    .bind(m.valid_loss)
                    .bind(m.valid_accuracy)
                    .bind(m.seconds)
                    .bind(m.images_per_s)
                    .execute(&mut *tx)
                    .await?;
                }
                Event::Checkpoint { .. } => {}
            }
        }
        if let Some((step, images_per_s, eta)) = progress {
            sqlx::query("UPDATE local_jobs SET step = ?, images_per_s = ?, eta_seconds = ? WHERE id = ?")
                .bind(step)
                .bind(images_per_s)
                .bind(eta)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
