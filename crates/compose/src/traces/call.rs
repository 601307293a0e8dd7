//! Spans made inside a job while it works: each upstream call (with OpenTelemetry's GenAI
//! attributes), an agent's iterations and tool calls, and waits for a person. Each is a child
//! of the current context's span, in every tracer: a traced job's work runs in its span's
//! context ([`within`]), so nothing needs to be handed down to the components; outside a
//! traced run there is no span and nothing is made.

use std::future::Future;
use std::sync::Arc;

use futures::future::Either;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, SpanRef, Status, TraceContextExt, Tracer as _, WithContext};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use serde_json::Value;

use crate::record::TokenUsage;

/// The tracer a context's spans belong to, kept in the run's context for the spans made in it.
#[derive(Clone)]
pub(super) struct TracerHandle(pub(super) SdkTracer);

/// The same place in each tracer past the first, kept in the first's context: a span made
/// there is made in every tracer, each a child of its own.
#[derive(Clone)]
pub(super) struct Beside(pub(super) Arc<[Context]>);

/// `work` to run in `context` (a span's, when its run is traced): what it starts is that
/// span's child. Untraced (`None`), it runs as it is (and is no larger).
pub fn within<F: Future>(context: Option<Context>, work: F) -> Either<WithContext<F>, F> {
    match context {
        Some(context) => Either::Left(work.with_context(context)),
        None => Either::Right(work),
    }
}

/// A new span `name` in every tracer, each a child of the current context's span in its
/// tracer: the context it makes (the first tracer's, the others beside it); none outside a
/// traced run.
fn child(
    name: impl FnOnce() -> String,
    kind: SpanKind,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<Context> {
    let current = Context::current();
    current.get::<TracerHandle>()?;
    let (name, attributes) = (name(), attributes());
    let start = |parent: &Context| {
        let TracerHandle(tracer) = parent.get::<TracerHandle>()?;
        let span = tracer
            .span_builder(name.clone())
            .with_kind(kind.clone())
            .with_attributes(attributes.clone())
            .start_with_context(tracer, parent);
        Some(parent.with_span(span))
    };
    let first = start(&current)?;
    // Replaced, not inherited: the parent's are not this span's.
    Some(match current.get::<Beside>() {
        Some(Beside(others)) => {
            let others: Vec<Context> = others.iter().filter_map(start).collect();
            first.with_value(Beside(others.into()))
        }
        None => first,
    })
}

/// Each tracer's span of `context` (made by [`child`]).
fn spans(context: &Context) -> impl Iterator<Item = SpanRef<'_>> {
    let others = context.get::<Beside>().map(|Beside(others)| &others[..]);
    std::iter::once(context.span()).chain(others.unwrap_or_default().iter().map(|cx| cx.span()))
}

/// A span inside a job (an agent's iteration, a tool call, a wait for a person): a child of
/// the current context's span in every tracer, ended when dropped; nothing when the run is not
/// traced.
pub struct Inner(Option<Context>);

impl Inner {
    /// Starts `name` (made only when traced) with `attributes`, now.
    pub fn start(
        name: impl FnOnce() -> String,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        Self(child(name, SpanKind::Internal, attributes))
    }

    /// The context its span's children start in.
    pub fn context(&self) -> Option<Context> {
        self.0.clone()
    }

    /// What it did failed with `message` (redacted).
    pub fn failed(&self, message: &str) {
        self.each(|span| span.set_status(Status::error(message.to_string())));
    }

    /// Does `what` to its span in each tracer, when traced.
    fn each(&self, what: impl Fn(SpanRef<'_>)) {
        if let Some(context) = &self.0 {
            spans(context).for_each(what);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.each(|span| span.end());
    }
}

/// An upstream call's span, a child of the job's span in every tracer; nothing outside a
/// traced run. A model's (its request names a `model`) has OpenTelemetry's GenAI attributes;
/// another (a web search, say) is a plain HTTP client span. It ends when dropped: when a whole
/// answer has been read, or a streamed one has ended.
pub struct Call {
    span: Inner,
    traceparent: Option<String>,
    answered: bool,
}

impl Call {
    /// The `method` call to `url` with the (rendered) request `body`, starting now.
    pub fn start((method, url, body): (&str, &str, &Value)) -> Self {
        let host = || {
            let url = url::Url::parse(url).ok();
            url.and_then(|url| url.host_str().map(str::to_string))
                .unwrap_or_default()
        };
        let model = body.get("model").and_then(Value::as_str);
        let name = || match model {
            Some(model) => format!("chat {model}"),
            None => method.to_string(),
        };
        let attributes = || {
            let host = host();
            let mut attributes = vec![KeyValue::new("http.request.method", method.to_string())];
            if let Some(model) = model {
                let system = match host.as_str() {
                    "api.openai.com" => "openai",
                    "api.anthropic.com" => "anthropic",
                    "generativelanguage.googleapis.com" => "gcp.gemini",
                    "api.mistral.ai" => "mistral_ai",
                    _ => "_OTHER",
                };
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
            }
            attributes.push(KeyValue::new("server.address", host));
            attributes
        };
        let span = Inner(child(name, SpanKind::Client, attributes));
        // The request goes on in the first tracer's trace.
        let traceparent = span.0.as_ref().map(|context| {
            let span = context.span();
            let context = span.span_context();
            format!(
                "00-{}-{}-{:02x}",
                context.trace_id(),
                context.span_id(),
                context.trace_flags().to_u8()
            )
        });
        Self {
            span,
            traceparent,
            answered: false,
        }
    }

    /// The `traceparent` header the request carries, when the run is traced.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The upstream answered with `status`; an error status is the span's error.
    pub fn status(&mut self, status: u16) {
        self.span.each(|span| {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                span.set_status(Status::error(format!("upstream answered {status}")));
            }
        });
    }

    /// A piece of a streamed answer arrived: the first is the time to first token.
    pub fn piece(&mut self) {
        if !std::mem::replace(&mut self.answered, true) {
            self.span
                .each(|span| span.add_event("gen_ai.first_token", vec![]));
        }
    }

    /// The call failed with `message` (redacted).
    pub fn failed(&mut self, message: &str) {
        self.span.failed(message);
    }

    /// The tokens the upstream reported for this call.
    pub fn usage(&mut self, usage: &TokenUsage) {
        self.span
            .each(|span| usage_attributes(usage, |kv| span.set_attribute(kv)));
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
