//! Runs exported as traces (`tracer:`, issue 29): `up` with the seed config and a tracer whose
//! collector is an OTLP/HTTP receiver the test starts (decoding OTLP's protobuf messages), a
//! streamed run through the REST API, then the spans the collector got.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use support::collector::*;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir, TEST_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_run_is_a_trace_of_its_run_and_job_spans() {
    let collector = Collector::start().await;
    let (mock, _dir, mut server) = traced(
        &["Hel", "lo"],
        &format!(
            "tracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n  service_name: chat-demo\n",
            collector.base
        ),
    );
    let streamed = streamed_run(&server, "Say hello").await;
    assert!(
        streamed.contains("Hel") && streamed.contains("lo"),
        "{streamed}"
    );
    // A stop sends what is waiting.
    let stopping = Instant::now();
    assert!(server.stop().success());
    assert!(stopping.elapsed() < Duration::from_secs(10));

    let spans = collector.spans.lock().clone();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let named = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
    let (run, job, call) = (
        named("workflow __workflow__"),
        named("job __job__"),
        named("chat gpt-4o"),
    );
    assert!(run.parent_span_id.is_empty());
    assert_eq!(job.name, "job __job__");
    assert_eq!(job.trace_id, run.trace_id);
    assert_eq!(job.parent_span_id, run.span_id);
    assert!(attribute(run, "model_compose.task_id").is_some_and(|id| id.len() == 26));
    assert_attribute(run, "model_compose.workflow_id", "__workflow__");
    assert_attribute(run, "model_compose.status", "completed");
    let input = attribute(run, "input.value").unwrap();
    assert!(input.contains("Say hello"), "{input}");
    // A streamed text is captured as the text.
    assert_attribute(run, "output.value", "Hello");
    assert_attribute(job, "model_compose.job_type", "component");
    assert_attribute(job, "model_compose.status", "completed");
    // The upstream call: a client span of the job's with the GenAI attributes, and the
    // request carried the trace on (`traceparent`).
    assert_eq!(call.trace_id, run.trace_id);
    assert_eq!(call.parent_span_id, job.span_id);
    assert_attribute(call, "gen_ai.system", "_OTHER");
    assert_attribute(call, "gen_ai.request.model", "gpt-4o");
    assert!(call
        .attributes
        .iter()
        .any(|kv| kv.key == "gen_ai.request.temperature"));
    assert_attribute(call, "http.response.status_code", "200");
    assert!(call.events.iter().any(|e| e.name == "gen_ai.first_token"));
    assert_eq!(
        first_traceparent(&mock),
        traceparent(&run.trace_id, &call.span_id)
    );
    // The API key is in the upstream request's headers, never in a span.
    for span in &spans {
        assert!(!format!("{span:?}").contains(TEST_KEY), "{span:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_settings_hold_and_langfuse_gets_its_keys_as_basic_auth() {
    let collector = Collector::start().await;
    let (_mock, _dir, mut server) = traced(
        &["ok"],
        &format!(
            "tracer:\n  driver: langfuse\n  url: {}/lf\n  public_key: pk-lf\n  \
             secret_key: sk-lf\n  capture:\n    output: false\n    redact_keys: [PROMPT]\n    \
             max_payload_bytes: 30\n",
            collector.base
        ),
    );
    streamed_run(&server, "a secret plan").await;
    assert!(server.stop().success());

    let requests = collector.requests.lock().clone();
    assert!(!requests.is_empty());
    for (path, auth) in &requests {
        assert_eq!(path, "/lf/api/public/otel/v1/traces");
        // base64("pk-lf:sk-lf")
        assert_eq!(auth.as_deref(), Some("Basic cGstbGY6c2stbGY="));
    }
    let spans = collector.spans.lock().clone();
    let run = spans.iter().find(|s| s.parent_span_id.is_empty()).unwrap();
    let input = attribute(run, "input.value").unwrap();
    assert!(
        input.contains("[redacted]") && !input.contains("secret plan"),
        "{input}"
    );
    assert!(input.len() <= 30, "{input}");
    for span in &spans {
        assert_eq!(attribute(span, "output.value"), None, "{span:#?}");
    }
}

/// `capture.input: false`: no span carries an input (the run's, the job's), the output still
/// does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_input_false_leaves_every_input_out() {
    let collector = Collector::start().await;
    let tracer = tracer_for(&collector) + "  capture:\n    input: false\n";
    let (_mock, _dir, mut server) = traced(&["out"], &tracer);
    streamed_run(&server, "a private prompt").await;
    assert!(server.stop().success());

    let spans = collector.spans.lock().clone();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for span in &spans {
        assert_eq!(attribute(span, "input.value"), None, "{span:#?}");
        assert!(!format!("{span:?}").contains("private prompt"), "{span:#?}");
    }
    let run = all_named(&spans, "workflow __workflow__")[0];
    assert_attribute(run, "output.value", "out");
}

/// A collector over HTTPS is trusted as upstreams are: by the system's roots and those of
/// `SSL_CERT_FILE`; without its CA nothing is exported, and the run is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_collector_is_trusted_with_its_ca() {
    let collector = Collector::start_https().await;
    let ca = testkit::test_ca().to_str().unwrap().to_string();
    for trusted in [false, true] {
        let mock = MockUpstream::start(Behavior::tokens(&["sealed"]));
        let dir = Workdir::seed(&mock.base_url);
        let config = support::seed_for(&mock.base_url) + &tracer_for(&collector);
        let env: &[(&str, &str)] = match trusted {
            true => &[("SSL_CERT_FILE", &ca)],
            false => &[],
        };
        let mut server = Server::start_with_args(&dir, &config, &[], env);
        assert!(streamed_run(&server, "Hi").await.contains("sealed"));
        assert!(server.stop().success());
        let names: Vec<String> = collector
            .spans
            .lock()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        match trusted {
            false => assert!(names.is_empty(), "{names:?}"),
            true => assert_eq!(names.len(), 3, "{names:?}"),
        }
    }
}

/// A collector nobody answers at changes nothing for the run, and the server still stops
/// promptly (it gives the last spans at most two seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_changes_nothing_for_the_run() {
    // Port 1: nothing listens there, and unlike a port bound and let go, the system never
    // gives it to another test's collector (which then got this server's spans).
    let endpoint = "http://127.0.0.1:1/v1/traces";
    let (_mock, _dir, mut server) = traced(
        &["still ", "here"],
        &format!("tracer:\n  driver: otlp\n  endpoint: {endpoint}\n"),
    );
    let streamed = streamed_run(&server, "Hi").await;
    assert!(
        streamed.contains("still") && streamed.contains("here"),
        "{streamed}"
    );
    // Spans given up are not dropped ones: the queue had room.
    let root = server.api.trim_end_matches("/api").to_string();
    let metrics = support::get_text(format!("{root}/metrics")).await;
    assert!(
        metrics.contains("\nmodel_compose_trace_spans_dropped_total 0\n"),
        "{metrics}"
    );
    let stopping = Instant::now();
    assert!(server.stop().success());
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
}

/// A caller's `traceparent` is continued: the run's span is its child, in its trace, and the
/// task's JSON names the trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_traceparent_is_continued_and_the_task_names_its_trace() {
    let collector = Collector::start().await;
    let (_mock, _dir, mut server) = traced(&["fine"], &tracer_for(&collector));
    let (trace, caller) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let body = serde_json::json!({"input": {"prompt": "Hi"}, "wait_for_completion": false});
    let answer = reqwest::Client::new()
        .post(format!("{}/workflows/runs", server.api))
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let accepted: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let url = format!(
        "{}/tasks/{}",
        server.api,
        accepted["task_id"].as_str().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let task = loop {
        let task = support::get_json(&url).await;
        if task["status"] == "completed" || Instant::now() > deadline {
            break task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["trace_id"], trace, "{task}");
    assert!(server.stop().success());

    let spans = collector.spans.lock().clone();
    let run = spans
        .iter()
        .find(|s| s.name == "workflow __workflow__")
        .unwrap();
    assert_eq!(hex(&run.trace_id), trace);
    assert_eq!(hex(&run.parent_span_id), caller);
    assert!(spans.iter().all(|s| hex(&s.trace_id) == trace));
}

/// A collector that takes the connection and never answers: the run is not held up, and a
/// stop waits for it at most the two seconds it gives the last spans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_holds_up_neither_the_run_nor_the_stop() {
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", hanging.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = hanging.accept().await {
            held.push(connection);
        }
    });
    let (_mock, _dir, mut server) = traced(
        &["on ", "time"],
        &format!("tracer:\n  driver: otlp\n  endpoint: {endpoint}\n  timeout: 60\n"),
    );
    for _ in 0..3 {
        let streamed = streamed_run(&server, "Hi").await;
        assert!(streamed.contains("time"), "{streamed}");
    }
    // Let a batch go out to the collector (it is sent every half second) and hang there.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stopping = Instant::now();
    assert!(server.stop().success());
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    held.abort();
}

/// The spans and the metadata a gRPC collector got.
#[derive(Clone, Default)]
struct GrpcCollector {
    spans: Arc<Mutex<Vec<Span>>>,
    keys: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if let Some(key) = request.metadata().get("x-api-key") {
            self.keys.lock().push(key.to_str().unwrap().to_string());
        }
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                self.spans.lock().extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// `protocol: grpc`: the same spans over OTLP/gRPC, the headers as metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_grpc_exports_the_same_spans() {
    let collector = GrpcCollector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let (_mock, _dir, mut server) = traced(
        &["g", "rpc"],
        &format!(
            "tracer:\n  driver: otlp\n  protocol: grpc\n  endpoint: {endpoint}\n  \
             headers: {{X-Api-Key: collector-key}}\n"
        ),
    );
    let streamed = streamed_run(&server, "Hi").await;
    assert!(streamed.contains("rpc"), "{streamed}");
    assert!(server.stop().success());

    let spans = collector.spans.lock().clone();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["chat gpt-4o", "job __job__", "workflow __workflow__"]
    );
    assert!(collector
        .keys
        .lock()
        .iter()
        .all(|key| key == "collector-key"));
    assert!(!collector.keys.lock().is_empty());
}
