//! An OpenAI-compatible endpoint (D30), on the API's port outside `base_path`: `GET
//! /v1/models` lists the conversation workflows (those that take `messages`, a list), and
//! `POST /v1/chat/completions` runs the one its `model` names with the request's `messages`
//! (and its other fields, `temperature` and the like, given to inputs of the same name),
//! answering OpenAI's `chat.completion`, or with `stream: true` its `chat.completion.chunk`
//! events ending in `data: [DONE]`. Clients that speak OpenAI's API (Open WebUI, LibreChat, the
//! SDKs) reach the workflows as models. Runs are tasks like any other; the access keys apply.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::ApiState;
use crate::server::sse::{self, CancelOnDrop};
use crate::server::RequestId;
use compose::record::{Failure, Status, TokenUsage};
use compose::task::{Follow, StartError, Task};
use compose::workflow::Access;

/// The endpoint's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(state)
}

/// An error as OpenAI's API answers one: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct OpenAiError {
    status: StatusCode,
    message: String,
    code: Option<&'static str>,
}

impl OpenAiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
        }
    }

    /// Its `type`, by its status, as OpenAI names them.
    fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        }
    }

    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind(), "param": null, "code": self.code}})
    }
}

impl From<Failure> for OpenAiError {
    fn from(failure: Failure) -> Self {
        let status =
            StatusCode::from_u16(failure.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, failure.message)
    }
}

impl From<StartError> for OpenAiError {
    fn from(err: StartError) -> Self {
        err.failure().into()
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// A refusal of a `/v1/` request by the layers around the endpoint (a missing access key, too
/// many wrong ones, a refused origin), in OpenAI's shape, which OpenAI's clients read.
pub async fn refusals_in_openai_shape(request: Request, next: Next) -> Response {
    let ours = request.uri().path().starts_with("/v1/");
    let response = next.run(request).await;
    let status = response.status();
    if !ours || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, REFUSAL_LIMIT)
        .await
        .unwrap_or_default();
    let said: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if said.get("error").is_some() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let message = match said.get("detail").and_then(Value::as_str) {
        Some(detail) => detail.to_string(),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let (json_parts, body) = OpenAiError::new(status, message)
        .into_response()
        .into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, body)
}

/// The most of a refusal's body read to restate it.
const REFUSAL_LIMIT: usize = 64 * 1024;

/// `GET /v1/models`: each public conversation workflow, its id the model's.
async fn models(State(state): State<ApiState>) -> Json<Value> {
    let created = now();
    let data: Vec<Value> = state
        .tasks
        .engine()
        .public_workflows()
        .filter(|workflow| workflow.is_conversation())
        .map(|workflow| {
            json!({"id": workflow.id, "object": "model", "created": created, "owned_by": "model-compose"})
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// A chat completion request: what the endpoint reads of it, the rest by name.
#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Value>,
    #[serde(default)]
    stream: bool,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

/// What names the answer: the completion's id (the run's), when it was made, the model.
struct Completion {
    id: String,
    created: u64,
    model: String,
}

impl Completion {
    /// One `chat.completion.chunk` event: `delta`, and how the answer ended once it has.
    fn chunk(&self, delta: Value, finish: Option<&str>, usage: Option<Value>) -> String {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        sse::event(&chunk.to_string())
    }
}

impl Completion {
    /// What a content chunk's JSON has before and after its text (as [`Completion::chunk`]
    /// writes it), made once per answer.
    fn content_frame(&self) -> (String, String) {
        let head = format!(
            r#"{{"id":{},"object":"chat.completion.chunk","created":{},"model":{},"choices":[{{"index":0,"delta":{{"content":"#,
            Value::from(self.id.as_str()),
            self.created,
            Value::from(self.model.as_str()),
        );
        (head, r#"},"finish_reason":null}]}"#.to_string())
    }
}

/// `POST /v1/chat/completions`.
async fn chat_completions(
    State(state): State<ApiState>,
    request: Request,
) -> Result<Response, OpenAiError> {
    let request_id = RequestId::of(&request);
    let traceparent = crate::server::observe::traceparent(request.headers());
    let body = axum::body::to_bytes(request.into_body(), super::MAX_REQUEST_BODY)
        .await
        .map_err(|err| OpenAiError::new(StatusCode::PAYLOAD_TOO_LARGE, err.to_string()))?;
    let chat = parse(&body)?;
    let engine = state.tasks.engine();
    let workflow = engine
        .workflow(Some(&chat.model), Access::Public)
        .ok()
        .filter(|workflow| workflow.is_conversation())
        .ok_or_else(|| OpenAiError {
            code: Some("model_not_found"),
            ..OpenAiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "The model `{}` does not exist: it is none of this server's conversation \
                     workflows (GET /v1/models lists them)",
                    chat.model
                ),
            )
        })?;
    // The messages, and each other field an input of the workflow is named for.
    let mut input = Map::new();
    input.insert("messages".into(), Value::Array(chat.messages));
    for (name, value) in chat.fields {
        let named = workflow
            .input_schema
            .iter()
            .any(|v| v.name.as_deref() == Some(name.as_str()));
        if named && name != "model" {
            input.insert(name, value);
        }
    }
    let task = state.tasks.start(
        Some(&workflow.id),
        Value::Object(input),
        (request_id, traceparent),
    )?;
    let completion = Completion {
        id: format!("chatcmpl-{}", task.id),
        created: now(),
        model: chat.model,
    };
    let mut response = match chat.stream {
        true => streamed(task.clone(), completion),
        false => whole(task.clone(), completion).await?,
    };
    if let Ok(id) = HeaderValue::from_str(&task.id) {
        response.headers_mut().insert("x-task-id", id);
    }
    Ok(response)
}

/// The request, or what is wrong with it.
fn parse(body: &Bytes) -> Result<ChatRequest, OpenAiError> {
    serde_json::from_slice(body).map_err(|err| {
        OpenAiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body: {err} (a chat completion request needs `model` and `messages`)"),
        )
    })
}

/// The answer once the run has ended: a `chat.completion`.
async fn whole(task: Arc<Task>, completion: Completion) -> Result<Response, OpenAiError> {
    // A client that leaves cancels the run (D8).
    let owner = CancelOnDrop::new(task.clone());
    let view = task.settled().await;
    if view.status == Status::Interrupted {
        return Err(waits_for_a_person(&task));
    }
    owner.disarm();
    if view.status != Status::Completed {
        let failure = view
            .error
            .unwrap_or_else(|| Failure::unknown(view.status.to_string()));
        return Err(failure.into());
    }
    let content = text_of(view.output.as_ref());
    Ok(Json(json!({
        "id": completion.id, "object": "chat.completion", "created": completion.created,
        "model": completion.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": usage(&task),
    }))
    .into_response())
}

/// The answer as it comes: `chat.completion.chunk` events, then `data: [DONE]`; a run that
/// fails once streaming ends with an `error` event, as OpenAI's API does. The pieces that are
/// ready together go out in one write, each its own chunk, framed around the text without
/// building a JSON value per token.
fn streamed(task: Arc<Task>, completion: Completion) -> Response {
    let owner = CancelOnDrop::new(task.clone());
    let events = async_stream::stream! {
        let _owner = owner;
        yield completion.chunk(json!({"role": "assistant", "content": ""}), None, None);
        let (head, tail) = completion.content_frame();
        let mut follow = std::pin::pin!(task.follow(0).ready_chunks(READY_AT_ONCE));
        let mut said = false;
        while let Some(items) = follow.next().await {
            let mut out = String::new();
            for item in items {
                if let Some(text) = item.text() {
                    said = true;
                    out.push_str("data: ");
                    out.push_str(&head);
                    out.push_str(&Value::from(text).to_string());
                    out.push_str(&tail);
                    out.push_str("\n\n");
                    continue;
                }
                let ending = match item {
                    Follow::Interrupt(points) if !points.is_empty() => {
                        sse::event(&waits_for_a_person(&task).body().to_string())
                    }
                    Follow::End(Status::Completed, _) => {
                        // A workflow that answers a value at the end says it all at once.
                        if !said {
                            let content = text_of(task.view().output.as_ref());
                            out.push_str(&completion.chunk(json!({"content": content}), None, None));
                        }
                        out.push_str(&completion.chunk(json!({}), Some("stop"), usage(&task)));
                        sse::event("[DONE]")
                    }
                    Follow::End(status, failure) => {
                        let failure = failure.unwrap_or_else(|| Failure::unknown(status.to_string()));
                        sse::event(&OpenAiError::from(failure).body().to_string())
                    }
                    _ => continue,
                };
                out.push_str(&ending);
                yield out;
                return;
            }
            if !out.is_empty() {
                yield out;
            }
        }
    };
    sse::event_stream(Body::from_stream(
        events.map(Ok::<_, std::convert::Infallible>),
    ))
}

/// The most pieces made into one write.
const READY_AT_ONCE: usize = 64;

/// A run that paused for a person: this endpoint has no way to answer it, so it is cancelled.
fn waits_for_a_person(task: &Task) -> OpenAiError {
    task.request_cancel(
        "it waited for a person, which the OpenAI-compatible endpoint cannot answer",
    );
    OpenAiError::new(
        StatusCode::CONFLICT,
        "The workflow paused for a person (an interrupt), which this endpoint cannot answer: \
         run it through the REST API or the web UI",
    )
}

/// An output as an answer's text: text as it is, anything else as JSON.
fn text_of(output: Option<&Value>) -> String {
    match output {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The tokens the run's upstreams reported, as OpenAI counts them; none when none did.
fn usage(task: &Task) -> Option<Value> {
    let TokenUsage {
        prompt_tokens,
        completion_tokens,
    } = task.usage.count().reported()?;
    let (prompt, completion) = (prompt_tokens.unwrap_or(0), completion_tokens.unwrap_or(0));
    Some(
        json!({"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_content_chunk_is_the_chunk_json_writes() {
        let completion = Completion {
            id: "chatcmpl-01X".into(),
            created: 1_700_000_000,
            model: "my \"model\"".into(),
        };
        let (head, tail) = completion.content_frame();
        let text = "a \"quoted\"\nline\\";
        let framed = format!("data: {head}{}{tail}\n\n", Value::from(text));
        assert_eq!(
            framed,
            completion.chunk(json!({"content": text}), None, None)
        );
    }
}
