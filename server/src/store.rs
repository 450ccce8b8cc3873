//! The SQLite store: one pool, WAL mode, migrations applied at start-up.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

pub async fn open(url: &str) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid database URL {url:?}: {e}"))?
        .create_if_missing(true)
        // WAL lets the pages read while a writer commits, and survives a crash
        // without losing committed transactions.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {url:?}: {e}"))?;
    sqlx::migrate!("../migrations")
        .run(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("cannot apply migrations to {url:?}: {e}"))?;
    Ok(pool)
}

/// How a store failure reaches the browser: the SQL error goes to the
/// server log, the page gets which store failed and where to look (SQL text
/// can name tables and paths, which are nobody's business outside).
/// `store::failed("job store")` makes the `map_err` closure.
pub fn failed(what: &'static str) -> impl Fn(sqlx::Error) -> app::ApiError + Copy {
    move |e| {
        tracing::error!(error = %e, store = what, "store failure");
        app::ApiError::Internal(format!("the {what} could not be read or written; the server log says why"))
    }
}

/// The LIKE pattern (with `ESCAPE '\'`) that finds `text` anywhere, the
/// user's `%`, `_` and `\` matched as themselves: `50%_off` → `%50\%\_off%`.
/// SQLite's LIKE ignores ASCII case, and can scan a covering index.
pub fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The FTS5 query that finds `text` as it is typed, anywhere in a trigram-
/// indexed column: one quoted phrase (its quotes doubled), so no character
/// of it is query syntax. Needs three characters or more to match anything.
pub fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Now as the store writes times: RFC 3339, UTC, milliseconds
/// (migrations/README.md).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
        .unwrap_or_default()
}

/// Facts about the open database for the Overview.
pub async fn facts(pool: &SqlitePool) -> sqlx::Result<(String, String, i64)> {
    let version: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(pool).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
        .fetch_one(pool)
        .await?;
    Ok((version, mode, applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_contains_pattern_matches_the_text_as_typed_in_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let matches = |name: &'static str, text: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT ? LIKE ? ESCAPE '\\'").bind(name).bind(contains_pattern(text)).fetch_one(&pool).await.unwrap() == 1
            }
        };
        assert!(matches("Flowers-50%_off", "50%_OFF").await);
        assert!(!matches("Flowers-50xxoff", "50%_off").await, "% and _ are not wildcards");
        assert!(matches("a\\b", "a\\b").await);
        assert!(!matches("ab", "a\\b").await);
    }

    #[tokio::test]
    async fn opens_in_wal_mode_with_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let pool = open(&url).await.unwrap();
        let (version, mode, applied) = facts(&pool).await.unwrap();
        assert!(version.starts_with('3'));
        assert_eq!(mode, "wal");
        assert!(applied >= 1);
        // Opening again applies nothing twice.
        pool.close().await;
        let again = open(&url).await.unwrap();
        assert_eq!(facts(&again).await.unwrap().2, applied);
    }

    #[tokio::test]
    async fn a_bad_url_is_a_clear_error() {
        let err = open("postgres://nope").await.unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
