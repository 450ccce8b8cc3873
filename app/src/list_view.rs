//! What a list page shows, as its URL says it: a status filter, a name
//! search, where the rows run, and the keyset position ("older than" or
//! "newer than" a cursor). The job history and the endpoint list are both
//! such lists; a `ListKind` says what differs (the page's path, its status
//! choices, how long a name may be, what a cursor looks like), and
//! `ListQuery` does the rest once: reading the URL, writing it back,
//! checking what a client sent.

use crate::components::{count_of, thousands};
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt::Debug;
use std::marker::PhantomData;

/// What differs between two list pages.
pub trait ListKind: Clone + Copy + Debug + Default + PartialEq + Send + Sync + 'static {
    /// Where a row runs (locally or on SageMaker), as the list names it.
    type On: Copy + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The page's path.
    const PATH: &'static str;
    /// The status filter's choices (empty: any status).
    const STATUS_FILTERS: &'static [&'static str];
    /// The longest name search, and the error past it.
    const NAME_MAX: usize;
    const NAME_TOO_LONG: &'static str;
    /// `on` in the URL.
    fn on_slug(on: Self::On) -> &'static str;
    fn on_from_slug(slug: &str) -> Option<Self::On>;
    /// Checks an `older` or `newer` cursor from a URL.
    fn check_cursor(cursor: &str) -> Result<(), ApiError>;
}

/// The filters and the position of a list page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "", default)]
pub struct ListQuery<K: ListKind> {
    /// One of the kind's `STATUS_FILTERS`, or empty for any.
    pub status: String,
    /// Part of the name, any case; empty for any.
    pub name: String,
    /// Only rows that run here; None for both. (`runs_on` is the job
    /// history's older name for it.)
    #[serde(alias = "runs_on")]
    pub on: Option<K::On>,
    /// Rows older than this cursor (the "Older" link).
    pub older: Option<String>,
    /// Rows newer than this cursor (the "Newer" link).
    pub newer: Option<String>,
    #[serde(skip)]
    pub kind: PhantomData<K>,
}

// By hand: a derived Default would ask `K::On: Default`, and "no filter"
// needs no default place to run.
impl<K: ListKind> Default for ListQuery<K> {
    fn default() -> Self {
        ListQuery { status: String::new(), name: String::new(), on: None, older: None, newer: None, kind: PhantomData }
    }
}

impl<K: ListKind> ListQuery<K> {
    /// From the page's URL query: `status`, `q`, `on`, `older`, `newer`;
    /// what the page does not know is left out.
    pub fn from_pairs(get: impl Fn(&str) -> Option<String>) -> ListQuery<K> {
        ListQuery {
            status: get("status").filter(|s| K::STATUS_FILTERS.contains(&s.as_str())).unwrap_or_default(),
            name: get("q").unwrap_or_default(),
            on: get("on").as_deref().and_then(K::on_from_slug),
            older: get("older").filter(|c| !c.is_empty()),
            newer: get("newer").filter(|c| !c.is_empty()),
            kind: PhantomData,
        }
    }

    /// The URL of this view of the list.
    pub fn href(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if !self.status.is_empty() {
            pairs.push(("status", &self.status));
        }
        if !self.name.is_empty() {
            pairs.push(("q", &self.name));
        }
        if let Some(on) = self.on {
            pairs.push(("on", K::on_slug(on)));
        }
        if let Some(c) = &self.older {
            pairs.push(("older", c));
        }
        if let Some(c) = &self.newer {
            pairs.push(("newer", c));
        }
        view_href(K::PATH, &pairs)
    }

    /// The same filters from the first page.
    pub fn first_page(&self) -> ListQuery<K> {
        ListQuery { older: None, newer: None, ..self.clone() }
    }

    /// Whether any filter is set.
    pub fn is_filtered(&self) -> bool {
        self.first_page() != ListQuery::default()
    }

    /// Checks what a URL or a client sent: a known status, a bounded name,
    /// parseable cursors, not both directions at once.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !self.status.is_empty() && !K::STATUS_FILTERS.contains(&self.status.as_str()) {
            return Err(ApiError::Invalid(format!("status: {:?} is not one of {}.", self.status, K::STATUS_FILTERS.join(", "))));
        }
        if self.name.chars().count() > K::NAME_MAX {
            return Err(ApiError::Invalid(K::NAME_TOO_LONG.into()));
        }
        if self.older.is_some() && self.newer.is_some() {
            return Err(ApiError::Invalid("Give older or newer, not both.".into()));
        }
        for c in self.older.iter().chain(&self.newer) {
            K::check_cursor(c)?;
        }
        Ok(())
    }

    /// Whether rows that run `on` belong in this view.
    pub fn wants(&self, on: K::On) -> bool {
        self.on.is_none_or(|o| o == on)
    }

    /// Which way the page reads: newer than its `newer` cursor, else older
    /// than its `older` one (or from the newest row).
    pub fn direction(&self) -> Direction {
        if self.newer.is_some() { Direction::Newer } else { Direction::Older }
    }

    /// The cursor the page reads from, the one `direction` follows.
    pub fn cursor(&self) -> Option<&str> {
        match self.direction() {
            Direction::Newer => self.newer.as_deref(),
            Direction::Older => self.older.as_deref(),
        }
    }

    /// Whether the page starts from a cursor rather than the newest row.
    pub fn from_cursor(&self) -> bool {
        self.older.is_some() || self.newer.is_some()
    }
}

/// How fresh a cache of SageMaker rows is (the poller's, the endpoint
/// list's), shown above the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheState {
    pub refreshed_at: Option<String>,
    /// The last refresh's error in words, while the cache is served instead.
    pub error: Option<String>,
    pub next_refresh_seconds: u64,
}

/// What a page of a list of local and SageMaker rows says beside its rows,
/// the same for every such list. Flattened into the page's JSON, so its
/// fields sit beside the rows (`local_total`, `older`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MixedPage {
    /// Rows that match the filters, on every page.
    pub local_total: u64,
    pub sagemaker_total: u64,
    /// Cursors for the "Older" and "Newer" links, when there are such rows.
    pub older: Option<String>,
    pub newer: Option<String>,
    /// How fresh the SageMaker rows are; None when AWS is not configured.
    pub cache: Option<CacheState>,
    /// Why SageMaker rows are not listed, when they are not.
    pub sagemaker_note: Option<String>,
}

impl MixedPage {
    pub fn total(&self) -> u64 {
        self.local_total + self.sagemaker_total
    }
}

/// The count line ("50 of 12,400 jobs · 400 local, 12,000 on SageMaker")
/// and the Newest / ← Newer / Older → links above a list of local and
/// SageMaker rows.
#[component]
pub fn ListPager<K: ListKind>(
    /// The view the page shows; the links keep its filters.
    query: ListQuery<K>,
    /// The count line's id; its `data-total` is how many rows match.
    id: &'static str,
    /// What a row is, one and many: ("job", "jobs").
    noun: (&'static str, &'static str),
    /// Rows on this page.
    shown: usize,
    /// The totals and the page's cursors.
    page: MixedPage,
) -> impl IntoView {
    let MixedPage { local_total, sagemaker_total, older, newer, .. } = page;
    let total = local_total + sagemaker_total;
    let count = format!(
        "{} · {} local, {} on SageMaker",
        count_of(shown, total, noun.0, noun.1),
        thousands(local_total),
        thousands(sagemaker_total)
    );
    let newest = query.from_cursor().then(|| query.first_page().href());
    let link = |older: Option<String>, newer: Option<String>| ListQuery { older, newer, ..query.first_page() }.href();
    view! {
        <nav class="pager">
            <span class="muted" id=id data-total=total>{count}</span>
            {newest.map(|href| view! { <A href=href>"Newest"</A> })}
            {newer.map(|c| view! { <A href=link(None, Some(c)) attr:rel="prev">"← Newer"</A> })}
            {older.map(|c| view! { <A href=link(Some(c), None) attr:rel="next">"Older →"</A> })}
        </nav>
    }
}

/// Which way a page reads from its cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The first page, or rows older than `older`.
    Older,
    /// Rows newer than `newer`.
    Newer,
}

/// A keyset page from the rows its query read (in the page's reading order,
/// up to `size + 1`): the rows newest first, and the cursors of the "Older"
/// and "Newer" links around them. Reading one row more than the page holds
/// is what says whether more lie beyond it.
pub fn keyset_page<R>(mut rows: Vec<R>, size: usize, direction: Direction, from_cursor: bool, cursor: impl Fn(&R) -> String) -> (Vec<R>, Option<String>, Option<String>) {
    let more = rows.len() > size;
    rows.truncate(size);
    if direction == Direction::Newer {
        rows.reverse();
    }
    let (first, last) = (rows.first().map(&cursor), rows.last().map(&cursor));
    let (older, newer) = match direction {
        // Beyond the last row lie older ones when more were read; newer
        // ones lie before the first when the page started from a cursor.
        Direction::Older => (if more { last } else { None }, if from_cursor { first } else { None }),
        Direction::Newer => (last, if more { first } else { None }),
    };
    (rows, older, newer)
}

/// A list page's URL with its view (filters, position) in the query.
pub fn view_href(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
    format!("{path}?{}", query.join("&"))
}

/// Percent-encodes a URL query value (RFC 3986 unreserved characters stay).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::history::{JobQuery, RunsOn};

    #[test]
    fn the_job_history_accepts_its_older_field_name_for_where_jobs_run() {
        let q: JobQuery = serde_json::from_str(r#"{"status": "", "name": "", "runs_on": "SageMaker", "older": null, "newer": null}"#).unwrap();
        assert_eq!(q.on, Some(RunsOn::SageMaker));
        let q: JobQuery = serde_json::from_str(r#"{"on": "Local"}"#).unwrap();
        assert_eq!(q, JobQuery { on: Some(RunsOn::Local), ..Default::default() });
        assert!(q.is_filtered() && !JobQuery::default().is_filtered());
    }

    #[test]
    fn values_are_percent_encoded_and_an_empty_view_is_the_bare_path() {
        assert_eq!(view_href("/x", &[]), "/x");
        assert_eq!(view_href("/x", &[("q", "a b&c~d")]), "/x?q=a%20b%26c~d");
    }
}
