//! The server functions the web UI calls, and the types they exchange. Both builds compile
//! this file; the bodies run on the server only, as thin doors into the task registry.

use leptos::prelude::*;
use leptos::server_fn::codec::{StreamingText, TextStream};
use serde::{Deserialize, Serialize};

pub use compose::record::{RunRecord, RunSummary};

/// How many runs the history lists at a time.
pub const HISTORY_PAGE: usize = 50;

/// A workflow as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowInfo {
    pub id: String,
    /// The short name the original used for its tabs.
    pub name: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub inputs: Vec<InputField>,
    /// Whether the output arrives as a stream of text.
    pub streams: bool,
}

impl WorkflowInfo {
    /// The title, else the name, else the id.
    pub fn label(&self) -> String {
        self.title
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| self.id.clone())
    }

    /// For the workflow selector: the name, else the title, else the id.
    pub fn short_label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.label())
    }
}

/// One input of a workflow, from its inferred schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputField {
    pub name: String,
    /// `text`, `string`, `number`, `integer`, `boolean`, `select`, ...
    pub kind: String,
    /// For `select`: the options, comma-separated.
    pub subtype: Option<String>,
    pub default: Option<serde_json::Value>,
    pub required: bool,
    pub description: Option<String>,
}

/// One line of the run stream (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunMessage {
    Started {
        task_id: String,
    },
    FirstToken {
        after_ms: i64,
    },
    Piece {
        text: String,
    },
    Ended {
        /// `completed`, `failed` or `cancelled`.
        status: String,
        error: Option<String>,
        output: Option<serde_json::Value>,
        duration_ms: Option<i64>,
    },
}

#[server(prefix = "/_ui", endpoint = "workflows")]
pub async fn list_workflows() -> Result<Vec<WorkflowInfo>, ServerFnError> {
    let tasks = registry()?;
    Ok(crate::server::ui::workflows(&tasks))
}

/// Runs a workflow; the answer is a stream of [`RunMessage`] lines. Leaving the stream
/// (closing the page) cancels the run.
#[server(output = StreamingText, prefix = "/_ui", endpoint = "run")]
pub async fn run_workflow(workflow_id: String, input: String) -> Result<TextStream, ServerFnError> {
    use futures::StreamExt;
    let input =
        serde_json::from_str(&input).map_err(|err| bad_request(format!("invalid input: {err}")))?;
    let lines = crate::server::ui::run(registry()?, &workflow_id, input);
    Ok(TextStream::new(lines.map(Ok)))
}

#[server(prefix = "/_ui", endpoint = "cancel")]
pub async fn cancel_run(task_id: String) -> Result<(), ServerFnError> {
    let _ = registry()?.request_cancel(&task_id, "stopped in the web UI");
    Ok(())
}

/// A page of the history, newest first; `before` is the last task id of the page before.
#[server(prefix = "/_ui", endpoint = "runs")]
pub async fn list_runs(before: Option<String>) -> Result<Vec<RunSummary>, ServerFnError> {
    let tasks = registry()?;
    crate::server::ui::runs(&tasks, before.as_deref())
        .await
        .map_err(ServerFnError::new)
}

/// One run, whole (its input and output), when it is opened.
#[server(prefix = "/_ui", endpoint = "run_record")]
pub async fn get_run(task_id: String) -> Result<Option<RunRecord>, ServerFnError> {
    let tasks = registry()?;
    crate::server::ui::run_record(&tasks, &task_id)
        .await
        .map_err(ServerFnError::new)
}

#[server(prefix = "/_ui", endpoint = "delete_run")]
pub async fn delete_run(task_id: String) -> Result<(), ServerFnError> {
    let tasks = registry()?;
    crate::server::ui::delete_run(&tasks, &task_id)
        .await
        .map_err(ServerFnError::new)
}

/// Whether the server asks for access keys (then the UI offers to sign out).
#[server(prefix = "/_ui", endpoint = "sign_in_required")]
pub async fn sign_in_required() -> Result<bool, ServerFnError> {
    use crate::server::SignInRequired;
    Ok(use_context::<SignInRequired>().is_some_and(|s| s.0))
}

/// The caller's mistake: answered with 400, not as a failure of the server.
#[cfg(feature = "ssr")]
fn bad_request(message: String) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::BAD_REQUEST);
    }
    ServerFnError::new(message)
}

#[cfg(feature = "ssr")]
fn registry() -> Result<std::sync::Arc<compose::task::TaskRegistry>, ServerFnError> {
    use_context().ok_or_else(|| ServerFnError::new("the task registry is not available"))
}
