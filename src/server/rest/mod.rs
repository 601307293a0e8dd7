//! The REST API (spec §5), mounted under the adapter's `base_path`.

mod conversations;
mod error;
mod form;
mod history;
mod openai;
mod runs;
mod tasks;
mod workflows;
mod ws;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use compose::config::Adapter;
use serde_json::json;
use tower::ServiceBuilder;

use super::access::{self, AccessKeys};
use super::guard;
use crate::cluster::Cluster;
use compose::task::TaskRegistry;

pub(crate) use error::ApiError;

/// The largest request body the API reads (a run's input, prompts included).
pub const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;

/// What every handler reaches.
#[derive(Clone)]
pub struct ApiState {
    pub tasks: Arc<TaskRegistry>,
    /// The WebSocket route's settings and clients, when it is on.
    pub ws: Option<Arc<ws::Hub>>,
    /// The other replicas, when the history is shared (D22).
    pub cluster: Option<Arc<Cluster>>,
}

/// What the API's port serves outside `base_path`, beside the OpenAI-compatible endpoint.
#[derive(Default)]
pub struct Beside<'a> {
    /// Where Prometheus metrics are served (`controller.metrics`).
    pub metrics: Option<&'a str>,
    /// The MCP endpoint (`controller.mcp`), mounted at its path.
    pub mcp: Option<Router>,
}

/// The API's routes under the adapter's `base_path` (`/api` for the seed; none means the
/// root), with CORS for its `origins`, its WebSocket route unless turned off, and, when there
/// are access keys, a Bearer key on every route but `/health`.
pub fn router(
    tasks: Arc<TaskRegistry>,
    cluster: Option<Arc<Cluster>>,
    adapter: &Adapter,
    beside: Beside<'_>,
    keys: Option<Arc<AccessKeys>>,
) -> Router {
    let counted = Arc::clone(tasks.engine().metrics());
    let (base_path, origins) = (adapter.base_path.as_deref(), &adapter.origins);
    let hub = adapter
        .websocket
        .clone()
        .map(|settings| Arc::new(ws::Hub::new(settings, origins.clone())));
    let mut routes = Router::new();
    if let Some(hub) = &hub {
        routes = routes.route(hub.path(), get(ws::upgrade));
    }
    let routes = routes
        .route("/health", get(health))
        .route("/workflows", get(workflows::list))
        .route("/workflows/{id}/schema", get(workflows::schema))
        .route("/workflows/runs", post(runs::run))
        .route("/tasks/{id}", get(tasks::get))
        .route("/tasks/{id}/stream", get(tasks::stream))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/tasks/{id}/resume", post(tasks::resume))
        .route("/runs", get(history::list))
        .route("/runs/{id}", get(history::get).delete(history::delete))
        .route("/runs/{id}/uploads/{upload}", get(history::upload))
        .route("/conversations", get(conversations::list))
        .route(
            "/conversations/{id}",
            get(conversations::get).delete(conversations::delete),
        )
        .method_not_allowed_fallback(error::method_not_allowed);
    let state = ApiState {
        tasks,
        ws: hub,
        cluster,
    };
    let routes = routes.with_state(state.clone());
    let base = base_path
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty());
    let router = match base {
        Some(base) => Router::new().nest(base, routes),
        None => routes,
    };
    // Outside `base_path`, where OpenAI's clients look (D30).
    let router = router.merge(openai::router(state));
    // Outside `base_path`, where MCP clients are pointed (D29).
    let router = match beside.mcp {
        Some(mcp) => router.merge(mcp),
        None => router,
    };
    // Outside `base_path`, where Prometheus looks by default.
    let router = match beside.metrics {
        Some(path) => router.merge(
            Router::new()
                .route(path, get(serve_metrics))
                .with_state(counted),
        ),
        None => router,
    };
    let bearer = keys.map(|keys| {
        let health = format!("{}/health", base.unwrap_or_default());
        middleware::from_fn_with_state((keys, health), access::require_bearer)
    });
    // One layer of them all, outermost first: each `Router::layer` boxes its own, and every
    // request would clone each box.
    let layers = ServiceBuilder::new()
        // Outermost, so that a browser's pre-flight is answered before any key is asked for.
        .layer(guard::cors(origins))
        // The refusals below, to an OpenAI client, in OpenAI's shape.
        .layer(middleware::from_fn(openai::refusals_in_openai_shape))
        // Outside the keys too: another site's page is refused whatever it sends.
        .layer(middleware::from_fn_with_state(
            origins.clone(),
            guard::allowed_origins_only_for_changes,
        ))
        .option_layer(bearer)
        .layer(middleware::from_fn(error::as_json))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY));
    router.fallback(error::not_found).layer(layers)
}

/// `GET /metrics`: every metric, in the OpenMetrics text format Prometheus reads.
async fn serve_metrics(
    axum::extract::State(metrics): axum::extract::State<Arc<compose::metrics::Metrics>>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            compose::metrics::CONTENT_TYPE,
        )],
        metrics.encode(),
    )
}

async fn health(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    if state.tasks.is_shutting_down() {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        );
    }
    // The local servers of http-server components, when there are any (restarts included).
    let services = state.tasks.engine().services();
    let body = match services.is_empty() {
        true => json!({"status": "ok"}),
        false => json!({"status": "ok", "services": services}),
    };
    (axum::http::StatusCode::OK, Json(body))
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
