//! What a running server counts, for Prometheus (`GET /metrics`): runs, upstream requests,
//! time to first token, run durations, stream pieces, tokens, clients and bytes. One set per
//! engine, shared by every door; the counting is atomic and never blocks a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use crate::record::TokenUsage;

/// The `Content-Type` of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bounds of the time histograms, in seconds: 5 ms to about 5 minutes.
const TIME_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkflowLabel {
    workflow: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    workflow: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    component: String,
    /// The HTTP status, or `error` when no answer came.
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    workflow: String,
    /// `prompt` or `completion`.
    kind: String,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    runs_started: Family<WorkflowLabel, Counter>,
    runs_ended: Family<RunLabels, Counter>,
    runs_in_flight: Family<WorkflowLabel, Gauge>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    first_token: Family<WorkflowLabel, Histogram>,
    duration: Family<RunLabels, Histogram>,
    pieces: Family<WorkflowLabel, Counter>,
    tokens: Family<TokenLabels, Counter>,
    sse_clients: Gauge,
    bytes_received: Counter,
    bytes_sent: Counter,
    store_errors: Counter,
    spans_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let histogram = || Histogram::new(TIME_BUCKETS);
        let metrics = Self {
            registry: Registry::with_prefix("model_compose"),
            runs_started: Family::default(),
            runs_ended: Family::default(),
            runs_in_flight: Family::default(),
            upstream_requests: Family::default(),
            first_token: Family::new_with_constructor(histogram),
            duration: Family::new_with_constructor(histogram),
            pieces: Family::default(),
            tokens: Family::default(),
            sse_clients: Gauge::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            store_errors: Counter::default(),
            spans_dropped: Counter::default(),
        };
        metrics.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "runs_started",
            "Runs started, by workflow",
            self.runs_started.clone(),
        );
        r.register(
            "runs",
            "Runs ended, by workflow and status (completed, failed, cancelled)",
            self.runs_ended.clone(),
        );
        r.register(
            "runs_in_flight",
            "Runs started and not yet ended, by workflow",
            self.runs_in_flight.clone(),
        );
        r.register(
            "upstream_requests",
            "Requests to upstreams, by component and HTTP status (error: no answer)",
            self.upstream_requests.clone(),
        );
        r.register_with_unit(
            "time_to_first_token",
            "From a run's start to its first streamed piece, by workflow",
            Unit::Seconds,
            self.first_token.clone(),
        );
        r.register_with_unit(
            "run_duration",
            "From a run's start to its end, by workflow and status",
            Unit::Seconds,
            self.duration.clone(),
        );
        r.register(
            "stream_pieces",
            "Streamed pieces (tokens) produced, by workflow",
            self.pieces.clone(),
        );
        r.register(
            "tokens",
            "Tokens the upstreams reported used, by workflow and kind (prompt, completion)",
            self.tokens.clone(),
        );
        r.register(
            "sse_clients",
            "Clients reading a Server-Sent Events stream now",
            self.sse_clients.clone(),
        );
        r.register_with_unit(
            "received",
            "Request body bytes received by the servers",
            Unit::Bytes,
            self.bytes_received.clone(),
        );
        r.register_with_unit(
            "sent",
            "Response body bytes sent by the servers",
            Unit::Bytes,
            self.bytes_sent.clone(),
        );
        r.register(
            "history_store_errors",
            "Run history reads and writes that failed",
            self.store_errors.clone(),
        );
        r.register(
            "trace_spans_dropped",
            "Spans not exported because a tracer's queue was full (its collector slow or down)",
            self.spans_dropped.clone(),
        );
        self
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn run_started(&self, workflow: &str) {
        let label = WorkflowLabel {
            workflow: workflow.to_string(),
        };
        self.runs_started.get_or_create(&label).inc();
        self.runs_in_flight.get_or_create(&label).inc();
    }

    /// A run ended: its status, how long it took, when its first piece came (streams), and
    /// the tokens it used, if the upstream said.
    pub fn run_ended(&self, workflow: &str, ended: &RunEnd) {
        let label = WorkflowLabel {
            workflow: workflow.to_string(),
        };
        self.runs_in_flight.get_or_create(&label).dec();
        let labels = RunLabels {
            workflow: workflow.to_string(),
            status: ended.status.to_string(),
        };
        self.runs_ended.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(ended.duration.as_secs_f64());
        if let Some(first) = ended.first_piece {
            self.first_token
                .get_or_create(&label)
                .observe(first.as_secs_f64());
        }
        let usage = ended.usage;
        for (kind, count) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ] {
            if let Some(count) = count {
                let labels = TokenLabels {
                    workflow: workflow.to_string(),
                    kind: kind.to_string(),
                };
                self.tokens.get_or_create(&labels).inc_by(count);
            }
        }
    }

    /// The counter of a workflow's stream pieces, looked up once per run: counting a piece is
    /// then one atomic addition.
    pub fn pieces(&self, workflow: &str) -> Counter {
        let label = WorkflowLabel {
            workflow: workflow.to_string(),
        };
        self.pieces.get_or_create(&label).clone()
    }

    /// An upstream answered with `status` (`None`: it did not answer).
    pub fn upstream(&self, component: &str, status: Option<u16>) {
        let labels = UpstreamLabels {
            component: component.to_string(),
            status: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
        };
        self.upstream_requests.get_or_create(&labels).inc();
    }

    /// A client reading an event stream, counted for as long as the guard lives.
    pub fn sse_client(self: &Arc<Self>) -> SseClient {
        self.sse_clients.inc();
        SseClient(Arc::clone(self))
    }

    pub fn received(&self, bytes: usize) {
        self.bytes_received.inc_by(bytes as u64);
    }

    pub fn sent(&self, bytes: usize) {
        self.bytes_sent.inc_by(bytes as u64);
    }

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// Counts spans a tracer could not keep for export.
    pub fn spans_dropped(&self, spans: u64) {
        self.spans_dropped.inc_by(spans);
    }
}

/// One client reading an event stream (see [`Metrics::sse_client`]).
pub struct SseClient(Arc<Metrics>);

impl Drop for SseClient {
    fn drop(&mut self) {
        self.0.sse_clients.dec();
    }
}

/// How a run ended, as the metrics count it.
pub struct RunEnd {
    pub status: &'static str,
    pub duration: Duration,
    pub first_piece: Option<Duration>,
    pub usage: TokenUsage,
}

/// The tokens a run used, as its upstreams report them: added up over its requests (each
/// request's own count is its last report, see [`TokenUsage::merge_latest`]).
#[derive(Debug, Default)]
pub struct Usage {
    prompt: AtomicU64,
    completion: AtomicU64,
    /// Bit 0: a prompt count was reported; bit 1: a completion count.
    reported: AtomicU64,
}

impl Usage {
    /// Adds one request's count.
    pub fn add(&self, count: TokenUsage) {
        if let Some(prompt) = count.prompt_tokens {
            self.prompt.fetch_add(prompt, Ordering::Relaxed);
            self.reported.fetch_or(1, Ordering::Relaxed);
        }
        if let Some(completion) = count.completion_tokens {
            self.completion.fetch_add(completion, Ordering::Relaxed);
            self.reported.fetch_or(2, Ordering::Relaxed);
        }
    }

    /// What was reported so far.
    pub fn count(&self) -> TokenUsage {
        let reported = self.reported.load(Ordering::Relaxed);
        TokenUsage {
            prompt_tokens: (reported & 1 != 0).then(|| self.prompt.load(Ordering::Relaxed)),
            completion_tokens: (reported & 2 != 0).then(|| self.completion.load(Ordering::Relaxed)),
        }
    }
}

impl TokenUsage {
    /// The count of a `usage` block: OpenAI's `prompt_tokens`/`completion_tokens` or
    /// Anthropic's `input_tokens`/`output_tokens`; `None` when it holds neither.
    pub fn from_usage(usage: &serde_json::Value) -> Option<Self> {
        let read = |names: [&str; 2]| names.iter().find_map(|n| usage.get(*n)?.as_u64());
        Self {
            prompt_tokens: read(["prompt_tokens", "input_tokens"]),
            completion_tokens: read(["completion_tokens", "output_tokens"]),
        }
        .reported()
    }

    /// A later report of the same request: what it says replaces what an earlier one said
    /// (streamed counts are running totals).
    pub fn merge_latest(&mut self, later: TokenUsage) {
        self.prompt_tokens = later.prompt_tokens.or(self.prompt_tokens);
        self.completion_tokens = later.completion_tokens.or(self.completion_tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_blocks_of_both_providers_are_read() {
        let openai = json!({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12});
        let anthropic_start = json!({"input_tokens": 25, "output_tokens": 1});
        let anthropic_delta = json!({"output_tokens": 15});
        let tokens = |prompt, completion| TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
        };
        assert_eq!(
            TokenUsage::from_usage(&openai),
            Some(tokens(Some(5), Some(7)))
        );
        let mut request = TokenUsage::from_usage(&anthropic_start).unwrap();
        request.merge_latest(TokenUsage::from_usage(&anthropic_delta).unwrap());
        assert_eq!(request, tokens(Some(25), Some(15)));
        assert_eq!(TokenUsage::from_usage(&json!(null)), None);
        assert_eq!(TokenUsage::from_usage(&json!({"seconds": 3})), None);

        let run = Usage::default();
        assert_eq!(run.count(), TokenUsage::default());
        run.add(request);
        run.add(tokens(Some(1), None));
        assert_eq!(run.count(), tokens(Some(26), Some(15)));
        assert_eq!(run.count().per_second(1500), Some(10.0));
    }

    #[test]
    fn the_text_names_every_metric_once_counted() {
        let metrics = Metrics::new();
        metrics.run_started("chat");
        metrics.upstream("openai", Some(200));
        metrics.upstream("openai", None);
        metrics.pieces("chat").inc_by(3);
        metrics.run_ended(
            "chat",
            &RunEnd {
                status: "completed",
                duration: Duration::from_millis(300),
                first_piece: Some(Duration::from_millis(40)),
                usage: TokenUsage {
                    prompt_tokens: Some(5),
                    completion_tokens: Some(7),
                },
            },
        );
        let text = metrics.encode();
        for line in [
            "model_compose_runs_started_total{workflow=\"chat\"} 1",
            "model_compose_runs_total{workflow=\"chat\",status=\"completed\"} 1",
            "model_compose_runs_in_flight{workflow=\"chat\"} 0",
            "model_compose_upstream_requests_total{component=\"openai\",status=\"200\"} 1",
            "model_compose_upstream_requests_total{component=\"openai\",status=\"error\"} 1",
            "model_compose_time_to_first_token_seconds_bucket{le=\"0.05\",workflow=\"chat\"} 1",
            "model_compose_run_duration_seconds_count{workflow=\"chat\",status=\"completed\"} 1",
            "model_compose_stream_pieces_total{workflow=\"chat\"} 3",
            "model_compose_tokens_total{workflow=\"chat\",kind=\"completion\"} 7",
            "model_compose_sse_clients 0",
            "model_compose_history_store_errors_total 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
