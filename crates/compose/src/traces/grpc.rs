//! OTLP over gRPC (`protocol: grpc`): the SDK's tonic exporter, which needs a Tokio runtime
//! where the batch processor's thread has none. It gets one of its own: one worker thread,
//! which the exports run on and which is left to end by itself when the exporter goes (it may
//! be dropped inside the server's runtime, where a runtime cannot be shut down waiting).

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

/// The tonic exporter and the runtime it runs on.
#[derive(Debug)]
pub(super) struct Exporter {
    inner: opentelemetry_otlp::SpanExporter,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Exporter {
    /// Exports to the collector at `endpoint` with `headers` as gRPC metadata, each export
    /// within `timeout`; over TLS (the system's roots) when `endpoint` is `https` and not
    /// `insecure`, else in plain text.
    pub fn new(
        endpoint: &str,
        headers: HashMap<String, String>,
        timeout: Duration,
        insecure: bool,
    ) -> Result<Self, String> {
        let failed = |err: &dyn std::fmt::Display| format!("tracer: {err}");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("trace-export")
            .enable_all()
            .build()
            .map_err(|err| failed(&err))?;
        let mut metadata = http::HeaderMap::new();
        for (key, value) in headers {
            let key = http::HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes())
                .map_err(|err| failed(&err))?;
            let value = http::HeaderValue::from_str(&value).map_err(|err| failed(&err))?;
            metadata.insert(key, value);
        }
        let metadata = MetadataMap::from_headers(metadata);
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .with_metadata(metadata);
        if endpoint.starts_with("https://") && !insecure {
            let tls = ClientTlsConfig::new().with_native_roots();
            builder = builder.with_tls_config(tls);
        }
        // The channel is made within the runtime it will run on.
        let inner = {
            let _inside = runtime.enter();
            builder.build().map_err(|err| failed(&err))?
        };
        Ok(Self {
            inner,
            runtime: Some(runtime),
        })
    }
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match &self.runtime {
            // The batch processor's own thread, outside any runtime: it may wait here.
            Some(runtime) => runtime.block_on(self.inner.export(batch)),
            None => Err(OTelSdkError::AlreadyShutdown),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
