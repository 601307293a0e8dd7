//! The server functions the web UI calls, and the types they exchange. Both builds compile
//! this module; the bodies run on the server only, as thin doors into the task registry and
//! the history store.

mod events;
mod runs;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use compose::record::{Answer, ConversationSummary, Failure, Output, Status};
pub use events::{EventStream, Events};
pub use runs::{get_run, GraphJob, RunView};

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
    /// The tokens the run used and their pace, as shown.
    pub usage: Option<String>,
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
    /// The points the run waits on (a list of `compose::record::Point`; empty: it goes on).
    pub const INTERRUPT: &str = "interrupt";
    /// A step of an agent (a `compose::record::JobEvent` carrying a message it added: the
    /// model's tool calls or answer, a tool's result).
    pub const STEP: &str = "step";
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
    pub status: Status,
    /// Why it failed (its kind tells the hint shown beside it).
    pub error: Option<Failure>,
    pub duration_ms: Option<i64>,
    /// The tokens the upstreams reported and their pace, as shown (see `server::ui::usage_text`).
    pub usage: Option<String>,
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
    let input = uploads()?
        .resolve(input)
        .map_err(|err| bad_request(err.to_string()))?;
    let run = crate::server::ui::ChatRun {
        workflow_id,
        input,
        prompt,
        conversation_id,
        position,
        request_id: request_id(),
    };
    let registry = registry()?;
    // A comment while the model thinks, so that no proxy cuts the answer (D23).
    let liveness = crate::server::sse::Liveness::after(registry.limits().keep_alive);
    let events = crate::server::ui::chat(registry, run);
    Ok(Events::new(crate::server::sse::keep_alive(
        events,
        liveness,
        || crate::server::sse::KEEP_ALIVE.to_string(),
    )))
}

/// The largest file an input takes in the web UI (as OpenAI's audio and image uploads).
pub const MAX_UPLOAD: usize = 25 * 1024 * 1024;

/// A file chosen for an input, kept on the server until a run uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uploaded {
    /// What the run's input carries in the file's place (`upload:ID`).
    pub reference: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
}

/// Receives one file (the first file part of a `multipart/form-data` body), at most
/// 25 MiB; the answer names it for a run's input.
#[server(input = server_fn::codec::MultipartFormData, prefix = "/_ui", endpoint = "upload")]
pub async fn upload(data: server_fn::codec::MultipartData) -> Result<Uploaded, ServerFnError> {
    use crate::server::uploads::UploadError;
    let mut form = data
        .into_inner()
        .ok_or_else(|| bad_request("expected multipart/form-data".into()))?;
    fn invalid(err: impl std::fmt::Display) -> ServerFnError {
        bad_request(format!("invalid upload: {err}"))
    }
    while let Some(mut field) = form.next_field().await.map_err(invalid)? {
        let Some(name) = field.file_name().map(|n| n.to_string()) else {
            continue;
        };
        let media_type = field
            .content_type()
            .map(|m| m.essence_str().to_string())
            .filter(|m| !m.is_empty() && m != "application/octet-stream")
            .unwrap_or_else(|| compose::media::guess_type(&name));
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(invalid)? {
            if bytes.len() + chunk.len() > MAX_UPLOAD {
                return Err(too_large(UploadError::TooLarge.to_string()));
            }
            bytes.extend_from_slice(&chunk);
        }
        let size = bytes.len() as u64;
        let blob = compose::media::Blob {
            media_type: media_type.clone(),
            name: Some(name.clone()),
            bytes,
        };
        let reference = uploads()?.put(blob).map_err(|err| match err {
            UploadError::TooLarge => too_large(err.to_string()),
            other => bad_request(other.to_string()),
        })?;
        return Ok(Uploaded {
            reference,
            name,
            media_type,
            size,
        });
    }
    Err(bad_request("no file in the upload".into()))
}

#[server(prefix = "/_ui", endpoint = "cancel")]
pub async fn cancel_run(task_id: String) -> Result<(), ServerFnError> {
    let _ = registry()?.request_cancel(&task_id, "stopped in the web UI");
    Ok(())
}

/// Answers one point of an interrupted run: an empty answer goes on as it was, JSON is that
/// value, any other text is that text (as on the terminal).
#[server(prefix = "/_ui", endpoint = "resume")]
pub async fn resume_run(
    task_id: String,
    point_id: String,
    answer: String,
) -> Result<(), ServerFnError> {
    let answers =
        serde_json::Map::from_iter([(point_id, compose::record::answer_from_text(&answer))]);
    registry()?
        .resume(&task_id, Some(answers))
        .map(|_| ())
        .map_err(|err| bad_request(err.to_string()))
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
fn too_large(message: String) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
    ServerFnError::new(message)
}

#[cfg(feature = "ssr")]
fn uploads() -> Result<std::sync::Arc<crate::server::uploads::Uploads>, ServerFnError> {
    use_context().ok_or_else(|| ServerFnError::new("uploads are not available"))
}

/// The id of the request being served (see `server::observe`).
#[cfg(feature = "ssr")]
fn request_id() -> Option<String> {
    use_context::<http::request::Parts>()?
        .extensions
        .get::<crate::server::RequestId>()
        .map(|id| id.0.clone())
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
