//! The batch export of a tracer's spans, bounded: at most [`QUEUE`] spans wait for the
//! collector; more are dropped and counted in `/metrics`, so that a collector that is slow or
//! down costs bounded memory and never holds a run up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Span};
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::metrics::Metrics;

/// The most spans waiting for export, per tracer; more are dropped (and counted).
const QUEUE: usize = 2048;
/// How long spans wait to be exported together.
const BATCH_EVERY: Duration = Duration::from_millis(500);

/// The spans of a tracer ended and not yet exported (or given up): at most `most`; a span past
/// them is dropped and counted, so that a collector that is slow or down costs bounded memory
/// and says so in `/metrics`.
#[derive(Clone)]
pub(super) struct Waiting {
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
    /// No span waiting yet, at most [`QUEUE`]; drops counted in `metrics`.
    pub(super) fn new(metrics: &Arc<Metrics>) -> Self {
        Self {
            spans: Arc::new(AtomicUsize::new(0)),
            most: QUEUE,
            metrics: Arc::clone(metrics),
        }
    }

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
pub(super) fn bounded<E: SpanExporter + 'static>(exporter: E, waiting: Waiting) -> Bounded {
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
pub(super) struct Bounded {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
