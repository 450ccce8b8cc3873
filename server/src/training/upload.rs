//! Datasets to S3 (see `app::training::upload`): a checked dataset's usable
//! images copied under an S3 prefix in the seeds' layout, eight files and up
//! to four parts of a large file at once. A file S3 already holds with the
//! same size and checksum is skipped, so a second upload of the same set
//! sends nothing. Progress is kept in memory for the page and written to
//! SQLite every second; an upload the server was stopped in resumes at the
//! next start (multipart uploads continue from the parts S3 has).

use crate::aws::Aws;
use crate::journal::{Change, Journal};
use crate::paths::ReadableRoots;
use crate::s3::{self, S3Uri, UploadError};
use crate::store::now;
use crate::training::dataset;
use app::auth::{Principal, Role};
use app::training::upload::{DatasetUpload, UploadService, UploadSpec, UploadStatus};
use app::ApiError;
use futures_util::StreamExt;
use sqlx::SqlitePool;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Files sent at once (small files are one request each).
const FILES_IN_FLIGHT: usize = 8;
/// How far back the pace is measured.
const PACE_WINDOW: Duration = Duration::from_secs(5);

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("dataset upload store")(e)
}

/// An upload in progress: what the page reads between the writes to SQLite.
#[derive(Default)]
struct Running {
    cancel: AtomicBool,
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    files_uploaded: AtomicU64,
    files_skipped: AtomicU64,
    bytes_uploaded: AtomicU64,
    bytes_skipped: AtomicU64,
    current: Mutex<Option<String>>,
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Running {
    /// Notes the bytes sent so far (every second while it runs), keeping
    /// PACE_WINDOW of history.
    fn sample(&self) {
        let now = Instant::now();
        let mut samples = self.samples.lock().expect("pace");
        samples.push_back((now, self.bytes_uploaded.load(Ordering::Relaxed)));
        while samples.len() > 2 && samples.front().is_some_and(|(t, _)| now.duration_since(*t) > PACE_WINDOW) {
            samples.pop_front();
        }
    }

    /// Bytes per second over the last PACE_WINDOW, and seconds left at it.
    fn pace(&self) -> (Option<f64>, Option<f64>) {
        let done = self.bytes_uploaded.load(Ordering::Relaxed);
        let samples = self.samples.lock().expect("pace");
        let Some(&(t0, b0)) = samples.front() else { return (None, None) };
        pace(t0.elapsed().as_secs_f64(), done.saturating_sub(b0), self.left())
    }

    fn left(&self) -> u64 {
        let total = self.bytes_total.load(Ordering::Relaxed);
        total.saturating_sub(self.bytes_uploaded.load(Ordering::Relaxed) + self.bytes_skipped.load(Ordering::Relaxed))
    }
}

/// (bytes/s, seconds left) from `bytes` sent in `seconds`; none until a
/// fraction of a second has been measured.
pub fn pace(seconds: f64, bytes: u64, left: u64) -> (Option<f64>, Option<f64>) {
    if seconds < 0.2 {
        return (None, None);
    }
    let rate = bytes as f64 / seconds;
    (Some(rate), (rate > 0.0).then(|| left as f64 / rate))
}

/// One file of the dataset: where it is, where it goes, how big it is.
struct FileToSend {
    path: PathBuf,
    relative: String,
    size: u64,
}

pub struct UploadHub {
    /// Itself (the hub lives in an Arc): tasks are spawned from `&self`.
    me: std::sync::Weak<UploadHub>,
    pool: SqlitePool,
    journal: Journal,
    aws: Arc<Aws>,
    roots: ReadableRoots,
    running: Mutex<HashMap<i64, Arc<Running>>>,
}

impl UploadHub {
    /// Opens the hub and resumes the uploads a stopped server left running.
    pub async fn start(pool: SqlitePool, journal: Journal, aws: Arc<Aws>, roots: ReadableRoots) -> Arc<Self> {
        let hub = Arc::new_cyclic(|me| UploadHub { me: me.clone(), pool, journal, aws, roots, running: Mutex::new(HashMap::new()) });
        let unfinished: Vec<(i64, String)> = sqlx::query_as("SELECT id, created_by FROM dataset_uploads WHERE status IN ('Preparing', 'Uploading')")
            .fetch_all(&hub.pool)
            .await
            .unwrap_or_default();
        for (id, by) in unfinished {
            tracing::info!(upload = id, "resuming a dataset upload the last run did not finish");
            let _ = sqlx::query("UPDATE dataset_uploads SET message = ? WHERE id = ?")
                .bind("resumed after a restart: files S3 already holds are skipped")
                .bind(id)
                .execute(&hub.pool)
                .await;
            hub.clone().spawn(id, Principal { name: by, role: Role::Operator, open: false }, None);
        }
        hub
    }

    /// Runs upload `id` in the background as `principal`. `files` is the
    /// dataset as just checked; `None` checks it again (a resumed upload).
    fn spawn(self: Arc<Self>, id: i64, principal: Principal, files: Option<Vec<FileToSend>>) {
        let running = Arc::new(Running::default());
        self.running.lock().expect("uploads").insert(id, running.clone());
        let span = tracing::info_span!("dataset_upload", upload = id);
        tokio::spawn(tracing::Instrument::instrument(
            crate::journal::acting_as(principal, async move {
                let outcome = self.run(id, &running, files).await;
                self.finish(id, &running, outcome).await;
                self.running.lock().expect("uploads").remove(&id);
            }),
            span,
        ));
    }

    async fn row(&self, id: i64) -> Result<DatasetUpload, ApiError> {
        let r: StoredUpload = sqlx::query_as("SELECT * FROM dataset_uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| ApiError::NotFound(format!("there is no dataset upload #{id}")))?;
        let mut upload = DatasetUpload::from(r);
        if let Some(running) = self.running.lock().expect("uploads").get(&id).cloned() {
            overlay(&mut upload, &running);
        }
        Ok(upload)
    }

    /// Writes the counters now.
    async fn save(&self, id: i64, running: &Running, status: Option<UploadStatus>) {
        let result = sqlx::query(
            "UPDATE dataset_uploads SET status = COALESCE(?, status), files_total = ?, bytes_total = ?, files_uploaded = ?, files_skipped = ?,
             bytes_uploaded = ?, bytes_skipped = ? WHERE id = ?",
        )
        .bind(status.map(UploadStatus::as_str))
        .bind(running.files_total.load(Ordering::Relaxed) as i64)
        .bind(running.bytes_total.load(Ordering::Relaxed) as i64)
        .bind(running.files_uploaded.load(Ordering::Relaxed) as i64)
        .bind(running.files_skipped.load(Ordering::Relaxed) as i64)
        .bind(running.bytes_uploaded.load(Ordering::Relaxed) as i64)
        .bind(running.bytes_skipped.load(Ordering::Relaxed) as i64)
        .bind(id)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::warn!(upload = id, error = %e, "could not save an upload's progress");
        }
    }

    /// The whole upload; `Ok` when every file is there.
    async fn run(&self, id: i64, running: &Running, files: Option<Vec<FileToSend>>) -> Result<(), UploadError> {
        let row = self.row(id).await?;
        let client = &self.aws.clients()?.s3;
        let destination = S3Uri::parse(&row.destination)?;
        let files = match files {
            Some(files) => files,
            None => checked_files(&self.roots.resolve(&row.dataset, "dataset")?).await?,
        };
        running.files_total.store(files.len() as u64, Ordering::Relaxed);
        running.bytes_total.store(files.iter().map(|f| f.size).sum(), Ordering::Relaxed);
        let there = s3::list(client, &destination.bucket, &destination.folder()).await?;
        let resumable: HashMap<String, String> = sqlx::query_as("SELECT key, multipart_id FROM dataset_upload_parts WHERE upload_id = ?")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        self.save(id, running, Some(UploadStatus::Uploading)).await;

        // Progress goes to SQLite every second while the files go to S3.
        running.sample();
        let saving = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                running.sample();
                self.save(id, running, None).await;
            }
        };
        let sending = futures_util::stream::iter(files)
            .map(|file| self.send(id, client, &destination, file, &there, &resumable, running))
            .buffer_unordered(FILES_IN_FLIGHT)
            // The first failure (or the cancellation) ends the upload.
            .fold(Ok(()), |first: Result<(), UploadError>, result| async move { first.and(result) });
        let result = tokio::select! {
            result = sending => result,
            _ = saving => unreachable!("the saver loops forever"),
        };
        *running.current.lock().expect("current") = None;
        result
    }

    /// One file: skipped when S3 has the same bytes, else uploaded.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        id: i64,
        client: &aws_sdk_s3::Client,
        destination: &S3Uri,
        file: FileToSend,
        there: &HashMap<String, s3::ObjectFacts>,
        resumable: &HashMap<String, String>,
        running: &Running,
    ) -> Result<(), UploadError> {
        if running.cancel.load(Ordering::Relaxed) {
            return Err(UploadError::Cancelled);
        }
        let at = destination.join(&file.relative);
        let path = file.path.clone();
        let (sha256, etag, size) = tokio::task::spawn_blocking(move || s3::file_digests(&path))
            .await
            .map_err(|e| ApiError::Internal(format!("reading a file crashed: {e}")))?
            .map_err(|e| ApiError::Unprocessable(format!("cannot read {}: {e}", file.path.display())))?;
        if size != file.size {
            return Err(UploadError::Failed(ApiError::Conflict(format!("{} changed while it was being uploaded", file.relative))));
        }
        if let Some(facts) = there.get(&at.key) {
            let same = facts.size == size
                && if s3::is_md5_etag(&facts.etag) {
                    facts.etag == etag
                } else {
                    // SSE-KMS: the ETag is not an MD5; the SHA-256 stored with the object says.
                    s3::stored_sha256(client, &at).await?.as_deref() == Some(sha256.as_str())
                };
            if same {
                running.files_skipped.fetch_add(1, Ordering::Relaxed);
                running.bytes_skipped.fetch_add(size, Ordering::Relaxed);
                return Ok(());
            }
        }
        *running.current.lock().expect("current") = Some(file.relative.clone());
        let resume = resumable.get(&at.key).cloned();
        let key = at.key.clone();
        let remember = async |multipart_id: &str| {
            let stored = sqlx::query("INSERT OR REPLACE INTO dataset_upload_parts (upload_id, key, multipart_id) VALUES (?, ?, ?)")
                .bind(id)
                .bind(&key)
                .bind(multipart_id)
                .execute(&self.pool)
                .await;
            if let Err(e) = stored {
                tracing::warn!(upload = id, error = %e, "could not remember a multipart upload; a restart would send the file again");
            }
        };
        s3::upload_file(client, &at, &file.path, size, &sha256, resume, remember, &running.bytes_uploaded, &running.cancel).await?;
        if size >= s3::PART_SIZE {
            let _ = sqlx::query("DELETE FROM dataset_upload_parts WHERE upload_id = ? AND key = ?").bind(id).bind(&at.key).execute(&self.pool).await;
        }
        running.files_uploaded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Records how it ended, gives up unfinished multipart uploads, journals.
    async fn finish(&self, id: i64, running: &Running, outcome: Result<(), UploadError>) {
        let (status, message) = match &outcome {
            Ok(()) => (UploadStatus::Completed, None),
            Err(UploadError::Cancelled) => (UploadStatus::Cancelled, Some("cancelled; the files already sent stay in S3".to_string())),
            Err(UploadError::Failed(e)) => (UploadStatus::Failed, Some(e.message().to_string())),
        };
        if status != UploadStatus::Completed {
            self.abort_multipart(id).await;
        }
        self.save(id, running, Some(status)).await;
        let _ = sqlx::query("UPDATE dataset_uploads SET message = COALESCE(?, message), finished_at = ? WHERE id = ?")
            .bind(&message)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await;
        let Ok(row) = self.row(id).await else { return };
        let summary = format!(
            "{}: {} of {} files uploaded ({}), {} already there and skipped ({})",
            status.as_str(),
            row.files_uploaded,
            row.files_total,
            megabytes(row.bytes_uploaded),
            row.files_skipped,
            megabytes(row.bytes_skipped)
        );
        tracing::info!(upload = id, %summary, "dataset upload ended");
        self.journal
            .record(Change {
                backend: "aws",
                action: "dataset.upload",
                target: &row.destination,
                before: Some(row.dataset.clone()),
                after: Some(summary),
                outcome: match status {
                    UploadStatus::Completed => Ok(()),
                    _ => Err(message.unwrap_or_default()),
                },
            })
            .await;
    }

    async fn abort_multipart(&self, id: i64) {
        let Ok(clients) = self.aws.clients() else { return };
        let Ok(row) = self.row(id).await else { return };
        let Ok(destination) = S3Uri::parse(&row.destination) else { return };
        let open: Vec<(String, String)> = sqlx::query_as("SELECT key, multipart_id FROM dataset_upload_parts WHERE upload_id = ?")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default();
        for (key, multipart_id) in open {
            let at = S3Uri { bucket: destination.bucket.clone(), key };
            if let Err(e) = s3::abort_multipart(&clients.s3, &at, &multipart_id).await {
                tracing::warn!(upload = id, error = %e.message(), "could not abort a multipart upload; S3 keeps its parts until a lifecycle rule removes them");
            }
        }
        let _ = sqlx::query("DELETE FROM dataset_upload_parts WHERE upload_id = ?").bind(id).execute(&self.pool).await;
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The dataset's usable images (the check's verdict: broken files are left
/// out, a dataset that cannot train is refused), relative to its root.
async fn checked_files(root: &Path) -> Result<Vec<FileToSend>, ApiError> {
    let folder = root.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || dataset::check(&folder, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)))
        .await
        .map_err(|e| ApiError::Internal(format!("the dataset check crashed: {e}")))?;
    if !checked.report.can_train() {
        return Err(ApiError::Invalid(format!(
            "the dataset at {} fails its check, so it is not uploaded: {}",
            checked.report.root,
            checked.report.problems.join("; ")
        )));
    }
    let mut files = Vec::new();
    for sample in checked.train.iter().chain(&checked.valid).chain(&checked.test) {
        let relative = sample.path.strip_prefix(root).unwrap_or(&sample.path);
        let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        let size = std::fs::metadata(&sample.path).map(|m| m.len()).unwrap_or(0);
        files.push(FileToSend { path: sample.path.clone(), relative, size });
    }
    Ok(files)
}

crate::store::sqlite_row! {
    /// A `dataset_uploads` row as sqlx decodes it.
    struct StoredUpload {
        id: i64,
        dataset: String,
        destination: String,
        status: String,
        files_total: i64,
        files_uploaded: i64,
        files_skipped: i64,
        bytes_total: i64,
        bytes_uploaded: i64,
        bytes_skipped: i64,
        message: Option<String>,
        created_by: String,
        created_at: String,
        finished_at: Option<String>,
    }
}

impl From<StoredUpload> for DatasetUpload {
    fn from(r: StoredUpload) -> Self {
        let n = |v: i64| v.max(0) as u64;
        DatasetUpload {
            id: r.id,
            dataset: r.dataset,
            destination: r.destination,
            status: UploadStatus::parse(&r.status).unwrap_or(UploadStatus::Failed),
            files_total: n(r.files_total),
            files_uploaded: n(r.files_uploaded),
            files_skipped: n(r.files_skipped),
            bytes_total: n(r.bytes_total),
            bytes_uploaded: n(r.bytes_uploaded),
            bytes_skipped: n(r.bytes_skipped),
            bytes_per_s: None,
            eta_seconds: None,
            current: None,
            message: r.message,
            created_at: r.created_at,
            finished_at: r.finished_at,
            by: r.created_by,
        }
    }
}

/// The live counters over what SQLite had a second ago.
fn overlay(upload: &mut DatasetUpload, running: &Running) {
    upload.files_total = running.files_total.load(Ordering::Relaxed);
    upload.bytes_total = running.bytes_total.load(Ordering::Relaxed);
    upload.files_uploaded = running.files_uploaded.load(Ordering::Relaxed);
    upload.files_skipped = running.files_skipped.load(Ordering::Relaxed);
    upload.bytes_uploaded = running.bytes_uploaded.load(Ordering::Relaxed);
    upload.bytes_skipped = running.bytes_skipped.load(Ordering::Relaxed);
    upload.current = running.current.lock().expect("current").clone();
    if !upload.status.is_terminal() {
        (upload.bytes_per_s, upload.eta_seconds) = running.pace();
    }
}

#[async_trait::async_trait]
impl UploadService for UploadHub {
    async fn start(&self, spec: UploadSpec) -> Result<DatasetUpload, ApiError> {
        let clients = self.aws.clients()?;
        let root = self.roots.resolve(&spec.dataset, "dataset")?;
        let destination = S3Uri::parse(&spec.destination)?;
        // The destination is read before anything is stored: a bucket that does
        // not exist or may not be listed is refused here, in AWS's words.
        clients
            .s3
            .list_objects_v2()
            .bucket(&destination.bucket)
            .prefix(destination.folder())
            .max_keys(1)
            .send()
            .await
            .map_err(|e| crate::aws::from_sdk("S3 ListObjectsV2", e))
            .map_err(|e| e.map_message(|m| format!("{} cannot be read, so nothing was uploaded: {m}", spec.destination)))?;
        let principal = crate::journal::current().unwrap_or_else(Principal::open);
        let dataset = root.display().to_string();
        let busy: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM dataset_uploads WHERE dataset = ? AND destination = ? AND status IN ('Preparing', 'Uploading')",
        )
        .bind(&dataset)
        .bind(&spec.destination)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(other) = busy {
            return Err(ApiError::Conflict(format!("upload #{other} is already copying this dataset there; wait for it or cancel it")));
        }
        // The check runs before anything is stored: a dataset that fails it is
        // refused here, in words, with nothing left behind.
        let files = checked_files(&root).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dataset_uploads (dataset, destination, status, files_total, bytes_total, created_by, created_at)
             VALUES (?, ?, 'Preparing', ?, ?, ?, ?) RETURNING id",
        )
        .bind(&dataset)
        .bind(&spec.destination)
        .bind(files.len() as i64)
        .bind(files.iter().map(|f| f.size as i64).sum::<i64>())
        .bind(&principal.name)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let this = self.self_arc()?;
        this.spawn(id, principal, Some(files));
        self.row(id).await
    }

    async fn list(&self) -> Result<Vec<DatasetUpload>, ApiError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM dataset_uploads ORDER BY id DESC LIMIT 50").fetch_all(&self.pool).await.map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.row(id).await?);
        }
        Ok(out)
    }

    async fn get(&self, id: i64) -> Result<DatasetUpload, ApiError> {
        self.row(id).await
    }

    async fn cancel(&self, id: i64) -> Result<DatasetUpload, ApiError> {
        let upload = self.row(id).await?;
        if upload.status.is_terminal() {
            return Err(ApiError::Conflict(format!("upload #{id} is {}; only a running upload can be cancelled", upload.status.as_str())));
        }
        match self.running.lock().expect("uploads").get(&id) {
            Some(running) => running.cancel.store(true, Ordering::Relaxed),
            None => return Err(ApiError::Conflict(format!("upload #{id} is not running in this process"))),
        }
        // The task notices between files and parts; wait for it briefly so the
        // answer shows the outcome.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let upload = self.row(id).await?;
            if upload.status.is_terminal() || Instant::now() > deadline {
                return Ok(upload);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl UploadHub {
    /// The hub itself, to spawn an upload task from a `&self` method.
    fn self_arc(&self) -> Result<Arc<UploadHub>, ApiError> {
        self.me.upgrade().ok_or_else(|| ApiError::Internal("the upload hub is shutting down".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_needs_a_moment_of_measurement_and_gives_the_time_left() {
        assert_eq!(pace(0.1, 1000, 5000), (None, None));
        assert_eq!(pace(2.0, 4_000_000, 6_000_000), (Some(2_000_000.0), Some(3.0)));
        assert_eq!(pace(2.0, 0, 100), (Some(0.0), None), "stalled: no time left can be given");
    }
}
