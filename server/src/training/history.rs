//! The job history: one list of local and SageMaker training jobs, paged on
//! the server by keyset (see `app::training::history`), and the background
//! backfill that reads the account's older SageMaker jobs into the cache a
//! page at a time, resumable across restarts.

use super::jobs::{StoredJob, COLUMNS};
use super::sagemaker::backfill::{sync_state, BACKFILL_GAP, BACKFILL_PAGE};
use super::sagemaker::SageMakerJobs;
use crate::aws::created_key;
use app::training::history::{
    local_statuses, merge_page, Cursor, Direction, HistoryRow, HistorySync, JobHistoryPage, JobHistoryService, JobQuery, Keyed, RunsOn,
    PAGE_SIZE,
};
use app::list_view::MixedPage;
use app::training::sagemaker::SageMakerJobSummary;
use app::ApiError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_smithy_types::date_time::Format;
use sqlx::SqlitePool;

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("job history")(e)
}

/// The WHERE clause both lists share (status and name), with its binds.
struct Filter {
    clause: String,
    binds: Vec<String>,
    /// The count, when the name index already gave it (a name and no status).
    known_total: Option<u64>,
}

impl Filter {
    /// The rows of `table` the filter matches, on every page.
    async fn count(&self, pool: &SqlitePool, table: &str) -> Result<u64, ApiError> {
        if let Some(total) = self.known_total {
            return Ok(total);
        }
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {}", self.clause);
        let mut count = sqlx::query_scalar::<_, i64>(&sql);
        for b in &self.binds {
            count = count.bind(b);
        }
        Ok(count.fetch_one(pool).await.map_err(db)? as u64)
    }
}

/// Which table's trigram name index a search reads (migrations/0019).
#[derive(Clone, Copy)]
enum Names {
    Local,
    SageMaker,
}

impl Names {
    /// The FTS5 table of the list's names.
    fn index(self) -> &'static str {
        match self {
            Names::Local => "local_job_names",
            Names::SageMaker => "sagemaker_training_job_names",
        }
    }

    /// The list's rows whose names the index matches (local rows by the
    /// index's rowid, SageMaker rows by the name the index keeps).
    fn lookup(self) -> &'static str {
        match self {
            Names::Local => "id IN (SELECT rowid FROM local_job_names WHERE local_job_names MATCH ?)",
            Names::SageMaker => "name IN (SELECT name FROM sagemaker_training_job_names WHERE sagemaker_training_job_names MATCH ?)",
        }
    }
}

/// Searches whose name index finds at most this many jobs read the page
/// from the index; broader ones walk the list in its order, where a page
/// of matches comes early. Over 100,000 jobs: "00042" (11 jobs) 0.4 ms from
/// the index against 9.5 ms by walking; "flowers" (20,000) 0.05 ms by
/// walking against 31 ms sorting the index's hits.
const INDEX_LOOKUP_MAX: u64 = 2_000;

/// How many jobs the trigram index finds named with `text`; None for a
/// search under three characters, which the index cannot answer.
async fn index_hits(pool: &SqlitePool, names: Names, text: &str) -> Result<Option<u64>, ApiError> {
    if text.chars().count() < 3 {
        return Ok(None);
    }
    let index = names.index();
    let hits: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {index} WHERE {index} MATCH ?"))
        .bind(crate::store::fts_phrase(text))
        .fetch_one(pool)
        .await
        .map_err(db)?;
    Ok(Some(hits as u64))
}

/// The clause that finds the rows whose name contains `text` (ignoring
/// case), with its bind: from the trigram index when it found few enough
/// (`index_hits`), else by LIKE as the list is walked.
fn name_clause(names: Names, text: &str, index_hits: Option<u64>) -> (&'static str, String) {
    match index_hits {
        Some(hits) if hits <= INDEX_LOOKUP_MAX => (names.lookup(), crate::store::fts_phrase(text)),
        // LIKE ignores ASCII case, and scans the covering index faster than
        // instr(lower(name), ...) would (migrations/0013_job_history.sql).
        _ => ("name LIKE ? ESCAPE '\\'", crate::store::contains_pattern(text)),
    }
}

fn filter(statuses: &[&str], names: Names, name: &str, index_hits: Option<u64>) -> Filter {
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    if !statuses.is_empty() {
        parts.push(format!("status IN ({})", vec!["?"; statuses.len()].join(", ")));
        binds.extend(statuses.iter().map(|s| s.to_string()));
    }
    if !name.is_empty() {
        let (clause, bind) = name_clause(names, name, index_hits);
        parts.push(clause.to_string());
        binds.push(bind);
    }
    let known_total = if statuses.is_empty() { index_hits } else { None };
    Filter { clause: if parts.is_empty() { "1".into() } else { parts.join(" AND ") }, binds, known_total }
}

/// The filter of one list, asking its name index first when there is a name.
async fn list_filter(pool: &SqlitePool, statuses: &[&str], names: Names, name: &str) -> Result<Filter, ApiError> {
    let hits = if name.is_empty() { None } else { index_hits(pool, names, name).await? };
    Ok(filter(statuses, names, name, hits))
}

/// The page's direction and the cursor it reads from.
fn position(query: &JobQuery) -> Result<(Direction, Option<Cursor>), ApiError> {
    Ok((query.direction(), query.cursor().map(Cursor::parse).transpose()?))
}

fn order(direction: Direction) -> (&'static str, &'static str) {
    match direction {
        Direction::Older => ("<", "DESC"),
        Direction::Newer => (">", "ASC"),
    }
}

async fn local_page(pool: &SqlitePool, query: &JobQuery, direction: Direction, cursor: Option<&Cursor>) -> Result<(Vec<Keyed>, u64), ApiError> {
    let statuses = local_statuses(&query.status);
    if !query.status.is_empty() && statuses.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let f = list_filter(pool, &statuses, Names::Local, &query.name).await?;
    let (cmp, dir) = order(direction);
    let bound = cursor.map(|c| c.local_bound());
    let keyset = if bound.is_some() { format!(" AND (created_at, id) {cmp} (?, ?)") } else { String::new() };
    let sql = format!("SELECT {COLUMNS} FROM local_jobs WHERE {}{keyset} ORDER BY created_at {dir}, id {dir} LIMIT ?", f.clause);
    let mut q = sqlx::query_as::<_, StoredJob>(&sql);
    for b in &f.binds {
        q = q.bind(b);
    }
    if let Some((t, id)) = &bound {
        q = q.bind(t).bind(id);
    }
    // The page and the count scan apart, on two connections at once.
    let (rows, total) = tokio::join!(q.bind((PAGE_SIZE + 1) as i64).fetch_all(pool), f.count(pool, "local_jobs"));
    let (rows, total) = (rows.map_err(db)?, total?);
    let mut keyed = Vec::with_capacity(rows.len());
    for row in rows {
        let job = row.into_job()?;
        keyed.push(Keyed {
            cursor: Cursor { created_at: job.summary.created_at.clone(), runs_on: RunsOn::Local, key: job.id.to_string() },
            row: HistoryRow::Local(job.summary),
        });
    }
    Ok((keyed, total))
}

async fn sagemaker_page(pool: &SqlitePool, query: &JobQuery, direction: Direction, cursor: Option<&Cursor>) -> Result<(Vec<Keyed>, u64), ApiError> {
    let statuses: Vec<&str> = if query.status.is_empty() { vec![] } else { vec![query.status.as_str()] };
    let f = list_filter(pool, &statuses, Names::SageMaker, &query.name).await?;
    let (cmp, dir) = order(direction);
    let bound = cursor.map(|c| c.sagemaker_bound());
    let keyset = if bound.is_some() { format!(" AND (created_at, name) {cmp} (?, ?)") } else { String::new() };
    let sql = format!(
        "SELECT created_at, name, summary FROM sagemaker_training_jobs WHERE {}{keyset} ORDER BY created_at {dir}, name {dir} LIMIT ?",
        f.clause
    );
    let mut q = sqlx::query_as::<_, (Option<String>, String, String)>(&sql);
    for b in &f.binds {
        q = q.bind(b);
    }
    if let Some((t, name)) = &bound {
        q = q.bind(t).bind(name);
    }
    let (rows, total) = tokio::join!(q.bind((PAGE_SIZE + 1) as i64).fetch_all(pool), f.count(pool, "sagemaker_training_jobs"));
    let (rows, total) = (rows.map_err(db)?, total?);
    let keyed = rows
        .into_iter()
        .filter_map(|(created_at, name, summary)| {
            let summary: SageMakerJobSummary = serde_json::from_str(&summary).ok()?;
            Some(Keyed { cursor: Cursor { created_at: created_at.unwrap_or_default(), runs_on: RunsOn::SageMaker, key: name }, row: HistoryRow::SageMaker(summary) })
        })
        .collect();
    Ok((keyed, total))
}

async fn history_sync(pool: &SqlitePool) -> Result<HistorySync, ApiError> {
    let state = sync_state(pool).await?;
    let jobs_read: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sagemaker_training_jobs").fetch_one(pool).await.map_err(db)?;
    Ok(HistorySync {
        jobs_read: jobs_read as u64,
        oldest_read: state.oldest_created,
        complete: state.backfill_done,
        jobs_per_minute: (BACKFILL_PAGE as u64) * 60 / BACKFILL_GAP.as_secs().max(1),
    })
}

#[async_trait::async_trait]
impl JobHistoryService for SageMakerJobs {
    async fn page(&self, query: JobQuery) -> Result<JobHistoryPage, ApiError> {
        let (direction, cursor) = position(&query)?;
        let pool = self.pool();
        let aws = self.aws().clients().err().map(|e| e.message().to_string());
        let want_sagemaker = query.wants(RunsOn::SageMaker) && aws.is_none();
        // The two lists are read at once; each is an index scan of its own.
        let (local, remote, sync) = tokio::join!(
            async {
                if query.wants(RunsOn::Local) {
                    local_page(pool, &query, direction, cursor.as_ref()).await
                } else {
                    Ok((Vec::new(), 0))
                }
            },
            async {
                if want_sagemaker {
                    sagemaker_page(pool, &query, direction, cursor.as_ref()).await
                } else {
                    Ok((Vec::new(), 0))
                }
            },
            async { if want_sagemaker { history_sync(pool).await.map(Some) } else { Ok(None) } }
        );
        let ((mut parts, local_total), (remote_rows, sagemaker_total), sync) = (local?, remote?, sync?);
        parts.extend(remote_rows);
        let cache = want_sagemaker.then(|| self.cache_state());
        let (rows, older, newer) = merge_page(parts, PAGE_SIZE, direction, cursor.is_some());
        Ok(JobHistoryPage { rows, list: MixedPage { local_total, sagemaker_total, older, newer, cache, sagemaker_note: aws }, sync })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_bind_what_they_name() {
        let f = filter(&["Queued", "Running"], Names::Local, "flow", Some(12));
        assert_eq!(f.clause, "status IN (?, ?) AND id IN (SELECT rowid FROM local_job_names WHERE local_job_names MATCH ?)");
        assert_eq!(f.binds, ["Queued", "Running", "\"flow\""]);
        assert_eq!(f.known_total, None, "the index counted names, not names with these statuses");
        assert_eq!(filter(&[], Names::SageMaker, "50%\"x", Some(3)).binds, ["\"50%\"\"x\""]);
        assert_eq!(filter(&[], Names::SageMaker, "50%\"x", Some(3)).known_total, Some(3));
        // Broad searches walk the list; short ones too (the index cannot answer).
        let broad = filter(&[], Names::Local, "flowers", Some(INDEX_LOOKUP_MAX + 1));
        assert_eq!((broad.clause.as_str(), broad.known_total), ("name LIKE ? ESCAPE '\\'", Some(INDEX_LOOKUP_MAX + 1)));
        assert_eq!(filter(&[], Names::Local, "5_", None).binds, ["%5\\_%"]);
        assert_eq!(filter(&[], Names::Local, "5_", None).known_total, None);
        assert_eq!(filter(&[], Names::Local, "", None).clause, "1");
    }

    /// The trigram index finds what a scan would, in both tables, as rows
    /// are added, renamed and removed: every search of every length.
    #[tokio::test]
    async fn a_name_search_finds_what_a_scan_finds() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let names = ["flowers-local-lr1e-3-000042", "Dogs-50%_off", "a\"quoted\"b", "x", "birds-000420", "scans-1000421"];
        for name in names {
            sqlx::query("INSERT INTO local_jobs (name, spec, status, created_at, work_dir) VALUES (?, '{}', 'Completed', '2026-12-01T00:00:00.000Z', '')")
                .bind(name)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO sagemaker_training_jobs (name, status, created_at, summary, refreshed_at) VALUES (?, 'Completed', '2026-12-01T00:00:00.000Z', '{}', '')")
                .bind(name)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE local_jobs SET name = 'birds-renamed' WHERE name = 'birds-000420'").execute(&pool).await.unwrap();
        sqlx::query("DELETE FROM local_jobs WHERE name = 'scans-1000421'").execute(&pool).await.unwrap();
        sqlx::query("UPDATE sagemaker_training_jobs SET name = 'birds-renamed' WHERE name = 'birds-000420'").execute(&pool).await.unwrap();
        sqlx::query("DELETE FROM sagemaker_training_jobs WHERE name = 'scans-1000421'").execute(&pool).await.unwrap();
        let found = |table: &'static str, names: Names, text: &'static str| {
            let pool = pool.clone();
            async move {
                let hits = index_hits(&pool, names, text).await.unwrap();
                // Both ways of answering: from the index, and by walking.
                let mut answers = Vec::new();
                for forced in [hits.map(|_| 0), hits.map(|_| INDEX_LOOKUP_MAX + 1), hits] {
                    let f = filter(&[], names, text, forced);
                    let sql = format!("SELECT name FROM {table} WHERE {} ORDER BY name", f.clause);
                    let mut q = sqlx::query_scalar::<_, String>(&sql);
                    for b in &f.binds {
                        q = q.bind(b);
                    }
                    answers.push(q.fetch_all(&pool).await.unwrap());
                }
                let scanned: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM {table} WHERE name LIKE ? ESCAPE '\\' ORDER BY name"))
                    .bind(crate::store::contains_pattern(text))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                for answer in &answers {
                    assert_eq!(answer, &scanned, "{table}: {text:?}");
                }
                if let Some(hits) = hits {
                    assert_eq!(hits as usize, scanned.len(), "{table}: the index's count of {text:?}");
                }
                scanned.len()
            }
        };
        for (text, expected) in [("00042", 1), ("0004", 1), ("FLOWERS", 1), ("50%_OFF", 1), ("%_o", 1), ("\"quoted\"", 1), ("renamed", 1), ("000420", 0), ("1000421", 0), ("x", 1), ("-", 3), ("zzz", 0)] {
            assert_eq!(found("local_jobs", Names::Local, text).await, expected, "local: {text:?}");
            assert_eq!(found("sagemaker_training_jobs", Names::SageMaker, text).await, expected, "sagemaker: {text:?}");
        }
    }
}

/// `sagedeck seed-history`: fills a database with a made-up job history for
/// the history benchmark (`scripts/bench.sh history`) and the paging tests.
/// Every job is finished; names, statuses and times vary the way a year of
/// tuning work does.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// SQLite database URL to fill (made, and migrated, if missing).
    #[arg(long)]
    pub database_url: String,
    /// Local jobs to add.
    #[arg(long, default_value_t = 100_000)]
    pub local: u32,
    /// SageMaker jobs to add to the cache, as the poller would have read them.
    #[arg(long, default_value_t = 100_000)]
    pub sagemaker: u32,
    /// Epochs per local job, each with a row of metrics.
    #[arg(long, default_value_t = 5)]
    pub epochs: u32,
    /// Step losses per local job.
    #[arg(long, default_value_t = 40)]
    pub steps: u32,
    /// The newest job's creation time; the others reach a year back.
    #[arg(long, default_value = "2026-12-01T00:00:00.000Z")]
    pub newest: String,
}

/// The i-th seeded job's status: mostly completed, some failed or stopped.
pub fn seeded_status(i: u32) -> (&'static str, &'static str) {
    match i % 50 {
        0..=2 => ("Failed", "Failed"),
        3 => ("Cancelled", "Stopped"),
        _ => ("Completed", "Completed"),
    }
}

pub fn seeded_name(kind: &str, i: u32) -> String {
    let family = ["flowers", "dogs", "birds", "leaves", "scans"][(i % 5) as usize];
    // SageMaker's names allow letters, digits and hyphens only.
    format!("{family}-{kind}-lr{}-{i:06}", ["1e-3", "3e-4", "1e-2"][(i % 3) as usize])
}

pub async fn seed_command(args: SeedArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let pool = crate::store::open(&args.database_url).await?;
    let newest = DateTime::from_str(&args.newest, Format::DateTime).context("--newest is not an RFC 3339 time")?;
    let newest_ms = newest.to_millis().context("--newest is out of range")?;
    let year_ms: i64 = 365 * 24 * 3600 * 1000;
    let at = |i: u32, n: u32, offset: i64| created_key(&DateTime::from_millis(newest_ms - year_ms + (i as i64 + 1) * year_ms / n.max(1) as i64 - offset));
    let started = std::time::Instant::now();
    let mut tx = crate::store::write_tx(&pool).await?;
    for i in 0..args.local {
        let (status, _) = seeded_status(i);
        let spec = app::training::LocalJobSpec { name: seeded_name("local", i), epochs: args.epochs, ..Default::default() };
        let created = at(i, args.local, 0);
        let accuracy = 0.5 + 0.4 * ((i % 97) as f64 / 97.0);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO local_jobs (name, spec, status, created_at, started_at, finished_at, work_dir, epoch, step, steps_per_epoch,
                test_loss, test_accuracy, source) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, 'cli') RETURNING id",
        )
        .bind(&spec.name)
        .bind(serde_json::to_string(&spec)?)
        .bind(status)
        .bind(&created)
        .bind(&created)
        .bind(&created)
        .bind(args.epochs as i64)
        .bind(args.steps as i64)
        .bind((args.steps / args.epochs.max(1)) as i64)
        .bind(1.0 - accuracy)
        .bind(accuracy)
        .fetch_one(&mut *tx)
        .await?;
        if args.epochs > 0 {
            let values = vec!["(?, ?, ?, ?, ?, ?, 1.0, 100.0)"; args.epochs as usize].join(", ");
            let sql = format!("INSERT INTO local_job_epochs (job_id, epoch, train_loss, train_accuracy, valid_loss, valid_accuracy, seconds, images_per_s) VALUES {values}");
            let mut q = sqlx::query(&sql);
            for e in 1..=args.epochs {
                let f = e as f64 / args.epochs as f64;
                q = q.bind(id).bind(e as i64).bind(1.5 - f).bind(accuracy * f).bind(1.6 - f).bind(accuracy * f * 0.95);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in (1..=args.steps).collect::<Vec<_>>().chunks(200) {
            let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO local_job_steps (job_id, step, epoch, loss) VALUES {values}");
            let mut q = sqlx::query(&sql);
            let per_epoch = (args.steps / args.epochs.max(1)).max(1);
            for s in chunk {
                q = q.bind(id).bind(*s as i64).bind(((s - 1) / per_epoch + 1) as i64).bind(2.0 / (1.0 + *s as f64 / 10.0));
            }
            q.execute(&mut *tx).await?;
        }
    }
    for i in 0..args.sagemaker {
        let (_, status) = seeded_status(i);
        // Half a step apart from the local jobs, so the two lists interleave.
        let created = at(i, args.sagemaker, year_ms / args.sagemaker.max(1) as i64 / 2);
        let summary = SageMakerJobSummary {
            name: seeded_name("sm", i),
            status: status.to_string(),
            instance_type: "ml.m5.xlarge".into(),
            instance_count: 1 + (i % 4) as i32,
            created_at: Some(created.clone()),
            ended_at: Some(created.clone()),
            training_seconds: Some(600 + (i % 600) as i64),
            billable_seconds: Some(600 + (i % 600) as i64),
            final_metrics: vec![("test:accuracy".into(), 0.5 + 0.4 * ((i % 89) as f64 / 89.0))],
            ..Default::default()
        };
        sqlx::query("INSERT INTO sagemaker_training_jobs (name, status, created_at, summary, detail, refreshed_at) VALUES (?, ?, ?, ?, NULL, ?)")
            .bind(&summary.name)
            .bind(status)
            .bind(&created)
            .bind(serde_json::to_string(&summary)?)
            .bind(&created)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    sqlx::query("PRAGMA optimize").execute(&pool).await?;
    println!(
        "seeded {} local jobs ({} epochs, {} steps each) and {} SageMaker jobs in {:.1} s",
        args.local,
        args.epochs,
        args.steps,
        args.sagemaker,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
