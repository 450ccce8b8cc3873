//! The SQLite store: one pool, WAL mode, migrations applied at start-up.

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
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
    Migrator::new(EmbeddedMigrations)
        .await
        .map_err(|e| anyhow::anyhow!("the migrations built into this binary cannot be read: {e}"))?
        .run(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("cannot apply migrations to {url:?}: {e}"))?;
    Ok(pool)
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The migrations folder as built into the binary (build.rs), read by
/// sqlx's own rules for a folder (`sqlx::migrate::resolve_blocking`, which
/// `migrate!` used): `<version>_<description>.sql`, `.up.sql`/`.down.sql`
/// for reversible ones, `-- no-transaction` as the first line to opt out of
/// the transaction. The same text gives the same checksums, so a database
/// migrated by a build that used the macro is recognised as it is.
#[derive(Debug)]
pub struct EmbeddedMigrations;

impl EmbeddedMigrations {
    fn list() -> Result<Vec<Migration>, String> {
        let mut migrations = Vec::new();
        for (file, sql) in embedded::MIGRATION_FILES {
            // Like sqlx, a `.sql` file without an underscore is not a migration.
            let Some((version, rest)) = file.split_once('_') else { continue };
            let version: i64 = version
                .parse()
                .map_err(|_| format!("migration file {file:?} does not start with a number and an underscore"))?;
            let kind = MigrationType::from_filename(rest);
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            let no_tx = sql.starts_with("-- no-transaction");
            migrations.push(Migration::new(version, description.into(), kind, Cow::Borrowed(*sql), no_tx));
        }
        migrations.sort_by_key(|m| m.version);
        Ok(migrations)
    }
}

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        Box::pin(async { Self::list().map_err(BoxDynError::from) })
    }
}

/// Declares a struct that a query's row decodes into: each field from the
/// column of its name, by its type, so a column of another type is an error
/// the page is told, not a panic. It writes what `#[derive(sqlx::FromRow)]`
/// would, which needs sqlx's macros crate (see build.rs for its cost).
///
/// A field in a trailing `flatten { … }` is itself such a row, read from
/// the same columns (`#[sqlx(flatten)]` in the derive's terms).
///
/// ```ignore
/// store::sqlite_row! {
///     struct StoredUpload { id: i64, status: String, message: Option<String> }
/// }
/// let rows: Vec<StoredUpload> = sqlx::query_as("SELECT id, status, message FROM dataset_uploads")...
/// ```
macro_rules! sqlite_row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty),* $(,)?
    } $(flatten { $($flat:ident : $flat_ty:ty),* $(,)? })?) => {
        $(#[$meta])* $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
            $($($flat: $flat_ty,)*)?
        }

        impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for $name {
            fn from_row(row: &'r sqlx::sqlite::SqliteRow) -> sqlx::Result<Self> {
                use sqlx::Row as _;
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                    $($($flat: <$flat_ty as sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>>::from_row(row)?,)*)?
                })
            }
        }
    };
}
pub(crate) use sqlite_row;

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

/// A transaction that writes: `BEGIN IMMEDIATE`, so it takes the write lock
/// when it starts and waits out a busy writer (the pool's busy timeout).
/// A deferred transaction (`pool.begin()`) takes the lock at its first
/// write instead, and when another connection committed after the
/// transaction's snapshot, SQLite refuses that upgrade at once with
/// SQLITE_BUSY_SNAPSHOT (code 517), the busy timeout unused: a 500 on
/// creating a local job just as the worker recorded another's end was that.
/// Every transaction that writes opens with this; a read-only one may stay
/// deferred.
pub async fn write_tx(pool: &SqlitePool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
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

    /// What build.rs embeds is what sqlx reads from the folder (as `migrate!`
    /// did): same versions, names, kinds and checksums, so databases
    /// migrated before keep validating.
    #[tokio::test]
    async fn the_embedded_migrations_are_the_folder_as_sqlx_reads_it() {
        let folder = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"));
        let from_folder = Migrator::new(folder).await.unwrap();
        let embedded = Migrator::new(EmbeddedMigrations).await.unwrap();
        let summary = |m: &Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string(), m.migration_type, m.checksum.to_vec(), m.no_tx))
                .collect::<Vec<_>>()
        };
        assert!(from_folder.iter().count() >= 19, "the folder's migrations were read");
        assert_eq!(summary(&embedded), summary(&from_folder));
    }

    sqlite_row! {
        struct Pair { id: i64, label: Option<String> }
    }

    sqlite_row! {
        struct Outer { name: String } flatten { pair: Pair }
    }

    #[tokio::test]
    async fn a_declared_row_decodes_by_column_name_and_refuses_a_wrong_type() {
        let pool = SqlitePoolOptions::new().connect("sqlite::memory:").await.unwrap();
        let row: Pair = sqlx::query_as("SELECT 'x' AS label, 7 AS id").fetch_one(&pool).await.unwrap();
        assert_eq!((row.id, row.label.as_deref()), (7, Some("x")));
        let wrong = sqlx::query_as::<_, Pair>("SELECT 'seven' AS id, NULL AS label").fetch_one(&pool).await;
        assert!(wrong.is_err(), "text in an integer column is an error");
        let missing = sqlx::query_as::<_, Pair>("SELECT 7 AS id").fetch_one(&pool).await;
        assert!(missing.is_err(), "a missing column is an error");
        let outer: Outer = sqlx::query_as("SELECT 'o' AS name, 8 AS id, NULL AS label").fetch_one(&pool).await.unwrap();
        assert_eq!((outer.name.as_str(), outer.pair.id, outer.pair.label), ("o", 8, None));
    }

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

    /// The race `write_tx` exists for: a transaction reads, another
    /// connection commits, the transaction writes. Deferred, SQLite refuses
    /// the write at once (517); with `write_tx` the other writer waits for
    /// the transaction's commit and both writes land.
    #[tokio::test]
    async fn a_write_transaction_is_not_refused_when_another_connection_commits_first() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)").execute(&pool).await.unwrap();
        let other_writer = |v: i64| {
            let pool = pool.clone();
            tokio::spawn(async move { sqlx::query("INSERT INTO t (v) VALUES (?)").bind(v).execute(&pool).await.map(|_| ()) })
        };

        let mut deferred = pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut *deferred).await.unwrap();
        other_writer(1).await.unwrap().unwrap();
        let refused = sqlx::query("INSERT INTO t (v) VALUES (2)").execute(&mut *deferred).await.unwrap_err();
        let code = refused.as_database_error().and_then(|e| e.code()).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("517"), "a deferred transaction is refused with SQLITE_BUSY_SNAPSHOT: {refused}");
        deferred.rollback().await.unwrap();

        let mut tx = write_tx(&pool).await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut *tx).await.unwrap();
        let waiting = other_writer(3);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the other writer waits for the write transaction");
        sqlx::query("INSERT INTO t (v) VALUES (4)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        waiting.await.unwrap().unwrap();
        let values: Vec<i64> = sqlx::query_scalar("SELECT v FROM t ORDER BY v").fetch_all(&pool).await.unwrap();
        assert_eq!(values, [1, 3, 4]);
    }

    #[tokio::test]
    async fn a_bad_url_is_a_clear_error() {
        let err = open("postgres://nope").await.unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
