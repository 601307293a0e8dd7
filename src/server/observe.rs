//! What every request leaves behind: an id (`X-Request-Id`, the client's or a new one) on the
//! request and its response, the bytes it moved in the metrics, and one log line when its
//! response has been sent (or abandoned): method, path, status, duration, bytes, task.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use http_body::{Body as _, Frame, SizeHint};

use compose::metrics::Metrics;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's W3C trace context (`traceparent`), when it sent one that can be one: a run it
/// starts goes on in its trace.
pub fn traceparent(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    (value.len() == 55 && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| value.to_string())
}

/// The id of the request being served (an extension the doors read to record it with a run).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id of `request`, when it went through [`layer`].
    pub fn of<B>(request: &axum::http::Request<B>) -> Option<String> {
        Self::in_extensions(request.extensions())
    }

    /// The id kept in a request's extensions (what a service that takes the request's
    /// parts, as the MCP SDK does, still has).
    pub fn in_extensions(extensions: &axum::http::Extensions) -> Option<String> {
        extensions.get::<Self>().map(|id| id.0.clone())
    }
}

/// Gives every request of `router` an id, counts its bytes and logs it.
pub fn layer(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(middleware::from_fn_with_state(metrics, observe))
}

/// A client's id is kept when it is short, visible ASCII (it goes into logs and headers).
fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

async fn observe(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(|| ulid::Ulid::new().to_string(), str::to_string);
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let mut request = request.map(|body| Counted::new(body, &metrics, None).into_body());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let line = LogLine {
        method,
        path,
        status: response.status().as_u16(),
        task: response
            .headers()
            .get("x-task-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        request_id: id,
        started,
    };
    response.map(|body| Counted::new(body, &metrics, Some(line)).into_body())
}

/// What the log line of a request says, written once its response body ends.
struct LogLine {
    method: Method,
    path: String,
    status: u16,
    task: Option<String>,
    request_id: String,
    started: Instant,
}

impl LogLine {
    fn write(&self, bytes: u64, complete: bool) {
        tracing::info!(
            method = %self.method,
            path = %self.path,
            status = self.status,
            duration_ms = self.started.elapsed().as_millis() as u64,
            bytes,
            complete,
            task = self.task.as_deref(),
            request_id = %self.request_id,
            "request"
        );
    }
}

/// A body whose data bytes are counted (received for a request, sent for a response, which
/// also logs its line at its end).
struct Counted {
    inner: Body,
    metrics: Arc<Metrics>,
    bytes: u64,
    line: Option<LogLine>,
}

impl Counted {
    fn new(inner: Body, metrics: &Arc<Metrics>, line: Option<LogLine>) -> Self {
        Self {
            inner,
            metrics: Arc::clone(metrics),
            bytes: 0,
            line,
        }
    }

    fn into_body(self) -> Body {
        Body::new(self)
    }

    fn count(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        match self.line {
            Some(_) => self.metrics.sent(bytes),
            None => self.metrics.received(bytes),
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(line) = self.line.take() {
            line.write(self.bytes, complete);
        }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len();
                    self.count(len);
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    /// A body dropped before its end: the client left, or nothing read it (a `HEAD`).
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn a_client_id_is_kept_only_when_it_is_safe_to_echo() {
        assert!(acceptable("req-42"));
        assert!(acceptable("01J0ABCDEF"));
        assert!(!acceptable(""));
        assert!(!acceptable("two words"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable(&"x".repeat(129)));
    }
}
