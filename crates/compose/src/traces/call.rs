//! Spans made inside a job while it works: each upstream call (with OpenTelemetry's GenAI
//! attributes), an agent's iterations and tool calls, and waits for a person. Each is a child
//! of the current context's span: a traced job's work runs in its span's context
//! ([`within`]), so nothing needs to be handed down to the components; outside a traced run
//! there is no span and nothing is made.

use std::future::Future;

use futures::future::Either;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, WithContext};
use opentelemetry::trace::{SpanRef, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use serde_json::Value;

use crate::record::TokenUsage;

/// The tracer a context's spans belong to, kept in the run's context for the spans made in it.
#[derive(Clone)]
pub(super) struct TracerHandle(pub(super) SdkTracer);

/// `work` to run in `context` (a span's, when its run is traced): what it starts is that
/// span's child. Untraced (`None`), it runs as it is (and is no larger).
pub fn within<F: Future>(context: Option<Context>, work: F) -> Either<WithContext<F>, F> {
    match context {
        Some(context) => Either::Left(work.with_context(context)),
        None => Either::Right(work),
    }
}

/// A span inside a job (an agent's iteration, a tool call, a wait for a person): a child of
/// the current context's span, ended when dropped; nothing when the run is not traced.
pub struct Inner(Option<Context>);

impl Inner {
    /// Starts `name` (made only when traced) with `attributes`, now.
    pub fn start(
        name: impl FnOnce() -> String,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        let current = Context::current();
        let Some(TracerHandle(tracer)) = current.get::<TracerHandle>() else {
            return Self(None);
        };
        let span = tracer
            .span_builder(name())
            .with_attributes(attributes())
            .start_with_context(tracer, &current);
        Self(Some(current.with_span(span)))
    }

    /// The context its span's children start in.
    pub fn context(&self) -> Option<Context> {
        self.0.clone()
    }

    /// Sets an attribute, when traced.
    pub fn set(&self, attribute: impl FnOnce() -> KeyValue) {
        if let Some(span) = self.span() {
            span.set_attribute(attribute());
        }
    }

    /// What it did failed with `message` (redacted).
    pub fn failed(&self, message: &str) {
        if let Some(span) = self.span() {
            span.set_status(Status::error(message.to_string()));
        }
    }

    fn span(&self) -> Option<SpanRef<'_>> {
        self.0.as_ref().map(TraceContextExt::span)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(span) = self.span() {
            span.end();
        }
    }
}

/// An upstream call's span, a child of the job's span (the first tracer's); nothing outside a
/// traced run. A model's (its request names a `model`) has OpenTelemetry's GenAI attributes;
/// another (a web search, say) is a plain HTTP client span. It ends when dropped: when a whole
/// answer has been read, or a streamed one has ended.
pub struct Call {
    span: Option<opentelemetry_sdk::trace::Span>,
    traceparent: Option<String>,
    answered: bool,
}

impl Call {
    /// The `method` call to `url` with the (rendered) request `body`, starting now.
    pub fn start((method, url, body): (&str, &str, &Value)) -> Self {
        let current = Context::current();
        let Some(TracerHandle(tracer)) = current.get::<TracerHandle>() else {
            return Self {
                span: None,
                traceparent: None,
                answered: false,
            };
        };
        let host = url::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_default();
        let system = match host.as_str() {
            "api.openai.com" => "openai",
            "api.anthropic.com" => "anthropic",
            "generativelanguage.googleapis.com" => "gcp.gemini",
            "api.mistral.ai" => "mistral_ai",
            _ => "_OTHER",
        };
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("server.address", host),
        ];
        let name = match body.get("model").and_then(Value::as_str) {
            Some(model) => {
                attributes.extend([
                    KeyValue::new("gen_ai.system", system),
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.request.model", model.to_string()),
                ]);
                let temperature = body.get("temperature").and_then(|t| match t {
                    Value::String(text) => text.trim().parse().ok(),
                    other => other.as_f64(),
                });
                if let Some(temperature) = temperature {
                    attributes.push(KeyValue::new("gen_ai.request.temperature", temperature));
                }
                format!("chat {model}")
            }
            None => method.to_string(),
        };
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, &current);
        let context = span.span_context();
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        );
        Self {
            span: Some(span),
            traceparent: Some(traceparent),
            answered: false,
        }
    }

    /// The `traceparent` header the request carries, when the run is traced.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The upstream answered with `status`; an error status is the span's error.
    pub fn status(&mut self, status: u16) {
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                span.set_status(Status::error(format!("upstream answered {status}")));
            }
        }
    }

    /// A piece of a streamed answer arrived: the first is the time to first token.
    pub fn piece(&mut self) {
        if let (Some(span), false) = (&mut self.span, self.answered) {
            span.add_event("gen_ai.first_token", vec![]);
        }
        self.answered = true;
    }

    /// The call failed with `message` (redacted).
    pub fn failed(&mut self, message: &str) {
        if let Some(span) = &mut self.span {
            span.set_status(Status::error(message.to_string()));
        }
    }

    /// The tokens the upstream reported for this call.
    pub fn usage(&mut self, usage: &TokenUsage) {
        if let Some(span) = &mut self.span {
            usage_attributes(usage, |kv| span.set_attribute(kv));
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(mut span) = self.span.take() {
            span.end();
        }
    }
}

/// `usage` as the GenAI attributes `gen_ai.usage.input_tokens` and `output_tokens`, each given
/// to `set`.
pub(super) fn usage_attributes(usage: &TokenUsage, mut set: impl FnMut(KeyValue)) {
    let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    if let Some(n) = tokens(usage.prompt_tokens) {
        set(KeyValue::new("gen_ai.usage.input_tokens", n));
    }
    if let Some(n) = tokens(usage.completion_tokens) {
        set(KeyValue::new("gen_ai.usage.output_tokens", n));
    }
}
