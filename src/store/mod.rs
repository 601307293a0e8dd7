//! Run history: every run, recorded when it starts and when it ends, behind a small trait so
//! that another database can be added. SQLite (a file beside the config) is the default.

mod sqlite;

pub use crate::api::RunRecord;
pub use sqlite::SqliteStore;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("run history: {0}")]
pub struct StoreError(String);

/// Where runs are kept.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// Inserts or replaces the record of a run.
    async fn save(&self, record: &RunRecord) -> Result<(), StoreError>;
    /// Runs, newest first.
    async fn list(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError>;
    async fn get(&self, task_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Removes a run; false when there was none.
    async fn delete(&self, task_id: &str) -> Result<bool, StoreError>;
    /// Finishes pending writes and releases the database, at shutdown.
    async fn close(&self) {}
}
