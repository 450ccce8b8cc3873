//! The change journal: every mutation Sagedeck attempts, with its outcome.

use app::auth::Principal;
use app::overview::{ChangeRecord, JournalQuery};
use app::ApiError;
use sqlx::SqlitePool;

tokio::task_local! {
    /// Who the current request acts for, set by the auth guard around every
    /// request (and by the `user` commands), so that each journal entry names
    /// its user without every call site passing it down.
    static CURRENT: Principal;
}

/// Runs `fut` on behalf of `principal`: journal entries written inside name it.
pub async fn acting_as<F: std::future::Future>(principal: Principal, fut: F) -> F::Output {
    CURRENT.scope(principal, fut).await
}

/// Who the current task acts for; `None` outside a request (the background
/// pollers and trackers, which journal as "system").
pub fn current() -> Option<Principal> {
    CURRENT.try_with(|p| p.clone()).ok()
}

fn current_actor() -> String {
    current().map(|p| p.name).unwrap_or_else(|| "system".to_string())
}

/// A change about to be recorded. The actor is the current request's user.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub backend: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<String>,
    pub after: Option<String>,
    /// `Err` holds the error in words.
    pub outcome: Result<(), String>,
}

/// The journal's filters, shared by its search and its count: ?1 id, ?2
/// actor, ?3 outcome, ?4 backend, ?5 action prefix, ?6 words (a LIKE pattern).
const FILTERS: &str = "(?1 IS NULL OR id = ?1)
               AND (?2 IS NULL OR actor = ?2)
               AND (?3 IS NULL OR outcome = ?3)
               AND (?4 IS NULL OR backend = ?4)
               AND (?5 IS NULL OR action LIKE ?5 || '%')
               AND (?6 IS NULL OR lower(action || ' ' || target || ' ' || coalesce(message, '') || ' ' || actor) LIKE ?6 ESCAPE '\\')";

/// The search words as a LIKE pattern matched as they are; None for none.
fn search_pattern(text: &str) -> Option<String> {
    let text = text.trim().to_lowercase();
    (!text.is_empty()).then(|| crate::store::contains_pattern(&text))
}

#[derive(Clone)]
pub struct Journal {
    pool: SqlitePool,
}

impl Journal {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Records a change. A journal that cannot be written is logged but does
    /// not undo the change it describes: the cloud call already happened.
    /// Returns the entry's id when it was written.
    pub async fn record(&self, change: Change<'_>) -> Option<i64> {
        self.insert(change, None).await
    }

    /// Records a change that undoes entry `of`, and marks `of` as reverted
    /// when the revert succeeded.
    pub async fn record_revert(&self, change: Change<'_>, of: i64) -> Option<i64> {
        let succeeded = change.outcome.is_ok();
        // The revert's entry and the mark on the original commit together: a
        // crash between them must not leave a change revertible twice.
        let result: sqlx::Result<i64> = async {
            let mut tx = crate::store::write_tx(&self.pool).await?;
            let id = insert(&mut *tx, &change, Some(of)).await?;
            if succeeded {
                sqlx::query("UPDATE change_journal SET reverted_by = ? WHERE id = ?").bind(id).bind(of).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(id)
        }
        .await;
        result.map_err(|e| tracing::error!(error = %e, of, "could not journal a revert")).ok()
    }

    async fn insert(&self, change: Change<'_>, revert_of: Option<i64>) -> Option<i64> {
        match insert(&self.pool, &change, revert_of).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, action = change.action, target = change.target, "could not write the change journal");
                None
            }
        }
    }

    /// Marks a state-changing request as being handled (see
    /// migrations/0009_requests_in_flight.sql). `None` when the mark could
    /// not be written: the request still runs, as a journal that cannot be
    /// written does not stop a change either.
    pub async fn begin_request(&self, actor: &str, route: &str, request: &str) -> Option<i64> {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO requests_in_flight (received_at, actor, route, request)
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, ?) RETURNING id",
        )
        .bind(actor)
        .bind(route)
        .bind(request)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| tracing::error!(error = %e, route, "could not mark a request in flight"))
        .ok()
    }

    /// The request has been answered: its handler journaled what it did.
    pub async fn end_request(&self, id: Option<i64>) {
        let Some(id) = id else { return };
        if let Err(e) = sqlx::query("DELETE FROM requests_in_flight WHERE id = ?").bind(id).execute(&self.pool).await {
            tracing::error!(error = %e, id, "could not clear a request in flight");
        }
    }

    /// The request's handler stopped without answering (it panicked): the
    /// mark becomes a failed journal entry now rather than at the next start.
    pub async fn abandon_request(&self, id: Option<i64>, why: &str) {
        let Some(id) = id else { return };
        if let Err(e) = self.interrupted(Some(id), why).await {
            tracing::error!(error = %e, id, "could not journal an abandoned request");
        }
    }

    /// At start-up, before listening: the requests the last process was
    /// handling when it stopped become "request.interrupted" entries (under
    /// the user who sent them). Returns how many there were.
    pub async fn sweep_interrupted(&self) -> anyhow::Result<u64> {
        let why = "the console stopped (killed or crashed) while it was handling this request; \
                   its change may be partly made and may have no entry of its own: check the resource";
        Ok(self.interrupted(None, why).await?)
    }

    /// Turns one mark (or all of them) into journal entries, in one transaction.
    async fn interrupted(&self, id: Option<i64>, why: &str) -> sqlx::Result<u64> {
        let mut tx = crate::store::write_tx(&self.pool).await?;
        let moved = sqlx::query(
            "INSERT INTO change_journal (at, actor, backend, action, target, before, after, outcome, message)
             SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), actor, 'local', 'request.interrupted', route, NULL, request, 'failed',
                    ?1 || ' (received ' || received_at || ')'
             FROM requests_in_flight WHERE ?2 IS NULL OR id = ?2 ORDER BY id",
        )
        .bind(why)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM requests_in_flight WHERE ?1 IS NULL OR id = ?1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// How many entries match the query's filters (its page aside).
    pub async fn count(&self, q: &JournalQuery) -> Result<u64, ApiError> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM change_journal WHERE {FILTERS}"))
            .bind(q.id)
            .bind(q.actor.as_deref().filter(|s| !s.is_empty()))
            .bind(q.outcome.as_deref().filter(|s| !s.is_empty()))
            .bind(q.backend.as_deref().filter(|s| !s.is_empty()))
            .bind(q.action.as_deref().filter(|s| !s.is_empty()))
            .bind(search_pattern(&q.text))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "counting the change journal");
                ApiError::Internal("could not read the change journal".into())
            })?;
        Ok(count as u64)
    }

    pub async fn recent(&self, limit: u32) -> Result<Vec<ChangeRecord>, ApiError> {
        self.search(&JournalQuery { limit, ..Default::default() }).await
    }

    pub async fn get(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        self.search(&JournalQuery { id: Some(id), limit: 1, ..Default::default() })
            .await?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("there is no change #{id} in the journal")))
    }

    /// The entries matching a query, newest first: exact actor, outcome and
    /// backend, an action prefix, words anywhere in target/action/message,
    /// and paging by id (`before`).
    pub async fn search(&self, q: &JournalQuery) -> Result<Vec<ChangeRecord>, ApiError> {
        let like = search_pattern(&q.text);
        type Row = (i64, String, String, String, String, String, Option<String>, Option<String>, String, Option<String>, Option<i64>, Option<i64>);
        let rows = sqlx::query_as::<_, Row>(&format!(
            "SELECT id, at, actor, backend, action, target, before, after, outcome, message, revert_of, reverted_by
             FROM change_journal WHERE {FILTERS} AND (?7 IS NULL OR id < ?7)
             ORDER BY id DESC LIMIT ?8"
        ))
        .bind(q.id)
        .bind(q.actor.as_deref().filter(|s| !s.is_empty()))
        .bind(q.outcome.as_deref().filter(|s| !s.is_empty()))
        .bind(q.backend.as_deref().filter(|s| !s.is_empty()))
        .bind(q.action.as_deref().filter(|s| !s.is_empty()))
        .bind(like)
        .bind(q.before)
        .bind(q.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading the change journal");
            ApiError::Internal("could not read the change journal".into())
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, backend, action, target, before, after, outcome, message, revert_of, reverted_by)| ChangeRecord {
                diff: app::journal::state::diff_of_stored(before.as_deref(), after.as_deref()),
                // An AWS function's deletion cannot be undone: its code is gone.
                revertible: outcome == "ok"
                    && reverted_by.is_none()
                    && REVERTIBLE.contains(&action.as_str())
                    && !(action == "lambda.delete" && backend == "aws")
                    // A SageMaker endpoint can be created again only from a kept configuration.
                    && (action != "endpoint.sagemaker.delete"
                        || after.as_deref().and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()).is_some_and(|a| a["config_kept"] == true)),
                id,
                at,
                actor,
                backend,
                action,
                target,
                before,
                after,
                outcome,
                message,
                revert_of,
                reverted_by,
            })
            .collect())
    }
}

/// The most an entry keeps of each of its texts: an entry is a record, not
/// a store (a hostile client's 65 KB name must not become 65 KB of journal).
pub const MAX_TARGET: usize = 300;
pub const MAX_DOCUMENT: usize = 16 * 1024;
pub const MAX_MESSAGE: usize = 2 * 1024;

/// `text` on one line as it can be read: control characters and the
/// invisible ones that make a name look like another (zero-width, bidi
/// overrides) written as `\u{...}`, cut to `max` characters with the length
/// said.
pub fn printable(text: &str, max: usize) -> String {
    clip(text, max, false)
}

/// Like [`printable`], keeping line breaks and tabs (documents, messages).
pub fn clip(text: &str, max: usize, keep_lines: bool) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for c in text.chars() {
        if shown >= max {
            let rest = text.chars().count() - shown;
            out.push_str(&format!("… ({rest} more characters cut)"));
            break;
        }
        if (keep_lines && matches!(c, '\n' | '\t')) || !(c.is_control() || invisible(c)) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
        shown += 1;
    }
    out
}

/// Characters that print as nothing (or reorder what follows): zero-width
/// spaces and joiners, bidi marks, embeddings, overrides and isolates, the
/// byte-order mark, soft hyphen, invisible operators.
fn invisible(c: char) -> bool {
    matches!(u32::from(c), 0xAD | 0x34F | 0x61C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB | 0xE0000..=0xE007F)
}

async fn insert<'e, E: sqlx::SqliteExecutor<'e>>(executor: E, change: &Change<'_>, revert_of: Option<i64>) -> sqlx::Result<i64> {
    let (outcome, message) = match &change.outcome {
        Ok(()) => ("ok", None),
        Err(m) => ("failed", Some(clip(m, MAX_MESSAGE, true))),
    };
    let document = |d: &Option<String>| d.as_deref().map(|d| clip(d, MAX_DOCUMENT, true));
    sqlx::query_scalar::<_, i64>(
        "INSERT INTO change_journal (at, actor, backend, action, target, before, after, outcome, message, revert_of)
         VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(printable(&current_actor(), MAX_TARGET))
    .bind(change.backend)
    .bind(change.action)
    .bind(printable(change.target, MAX_TARGET))
    .bind(document(&change.before))
    .bind(document(&change.after))
    .bind(outcome)
    .bind(message)
    .bind(revert_of)
    .fetch_one(executor)
    .await
}

/// The actions a revert knows how to undo (their `before` is a state the
/// same code path can put back).
pub const REVERTIBLE: &[&str] =
    &["scaling.put", "scaling.remove", "lambda.reserved", "lambda.provisioned", "lambda.local.create", "lambda.delete", "lambda.setup", "iam.fix", "endpoint.sagemaker.delete"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_and_oversized_texts_are_kept_readable_and_short() {
        assert_eq!(printable("ana", 10), "ana");
        assert_eq!(printable("ad\u{200B}min", 10), "ad\\u{200b}min");
        assert_eq!(printable("\u{202E}nimda", 10), "\\u{202e}nimda");
        assert_eq!(printable("a\nb\u{7}", 10), "a\\u{a}b\\u{7}");
        assert_eq!(clip("a\nb\tc", 10, true), "a\nb\tc");
        let long = "x".repeat(70_000);
        let cut = printable(&long, MAX_TARGET);
        assert!(cut.len() < 400 && cut.ends_with("(69700 more characters cut)"), "{}", cut.len());
    }

    #[tokio::test]
    async fn records_successes_and_failures_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(&format!("sqlite://{}", dir.path().join("j.db").display())).await.unwrap();
        let journal = Journal::new(pool);
        journal
            .record(Change {
                backend: "aws",
                action: "notebook.stop",
                target: "nb-1",
                before: Some("InService".into()),
                after: Some("Stopping".into()),
                outcome: Ok(()),
            })
            .await;
        journal
            .record(Change {
                backend: "aws",
                action: "notebook.start",
                target: "nb-1",
                before: Some("Stopping".into()),
                after: None,
                outcome: Err("it is Stopping".into()),
            })
            .await;
        let rows = journal.recent(10).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].action, "notebook.start");
        assert_eq!(rows[0].outcome, "failed");
        assert_eq!(rows[0].message.as_deref(), Some("it is Stopping"));
        assert_eq!(rows[1].after.as_deref(), Some("Stopping"));
        assert!(rows[1].at.ends_with('Z') && rows[1].at.contains('T'), "{}", rows[1].at);
        assert_eq!(journal.recent(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn requests_left_in_flight_become_interrupted_entries() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(&format!("sqlite://{}", dir.path().join("j.db").display())).await.unwrap();
        let journal = Journal::new(pool);
        let answered = journal.begin_request("ana", "POST /api/scaling/put", "{}").await;
        assert!(answered.is_some());
        journal.end_request(answered).await;
        journal.begin_request("ana", "POST /api/endpoints/local/deploy", r#"{"spec":{"name":"dogs"}}"#).await;
        let panicked = journal.begin_request("bo", "POST /api/iam/fix/apply", "{}").await;
        journal.abandon_request(panicked, "the handler panicked").await;
        let rows = journal.recent(10).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].actor.as_str(), rows[0].target.as_str()), ("bo", "POST /api/iam/fix/apply"));
        assert!(rows[0].message.as_deref().unwrap().starts_with("the handler panicked (received 20"), "{rows:?}");

        // As at start-up: the deploy that never answered is journaled under
        // its user, with what was asked; a second sweep finds nothing.
        assert_eq!(journal.sweep_interrupted().await.unwrap(), 1);
        let rows = journal.recent(10).await.unwrap();
        assert_eq!(rows.len(), 2);
        let deploy = &rows[0];
        assert_eq!((deploy.action.as_str(), deploy.actor.as_str(), deploy.outcome.as_str()), ("request.interrupted", "ana", "failed"));
        assert_eq!(deploy.target, "POST /api/endpoints/local/deploy");
        assert_eq!(deploy.after.as_deref(), Some(r#"{"spec":{"name":"dogs"}}"#));
        assert!(deploy.message.as_deref().unwrap().contains("killed or crashed"), "{deploy:?}");
        assert_eq!(journal.sweep_interrupted().await.unwrap(), 0);
    }
}
