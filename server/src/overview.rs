//! The Overview's facts: local runtime, store and AWS, gathered per request.

use crate::aws::Aws;
use crate::journal::Journal;
use app::overview::{BackendsReport, ChangeRecord, LocalRuntimeStatus, StatusService, StoreStatus};
use app::ApiError;
use sqlx::SqlitePool;
use std::sync::Arc;

pub struct ConsoleStatus {
    pub listen: String,
    pub data_dir: String,
    pub database: String,
    pub pool: SqlitePool,
    pub aws: Arc<Aws>,
    pub journal: Journal,
}

#[async_trait::async_trait]
impl StatusService for ConsoleStatus {
    async fn report(&self) -> BackendsReport {
        let local = tokio::task::spawn_blocking(crate::local::probe).await.unwrap_or_else(|e| LocalRuntimeStatus {
            device: "unknown".into(),
            cuda_devices: 0,
            threads: 0,
            mkl: false,
            self_check: Err(format!("the libtorch probe crashed: {e}")),
        });
        let (sqlite_version, journal_mode, migrations_applied) = match crate::store::facts(&self.pool).await {
            Ok(facts) => facts,
            Err(e) => {
                tracing::error!(error = %e, "reading store facts");
                ("unreadable".into(), "unknown".into(), 0)
            }
        };
        BackendsReport {
            listen: self.listen.clone(),
            local,
            store: StoreStatus {
                data_dir: self.data_dir.clone(),
                database: self.database.clone(),
                sqlite_version,
                journal_mode,
                migrations_applied,
            },
            aws: self.aws.status().await,
        }
    }

    async fn search_changes(&self, query: app::overview::JournalQuery) -> Result<Vec<ChangeRecord>, ApiError> {
        self.journal.search(&query).await
    }

    async fn count_changes(&self, query: app::overview::JournalQuery) -> Result<u64, ApiError> {
        self.journal.count(&query).await
    }
}
