//! A task's binary output (audio, an image) over HTTP: its bytes as they come, with the
//! upstream's content type, as the original answers `output_only` (spec §5.4).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::sse::CancelOnDrop;
use compose::media::Blob;
use compose::task::{Follow, Status, Task};

/// Streams a task's bytes. A failure after the first byte cuts the body off (the client sees
/// an incomplete transfer): bytes have no room for an error. When `owned`, the caller's leaving
/// cancels the task.
pub fn response(
    task: Arc<Task>,
    content_type: &str,
    filename: Option<String>,
    owned: bool,
) -> Response {
    let guard = owned.then(|| CancelOnDrop::new(Arc::clone(&task)));
    let id = task.id.clone();
    let body = task.follow(0).filter_map(move |follow| {
        let _owner = &guard;
        std::future::ready(match follow {
            Follow::Bytes(bytes) => Some(Ok(bytes)),
            Follow::Piece(text) => Some(Ok(text.into())),
            Follow::Step(..)
            | Follow::Job(_)
            | Follow::Interrupt(_)
            | Follow::End(Status::Completed, _) => None,
            Follow::End(_, error) => Some(Err(std::io::Error::other(
                error.map_or_else(|| "the run ended early".into(), |f| f.message),
            ))),
        })
    });
    labelled(Body::from_stream(body), content_type, filename, &id)
}

/// A run's bytes another replica produced, whole, from the history (a data URI), answered as
/// their owner answered them.
pub fn stored(task_id: &str, blob: Blob) -> Response {
    labelled(Body::from(blob.bytes), &blob.media_type, blob.name, task_id)
}

/// `body` with the headers of a binary output: its type, its file name, its run.
fn labelled(body: Body, content_type: &str, filename: Option<String>, id: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let disposition = filename
        .filter(|name| !name.contains(['"', '\\', '\r', '\n']))
        .and_then(|name| HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).ok());
    if let Some(disposition) = disposition {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-task-id", value);
    }
    response
}
