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
    pub async fn record(&self, change: Change<'_>) {
        let (outcome, message) = match &change.outcome {
            Ok(()) => ("ok", None),
            Err(m) => ("failed", Some(m.as_str())),
        };
        let result = sqlx::query(
            "INSERT INTO change_journal (at, actor, backend, action, target, before, after, outcome, message)
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(change.actor)
        .bind(change.backend)
        .bind(change.action)
        .bind(change.target)
        .bind(&change.before)
        .bind(&change.after)
        .bind(outcome)
        .bind(message)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, action = change.action, target = change.target, "could not write the change journal");
        }
    }

    pub async fn recent(&self, limit: u32) -> Result<Vec<ChangeRecord>, ApiError> {
        let rows = sqlx::query_as::<_, (i64, String, String, String, String, String, Option<String>, Option<String>, String, Option<String>)>(
            "SELECT id, at, actor, backend, action, target, before, after, outcome, message
             FROM change_journal ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading the change journal");
            ApiError::Internal("could not read the change journal".into())
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, backend, action, target, before, after, outcome, message)| ChangeRecord {
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
            })
            .collect())
    }
}

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
