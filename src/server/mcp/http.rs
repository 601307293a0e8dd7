//! Where MCP's Streamable HTTP endpoint is mounted: beside the REST API (`controller.mcp`,
//! behind the API's access keys and origins) or on an `mcp-server` adapter's own port (its
//! `base_path`, its `allowed_hosts` and `allowed_origins`, the access keys as Bearer tokens).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

use super::Workflows;
use crate::server::access::{self, AccessKeys};
use crate::server::guard::{self, McpExposure};
use compose::config::{Adapter, Origins};

/// The endpoint at `path` of the API's port. Every request from a page of another origin is
/// refused, reads too, as MCP's specification asks; the API's router adds its keys.
pub fn beside_the_api(
    workflows: Workflows,
    path: &str,
    origins: &Origins,
    stop: CancellationToken,
) -> Router {
    let exposure = McpExposure::of_api(origins.clone());
    Router::new()
        .route_service(path, workflows.http_service(stop))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(
                    Arc::new(exposure),
                    guard::mcp_exposure,
                ))
                .layer(middleware::from_fn(ended_sessions_say_no_content)),
        )
}

/// The endpoint of an `mcp-server` adapter (`base_path`, else `/`); other paths are 404.
pub fn adapter_router(
    workflows: Workflows,
    adapter: &Adapter,
    keys: Option<Arc<AccessKeys>>,
    stop: CancellationToken,
) -> Router {
    let path = adapter
        .base_path
        .as_deref()
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    // No path is left open: an MCP server has no health route.
    let bearer = keys
        .map(|keys| middleware::from_fn_with_state((keys, String::new()), access::require_bearer));
    // One layer of them all (each `Router::layer` is a box every request clones).
    Router::new()
        .route_service(path, workflows.http_service(stop))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(
                    Arc::new(McpExposure::of_adapter(adapter)),
                    guard::mcp_exposure,
                ))
                .option_layer(bearer)
                .layer(middleware::from_fn(ended_sessions_say_no_content)),
        )
}

/// A session ended by its client (`DELETE`) is answered `204`: the SDK's `202` makes the
/// official Python client log "Session termination failed: 202" at every exit.
async fn ended_sessions_say_no_content(request: Request, next: Next) -> Response {
    let ends = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if ends && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}
