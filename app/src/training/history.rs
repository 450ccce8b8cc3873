//! The job history: local and SageMaker training jobs in one list, filtered,
//! sorted (newest first) and paged on the server. Paging is by keyset: a
//! cursor names the row a page ends at (its creation time, where it runs and
//! its id or name), so a deep page costs what the first one does and rows
//! added meanwhile do not shift the pages. The filters and the cursor live in
//! the page's URL, so a view can be shared.

use super::sagemaker::SageMakerJobSummary;
use super::{JobStatus, LocalJobSummary};
pub use crate::list_view::Direction;
use crate::components::thousands;
use crate::list_view::{keyset_page, ListKind, ListQuery, MixedPage};
use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Rows per page.
pub const PAGE_SIZE: usize = 50;

/// The statuses the filter offers, in SageMaker's words; local statuses map
/// onto them (`local_statuses`).
pub const STATUS_FILTERS: [&str; 5] = ["InProgress", "Completed", "Failed", "Stopping", "Stopped"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RunsOn {
    Local,
    SageMaker,
}

impl RunsOn {
    pub fn as_str(self) -> &'static str {
        match self {
            RunsOn::Local => "local",
            RunsOn::SageMaker => "sagemaker",
        }
    }

    pub fn parse(word: &str) -> Option<RunsOn> {
        match word {
            "local" => Some(RunsOn::Local),
            "sagemaker" => Some(RunsOn::SageMaker),
            _ => None,
        }
    }
}

/// Where a page starts or ends. Rows are ordered by (created_at, runs_on,
/// key), newest first; `key` is a local job's id or a SageMaker job's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    pub created_at: String,
    pub runs_on: RunsOn,
    pub key: String,
}

impl Cursor {
    /// `2026-12-01T17:01:02.123Z~local~42`: readable in a URL.
    pub fn encode(&self) -> String {
        format!("{}~{}~{}", self.created_at, self.runs_on.as_str(), self.key)
    }

    pub fn parse(text: &str) -> Result<Cursor, ApiError> {
        let bad = || ApiError::Invalid(format!("{text:?} is not a position in the job list; open the list from its first page."));
        let mut parts = text.splitn(3, '~');
        let (Some(created_at), Some(runs_on), Some(key)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
        let runs_on = RunsOn::parse(runs_on).ok_or_else(bad)?;
        let time_ok = created_at.len() <= 40 && created_at.bytes().all(|b| b.is_ascii_digit() || b"-:.TZ+".contains(&b));
        let key_ok = match runs_on {
            RunsOn::Local => key.parse::<i64>().is_ok(),
            RunsOn::SageMaker => !key.is_empty() && key.len() <= 63 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        };
        if !time_ok || !key_ok {
            return Err(bad());
        }
        Ok(Cursor { created_at: created_at.to_string(), runs_on, key: key.to_string() })
    }

    /// The bound on a local job's (created_at, id) that matches this cursor:
    /// at the same time, local rows sort before SageMaker ones.
    pub fn local_bound(&self) -> (String, i64) {
        match self.runs_on {
            RunsOn::Local => (self.created_at.clone(), self.key.parse().unwrap_or(i64::MAX)),
            RunsOn::SageMaker => (self.created_at.clone(), i64::MAX),
        }
    }

    /// The bound on a SageMaker job's (created_at, name): "" sorts before
    /// every name, so a local cursor lets every SageMaker row at its time
    /// count as newer.
    pub fn sagemaker_bound(&self) -> (String, String) {
        match self.runs_on {
            RunsOn::SageMaker => (self.created_at.clone(), self.key.clone()),
            RunsOn::Local => (self.created_at.clone(), String::new()),
        }
    }
}

/// The job history as a `ListKind`: `/training`, SageMaker's statuses,
/// name searches up to 100 characters, job cursors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Jobs;

impl ListKind for Jobs {
    type On = RunsOn;
    const PATH: &'static str = "/training";
    const STATUS_FILTERS: &'static [&'static str] = &STATUS_FILTERS;
    const NAME_MAX: usize = 100;
    const NAME_TOO_LONG: &'static str = "q: search for at most 100 characters of a name.";

    fn on_slug(on: RunsOn) -> &'static str {
        on.as_str()
    }

    fn on_from_slug(slug: &str) -> Option<RunsOn> {
        RunsOn::parse(slug)
    }

    fn check_cursor(cursor: &str) -> Result<(), ApiError> {
        Cursor::parse(cursor).map(|_| ())
    }
}

/// What the job history shows: the filters and where the page is.
pub type JobQuery = ListQuery<Jobs>;

/// The local statuses a filter in SageMaker's words stands for.
pub fn local_statuses(filter: &str) -> Vec<&'static str> {
    match filter {
        "InProgress" => vec![JobStatus::Queued.as_str(), JobStatus::Running.as_str()],
        "Stopped" => vec![JobStatus::Cancelled.as_str(), JobStatus::Interrupted.as_str()],
        "Completed" => vec![JobStatus::Completed.as_str()],
        "Failed" => vec![JobStatus::Failed.as_str()],
        // Local jobs have no Stopping: a cancel stops at the next step.
        _ => vec![],
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HistoryRow {
    Local(LocalJobSummary),
    SageMaker(SageMakerJobSummary),
}

/// A row as the server read it, with the cursor it sorts by.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyed {
    pub cursor: Cursor,
    pub row: HistoryRow,
}

/// How much of the account's SageMaker history the poller has read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistorySync {
    pub jobs_read: u64,
    /// Everything created since then has been read.
    pub oldest_read: Option<String>,
    pub complete: bool,
    /// Jobs a minute the backfill reads while it runs.
    pub jobs_per_minute: u64,
}

impl HistorySync {
    /// "history: 12,400 jobs read, back to 2025-03-02; reading older ones…"
    pub fn describe(&self) -> String {
        let count = thousands(self.jobs_read);
        let back = self.oldest_read.as_deref().map(|t| format!(", back to {}", &t[..t.len().min(10)])).unwrap_or_default();
        if self.complete {
            format!("SageMaker history: all {count} jobs read.")
        } else {
            format!(
                "SageMaker history: {count} jobs read{back}; older ones are read in the background, about {} a minute.",
                thousands(self.jobs_per_minute)
            )
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobHistoryPage {
    /// Newest first.
    pub rows: Vec<HistoryRow>,
    #[serde(flatten)]
    pub list: MixedPage,
    pub sync: Option<HistorySync>,
}

/// Merges what each list read (each in the page's reading order, up to
/// `size + 1` rows) into one page, newest first, with the cursors of the
/// links around it. Reading `size + 1` from each list is what says whether
/// more rows lie beyond the page.
pub fn merge_page(mut parts: Vec<Keyed>, size: usize, direction: Direction, from_cursor: bool) -> (Vec<HistoryRow>, Option<String>, Option<String>) {
    match direction {
        Direction::Older => parts.sort_by(|a, b| b.cursor.cmp(&a.cursor)),
        Direction::Newer => parts.sort_by(|a, b| a.cursor.cmp(&b.cursor)),
    }
    let (parts, older, newer) = keyset_page(parts, size, direction, from_cursor, |k| k.cursor.encode());
    (parts.into_iter().map(|k| k.row).collect(), older, newer)
}

/// The server's side of the job history (`server/src/training/history.rs`).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait JobHistoryService: Send + Sync {
    async fn page(&self, query: JobQuery) -> Result<JobHistoryPage, ApiError>;
}

#[cfg(feature = "ssr")]
pub type JobHistory = std::sync::Arc<dyn JobHistoryService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "training/history", input = leptos::server_fn::codec::Json)]
pub async fn list_job_history(query: JobQuery) -> Result<JobHistoryPage, ApiError> {
    query.validate()?;
    crate::error::service::<JobHistory>()?.page(query).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(t: &str, on: RunsOn, key: &str) -> Cursor {
        Cursor { created_at: t.into(), runs_on: on, key: key.into() }
    }

    fn keyed(t: &str, on: RunsOn, key: &str) -> Keyed {
        let row = match on {
            RunsOn::Local => HistoryRow::Local(LocalJobSummary {
                id: key.parse().unwrap(),
                name: format!("job-{key}"),
                status: JobStatus::Completed,
                architecture: super::super::Architecture::Resnet18,
                dataset: String::new(),
                epochs: 1,
                created_at: t.into(),
                started_at: None,
                finished_at: None,
                progress: Default::default(),
                test_accuracy: None,
                message: None,
            }),
            RunsOn::SageMaker => HistoryRow::SageMaker(SageMakerJobSummary { name: key.into(), created_at: Some(t.into()), ..Default::default() }),
        };
        Keyed { cursor: cursor(t, on, key), row }
    }

    fn keys(rows: &[HistoryRow]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                HistoryRow::Local(j) => j.id.to_string(),
                HistoryRow::SageMaker(j) => j.name.clone(),
            })
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_they_cannot_be() {
        let c = cursor("2026-12-01T17:01:02.123Z", RunsOn::SageMaker, "flowers-2026-12-01");
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        let l = cursor("2026-12-01T17:01:02.123Z", RunsOn::Local, "42");
        assert_eq!(Cursor::parse(&l.encode()).unwrap(), l);
        for bad in ["", "2026~local", "2026~local~x", "2026~cloud~1", "2026'--~local~1", "2026~sagemaker~a b", "2026~sagemaker~"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn at_one_time_local_rows_sort_before_sagemaker_ones_in_both_bounds() {
        let t = "2026-12-01T17:01:02.123Z";
        assert!(cursor(t, RunsOn::Local, "999") < cursor(t, RunsOn::SageMaker, "a"));
        // A SageMaker cursor counts every local row at its time as older.
        assert_eq!(cursor(t, RunsOn::SageMaker, "a").local_bound(), (t.to_string(), i64::MAX));
        // A local cursor counts every SageMaker row at its time as newer.
        assert_eq!(cursor(t, RunsOn::Local, "7").sagemaker_bound(), (t.to_string(), String::new()));
    }

    #[test]
    fn pages_merge_both_lists_newest_first_and_link_only_where_rows_are() {
        // Three local and three SageMaker rows, interleaved in time; pages of 2.
        let all = vec![
            keyed("2026-01-01T00:00:06.000Z", RunsOn::SageMaker, "f"),
            keyed("2026-01-01T00:00:05.000Z", RunsOn::Local, "5"),
            keyed("2026-01-01T00:00:04.000Z", RunsOn::SageMaker, "d"),
            keyed("2026-01-01T00:00:03.000Z", RunsOn::Local, "3"),
            keyed("2026-01-01T00:00:02.000Z", RunsOn::SageMaker, "b"),
            keyed("2026-01-01T00:00:01.000Z", RunsOn::Local, "1"),
        ];
        let (rows, older, newer) = merge_page(all.clone(), 2, Direction::Older, false);
        assert_eq!(keys(&rows), ["f", "5"]);
        assert_eq!(newer, None);
        let older = Cursor::parse(&older.unwrap()).unwrap();
        assert_eq!(older.key, "5");
        // The next page: what lies below the cursor, as the server reads it.
        let below: Vec<Keyed> = all.iter().filter(|k| k.cursor < older).cloned().collect();
        let (rows, older2, newer2) = merge_page(below, 2, Direction::Older, true);
        assert_eq!(keys(&rows), ["d", "3"]);
        let newer2 = Cursor::parse(&newer2.unwrap()).unwrap();
        assert_eq!(newer2.key, "d");
        // Back up: rows newer than the second page's first row are the first page.
        let above: Vec<Keyed> = all.iter().filter(|k| k.cursor > newer2).cloned().collect();
        let (rows, _, newer3) = merge_page(above, 2, Direction::Newer, true);
        assert_eq!(keys(&rows), ["f", "5"]);
        assert_eq!(newer3, None, "nothing is newer than the first page");
        // The last page has no older link.
        let last = Cursor::parse(&older2.unwrap()).unwrap();
        let tail: Vec<Keyed> = all.iter().filter(|k| k.cursor < last).cloned().collect();
        let (rows, older4, _) = merge_page(tail, 2, Direction::Older, true);
        assert_eq!(keys(&rows), ["b", "1"]);
        assert_eq!(older4, None);
    }

    #[test]
    fn the_url_keeps_the_filters_and_reads_back_the_same() {
        let q = JobQuery {
            status: "Completed".into(),
            name: "flowers & co".into(),
            on: Some(RunsOn::SageMaker),
            older: Some("2026-12-01T17:01:02.123Z~local~42".into()),
            newer: None,
            kind: Default::default(),
        };
        let href = q.href();
        assert_eq!(href, "/training?status=Completed&q=flowers%20%26%20co&on=sagemaker&older=2026-12-01T17%3A01%3A02.123Z~local~42");
        let pairs: std::collections::HashMap<&str, String> = [
            ("status", "Completed".to_string()),
            ("q", "flowers & co".to_string()),
            ("on", "sagemaker".to_string()),
            ("older", "2026-12-01T17:01:02.123Z~local~42".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(JobQuery::from_pairs(|k| pairs.get(k).cloned()), q);
        assert_eq!(JobQuery::default().href(), "/training");
        // An unknown status in a URL is dropped rather than refused.
        assert_eq!(JobQuery::from_pairs(|k| (k == "status").then(|| "Exploded".to_string())).status, "");
    }

    #[test]
    fn bad_queries_are_refused_in_words() {
        assert!(JobQuery { status: "Exploded".into(), ..Default::default() }.validate().is_err());
        assert!(JobQuery { name: "x".repeat(101), ..Default::default() }.validate().is_err());
        assert!(JobQuery { older: Some("a".into()), ..Default::default() }.validate().is_err());
        let c = "2026-12-01T17:01:02.123Z~local~42".to_string();
        assert!(JobQuery { older: Some(c.clone()), newer: Some(c.clone()), ..Default::default() }.validate().is_err());
        assert!(JobQuery { older: Some(c), ..Default::default() }.validate().is_ok());
    }

    #[test]
    fn local_statuses_follow_sagemakers_words() {
        assert_eq!(local_statuses("InProgress"), ["Queued", "Running"]);
        assert_eq!(local_statuses("Stopped"), ["Cancelled", "Interrupted"]);
        assert!(local_statuses("Stopping").is_empty());
    }

    #[test]
    fn progress_reads_as_counts() {
        let s = HistorySync { jobs_read: 12400, oldest_read: Some("2025-03-02T10:00:00.000Z".into()), complete: false, jobs_per_minute: 6000 };
        assert_eq!(s.describe(), "SageMaker history: 12,400 jobs read, back to 2025-03-02; older ones are read in the background, about 6,000 a minute.");
    }
}
