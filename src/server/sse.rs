//! The one Server-Sent Events encoder: how a task's stream goes out over HTTP.
//!
//! Framing follows the original (0.4.120): every line of a piece becomes `data: <line>\n`
//! (leading spaces kept), then one `\n`. On failure after the first byte, one
//! `event: error` carrying `{"detail": ...}` closes the body (D3); success just ends it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use compose::metrics::Metrics;
use compose::task::{Follow, Status, Task};

/// One piece of text as an SSE event.
pub fn event(piece: &str) -> String {
    let mut out = String::with_capacity(piece.len() + 8);
    for line in piece.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// One named event (`event: NAME`) whose data is `data`, framed like a piece.
pub fn named(name: &str, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + name.len() + 16);
    out.push_str("event: ");
    out.push_str(name);
    out.push('\n');
    out.push_str(&event(data));
    out
}

/// The closing event of a stream that failed.
pub fn error_event(detail: &str) -> String {
    named(
        "error",
        &serde_json::json!({ "detail": detail }).to_string(),
    )
}

/// Streams a task's pieces from `from` on, the client counted in `metrics` while it reads.
/// When `owned`, the caller's leaving (the body being dropped before the end) cancels the task
/// and so the upstream request (D8).
pub fn response(task: Arc<Task>, from: usize, owned: bool, metrics: &Arc<Metrics>) -> Response {
    let guard = owned.then(|| CancelOnDrop::new(Arc::clone(&task)));
    let id = task.id.clone();
    following(id, task.follow(from), guard, metrics)
}

/// Streams what `follow` yields of task `id` (a run here, or on another replica); `guard`
/// lives as long as the body.
pub fn following(
    id: String,
    follow: impl futures::Stream<Item = Follow> + Send + 'static,
    guard: Option<CancelOnDrop>,
    metrics: &Arc<Metrics>,
) -> Response {
    let client = metrics.sse_client();
    let body = follow.filter_map(move |follow| {
        let _owner = (&guard, &client);
        let text = match follow {
            Follow::Piece(piece) => Some(event(&piece)),
            // A binary output is never followed as SSE (see `binary`).
            Follow::Bytes(_) | Follow::Job(_) | Follow::End(Status::Completed, _) => None,
            Follow::End(status, error) => {
                Some(error_event(&error.unwrap_or_else(|| {
                    format!("the run ended: {}", status.as_str())
                })))
            }
        };
        std::future::ready(text.map(|text| Ok::<_, std::convert::Infallible>(Bytes::from(text))))
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert("x-task-id", value);
    }
    response
}

/// Cancels a task that has not ended when the one who started it goes away.
pub struct CancelOnDrop(Option<Arc<Task>>);

impl CancelOnDrop {
    pub fn new(task: Arc<Task>) -> Self {
        Self(Some(task))
    }

    /// Lets go without cancelling: someone else now answers for the task.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take().filter(|t| !t.status().is_terminal()) {
            task.request_cancel("the client disconnected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_pieces_like_the_original() {
        assert_eq!(event("Hello"), "data: Hello\n\n");
        assert_eq!(event(" world"), "data:  world\n\n");
        assert_eq!(event(" world\nline2"), "data:  world\ndata: line2\n\n");
        assert_eq!(event("\n\nlast"), "data: \ndata: \ndata: last\n\n");
        assert_eq!(event(" h\u{e9}llo \"q\""), "data:  h\u{e9}llo \"q\"\n\n");
        assert_eq!(named("end", "{}"), "event: end\ndata: {}\n\n");
        assert_eq!(named("piece", "a\nb"), "event: piece\ndata: a\ndata: b\n\n");
        assert_eq!(
            error_event("upstream stream failed: reset"),
            "event: error\ndata: {\"detail\":\"upstream stream failed: reset\"}\n\n"
        );
    }
}
