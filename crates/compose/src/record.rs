//! The run history's types: what is recorded of each run, and the store that keeps it. The
//! store implementations (SQLite, ...) live outside the engine, behind [`RunStore`]; the REST
//! API, the web UI and the task registry all speak [`RunRecord`].

use serde::{Deserialize, Serialize};

/// One run as the history keeps it (the store, the REST API and the UI share this shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub task_id: String,
    pub workflow_id: String,
    pub input: serde_json::Value,
    /// The output as text: streamed text joined, other values as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

impl RunRecord {
    /// The first line of the first text input (the prompt).
    pub fn title(&self) -> String {
        let text = self
            .input
            .as_object()
            .and_then(|map| map.values().find_map(|v| v.as_str()))
            .unwrap_or("(no prompt)");
        text.lines().next().unwrap_or("").chars().take(80).collect()
    }

    /// The temperature the run used, if it had one.
    pub fn temperature(&self) -> Option<f64> {
        self.input.get("temperature").and_then(|t| t.as_f64())
    }
}

#[cfg(feature = "runtime")]
pub use store::{RunStore, StoreError};

#[cfg(feature = "runtime")]
mod store {
    use super::RunRecord;

    /// Why the history could not be read or written.
    #[derive(Debug, thiserror::Error)]
    #[error("run history: {0}")]
    pub struct StoreError(pub String);

    impl StoreError {
        /// Any error of the database, as a message.
        pub fn from_display(err: impl std::fmt::Display) -> Self {
            Self(err.to_string())
        }
    }

    /// Where runs are kept; every run is saved when it starts and again when it ends.
    #[async_trait::async_trait]
    pub trait RunStore: Send + Sync {
        /// Inserts or replaces the record of a run.
        async fn save(&self, record: &RunRecord) -> Result<(), StoreError>;
        /// Runs, newest first.
        async fn list(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError>;
        async fn get(&self, task_id: &str) -> Result<Option<RunRecord>, StoreError>;
        /// Removes a run; false when there was none.
        async fn delete(&self, task_id: &str) -> Result<bool, StoreError>;
        /// Marks every run that is recorded as not finished as failed with `error`: at start,
        /// those are runs of a server that stopped without finishing them (a crash, a kill).
        /// Returns how many there were.
        async fn fail_unfinished(&self, error: &str) -> Result<u64, StoreError>;
        /// Finishes pending writes and releases the database, at shutdown.
        async fn close(&self) {}
    }
}
