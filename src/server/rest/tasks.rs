//! `GET /tasks/{id}`, `GET /tasks/{id}/stream`, `POST /tasks/{id}/cancel`,
//! `POST /tasks/{id}/resume`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::{lax_bool, ApiState};
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::server::{binary, sse};
use compose::media::Blob;
use compose::record::{Output, RunRecord};
use compose::task::{CancelError, ResumeError, Shape, Status, Task, TaskView};

/// What the caller asked to receive.
pub enum Delivery {
    /// The task's state JSON.
    State,
    /// The output alone (errors as `{"detail"}`).
    OutputOnly,
}

#[derive(Deserialize)]
pub struct TaskQuery {
    #[serde(default, deserialize_with = "lax_bool::option")]
    output_only: Option<bool>,
}

pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Result<Response, ApiError> {
    let task = match find(&state, &id) {
        Ok(task) => task,
        // A run of another replica: its state as the shared history has it.
        Err(missing) => {
            let record = elsewhere(&state, &id).await.ok_or(missing)?.0;
            if !query.output_only.unwrap_or(false) {
                return Ok(Json(record.into_view()).into_response());
            }
            if let (Status::Completed, Some(Output::Bytes(uri))) = (record.status, &record.output) {
                if let Some(blob) = Blob::from_data_uri(uri) {
                    return Ok(binary::stored(&id, blob));
                }
            }
            return Ok(view_response(record.into_view(), Delivery::OutputOnly));
        }
    };
    let view = task.view();
    if !query.output_only.unwrap_or(false) {
        return Ok(Json(view).into_response());
    }
    if view.status == Status::Completed {
        if let Shape::Bytes {
            content_type,
            filename,
        } = task.first_output().await
        {
            return Ok(binary::response(task, &content_type, filename, false));
        }
    }
    Ok(view_response(view, Delivery::OutputOnly))
}

/// When this server's event streams say they are alive (D23).
pub(super) fn liveness(state: &ApiState) -> sse::Liveness {
    sse::Liveness::after(state.tasks.limits().keep_alive)
}

/// Replays what a streaming task produced so far, then follows it live (D4).
pub async fn stream(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let metrics = state.tasks.engine().metrics();
    let task = match find(&state, &id) {
        Ok(task) => task,
        // A run of another replica: its pieces through the database.
        Err(missing) => {
            let (_, cluster) = elsewhere(&state, &id).await.ok_or(missing)?;
            return Ok(sse::following(
                id.clone(),
                (cluster.follow(id), sse::Steps::Named),
                None,
                metrics,
                liveness(&state),
            ));
        }
    };
    match task.first_output().await {
        Shape::Text => {
            let steps = sse::Steps::Named;
            return Ok(sse::response(
                task,
                (false, steps),
                metrics,
                liveness(&state),
            ));
        }
        Shape::Bytes {
            content_type,
            filename,
        } => return Ok(binary::response(task, &content_type, filename, false)),
        Shape::Value => {}
    }
    let view = task.settled().await;
    match view.status {
        Status::Completed => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Task '{id}' has no stream output"),
        )),
        _ => Ok(view_response(view, Delivery::OutputOnly)),
    }
}

#[derive(Deserialize)]
pub struct CancelQuery {
    #[serde(default, deserialize_with = "lax_bool::option")]
    wait_for_completion: Option<bool>,
}

pub async fn cancel(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<CancelQuery>,
) -> Result<Response, ApiError> {
    const REASON: &str = "cancelled by request";
    if state.tasks.get(&id).is_none() {
        if let Some((record, cluster)) = elsewhere(&state, &id).await {
            let view = record.into_view();
            if view.status.is_terminal() {
                let err = CancelError::Finished(id, view.status.as_str());
                return Err(ApiError::new(StatusCode::CONFLICT, err.to_string()));
            }
            let view = cluster.cancel(&id).await.unwrap_or(view);
            return Ok(Json(view).into_response());
        }
    }
    let view = if query.wait_for_completion.unwrap_or(true) {
        state.tasks.cancel(&id, REASON).await
    } else {
        state.tasks.request_cancel(&id, REASON)
    };
    match view {
        Ok(view) => Ok(Json(view).into_response()),
        Err(err @ CancelError::NotFound(_)) => Err(ApiError::not_found(err.to_string())),
        Err(err @ CancelError::Finished(..)) => {
            Err(ApiError::new(StatusCode::CONFLICT, err.to_string()))
        }
    }
}

/// `POST /tasks/{id}/resume`: `{"answer": {<point id>: <answer>, …}}` answers those points
/// (null: go on as it was; a value replaces the job's input or result); no `answer` answers
/// every point with null. Answered at once with the task's state (spec §14.3).
pub async fn resume(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct ResumeBody {
        #[serde(default)]
        answer: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let body: ResumeBody = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Invalid request body: expected {{\"answer\": {{<interrupt id>: <answer>}}}}: {err}"),
        )
    })?;
    if state.tasks.get(&id).is_none() && elsewhere(&state, &id).await.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Task '{id}' runs on another replica: resume it there"),
        ));
    }
    match state.tasks.resume(&id, body.answer) {
        Ok(view) => Ok(Json(view).into_response()),
        Err(err @ ResumeError::NotFound(_)) => Err(ApiError::not_found(err.to_string())),
        Err(err @ ResumeError::NotInterrupted(..)) => {
            Err(ApiError::new(StatusCode::CONFLICT, err.to_string()))
        }
    }
}

/// A run another replica runs (or ran), with the cluster that reaches it. A run accepted a
/// moment ago may not be in the history yet (its owner records it as it starts it): it is
/// looked for again for up to 200 ms before it is said not to exist.
async fn elsewhere(state: &ApiState, id: &str) -> Option<(RunRecord, Arc<Cluster>)> {
    let cluster = state.cluster.as_ref()?;
    for _ in 0..4 {
        if let Some(record) = cluster.record(id).await {
            return Some((record, Arc::clone(cluster)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// A task by id, or the original's 404.
fn find(state: &ApiState, id: &str) -> Result<Arc<Task>, ApiError> {
    state
        .tasks
        .get(id)
        .ok_or_else(|| ApiError::not_found("Task not found."))
}

/// The answer about a task in the state `view` shows (ended or still going), as the original
/// gives it: its state, or its output alone (a failure as `{"detail"}` with the failure's
/// status, a cancelled run as `409`, one still going as `202`).
pub fn view_response(view: TaskView, delivery: Delivery) -> Response {
    match delivery {
        Delivery::State => Json(view).into_response(),
        Delivery::OutputOnly => match view.status {
            Status::Completed => Json(view.output).into_response(),
            Status::Failed => match view.error {
                Some(failure) => ApiError::from(failure).into_response(),
                None => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the run failed")
                    .into_response(),
            },
            Status::Cancelled => (StatusCode::CONFLICT, Json(view)).into_response(),
            _ => (StatusCode::ACCEPTED, Json(view)).into_response(),
        },
    }
}
