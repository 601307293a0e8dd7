//! Errors of the REST API: always `{"detail": "..."}` JSON with a fitting status (D5).

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use compose::record::{Failure, FailureKind};
use compose::task::StartError;

/// A failed request: its status and a message for the caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
}

/// A run's failure or refusal as the REST API answers it: its HTTP status and its message,
/// in the original's words where it has them. Every failure leaves the API this way.
impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        let status =
            StatusCode::from_u16(failure.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let detail = match (failure.kind, failure.detail_text("workflow")) {
            (FailureKind::WorkflowNotFound, Some(workflow)) => {
                format!("Workflow '{workflow}' not found.")
            }
            _ => failure.message,
        };
        Self::new(status, detail)
    }
}

impl From<StartError> for ApiError {
    fn from(err: StartError) -> Self {
        err.failure().into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.detail }))).into_response()
    }
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

/// Known routes with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// The most of a plain-text error body kept as the detail.
const PLAIN_ERROR_LIMIT: usize = 16 * 1024;

/// Errors made outside the handlers (a body over the size limit, a query string or a path that
/// does not parse) come from axum as plain text: they leave as `{"detail": ...}` like every
/// other error, with their status and headers.
pub async fn as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(compose::media::media_type)
        .is_some_and(|media| media == "application/json");
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_LIMIT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = ApiError::new(status, detail).into_response();
    let (json_parts, body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, body)
}
