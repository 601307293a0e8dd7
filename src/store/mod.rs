//! Run history: every run, recorded when it starts and when it ends, behind a small trait so
//! that another database can be added. SQLite (a file beside the config) is the default.

mod sqlite;

use serde::Serialize;
use serde_json::Value;

pub use sqlite::SqliteStore;

/// One run as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub task_id: String,
    pub workflow_id: String,
    pub input: Value,
    /// The output as text: streamed text joined, other values as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_chunk_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

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
}
