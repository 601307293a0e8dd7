//! A place where a run waits for a person (spec §14.2), as the API, the history and the web
//! UI show it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One pause of a run: which job, before or after its work, and what the person is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// What an answer names it by (`POST /tasks/{id}/resume`).
    pub id: String,
    pub job_id: String,
    /// The job's run it pauses (the same for its `before` and `after`).
    pub run_id: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// Before a job's work (an answer replaces its input) or after (it replaces its result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}
