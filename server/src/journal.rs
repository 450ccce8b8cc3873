//! The change journal: every mutation Sagedeck attempts, with its outcome.

use app::overview::ChangeRecord;
use app::ApiError;
use sqlx::SqlitePool;

/// A change about to be recorded.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub actor: &'a str,
    pub backend: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<String>,
    pub after: Option<String>,
    /// `Err` holds the error in words.
    pub outcome: Result<(), String>,
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
        let id = self.insert(change, Some(of)).await?;
        if succeeded {
            if let Err(e) = sqlx::query("UPDATE change_journal SET reverted_by = ? WHERE id = ?").bind(id).bind(of).execute(&self.pool).await {
                tracing::error!(error = %e, of, "could not mark a journal entry as reverted");
            }
        }
        Some(id)
    }

    async fn insert(&self, change: Change<'_>, revert_of: Option<i64>) -> Option<i64> {
        let (outcome, message) = match &change.outcome {
            Ok(()) => ("ok", None),
            Err(m) => ("failed", Some(m.as_str())),
        };
        let result = sqlx::query_scalar::<_, i64>(
            "INSERT INTO change_journal (at, actor, backend, action, target, before, after, outcome, message, revert_of)
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(change.actor)
        .bind(change.backend)
        .bind(change.action)
        .bind(change.target)
        .bind(&change.before)
        .bind(&change.after)
        .bind(outcome)
        .bind(message)
        .bind(revert_of)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, action = change.action, target = change.target, "could not write the change journal");
                None
            }
        }
    }

    pub async fn recent(&self, limit: u32) -> Result<Vec<ChangeRecord>, ApiError> {
        self.select(None, limit).await
    }

    pub async fn get(&self, id: i64) -> Result<ChangeRecord, ApiError> {
        self.select(Some(id), 1)
            .await?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("there is no change #{id} in the journal")))
    }

    async fn select(&self, id: Option<i64>, limit: u32) -> Result<Vec<ChangeRecord>, ApiError> {
        type Row = (i64, String, String, String, String, String, Option<String>, Option<String>, String, Option<String>, Option<i64>, Option<i64>);
        let rows = sqlx::query_as::<_, Row>(
            "SELECT id, at, actor, backend, action, target, before, after, outcome, message, revert_of, reverted_by
             FROM change_journal WHERE ?1 IS NULL OR id = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading the change journal");
            ApiError::Internal("could not read the change journal".into())
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, backend, action, target, before, after, outcome, message, revert_of, reverted_by)| ChangeRecord {
                // An AWS function's deletion cannot be undone: its code is gone.
                revertible: outcome == "ok"
                    && reverted_by.is_none()
                    && REVERTIBLE.contains(&action.as_str())
                    && !(action == "lambda.delete" && backend == "aws"),
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

/// The actions a revert knows how to undo (their `before` is a state the
/// same code path can put back).
pub const REVERTIBLE: &[&str] =
    &["scaling.put", "scaling.remove", "lambda.reserved", "lambda.provisioned", "lambda.local.create", "lambda.delete", "lambda.setup", "iam.fix"];

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_successes_and_failures_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(&format!("sqlite://{}", dir.path().join("j.db").display())).await.unwrap();
        let journal = Journal::new(pool);
        journal
            .record(Change {
                actor: "local",
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
                actor: "local",
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
}
