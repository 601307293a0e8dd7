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
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use prost::Message;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir, TEST_KEY};

/// An OTLP/HTTP collector on 127.0.0.1 (at any path): every span it is sent, and the path
/// and `Authorization` of each request.
struct Collector {
    /// `http://127.0.0.1:PORT`.
    base: String,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A request's path and `Authorization`.
type Request = (String, Option<String>);

impl Collector {
    async fn start() -> Self {
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            spans,
            requests,
        }
    }
}

/// The string value of attribute `key` of `span`.
fn attribute(span: &Span, key: &str) -> Option<String> {
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
fn traced(tokens: &[&str], tracer: &str) -> (MockUpstream, Workdir, Server) {
    let mock = MockUpstream::start(Behavior::tokens(tokens));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(&dir, &(support::seed_for(&mock.base_url) + tracer));
    (mock, dir, server)
}

/// Streams one seed run (prompt `prompt`) through `server` to its end.
async fn streamed_run(server: &Server, prompt: &str) -> String {
    let body = serde_json::json!({"input": {"prompt": prompt, "temperature": 0.3}});
    support::post(server, &body.to_string())
        .await
        .text()
        .await
        .unwrap()
}

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
    assert_eq!(
        attribute(run, "model_compose.workflow_id").as_deref(),
        Some("__workflow__")
    );
    assert_eq!(
        attribute(run, "model_compose.status").as_deref(),
        Some("completed")
    );
    let input = attribute(run, "input.value").unwrap();
    assert!(input.contains("Say hello"), "{input}");
    // A streamed text is captured as the text.
    assert_eq!(attribute(run, "output.value").as_deref(), Some("Hello"));
    assert_eq!(
        attribute(job, "model_compose.job_type").as_deref(),
        Some("component")
    );
    assert_eq!(
        attribute(job, "model_compose.status").as_deref(),
        Some("completed")
    );
    // The upstream call: a client span of the job's with the GenAI attributes, and the
    // request carried the trace on (`traceparent`).
    assert_eq!(call.trace_id, run.trace_id);
    assert_eq!(call.parent_span_id, job.span_id);
    assert_eq!(attribute(call, "gen_ai.system").as_deref(), Some("_OTHER"));
    assert_eq!(
        attribute(call, "gen_ai.request.model").as_deref(),
        Some("gpt-4o")
    );
    assert!(call
        .attributes
        .iter()
        .any(|kv| kv.key == "gen_ai.request.temperature"));
    assert_eq!(
        attribute(call, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(call.events.iter().any(|e| e.name == "gen_ai.first_token"));
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let sent = mock.requests()[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sent,
        format!("00-{}-{}-01", hex(&run.trace_id), hex(&call.span_id))
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

/// The spans named `name`.
fn all_named<'s>(spans: &'s [Span], name: &str) -> Vec<&'s Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Whether `span` ended with an error status, and its message.
fn error_of(span: &Span) -> Option<String> {
    let status = span.status.as_ref()?;
    // STATUS_CODE_ERROR
    (status.code == 2).then(|| status.message.clone())
}

/// A job that fails and runs again is one span, the failed attempt an event on it; both
/// upstream calls are its children, the first with the upstream's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_is_one_span_with_its_retries_as_events() {
    let collector = Collector::start().await;
    let mock = MockUpstream::start(Behavior::tokens(&["again"]).failing_first(
        1,
        503,
        r#"{"error": {"message": "overloaded"}}"#,
    ));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replacen(
        "  job:\n",
        "  job:\n    retry: {max_attempt_count: 2}\n",
        1,
    ) + &format!(
        "tracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n",
        collector.base
    );
    let mut server = Server::start_with(&dir, &config);
    let streamed = streamed_run(&server, "Hi").await;
    assert!(streamed.contains("again"), "{streamed}");
    assert!(server.stop().success());

    let spans = collector.spans.lock().clone();
    let jobs = all_named(&spans, "job __job__");
    assert_eq!(jobs.len(), 1, "{spans:#?}");
    let job = jobs[0];
    let retries: Vec<_> = job.events.iter().filter(|e| e.name == "retry").collect();
    assert_eq!(retries.len(), 1, "{job:#?}");
    let message = retries[0]
        .attributes
        .iter()
        .find(|kv| kv.key == "exception.message")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert!(message.contains("503"), "{message}");
    assert_eq!(
        attribute(job, "model_compose.status").as_deref(),
        Some("completed")
    );
    let calls = all_named(&spans, "chat gpt-4o");
    assert_eq!(calls.len(), 2, "{spans:#?}");
    assert!(calls.iter().all(|call| call.parent_span_id == job.span_id));
    let statuses: Vec<_> = calls
        .iter()
        .map(|call| attribute(call, "http.response.status_code").unwrap())
        .collect();
    assert!(statuses.contains(&"503".to_string()) && statuses.contains(&"200".to_string()));
}

/// A run that waits for a person: the wait is a span of its job's, and the run's span names
/// the conversation when the chat started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_wait_is_a_span_of_its_job() {
    let collector = Collector::start().await;
    let mock = MockUpstream::start(Behavior::tokens(&["go"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replacen(
        "  job:\n",
        "  job:\n    interrupt: {before: {message: Send it?}}\n",
        1,
    ) + &format!(
        "tracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n",
        collector.base
    );
    let mut server = Server::start_with(&dir, &config);
    let body = serde_json::json!({"input": {"prompt": "Hi"}, "wait_for_completion": true});
    let waiting: serde_json::Value = serde_json::from_str(
        &support::post(&server, &body.to_string())
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(waiting["status"], "interrupted", "{waiting}");
    let (task, point) = (
        waiting["task_id"].as_str().unwrap(),
        waiting["interrupt"][0]["id"].as_str().unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resumed = reqwest::Client::new()
        .post(format!("{}/tasks/{task}/resume", server.api))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"answer": {point: null}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let url = format!("{}/tasks/{task}", server.api);
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::get_json(&url).await["status"] != "completed" {
        assert!(Instant::now() < deadline, "the run did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.stop().success());

    let spans = collector.spans.lock().clone();
    let job = all_named(&spans, "job __job__")[0];
    let wait = all_named(&spans, "interrupt __job__");
    assert_eq!(wait.len(), 1, "{spans:#?}");
    assert_eq!(wait[0].parent_span_id, job.span_id);
    assert_eq!(
        attribute(wait[0], "model_compose.point_id").as_deref(),
        Some(point)
    );
    assert_eq!(
        attribute(wait[0], "model_compose.phase").as_deref(),
        Some("before")
    );
    // The person took a while: the wait's span lasted that long.
    let waited = wait[0].end_time_unix_nano - wait[0].start_time_unix_nano;
    assert!(waited >= 200_000_000, "{waited} ns");
    assert_eq!(error_of(wait[0]), None);
}

/// The trace id is kept in the history: the run view names it after a restart too, and a
/// chat's run names its conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_view_names_the_trace_and_a_chat_run_its_conversation() {
    let collector = Collector::start().await;
    let tracer = format!(
        "tracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n",
        collector.base
    );
    let (_mock, dir, mut server) = traced(&["kept"], &tracer);
    let input = serde_json::json!({"prompt": "Hi", "temperature": 0.5}).to_string();
    let args = [
        ("workflow_id", "__workflow__"),
        ("input", input.as_str()),
        ("prompt", "Hi"),
    ];
    let events = support::ui_call(&server, "chat", &args)
        .await
        .text()
        .await
        .unwrap();
    let start: serde_json::Value = events
        .split("\n\n")
        .find_map(|event| event.strip_prefix("event: start\ndata: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .unwrap();
    let (task, conversation) = (
        start["task_id"].as_str().unwrap().to_string(),
        start["conversation_id"].as_str().unwrap().to_string(),
    );
    assert!(server.stop().success());
    let spans = collector.spans.lock().clone();
    let run = all_named(&spans, "workflow __workflow__")[0];
    assert_eq!(
        attribute(run, "gen_ai.conversation.id").as_deref(),
        Some(conversation.as_str())
    );
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();

    // Again, the run only in the history now.
    let mut server = Server::start_with(&dir, &(support::seed_for(&_mock.base_url) + &tracer));
    let view = support::ui_call(&server, "run", &[("task_id", task.as_str())])
        .await
        .text()
        .await
        .unwrap();
    let view: serde_json::Value = serde_json::from_str(&view).unwrap();
    assert_eq!(view["trace_id"], hex(&run.trace_id), "{view}");
    assert!(server.stop().success());
}

/// An agent's iterations are spans of its job, each with its model call and the tools it
/// called as children; what a tool calls upstream is the tool's child; an unknown tool is an
/// error span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_iterations_and_tool_calls_are_spans() {
    let collector = Collector::start().await;
    let providers = testkit::providers::Providers::start();
    let (dir, config) = support::examples::example("agent-tools", &providers);
    let config = config
        + &format!(
            "\ntracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n",
            collector.base
        );
    let mut server = Server::start_with(&dir, &config);
    let calls = serde_json::json!([
        {"name": "search_web", "arguments": {"query": "rust"}},
        {"name": "no_such_tool", "arguments": {}},
    ]);
    let body = serde_json::json!({
        "input": {"question": format!("CALL {calls}")},
        "wait_for_completion": true,
        "output_only": true,
    });
    let answer = support::post(&server, &body.to_string())
        .await
        .text()
        .await
        .unwrap();
    assert!(answer.contains("Done: "), "{answer}");
    assert!(server.stop().success());

    let spans = collector.spans.lock().clone();
    let by_id = |id: &[u8]| spans.iter().find(|s| s.span_id == id).unwrap();
    let job = spans.iter().find(|s| s.name.starts_with("job ")).unwrap();
    let turns: Vec<&Span> = (1..=2)
        .map(|n| all_named(&spans, &format!("agent iteration {n}"))[0])
        .collect();
    assert!(turns.iter().all(|turn| turn.parent_span_id == job.span_id));
    // Each iteration asked the model once.
    for turn in &turns {
        let asked = spans
            .iter()
            .filter(|s| s.name.starts_with("chat ") && s.parent_span_id == turn.span_id);
        assert_eq!(asked.count(), 1, "{spans:#?}");
    }
    let search = all_named(&spans, "execute_tool search_web")[0];
    assert_eq!(search.parent_span_id, turns[0].span_id);
    assert_eq!(
        attribute(search, "gen_ai.tool.name").as_deref(),
        Some("search_web")
    );
    assert_eq!(error_of(search), None);
    // The web search's request to its upstream is the tool's child.
    let fetched = spans
        .iter()
        .find(|s| s.parent_span_id == search.span_id)
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(
        by_id(&fetched.parent_span_id).name,
        "execute_tool search_web"
    );
    let unknown = all_named(&spans, "execute_tool no_such_tool")[0];
    assert_eq!(unknown.parent_span_id, turns[0].span_id);
    assert!(
        error_of(unknown).is_some_and(|m| m.contains("Unknown tool")),
        "{unknown:#?}"
    );
}

/// A collector nobody answers at changes nothing for the run, and the server still stops
/// promptly (it gives the last spans at most two seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_changes_nothing_for_the_run() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/traces", closed.local_addr().unwrap());
    drop(closed);
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
    let (_mock, _dir, mut server) = traced(
        &["fine"],
        &format!(
            "tracer:\n  driver: otlp\n  endpoint: {}/v1/traces\n",
            collector.base
        ),
    );
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
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
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
