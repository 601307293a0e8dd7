//! `POST /workflows/runs`: start a run, then answer with its stream, its result, or its id.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::form;
use super::tasks::{view_response, Delivery};
use super::{lax_bool, ApiState};
use crate::server::sse::{self, CancelOnDrop};
use crate::server::{binary, RequestId};
use compose::metrics::Metrics;
use compose::task::{Shape, Status, Task};
use compose::workflow::Access;

/// The request body; unknown fields are ignored.
#[derive(Deserialize)]
struct RunBody {
    workflow_id: Option<String>,
    #[serde(default)]
    input: Value,
    #[serde(default = "yes", deserialize_with = "lax_bool::plain")]
    wait_for_completion: bool,
    #[serde(default, deserialize_with = "lax_bool::plain")]
    output_only: bool,
    /// Have the WebSocket client of `?session_id=` follow the run.
    #[serde(default, deserialize_with = "lax_bool::plain")]
    subscribe_task: bool,
}

/// `?session_id=`: the WebSocket session a `subscribe_task` run is followed by.
#[derive(Deserialize)]
pub struct RunQuery {
    session_id: Option<String>,
}

fn yes() -> bool {
    true
}

pub async fn run(
    State(state): State<ApiState>,
    Query(query): Query<RunQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let request_id = RequestId::of(&request);
    let traceparent = crate::server::observe::traceparent(request.headers());
    let mut files = Vec::new();
    let body = match request_kind(request.headers())? {
        Kind::Json => {
            let bytes = Bytes::from_request(request, &state)
                .await
                .map_err(|r| ApiError::new(r.status(), r.body_text()))?;
            serde_json::from_slice(&bytes)
                .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))?
        }
        Kind::Multipart => {
            let fields = Multipart::from_request(request, &state)
                .await
                .map_err(|r| ApiError::new(r.status(), r.body_text()))?;
            let (fields, names) = form::multipart(fields).await?;
            files = names;
            fields
        }
        Kind::UrlEncoded => {
            let bytes = Bytes::from_request(request, &state)
                .await
                .map_err(|r| ApiError::new(r.status(), r.body_text()))?;
            form::urlencoded(&bytes)?
        }
    };
    let mut body = parse(body)?;
    check_files(&state, body.workflow_id.as_deref(), &files)?;
    if body.subscribe_task && body.wait_for_completion {
        return Err(ApiError::bad_request(
            "subscribe_task=true requires wait_for_completion=false",
        ));
    }
    if body.output_only && !body.wait_for_completion {
        return Err(ApiError::bad_request(
            "output_only=true requires wait_for_completion=true.",
        ));
    }
    let subscriber = match (body.subscribe_task, query.session_id) {
        (false, _) => None,
        (true, None) => {
            return Err(ApiError::bad_request(
                "session_id query parameter required when subscribe_task=true",
            ))
        }
        (true, Some(session)) => match &state.ws {
            Some(hub) if hub.is_connected(&session) => Some((hub.clone(), session)),
            _ => {
                return Err(ApiError::bad_request(
                    "No active WebSocket connection for session",
                ))
            }
        },
    };
    let task = state.tasks.start(
        body.workflow_id.as_deref(),
        std::mem::take(&mut body.input),
        (request_id, traceparent),
    )?;
    if let Some((hub, session)) = subscriber {
        hub.subscribe(&session, task.clone());
    }
    let metrics = state.tasks.engine().metrics();
    let liveness = super::tasks::liveness(&state);
    let mut response = respond(task.clone(), &body, metrics, liveness).await;
    // Every answer names its run, for the request's log line.
    if let Ok(id) = HeaderValue::from_str(&task.id) {
        response.headers_mut().insert("x-task-id", id);
    }
    Ok(response)
}

/// The answer to a run request once its run has started: its state at once, its stream, its
/// bytes, or its result. A stream whose run says nothing for the keep-alive's first period is
/// answered at once, with a comment, so that no proxy cuts it while the model thinks (D23).
async fn respond(
    task: Arc<Task>,
    body: &RunBody,
    metrics: &Arc<Metrics>,
    liveness: sse::Liveness,
) -> Response {
    if !body.wait_for_completion {
        return Json(task.accepted()).into_response();
    }
    // Until the response is handed over, a client that leaves cancels the run (D8).
    let owner = CancelOnDrop::new(task.clone());
    // An agent's steps: the original's bytes when the output is asked for alone.
    let steps = match body.output_only {
        true => sse::Steps::Original,
        false => sse::Steps::Named,
    };
    let first = async {
        match liveness.periods.filter(|_| task.streams) {
            Some(periods) => tokio::time::timeout(periods.first.0, task.first_output())
                .await
                .ok(),
            None => Some(task.first_output().await),
        }
    };
    let shape = match first.await {
        Some(shape) => shape,
        // Slow to start: the headers and a comment go out now; what fails later fails in-band.
        None => {
            owner.disarm();
            let liveness = sse::Liveness {
                comment_first: true,
                ..liveness
            };
            return sse::response(task, (true, steps), metrics, liveness);
        }
    };
    match shape {
        Shape::Text => {
            owner.disarm();
            return sse::response(task, (true, steps), metrics, liveness);
        }
        // Bytes go out as they are only when asked for alone; else the state shows them as
        // a data URI.
        Shape::Bytes {
            content_type,
            filename,
        } if body.output_only => {
            owner.disarm();
            return binary::response(task, &content_type, filename, true);
        }
        _ => {}
    }
    let view = task.settled().await;
    owner.disarm();
    let delivery = if body.output_only || (task.streams && view.status == Status::Failed) {
        Delivery::OutputOnly
    } else {
        Delivery::State
    };
    view_response(view, delivery)
}

/// Every file sent must be for one of the workflow's inputs: a file no input reads would only
/// be stored (an unknown workflow is left for the gate to name).
fn check_files(state: &ApiState, workflow: Option<&str>, files: &[String]) -> Result<(), ApiError> {
    let Ok(workflow) = state.tasks.engine().workflow(workflow, Access::Public) else {
        return Ok(());
    };
    let declared = |name: &str| {
        workflow
            .input_schema
            .iter()
            .any(|v| v.name.as_deref() == Some(name))
    };
    for field in files {
        if !form::input_variable(field).is_some_and(|name| declared(&name)) {
            return Err(ApiError::bad_request(format!(
                "The file field '{}' is not an input of workflow '{}'.",
                form::abridged(field),
                workflow.id
            )));
        }
    }
    Ok(())
}

/// How a run request's body is written.
enum Kind {
    Json,
    Multipart,
    UrlEncoded,
}

/// JSON or a form (spec §5.4); the message says what is wrong otherwise.
fn request_kind(headers: &HeaderMap) -> Result<Kind, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if value.is_empty() {
        return Err(ApiError::bad_request(
            "Missing or empty Content-Type header.",
        ));
    }
    let media = compose::media::media_type(value);
    match media.as_deref() {
        Some("application/json") => Ok(Kind::Json),
        Some("multipart/form-data") => Ok(Kind::Multipart),
        Some("application/x-www-form-urlencoded") => Ok(Kind::UrlEncoded),
        _ => Err(ApiError::bad_request(format!(
            "Unsupported Content-Type: {}",
            media.unwrap_or_else(|| value.to_string())
        ))),
    }
}

fn parse(value: Value) -> Result<RunBody, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "Invalid request body: expected a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))
}
