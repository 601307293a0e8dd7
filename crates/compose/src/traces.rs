//! Runs as OpenTelemetry traces (the original's `tracer:`): a span for each run and a child
//! span for each job, exported by each configured tracer to its OTLP collector or Langfuse.
//! Spans are made per run and per job, never per token, and exported in batches from a
//! thread of their own with a bounded queue: a collector that is slow, down or hanging never
//! delays or fails a run (spans past the queue are dropped), and stopping waits for it at
//! most [`FLUSH_WITHIN`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;
use serde_json::Value;

use crate::config::{Capture, OtlpProtocol, TraceExporter, Tracer};
use crate::error::Redactor;
use crate::metrics::Metrics;
use crate::record::{Output, RunRecord, Status as RunStatus};
use crate::workflow::JobNews;
use call::{usage_attributes, Beside, TracerHandle};
pub use call::{within, Call, Inner};
use export::{bounded, Waiting};

mod call;
mod export;
mod grpc;

/// The longest a stop waits for the last spans to go out.
pub const FLUSH_WITHIN: Duration = Duration::from_secs(2);

/// The configured tracers, exporting.
pub struct Traces {
    sinks: Vec<Sink>,
    redactor: Arc<Redactor>,
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
        Ok(Self { sinks, redactor })
    }

    /// The spans of a run of `workflow_id` as task `task_id`, started now: in the trace of
    /// `traceparent` (a caller's W3C trace context) when it is one, else in a new trace.
    pub fn run(&self, task_id: &str, workflow_id: &str, traceparent: Option<&str>) -> RunSpans<'_> {
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
        RunSpans {
            traces: self,
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
    let waiting = Waiting::new(metrics);
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

/// The spans of one run: the run's, and its jobs' while they run.
pub struct RunSpans<'t> {
    traces: &'t Traces,
    /// The run's span in each tracer, as the context its jobs' spans start in.
    runs: Vec<Context>,
    /// The jobs running: their spans' contexts in each tracer (where the job's work runs, see
    /// [`RunSpans::job_context`]).
    jobs: Mutex<HashMap<JobKey, Vec<Context>>>,
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

    /// The context a running job's work runs in (its span's), for the spans made inside it
    /// (see [`within`]).
    pub fn job_context(&self, job_id: &str, iteration: Option<u32>) -> Option<Context> {
        if !self.exporting() {
            return None;
        }
        let jobs = self.jobs.lock();
        let (first, others) = jobs.get(&(job_id.to_string(), iteration))?.split_first()?;
        Some(match others.is_empty() {
            true => first.clone(),
            false => first.with_value(Beside(others.into())),
        })
    }

    /// A job's attempt failed with `message` (redacted) and it runs again: an event on its span.
    pub fn retrying(&self, (job_id, iteration): (&str, Option<u32>), attempt: u32, message: &str) {
        if !self.exporting() {
            return;
        }
        if let Some(spans) = self.jobs.lock().get(&(job_id.to_string(), iteration)) {
            for cx in spans {
                cx.span().add_event(
                    "retry",
                    vec![
                        KeyValue::new("model_compose.attempt", i64::from(attempt)),
                        KeyValue::new("exception.message", message.to_string()),
                    ],
                );
            }
        }
    }

    /// A job's news: its span starts (an attempt after a failed one counts on the same span),
    /// or ends with how it ended.
    pub fn job(&self, news: &JobNews<'_>) {
        if !self.exporting() {
            return;
        }
        let key = (news.job_id.to_string(), news.iteration);
        match news.event {
            crate::record::JobStage::Started => {
                let mut jobs = self.jobs.lock();
                if jobs.contains_key(&key) {
                    // Another attempt (see `retrying`).
                    return;
                }
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
                        let span = sink
                            .tracer
                            .span_builder(format!("job {}", news.job_id))
                            .with_attributes(attributes)
                            .start_with_context(&sink.tracer, run);
                        run.with_span(span)
                    })
                    .collect();
                jobs.insert(key, spans);
            }
            crate::record::JobStage::Completed | crate::record::JobStage::Failed => {
                let Some(spans) = self.jobs.lock().remove(&key) else {
                    return;
                };
                let failed = news.event == crate::record::JobStage::Failed;
                for (cx, sink) in spans.iter().zip(&self.traces.sinks) {
                    let span = cx.span();
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
                if let (Some(next), Some(spans)) = (news.next_job_id, self.jobs.lock().get(&key)) {
                    for cx in spans {
                        cx.span().set_attribute(KeyValue::new(
                            "model_compose.routed_to",
                            next.to_string(),
                        ));
                    }
                }
            }
            crate::record::JobStage::Message => {}
        }
    }

    /// Ends the run's spans as `record` (the run as the history keeps it) says it ended; the
    /// run belongs to `conversation` when it is a chat's turn.
    pub fn end(self, record: &RunRecord, conversation: Option<&str>) {
        // A job the run left running (cancelled, or failed beside it) ends with it.
        for (_, spans) in self.jobs.lock().drain() {
            spans.iter().for_each(|cx| cx.span().end());
        }
        for (run, sink) in self.runs.iter().zip(&self.traces.sinks) {
            let span = run.span();
            span.set_attribute(KeyValue::new(
                "model_compose.status",
                record.status.as_str(),
            ));
            if let Some(conversation) = conversation {
                span.set_attribute(KeyValue::new(
                    "gen_ai.conversation.id",
                    conversation.to_string(),
                ));
                span.set_attribute(KeyValue::new("session.id", conversation.to_string()));
            }
            if sink.capture.input {
                span.set_attribute(payload("input.value", &record.input, self.traces, sink));
            }
            match (&record.output, sink.capture.output) {
                // A text is captured as it is, not as a JSON string.
                (Some(Output::Text(text) | Output::Bytes(text)), true) => {
                    span.set_attribute(payload_text("output.value", text, self.traces, sink));
                }
                (Some(Output::Json(value)), true) => {
                    span.set_attribute(payload("output.value", value, self.traces, sink));
                }
                _ => {}
            }
            if let Some(usage) = &record.usage {
                usage_attributes(usage, |kv| span.set_attribute(kv));
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

/// `value` as a span attribute `key`: its secrets hidden, the tracer's `redact_keys`
/// replaced, cut to its `max_payload_bytes`. A text is the attribute as it is.
fn payload(key: &'static str, value: &Value, traces: &Traces, sink: &Sink) -> KeyValue {
    if let Value::String(text) = value {
        return payload_text(key, text, traces, sink);
    }
    let mut value = traces
        .redactor
        .value(value)
        .unwrap_or_else(|| value.clone());
    redact_keys(&mut value, &sink.capture.redact_keys);
    cut(key, value.to_string(), sink)
}

/// `text` as a span attribute `key`, as [`payload`] makes one.
fn payload_text(key: &'static str, text: &str, traces: &Traces, sink: &Sink) -> KeyValue {
    let text = traces
        .redactor
        .text(text)
        .unwrap_or_else(|| text.to_string());
    cut(key, text, sink)
}

/// `text` cut to the tracer's `max_payload_bytes`, as the attribute `key`.
fn cut(key: &'static str, mut text: String, sink: &Sink) -> KeyValue {
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
