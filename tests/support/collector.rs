//! What the trace tests share: an OTLP/HTTP collector the test starts (decoding OTLP's
//! protobuf messages), `up` with a tracer sending to it, and readers of the spans it got.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use prost::Message;

use super::mock_upstream::{Behavior, MockUpstream};
use super::{Server, Workdir};

/// An OTLP/HTTP collector on 127.0.0.1 (at any path): every span it is sent, and the path
/// and `Authorization` of each request.
pub struct Collector {
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub base: String,
    pub spans: Arc<Mutex<Vec<Span>>>,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

/// A request's path and `Authorization`.
pub type Request = (String, Option<String>);

impl Collector {
    /// Over plain HTTP.
    pub async fn start() -> Self {
        Self::serving(|app| async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            base
        })
        .await
    }

    /// Over HTTPS (HTTP/1.1, a certificate only [`testkit::test_ca`] signed).
    pub async fn start_https() -> Self {
        Self::serving(|app| async move { testkit::serve_https_h1(app) }).await
    }

    /// The collector, its app served by `serve` (which gives its base URL).
    async fn serving<F: std::future::Future<Output = String>>(
        serve: impl FnOnce(axum::Router) -> F,
    ) -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (kept, seen) = (Arc::clone(&spans), Arc::clone(&requests));
        let app =
            axum::Router::new().fallback(
                move |uri: axum::http::Uri,
                      headers: axum::http::HeaderMap,
                      body: axum::body::Bytes| async move {
                    let request = ExportTraceServiceRequest::decode(body).unwrap();
                    let auth = headers
                        .get("authorization")
                        .map(|auth| auth.to_str().unwrap().to_string());
                    seen.lock().push((uri.path().to_string(), auth));
                    for resource in request.resource_spans {
                        for scope in resource.scope_spans {
                            kept.lock().extend(scope.spans);
                        }
                    }
                    ExportTraceServiceResponse::default().encode_to_vec()
                },
            );
        Self {
            base: serve(app).await,
            spans,
            requests,
        }
    }
}

/// The string value of attribute `key` of `span`.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some(text.clone()),
            AnyValue::IntValue(n) => Some(n.to_string()),
            _ => None,
        })
}

/// `up` serving the seed with the `tracer:` block `tracer`, its model answering `tokens`.
pub fn traced(tokens: &[&str], tracer: &str) -> (MockUpstream, Workdir, Server) {
    let mock = MockUpstream::start(Behavior::tokens(tokens));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(&dir, &(super::seed_for(&mock.base_url) + tracer));
    (mock, dir, server)
}

/// Streams one seed run (prompt `prompt`) through `server` to its end.
pub async fn streamed_run(server: &Server, prompt: &str) -> String {
    let body = serde_json::json!({"input": {"prompt": prompt, "temperature": 0.3}});
    super::post(server, &body.to_string())
        .await
        .text()
        .await
        .unwrap()
}

/// Asserts that attribute `key` of `span` is `expected`.
#[track_caller]
pub fn assert_attribute(span: &Span, key: &str, expected: &str) {
    assert_eq!(
        attribute(span, key).as_deref(),
        Some(expected),
        "{key} of {span:#?}"
    );
}

/// The spans named `name`.
pub fn all_named<'s>(spans: &'s [Span], name: &str) -> Vec<&'s Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Whether `span` ended with an error status, and its message.
pub fn error_of(span: &Span) -> Option<String> {
    let status = span.status.as_ref()?;
    // STATUS_CODE_ERROR
    (status.code == 2).then(|| status.message.clone())
}

/// The `tracer:` block of a tracer sending to `collector` over OTLP/HTTP.
pub fn tracer_for(collector: &Collector) -> String {
    format!(
        "tracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n",
        collector.base
    )
}

/// An id (a trace's, a span's) as W3C trace context writes it: lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `traceparent` of a span in a sampled trace, as a request that continues it carries it.
pub fn traceparent(trace_id: &[u8], span_id: &[u8]) -> String {
    format!("00-{}-{}-01", hex(trace_id), hex(span_id))
}

/// The `traceparent` the first request `mock` got carried.
pub fn first_traceparent(mock: &MockUpstream) -> String {
    let headers = &mock.requests()[0].headers;
    headers["traceparent"].to_str().unwrap().to_string()
}
