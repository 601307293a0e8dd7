//! `POST /workflows/runs`: start a run, then answer with its stream, its result, or its id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::tasks::{finished_response, Delivery};
use super::{lax_bool, ApiState};
use crate::server::sse::{self, CancelOnDrop};
use compose::task::{StartError, Status};
use compose::RunError;

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
}

fn yes() -> bool {
    true
}

pub async fn run(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let body: RunBody = parse(&body)?;
    if body.output_only && !body.wait_for_completion {
        return Err(ApiError::bad_request(
            "output_only=true requires wait_for_completion=true.",
        ));
    }
    let task = state
        .tasks
        .start(body.workflow_id.as_deref(), body.input)
        .map_err(|err| match err {
            StartError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            StartError::Refused(RunError::WorkflowNotFound(id)) => {
                ApiError::not_found(format!("Workflow '{id}' not found."))
            }
            StartError::Refused(err) => ApiError::bad_request(err.to_string()),
        })?;
    if !body.wait_for_completion {
        return Ok(Json(task.view()).into_response());
    }
    // Until the response is handed over, a client that leaves cancels the run (D8).
    let owner = CancelOnDrop::new(task.clone());
    if task.first_output().await {
        owner.disarm();
        return Ok(sse::response(task, 0, true));
    }
    let view = task.finished().await;
    owner.disarm();
    let delivery = if body.output_only || (task.streams && view.status == Status::Failed) {
        Delivery::OutputOnly
    } else {
        Delivery::State
    };
    Ok(finished_response(view, delivery))
}

/// JSON only; the message says what is wrong.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
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
    if media.as_deref() != Some("application/json") {
        let shown = media.unwrap_or_else(|| value.to_string());
        return Err(ApiError::bad_request(format!(
            "Unsupported Content-Type: {shown}"
        )));
    }
    Ok(())
}

fn parse(body: &[u8]) -> Result<RunBody, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "Invalid request body: expected a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))
}
