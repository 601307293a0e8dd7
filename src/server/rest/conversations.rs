//! `GET /conversations`, `GET /conversations/{id}`, `DELETE /conversations/{id}`: the web UI's
//! conversations (D19), for other clients. Each answer's run is in the history (`/runs/{id}`).

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::error::ApiError;
use super::history::{failed, paged, store};
use super::ApiState;
use crate::store::Conversation;

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    /// A conversation id: the page starts with the one active just before it.
    before: Option<String>,
    /// Only those whose title or prompts contain this text.
    q: Option<String>,
}

/// Conversations, most recently active first, a page at a time (`Link` to the next).
pub async fn list(
    State(state): State<ApiState>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let page = store(&state)?
        .list_conversations(limit, query.before.as_deref(), search)
        .await
        .map_err(failed)?;
    let q = search
        .map(|q| format!("&q={}", utf8_percent_encode(q, NON_ALPHANUMERIC)))
        .unwrap_or_default();
    Ok(paged(page, limit, uri.path(), |c| &c.id, &q))
}

/// A conversation with its turns and answers.
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    store(&state)?
        .get_conversation(&id)
        .await
        .map_err(failed)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Conversation not found."))
}

/// Deletes a conversation; its runs stay in the history.
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match store(&state)?
        .delete_conversation(&id)
        .await
        .map_err(failed)?
    {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("Conversation not found.")),
    }
}
