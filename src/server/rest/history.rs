//! `GET /runs`, `GET /runs/{id}`, `DELETE /runs/{id}`: the run history (D14). The list is of
//! summaries (no input or output), a page at a time; a run's whole record is read by id.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::ApiState;
use crate::store::{RunRecord, RunStore};

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    /// A task id: the page starts with the run started just before it.
    before: Option<String>,
}

/// The history store, or 404 when the history is off.
pub(super) fn store(state: &ApiState) -> Result<&dyn RunStore, ApiError> {
    state
        .tasks
        .store()
        .map(|s| s.as_ref())
        .ok_or_else(|| ApiError::not_found("Run history is disabled."))
}

/// A failure of the history store.
pub(super) fn failed(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

/// Summaries of runs, newest first: at most `limit` (100 by default, 1,000 at most), before
/// the task id `before`. A full page links to the next one (`Link: <...>; rel="next"`).
pub async fn list(
    State(state): State<ApiState>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let page = store(&state)?
        .list(limit, query.before.as_deref())
        .await
        .map_err(failed)?;
    Ok(paged(page, limit, uri.path(), |run| &run.task_id, ""))
}

/// A page of a list as JSON; a full page links to the next one (`Link: <…>; rel="next"`),
/// which starts after the last item's id and keeps `query` (`&q=…`).
pub(super) fn paged<T: Serialize>(
    page: Vec<T>,
    limit: u32,
    path: &str,
    id: impl Fn(&T) -> &str,
    query: &str,
) -> Response {
    let next = page
        .last()
        .filter(|_| page.len() == limit as usize)
        .map(|last| {
            format!(
                "<{path}?limit={limit}&before={}{query}>; rel=\"next\"",
                id(last)
            )
        });
    let mut response = Json(page).into_response();
    if let Some(link) = next.and_then(|link| HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<RunRecord>, ApiError> {
    store(&state)?
        .get(&id)
        .await
        .map_err(failed)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Run not found."))
}

/// `GET /runs/{id}/uploads/{upload}`: a file the run's input carried, as it was sent (410
/// once the retention removed it).
pub async fn upload(
    State(state): State<ApiState>,
    Path((id, upload)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (info, bytes) = store(&state)?
        .upload(&id, &upload)
        .await
        .map_err(failed)?
        .ok_or_else(|| ApiError::not_found("Upload not found."))?;
    let bytes = bytes.ok_or_else(|| {
        ApiError::new(
            StatusCode::GONE,
            "This upload was removed (controller.history.retention keeps uploads for a while, \
             within a size).",
        )
    })?;
    let content_type = HeaderValue::from_str(&info.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
    if let Some(name) = info.name.as_deref().and_then(|name| {
        HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"",
            name.replace(['"', '\\'], "_")
        ))
        .ok()
    }) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, name);
    }
    Ok(response)
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    store(&state)?;
    match state.tasks.delete_run(&id).await.map_err(failed)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("Run not found.")),
    }
}
