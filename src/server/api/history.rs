//! `GET /runs`, `GET /runs/{id}`, `DELETE /runs/{id}`: the run history (D14).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::ApiState;
use crate::store::{RunRecord, RunStore};

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
}

fn store(state: &ApiState) -> Result<&dyn RunStore, ApiError> {
    state
        .tasks
        .store()
        .map(|s| s.as_ref())
        .ok_or_else(|| ApiError::not_found("Run history is disabled."))
}

fn failed(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

/// Runs, newest first (at most `limit`, 100 by default).
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    let limit = query.limit.unwrap_or(100).min(1000);
    store(&state)?.list(limit).await.map(Json).map_err(failed)
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
