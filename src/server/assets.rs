//! The built site (WASM, JS, CSS and `public/`), embedded in the binary so that
//! `model-compose` serves a complete UI from any directory.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// The site of the same kind as this build (see `build.rs`).
#[derive(Embed)]
#[cfg_attr(debug_assertions, folder = "target/site/debug/")]
#[cfg_attr(not(debug_assertions), folder = "target/site/release/")]
struct Site;

/// Serves an embedded file by its URL path, or 404.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match Site::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.metadata.mimetype().to_string()),
                (header::CACHE_CONTROL, "no-cache".to_string()),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
