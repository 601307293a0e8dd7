//! The REST API (spec §5), mounted under the adapter's `base_path`.

mod error;
mod history;
mod runs;
mod tasks;
mod workflows;

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use compose::task::TaskRegistry;

/// What every handler reaches.
#[derive(Clone)]
pub struct ApiState {
    pub tasks: Arc<TaskRegistry>,
}

/// The API's routes under `base_path` (`/api` for the seed; none means the root).
pub fn router(tasks: Arc<TaskRegistry>, base_path: Option<&str>, origins: &str) -> Router {
    let routes = Router::new()
        .route("/health", get(health))
        .route("/workflows", get(workflows::list))
        .route("/workflows/{id}/schema", get(workflows::schema))
        .route("/workflows/runs", post(runs::run))
        .route("/tasks/{id}", get(tasks::get))
        .route("/tasks/{id}/stream", get(tasks::stream))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/runs", get(history::list))
        .route("/runs/{id}", get(history::get).delete(history::delete))
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(ApiState { tasks });
    let base = base_path
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty());
    let router = match base {
        Some(base) => Router::new().nest(base, routes),
        None => routes,
    };
    router.fallback(error::not_found).layer(cors(origins))
}

async fn health(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    if state.tasks.is_shutting_down() {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
    } else {
        (axum::http::StatusCode::OK, Json(json!({"status": "ok"})))
    }
}

/// CORS as the original's default (any origin, with credentials), or restricted to the
/// configured comma-separated origins (the original takes the list as one origin: D9 of its spec).
fn cors(origins: &str) -> CorsLayer {
    let allow_origin = if origins.trim() == "*" {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(
            origins
                .split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(true)
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::POST,
            Method::DELETE,
            Method::OPTIONS,
        ]))
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::HeaderName::from_static("x-task-id")])
        .max_age(std::time::Duration::from_secs(600))
}

/// Request flags as the original accepts them: JSON booleans and `true/false/1/0/yes/no/on/off`
/// (read by the engine's one boolean reader).
mod lax_bool {
    use compose::binding::{read_bool, BoolWords};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn parse(value: Value) -> Result<bool, String> {
        read_bool(&value, BoolWords::Lenient)
            .ok_or_else(|| format!("expected a boolean, got {value}"))
    }

    pub fn plain<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        parse(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(Value::String(text))
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}
