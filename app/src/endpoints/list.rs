//! The endpoint list: local endpoints and the SageMaker endpoints the
//! poller has cached, in one list, filtered, sorted (newest first) and paged
//! on the server by keyset. A cursor names the row a page ends at (creation
//! time, where it runs, name). The filters and the cursor live in the page's
//! URL, so a view can be shared; opening it makes no AWS call.

use super::{Backend, EndpointSummary};
use crate::list_view::{keyset_page, Direction, ListKind, ListQuery, MixedPage};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// Rows per page.
pub const PAGE_SIZE: usize = 50;

/// The status filter's choices: SageMaker's statuses grouped as an operator
/// asks ("what is serving", "what is changing", "what is broken").
pub const STATUS_FILTERS: [&str; 3] = ["InService", "Changing", "Failed"];

/// The statuses (SageMaker's words; local endpoints use two of them) a
/// filter stands for.
pub fn statuses_of(filter: &str) -> &'static [&'static str] {
    match filter {
        "InService" => &["InService"],
        "Changing" => &["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"],
        "Failed" => &["Failed", "OutOfService", "UpdateRollbackFailed"],
        _ => &[],
    }
}

/// An endpoint in these statuses is on its way somewhere: the poller looks
/// at it again soon.
pub fn is_changing(status: &str) -> bool {
    statuses_of("Changing").contains(&status)
}

/// Where a page starts or ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCursor {
    pub created_at: String,
    pub backend: Backend,
    pub name: String,
}

impl EndpointCursor {
    /// `2026-12-01T17:01:02.123Z~sagemaker~flowers-prod`: readable in a URL.
    pub fn encode(&self) -> String {
        format!("{}~{}~{}", self.created_at, self.backend.slug(), self.name)
    }

    pub fn parse(text: &str) -> Result<EndpointCursor, ApiError> {
        let bad = || ApiError::Invalid(format!("{text:?} is not a position in the endpoint list; open the list from its first page."));
        let mut parts = text.splitn(3, '~');
        let (Some(created_at), Some(backend), Some(name)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
        let backend = Backend::from_slug(backend).map_err(|_| bad())?;
        let time_ok = created_at.len() <= 40 && created_at.bytes().all(|b| b.is_ascii_digit() || b"-:.TZ+".contains(&b));
        // Endpoint names, local and SageMaker: letters, digits and hyphens, at most 63.
        let name_ok = !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !time_ok || !name_ok {
            return Err(bad());
        }
        Ok(EndpointCursor { created_at: created_at.to_string(), backend, name: name.to_string() })
    }
}

/// The endpoint list as a `ListKind`: `/endpoints`, grouped statuses,
/// endpoint names (at most 63 characters), endpoint cursors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Endpoints;

impl ListKind for Endpoints {
    type On = Backend;
    const PATH: &'static str = "/endpoints";
    const STATUS_FILTERS: &'static [&'static str] = &STATUS_FILTERS;
    const NAME_MAX: usize = 63;
    const NAME_TOO_LONG: &'static str = "q: an endpoint name has at most 63 characters.";

    fn on_slug(on: Backend) -> &'static str {
        on.slug()
    }

    fn on_from_slug(slug: &str) -> Option<Backend> {
        Backend::from_slug(slug).ok()
    }

    fn check_cursor(cursor: &str) -> Result<(), ApiError> {
        EndpointCursor::parse(cursor).map(|_| ())
    }
}

/// What the endpoint list shows: the filters and where the page is.
pub type EndpointQuery = ListQuery<Endpoints>;

/// One page of the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointPage {
    /// Newest first.
    pub endpoints: Vec<EndpointSummary>,
    #[serde(flatten)]
    pub list: MixedPage,
}

/// The page from the rows a page query read (see [`keyset_page`]).
pub fn page_of(rows: Vec<EndpointSummary>, size: usize, direction: Direction, from_cursor: bool) -> (Vec<EndpointSummary>, Option<String>, Option<String>) {
    keyset_page(rows, size, direction, from_cursor, |e| EndpointCursor { created_at: e.created_at.clone().unwrap_or_default(), backend: e.backend, name: e.name.clone() }.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(created: &str, backend: Backend, name: &str) -> EndpointSummary {
        EndpointSummary {
            name: name.into(),
            backend,
            status: "InService".into(),
            instances: 1,
            instance_type: String::new(),
            model: String::new(),
            created_at: Some(created.into()),
        }
    }

    #[test]
    fn a_cursor_reads_back_and_refuses_what_is_not_one() {
        let c = EndpointCursor { created_at: "2026-12-01T17:01:02.123Z".into(), backend: Backend::SageMaker, name: "flowers-prod".into() };
        assert_eq!(c.encode(), "2026-12-01T17:01:02.123Z~sagemaker~flowers-prod");
        assert_eq!(EndpointCursor::parse(&c.encode()).unwrap(), c);
        for bad in ["", "x", "2026~mars~a", "2026~local~", "2026~local~a b", "2026'~local~a", &format!("2026~local~{}", "a".repeat(64))] {
            assert!(EndpointCursor::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn filters_live_in_the_url_and_bad_ones_are_refused() {
        let q = EndpointQuery { status: "Changing".into(), name: "dogs & cats".into(), on: Some(Backend::SageMaker), ..Default::default() };
        assert_eq!(q.href(), "/endpoints?status=Changing&q=dogs%20%26%20cats&on=sagemaker");
        let pairs = [("status", "Changing"), ("q", "dogs & cats"), ("on", "sagemaker")];
        assert_eq!(EndpointQuery::from_pairs(|k| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())), q);
        assert_eq!(EndpointQuery::default().href(), "/endpoints");
        assert!(EndpointQuery { status: "Sleeping".into(), ..Default::default() }.validate().is_err());
        assert!(EndpointQuery { name: "x".repeat(64), ..Default::default() }.validate().is_err());
        assert!(EndpointQuery { older: Some("nowhere".into()), ..Default::default() }.validate().is_err());
        let c = "2026-12-01T00:00:00.000Z~local~a".to_string();
        assert!(EndpointQuery { older: Some(c.clone()), newer: Some(c.clone()), ..Default::default() }.validate().is_err());
        assert!(EndpointQuery { older: Some(c), ..Default::default() }.validate().is_ok());
    }

    #[test]
    fn status_groups_cover_sagemakers_statuses() {
        for s in ["OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack", "InService", "Deleting", "Failed", "UpdateRollbackFailed"] {
            assert_eq!(STATUS_FILTERS.iter().filter(|f| statuses_of(f).contains(&s)).count(), 1, "{s}");
        }
        assert!(is_changing("Updating") && !is_changing("InService"));
    }

    #[test]
    fn pages_have_links_only_where_rows_lie_beyond() {
        let rows: Vec<EndpointSummary> = (0..4).rev().map(|i| row(&format!("2026-12-0{}T00:00:00.000Z", i + 1), Backend::Local, &format!("e{i}"))).collect();
        // The first page of 3, read newest first with one more: an older link only.
        let (page, older, newer) = page_of(rows.clone(), 3, Direction::Older, false);
        assert_eq!(page.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["e3", "e2", "e1"]);
        assert_eq!(older.as_deref(), Some("2026-12-02T00:00:00.000Z~local~e1"));
        assert_eq!(newer, None);
        // A page read towards newer rows (oldest first) comes back newest first.
        let ascending: Vec<EndpointSummary> = rows.iter().rev().cloned().collect();
        let (page, older, newer) = page_of(ascending[..2].to_vec(), 3, Direction::Newer, true);
        assert_eq!(page.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["e1", "e0"]);
        assert_eq!(older.as_deref(), Some("2026-12-01T00:00:00.000Z~local~e0"));
        assert_eq!(newer, None, "nothing newer lies beyond");
    }
}
