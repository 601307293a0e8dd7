//! Runs as OpenTelemetry traces (the original's `tracer:`): a span for each run and a child
//! span for each job, exported by each configured tracer to its OTLP collector or Langfuse.
//! Spans are made per run and per job, never per token, and exported in batches from a
//! thread of their own with a bounded queue: a collector that is slow, down or hanging never
//! delays or fails a run (spans past the queue are dropped), and stopping waits for it at
//! most [`FLUSH_WITHIN`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer};
use opentelemetry_sdk::trace::{SdkTracerProvider, Span};
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;
use serde_json::Value;

use crate::config::{Capture, OtlpProtocol, TraceExporter, Tracer};
use crate::error::Redactor;
use crate::metrics::Metrics;
use crate::record::{RunRecord, Status as RunStatus};
use crate::workflow::JobNews;

mod grpc;

/// The most spans waiting for export, per tracer; more are dropped (and counted).
const QUEUE: usize = 2048;
/// How long spans wait to be exported together.
const BATCH_EVERY: Duration = Duration::from_millis(500);
/// The longest a stop waits for the last spans to go out.
pub const FLUSH_WITHIN: Duration = Duration::from_secs(2);

/// The configured tracers, exporting.
pub struct Traces {
    sinks: Vec<Sink>,
    redactor: Arc<Redactor>,
    /// The runs going on, by task id: the context their upstream calls' spans start in.
    /// Looked up once per call, so that nothing is done per token.
    live: Mutex<HashMap<String, Context>>,
}

/// One tracer: its provider (which owns the exporting thread), and what it captures.
struct Sink {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    capture: Capture,
}

impl Traces {
    /// Starts exporting to each of `tracers` (none: nothing is made); values are shown
    /// through `redactor`, which hides every secret of the configuration.
    pub fn start(
        tracers: &[Tracer],
        redactor: Arc<Redactor>,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, String> {
        if !tracers.is_empty() {
            crate::upstream::ensure_crypto_provider();
        }
        let sinks = tracers
            .iter()
            .map(|tracer| sink(tracer, metrics))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sinks,
            redactor,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// The spans of a run of `workflow_id` as task `task_id`, started now: in the trace of
    /// `traceparent` (a caller's W3C trace context) when it is one, else in a new trace.
    pub fn run<'t>(
        &'t self,
        task_id: &'t str,
        workflow_id: &str,
        traceparent: Option<&str>,
    ) -> RunSpans<'t> {
        let parent = match (traceparent, self.sinks.is_empty()) {
            (Some(traceparent), false) => {
                use opentelemetry::propagation::TextMapPropagator as _;
                let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
                opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier)
            }
            _ => Context::new(),
        };
        let runs = self
            .sinks
            .iter()
            .map(|sink| {
                let span = sink
                    .tracer
                    .span_builder(format!("workflow {workflow_id}"))
                    .with_kind(SpanKind::Server)
                    .with_attributes([
                        KeyValue::new("model_compose.task_id", task_id.to_string()),
                        KeyValue::new("model_compose.workflow_id", workflow_id.to_string()),
                    ])
                    .start_with_context(&sink.tracer, &parent);
                Context::new()
                    .with_span(span)
                    .with_value(TracerHandle(sink.tracer.clone()))
            })
            .collect::<Vec<_>>();
        if let Some(first) = runs.first() {
            self.live.lock().insert(task_id.to_string(), first.clone());
        }
        RunSpans {
            traces: self,
            task_id,
            runs,
            jobs: Mutex::new(HashMap::new()),
        }
    }
}

impl Drop for Traces {
    /// Sends what is waiting, within [`FLUSH_WITHIN`], and stops exporting.
    fn drop(&mut self) {
        for sink in &self.sinks {
            let _ = sink.provider.shutdown_with_timeout(FLUSH_WITHIN);
        }
    }
}

/// A tracer's provider and tracer; the spans it drops counted in `metrics`.
fn sink(tracer: &Tracer, metrics: &Arc<Metrics>) -> Result<Sink, String> {
    let (headers, service_name) = match &tracer.exporter {
        TraceExporter::Otlp {
            headers,
            service_name,
            ..
        } => (headers.iter().cloned().collect(), service_name.clone()),
        TraceExporter::Langfuse {
            public_key,
            secret_key,
            ..
        } => {
            use base64::Engine as _;
            let pair = format!("{public_key}:{secret_key}");
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            let headers = HashMap::from([("Authorization".into(), format!("Basic {basic}"))]);
            (headers, "model-compose".into())
        }
    };
    let waiting = Waiting {
        spans: Arc::new(AtomicUsize::new(0)),
        most: QUEUE,
        metrics: Arc::clone(metrics),
    };
    let processor = match &tracer.exporter {
        TraceExporter::Otlp {
            protocol: OtlpProtocol::Grpc,
            insecure,
            ..
        } => bounded(
            grpc::Exporter::new(
                &tracer.exporter.endpoint(),
                headers,
                tracer.timeout,
                *insecure,
            )?,
            waiting,
        ),
        _ => bounded(
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(tracer.exporter.endpoint())
                .with_timeout(tracer.timeout)
                .with_headers(headers)
                .build()
                .map_err(|err| format!("tracer: {err}"))?,
            waiting,
        ),
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service_name)
                .build(),
        )
        .build();
    use opentelemetry::trace::TracerProvider as _;
    Ok(Sink {
        tracer: provider.tracer("model-compose"),
        provider,
        capture: tracer.capture.clone(),
    })
}

/// The spans of a tracer ended and not yet exported (or given up): at most `most`; a span past
/// them is dropped and counted, so that a collector that is slow or down costs bounded memory
/// and says so in `/metrics`.
#[derive(Clone)]
struct Waiting {
    spans: Arc<AtomicUsize>,
    most: usize,
    metrics: Arc<Metrics>,
}

/// The SDK's processors and exporters are `Debug`.
impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Waiting({}/{})",
            self.spans.load(Ordering::Relaxed),
            self.most
        )
    }
}

impl Waiting {
    /// Whether one more span may wait (else it is counted as dropped).
    fn admit(&self) -> bool {
        if self.spans.fetch_add(1, Ordering::Relaxed) < self.most {
            return true;
        }
        self.spans.fetch_sub(1, Ordering::Relaxed);
        self.metrics.spans_dropped(1);
        false
    }

    /// `spans` are no longer waiting: exported, or given up.
    fn done(&self, spans: usize) {
        self.spans.fetch_sub(spans, Ordering::Relaxed);
    }
}

/// `exporter` behind a batch processor that takes only the spans there is room for.
fn bounded<E: SpanExporter + 'static>(exporter: E, waiting: Waiting) -> Bounded {
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE)
        .with_scheduled_delay(BATCH_EVERY)
        .build();
    let exporter = Counted {
        inner: exporter,
        waiting: waiting.clone(),
    };
    Bounded {
        inner: BatchSpanProcessor::builder(exporter)
            .with_batch_config(batches)
            .build(),
        waiting,
    }
}

/// The batch processor, taking only the spans there is room for.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    waiting: Waiting,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.waiting.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, telling [`Waiting`] of each batch it is done with.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    waiting: Waiting,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let exported = self.inner.export(batch).await;
        self.waiting.done(spans);
        exported
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The spans of one run: the run's, and its jobs' while they run.
pub struct RunSpans<'t> {
    traces: &'t Traces,
    task_id: &'t str,
    /// The run's span in each tracer, as the context its jobs' spans start in.
    runs: Vec<Context>,
    /// The jobs running: their spans in each tracer.
    jobs: Mutex<HashMap<JobKey, Vec<Span>>>,
}

/// A job run: its id, and which item, round or step when it runs inside another job.
type JobKey = (String, Option<u32>);

impl RunSpans<'_> {
    /// Whether any tracer takes them (else each of their calls does nothing).
    pub fn exporting(&self) -> bool {
        !self.runs.is_empty()
    }

    /// The id of the trace the run is in (the first tracer's), as 32 hex digits.
    pub fn trace_id(&self) -> Option<String> {
        let run = self.runs.first()?;
        Some(run.span().span_context().trace_id().to_string())
    }

    /// A job's news: its span starts, or ends with how it ended.
    pub fn job(&self, news: &JobNews<'_>) {
        if !self.exporting() {
            return;
        }
        let key = (news.job_id.to_string(), news.iteration);
        match news.event {
            crate::record::JobStage::Started => {
                let spans = self
                    .traces
                    .sinks
                    .iter()
                    .zip(&self.runs)
                    .map(|(sink, run)| {
                        let mut attributes = vec![
                            KeyValue::new("model_compose.job_id", news.job_id.to_string()),
                            KeyValue::new("model_compose.job_type", news.job_type),
                        ];
                        if let Some(iteration) = news.iteration {
                            attributes.push(KeyValue::new(
                                "model_compose.iteration",
                                i64::from(iteration),
                            ));
                        }
                        if let Some(input) = news.value.filter(|_| sink.capture.input) {
                            attributes.push(payload("input.value", input, self.traces, sink));
                        }
                        sink.tracer
                            .span_builder(format!("job {}", news.job_id))
                            .with_attributes(attributes)
                            .start_with_context(&sink.tracer, run)
                    })
                    .collect();
                self.jobs.lock().insert(key, spans);
            }
            crate::record::JobStage::Completed | crate::record::JobStage::Failed => {
                let Some(spans) = self.jobs.lock().remove(&key) else {
                    return;
                };
                let failed = news.event == crate::record::JobStage::Failed;
                for (mut span, sink) in spans.into_iter().zip(&self.traces.sinks) {
                    span.set_attribute(KeyValue::new(
                        "model_compose.status",
                        if failed { "failed" } else { "completed" },
                    ));
                    match news.value {
                        Some(Value::String(message)) if failed => {
                            span.set_status(Status::error(message.clone()))
                        }
                        Some(output) if sink.capture.output => {
                            span.set_attribute(payload("output.value", output, self.traces, sink))
                        }
                        _ => {}
                    }
                    span.end();
                }
            }
            crate::record::JobStage::Routed => {
                if let (Some(next), Some(spans)) =
                    (news.next_job_id, self.jobs.lock().get_mut(&key))
                {
                    for span in spans {
                        span.set_attribute(KeyValue::new(
                            "model_compose.routed_to",
                            next.to_string(),
                        ));
                    }
                }
            }
            crate::record::JobStage::Message => {}
        }
    }

    /// Ends the run's spans as `record` (the run as the history keeps it) says it ended.
    pub fn end(self, record: &RunRecord) {
        // A job the run left running (cancelled, or failed beside it) ends with it.
        for (_, spans) in self.jobs.lock().drain() {
            spans.into_iter().for_each(|mut span| span.end());
        }
        for (run, sink) in self.runs.iter().zip(&self.traces.sinks) {
            let span = run.span();
            span.set_attribute(KeyValue::new(
                "model_compose.status",
                record.status.as_str(),
            ));
            if sink.capture.input {
                span.set_attribute(payload("input.value", &record.input, self.traces, sink));
            }
            let output = record.output.as_ref().map(serde_json::to_value);
            if let (true, Some(Ok(output))) = (sink.capture.output, output) {
                span.set_attribute(payload("output.value", &output, self.traces, sink));
            }
            if let Some(usage) = &record.usage {
                let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
                if let Some(n) = tokens(usage.prompt_tokens) {
                    span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", n));
                }
                if let Some(n) = tokens(usage.completion_tokens) {
                    span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", n));
                }
            }
            match (&record.error, record.status) {
                (Some(failure), _) => span.set_status(Status::error(failure.message.clone())),
                (None, RunStatus::Completed) => span.set_status(Status::Ok),
                (None, status) => span.set_status(Status::error(status.as_str())),
            }
            span.end();
        }
    }
}

impl Drop for RunSpans<'_> {
    /// The run is over (or dropped): its calls are no more.
    fn drop(&mut self) {
        if self.exporting() {
            self.traces.live.lock().remove(self.task_id);
        }
    }
}

/// `value` as a span attribute `key`: its secrets hidden, the tracer's `redact_keys`
/// replaced, cut to its `max_payload_bytes`.
fn payload(key: &'static str, value: &Value, traces: &Traces, sink: &Sink) -> KeyValue {
    let mut value = traces
        .redactor
        .value(value)
        .unwrap_or_else(|| value.clone());
    redact_keys(&mut value, &sink.capture.redact_keys);
    let mut text = match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    if let Some(most) = sink.capture.max_payload_bytes {
        if text.len() > most {
            let mut cut = most;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
    }
    KeyValue::new(key, text)
}

/// Replaces the value of every key of `value` named in `keys` (in any case), at any depth.
fn redact_keys(value: &mut Value, keys: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                    *inner = Value::String("[redacted]".into());
                } else {
                    redact_keys(inner, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_keys(item, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_past_the_queue_are_dropped_and_counted_until_some_are_exported() {
        let metrics = Arc::new(Metrics::new());
        let waiting = Waiting {
            spans: Arc::new(AtomicUsize::new(0)),
            most: 2,
            metrics: Arc::clone(&metrics),
        };
        assert!(waiting.admit() && waiting.admit());
        assert!(!waiting.admit());
        assert!(metrics
            .encode()
            .contains("model_compose_trace_spans_dropped_total 1\n"));
        waiting.done(2);
        assert!(waiting.admit());
    }

    #[test]
    fn redact_keys_replaces_named_values_at_any_depth_in_any_case() {
        let mut value = json!({"Password": "p", "user": {"token": "t", "name": "n"},
                               "list": [{"PASSWORD": 1}]});
        redact_keys(&mut value, &["password".into(), "token".into()]);
        assert_eq!(
            value,
            json!({"Password": "[redacted]", "user": {"token": "[redacted]", "name": "n"},
                   "list": [{"PASSWORD": "[redacted]"}]})
        );
    }
}

/// The tracer a context's spans belong to, kept in the context for the calls made in it.
#[derive(Clone)]
struct TracerHandle(SdkTracer);

/// An upstream call's span, with OpenTelemetry's GenAI attributes, a child of its run's span
/// (the first tracer's); nothing outside a traced run. It ends when dropped: when a whole
/// answer has been read, or a streamed one has ended.
pub struct Call {
    span: Option<Span>,
    traceparent: Option<String>,
    answered: bool,
}

impl Call {
    /// The call of task `run` to `url` with the (rendered) request `body`, starting now.
    pub fn start(traces: &Traces, run: Option<&str>, (url, body): (&str, &Value)) -> Self {
        let cx = match run {
            Some(run) if !traces.sinks.is_empty() => traces.live.lock().get(run).cloned(),
            _ => None,
        };
        let Some(TracerHandle(tracer)) = cx.as_ref().and_then(|cx| cx.get::<TracerHandle>()) else {
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
        let model = body.get("model").and_then(Value::as_str);
        let mut attributes = vec![
            KeyValue::new("gen_ai.system", system),
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("server.address", host),
        ];
        if let Some(model) = model {
            attributes.push(KeyValue::new("gen_ai.request.model", model.to_string()));
        }
        let temperature = body.get("temperature").and_then(|t| match t {
            Value::String(text) => text.trim().parse().ok(),
            other => other.as_f64(),
        });
        if let Some(temperature) = temperature {
            attributes.push(KeyValue::new("gen_ai.request.temperature", temperature));
        }
        let span = tracer
            .span_builder(format!("chat {}", model.unwrap_or("upstream")))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, cx.as_ref().unwrap_or(&Context::new()));
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
    pub fn usage(&mut self, usage: &crate::record::TokenUsage) {
        let Some(span) = &mut self.span else {
            return;
        };
        let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        if let Some(n) = tokens(usage.prompt_tokens) {
            span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", n));
        }
        if let Some(n) = tokens(usage.completion_tokens) {
            span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", n));
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
