//! Images, audio and video from other hosts, loaded through the server: the page's CSP lets
//! it load media from its own origin only, so that an answer cannot make the browser send
//! data anywhere by itself (a Markdown image whose link carries a secret). A workflow's media
//! output that is a link, and a Markdown image the user chose to load, come through here,
//! fetched under the same rule as a caller's links (D32: public addresses, or those
//! `controller.fetch.allow` lists).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::rest::ApiError;
use compose::task::TaskRegistry;

/// Where the page loads a remote medium from.
pub const ROUTE: &str = "/_media";

/// `src` for an `<img>`, `<audio>` or `<video>` showing what `url` has, through the server.
pub fn through_server(url: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("url", url)
        .finish();
    format!("{ROUTE}?{query}")
}

#[derive(Deserialize)]
pub struct RemoteQuery {
    url: String,
}

/// `GET /_media?url=…`: what the link has, when it is an image, audio or video. It is served
/// sandboxed, so that a picture that is a script (SVG) cannot run as this origin's page.
pub async fn serve(
    State(tasks): State<Arc<TaskRegistry>>,
    Query(query): Query<RemoteQuery>,
) -> Result<Response, ApiError> {
    let blob = tasks
        .engine()
        .fetcher()
        .get(&query.url, true)
        .await
        .map_err(|err| {
            let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
            ApiError::new(status, err.to_string())
        })?;
    let kind = blob.media_type.split('/').next().unwrap_or_default();
    if !matches!(kind, "image" | "audio" | "video") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{} is {}, not an image, audio or video",
                query.url, blob.media_type
            ),
        ));
    }
    let content_type = HeaderValue::from_str(&blob.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        blob.bytes,
    )
        .into_response())
}
