//! The server functions the web UI calls, and the types they exchange. Both builds compile
//! this module; the bodies run on the server only, as thin doors into the task registry and
//! the history store.

mod events;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use compose::record::{Answer, ConversationSummary};
pub use events::{EventStream, Events};

/// How many conversations the sidebar lists at a time.
pub const CONVERSATIONS_PAGE: usize = 50;

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
    /// Whether it takes the conversation as a list input named `messages` (D19).
    pub conversational: bool,
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
    /// `text`, `string`, `number`, `integer`, `boolean`, `select`, `list`, ...
    pub kind: String,
    /// For `select`: the options, comma-separated.
    pub subtype: Option<String>,
    pub default: Option<serde_json::Value>,
    pub required: bool,
    pub description: Option<String>,
    /// For a number: its bounds, when known (then it is a slider).
    pub range: Option<Range>,
}

/// The bounds of a number input, and the step of its slider.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

/// A conversation as the chat shows it: answers rendered, as they were when they streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatConversation {
    pub summary: ConversationSummary,
    pub turns: Vec<ChatTurn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub position: u32,
    /// The version shown.
    pub current: u32,
    pub versions: Vec<ChatAnswer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAnswer {
    pub answer: Answer,
    /// The output as HTML blocks.
    pub blocks: Vec<String>,
    /// What a person can do about the error, if there was one.
    pub hint: Option<String>,
}

/// The events of the chat stream, by name; each carries JSON.
pub mod event {
    /// [`super::ChatStart`]: the run started (and where it is in the conversation).
    pub const START: &str = "start";
    /// [`super::ChatFirstToken`].
    pub const FIRST_TOKEN: &str = "first-token";
    /// A piece of the answer's text (a JSON string).
    pub const PIECE: &str = "piece";
    /// [`super::ChatBlock`]: a finished block of the answer, rendered.
    pub const BLOCK: &str = "block";
    /// [`super::ChatEnd`].
    pub const END: &str = "end";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatStart {
    pub task_id: String,
    pub conversation_id: Option<String>,
    pub position: Option<u32>,
    pub version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatFirstToken {
    pub after_ms: i64,
}

/// A finished block: its HTML replaces the first `consumed` bytes of the text shown so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatBlock {
    pub html: String,
    pub consumed: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEnd {
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    pub hint: Option<String>,
    pub duration_ms: Option<i64>,
    /// An output that was not streamed, rendered (media as players and images).
    pub blocks: Vec<String>,
    /// An output that was not streamed, as it is.
    pub output: Option<serde_json::Value>,
}

#[server(prefix = "/_ui", endpoint = "workflows")]
pub async fn list_workflows() -> Result<Vec<WorkflowInfo>, ServerFnError> {
    let tasks = registry()?;
    Ok(crate::server::ui::workflows(&tasks))
}

/// Runs a workflow, as a turn of a conversation (a new one when `conversation_id` is none; at
/// `position`, replacing what followed, or after the last turn). The answer is an event stream
/// (see [`event`]). Leaving it (closing the page) cancels the run.
#[server(output = EventStream, prefix = "/_ui", endpoint = "chat")]
pub async fn chat(
    workflow_id: String,
    input: String,
    prompt: String,
    conversation_id: Option<String>,
    position: Option<u32>,
) -> Result<Events, ServerFnError> {
    let input =
        serde_json::from_str(&input).map_err(|err| bad_request(format!("invalid input: {err}")))?;
    let run = crate::server::ui::ChatRun {
        workflow_id,
        input,
        prompt,
        conversation_id,
        position,
    };
    Ok(Events::new(crate::server::ui::chat(registry()?, run)))
}

#[server(prefix = "/_ui", endpoint = "cancel")]
pub async fn cancel_run(task_id: String) -> Result<(), ServerFnError> {
    let _ = registry()?.request_cancel(&task_id, "stopped in the web UI");
    Ok(())
}

/// A page of conversations, most recent first, after `before` (an id), whose title or prompts
/// contain `search`.
#[server(prefix = "/_ui", endpoint = "conversations")]
pub async fn list_conversations(
    search: Option<String>,
    before: Option<String>,
) -> Result<Vec<ConversationSummary>, ServerFnError> {
    let store = store()?;
    let search = search.filter(|s| !s.trim().is_empty());
    store
        .list_conversations(
            CONVERSATIONS_PAGE as u32,
            before.as_deref(),
            search.as_deref().map(str::trim),
        )
        .await
        .map_err(ServerFnError::new)
}

#[server(prefix = "/_ui", endpoint = "conversation")]
pub async fn get_conversation(id: String) -> Result<Option<ChatConversation>, ServerFnError> {
    let store = store()?;
    let conversation = store
        .get_conversation(&id)
        .await
        .map_err(ServerFnError::new)?;
    let tasks = registry()?;
    Ok(conversation.map(|c| crate::server::ui::rendered(&tasks, c)))
}

#[server(prefix = "/_ui", endpoint = "rename_conversation")]
pub async fn rename_conversation(id: String, title: String) -> Result<bool, ServerFnError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(bad_request("a title cannot be empty".into()));
    }
    let title: String = title.chars().take(200).collect();
    store()?
        .rename_conversation(&id, &title)
        .await
        .map_err(ServerFnError::new)
}

#[server(prefix = "/_ui", endpoint = "delete_conversation")]
pub async fn delete_conversation(id: String) -> Result<bool, ServerFnError> {
    store()?
        .delete_conversation(&id)
        .await
        .map_err(ServerFnError::new)
}

/// Shows another answer of a turn.
#[server(prefix = "/_ui", endpoint = "select_answer")]
pub async fn select_answer(
    conversation_id: String,
    position: u32,
    version: u32,
) -> Result<bool, ServerFnError> {
    store()?
        .select_answer(&conversation_id, position, version)
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

#[cfg(feature = "ssr")]
fn store() -> Result<std::sync::Arc<dyn compose::record::RunStore>, ServerFnError> {
    registry()?
        .store()
        .cloned()
        .ok_or_else(|| ServerFnError::new("the history is not available"))
}
