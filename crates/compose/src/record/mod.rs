//! The run history's types: what is recorded of each run, and the store that keeps it. The
//! store implementations (SQLite, ...) live outside the engine, behind [`RunStore`]; the REST
//! API, the web UI and the task registry all speak [`RunRecord`].

use serde::{Deserialize, Serialize};

mod failure;
mod job;
mod output;
mod point;
mod status;
mod view;

pub use failure::{Failure, FailureKind};
pub use job::{size_within, too_large, JobEvent, JobStage, Kept, VALUE_ROOM};
pub use output::Output;
pub use point::{answer_from_text, Phase, Point};
pub use status::Status;
pub use view::TaskView;

/// One run as the history keeps it (the store, the REST API and the UI share this shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub task_id: String,
    pub workflow_id: String,
    pub input: serde_json::Value,
    /// What it produced so far (`output_type` and `output` in JSON).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The `X-Request-Id` of the request that started the run (given by the client, or made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The trace the run is exported as (`tracer:`), as 32 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The tokens the upstreams reported the run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// The files its input carried, kept apart as bytes (its input names each `upload:ID`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<StoredUpload>,
    /// The points it waits on, while interrupted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interrupt: Vec<Point>,
    /// What happened to its jobs, in order (kept as it waits and once it ended).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobEvent>,
}

/// A file a run's input carried, as the history keeps it: its bytes are read by id, until
/// the retention (`controller.history.retention`) removes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUpload {
    pub id: String,
    /// Where it was in the input (`image`, `pages[1]`).
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub media_type: String,
    pub size: u64,
    /// Its bytes are gone (too old, or room was needed for newer ones).
    #[serde(default)]
    pub removed: bool,
}

/// What an input value that was a file becomes in the history: `upload:ID`.
pub const UPLOAD_PREFIX: &str = "upload:";

/// Tokens a run used, as its upstreams reported them (either count may be missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
}

impl TokenUsage {
    /// `None` when nothing was reported.
    pub fn reported(self) -> Option<Self> {
        (self != Self::default()).then_some(self)
    }

    /// Completion tokens per second over `streaming_ms` (the time from the first piece to the
    /// end), for the UI beside an answer.
    pub fn per_second(&self, streaming_ms: i64) -> Option<f64> {
        let tokens = self.completion_tokens?;
        (streaming_ms > 0).then(|| tokens as f64 * 1000.0 / streaming_ms as f64)
    }
}

impl RunRecord {
    /// The first line of the first text input (the prompt; not a file), at most 80 characters.
    pub fn title(&self) -> String {
        let is_file = |text: &str| text.starts_with("data:") || text.starts_with(UPLOAD_PREFIX);
        let text = self
            .input
            .as_object()
            .and_then(|map| {
                map.values()
                    .filter_map(|v| v.as_str())
                    .find(|t| !is_file(t))
            })
            .unwrap_or("(no prompt)");
        text.lines().next().unwrap_or("").chars().take(80).collect()
    }

    /// The run as the history lists it: no input or output, only what identifies it.
    pub fn summary(&self) -> RunSummary {
        let settings = self
            .input
            .as_object()
            .map(|map| {
                map.iter()
                    .filter(|(_, v)| v.is_number() || v.is_boolean())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        RunSummary {
            task_id: self.task_id.clone(),
            workflow_id: self.workflow_id.clone(),
            title: self.title(),
            settings,
            status: self.status,
            error: self
                .error
                .as_ref()
                .map(|e| e.shortened(SUMMARY_ERROR_CHARS)),
            started_at: self.started_at,
            first_chunk_ms: self.first_chunk_ms,
            duration_ms: self.duration_ms,
        }
    }
}

/// A run in the history's list: small whatever the run's input and output (the detail is
/// [`RunRecord`], fetched by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub task_id: String,
    pub workflow_id: String,
    /// The first line of the prompt.
    pub title: String,
    /// The input's numbers and booleans (the temperature, ...).
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub status: Status,
    /// The error, its message shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

impl RunSummary {
    /// The temperature the run used, if it had one.
    pub fn temperature(&self) -> Option<f64> {
        self.settings.get("temperature").and_then(|t| t.as_f64())
    }
}

/// How long an error may be in a summary.
pub const SUMMARY_ERROR_CHARS: usize = 300;

/// A conversation as the sidebar lists it (D19): a sequence of turns with one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: String,
    pub workflow_id: String,
    /// The first prompt's first line, until renamed.
    pub title: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When it last had a new answer (or was renamed).
    pub updated_at: i64,
}

/// A conversation with its turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    #[serde(flatten)]
    pub summary: ConversationSummary,
    pub turns: Vec<Turn>,
}

/// One prompt of a conversation and its answers: one, or more once regenerated or edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub position: u32,
    /// The version shown (and sent as context for the turns after it).
    pub current: u32,
    pub versions: Vec<Answer>,
}

/// One answer of a turn: the prompt it answered and how its run went (the run itself is in
/// the history: `task_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub version: u32,
    pub prompt: String,
    pub task_id: String,
    /// The run's status; `None` when the run is no longer in the history.
    pub status: Option<Status>,
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// An agent's steps (its `message` job events), shown in the answer as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<JobEvent>,
    // The server turns these two into the text the chat shows: the browser build leaves them
    // out (serde skips what it does not know), which keeps their reading out of the WASM.
    #[cfg(feature = "runtime")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk_ms: Option<i64>,
    #[cfg(feature = "runtime")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
}

impl Turn {
    /// The answer shown.
    pub fn shown(&self) -> Option<&Answer> {
        self.versions
            .iter()
            .find(|a| a.version == self.current)
            .or_else(|| self.versions.last())
    }
}

/// A conversation's title from its first prompt: the first line, at most 80 characters.
pub fn title_of(prompt: &str) -> String {
    let line = prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let title: String = line.trim().chars().take(80).collect();
    if title.is_empty() {
        "New chat".into()
    } else {
        title
    }
}

#[cfg(feature = "runtime")]
pub use store::{Pruned, RunStore, StoreError};

#[cfg(feature = "runtime")]
mod store {
    use super::{Conversation, ConversationSummary, Failure, RunRecord, RunSummary, StoredUpload};
    use crate::config::Retention;

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

    /// What one pass of the retention removed.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Pruned {
        pub uploads: u64,
        pub runs: u64,
    }

    /// Where runs are kept; every run is saved when it starts and again when it ends. The
    /// files a run's input carries are kept apart, once, as bytes (the input names them
    /// `upload:ID`), within `controller.history.retention`'s size: the oldest go first.
    #[async_trait::async_trait]
    pub trait RunStore: Send + Sync {
        /// Records a run: the first save of a task id records it whole; later ones update its
        /// progress (status, output, error, timings) and keep the input it was saved with.
        async fn save(&self, record: &RunRecord) -> Result<(), StoreError>;
        /// Summaries of at most `limit` runs, newest first, from the one started just before
        /// `before` (a task id) when given.
        async fn list(
            &self,
            limit: u32,
            before: Option<&str>,
        ) -> Result<Vec<RunSummary>, StoreError>;
        async fn get(&self, task_id: &str) -> Result<Option<RunRecord>, StoreError>;
        /// Removes a run; false when there was none.
        async fn delete(&self, task_id: &str) -> Result<bool, StoreError>;
        /// Marks every run that is recorded as not finished as failed with `failure`: at start,
        /// those are runs of a server that stopped without finishing them (a crash, a kill).
        /// Returns how many there were.
        async fn fail_unfinished(&self, failure: &Failure) -> Result<u64, StoreError>;
        /// Records a new conversation.
        async fn create_conversation(
            &self,
            conversation: &ConversationSummary,
        ) -> Result<(), StoreError>;
        /// Adds the answer of run `task_id` to prompt `prompt`, at `position` (a new version
        /// of that turn, shown from now on) or after the last turn; the turns after it are
        /// dropped (they followed from another answer). Returns the position and the version.
        async fn add_answer(
            &self,
            conversation_id: &str,
            position: Option<u32>,
            prompt: &str,
            task_id: &str,
            at: i64,
        ) -> Result<(u32, u32), StoreError>;
        /// Shows another version of a turn; false when there is none.
        async fn select_answer(
            &self,
            conversation_id: &str,
            position: u32,
            version: u32,
        ) -> Result<bool, StoreError>;
        /// Conversations, most recently active first, from the one just before `before`;
        /// `search` keeps those whose title or prompts contain it.
        async fn list_conversations(
            &self,
            limit: u32,
            before: Option<&str>,
            search: Option<&str>,
        ) -> Result<Vec<ConversationSummary>, StoreError>;
        async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;
        /// False when there is no such conversation.
        async fn rename_conversation(&self, id: &str, title: &str) -> Result<bool, StoreError>;
        /// Removes a conversation (its runs stay in the history); false when there was none.
        async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError>;
        /// A file a run's input carried: what is known of it, and its bytes unless removed.
        async fn upload(
            &self,
            task_id: &str,
            upload_id: &str,
        ) -> Result<Option<(StoredUpload, Option<Vec<u8>>)>, StoreError>;
        /// Applies the retention: removes the uploads and the runs that are older than it
        /// keeps (not runs that have not ended). Returns how many of each went.
        async fn prune(&self, retention: &Retention) -> Result<Pruned, StoreError>;
        /// Finishes pending writes and releases the database, at shutdown.
        async fn close(&self) {}
    }
}
