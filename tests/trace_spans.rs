//! What a run's trace holds beyond its run, job and upstream spans (issue 29): a retried job,
//! a wait for a person, an agent's iterations and tool calls, the conversation and the trace
//! id in the history, and `model-compose run`'s trace, each sent to a collector the test starts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use support::collector::*;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir};

/// `up` serving the seed, its job given `key` (one line of YAML), its traces sent to
/// `collector`.
fn seed_job_with(mock: &MockUpstream, key: &str, collector: &Collector) -> (Workdir, Server) {
    let dir = Workdir::seed(&mock.base_url);
    let config =
        support::seed_for(&mock.base_url).replacen("  job:\n", &format!("  job:\n    {key}\n"), 1)
            + &tracer_for(collector);
    let server = Server::start_with(&dir, &config);
    (dir, server)
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
    let (_dir, mut server) = seed_job_with(&mock, "retry: {max_attempt_count: 2}", &collector);
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
    assert_attribute(job, "model_compose.status", "completed");
    let calls = all_named(&spans, "chat gpt-4o");
    assert_eq!(calls.len(), 2, "{spans:#?}");
    assert!(calls.iter().all(|call| call.parent_span_id == job.span_id));
    let statuses: Vec<_> = calls
        .iter()
        .map(|call| attribute(call, "http.response.status_code").unwrap())
        .collect();
    assert!(statuses.contains(&"503".to_string()) && statuses.contains(&"200".to_string()));
}

/// A run that waits for a person: the wait is a span of its job's, as long as the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_wait_is_a_span_of_its_job() {
    let collector = Collector::start().await;
    let mock = MockUpstream::start(Behavior::tokens(&["go"]));
    let interrupt = "interrupt: {before: {message: Send it?}}";
    let (_dir, mut server) = seed_job_with(&mock, interrupt, &collector);
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
    assert_attribute(wait[0], "model_compose.point_id", point);
    assert_attribute(wait[0], "model_compose.phase", "before");
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
    let tracer = tracer_for(&collector);
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
    let config = config + "\n" + &tracer_for(&collector);
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
    assert_attribute(search, "gen_ai.tool.name", "search_web");
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

/// `model-compose run` is traced as `up` is: its spans are sent before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_compose_run_exports_its_run_before_it_exits() {
    let collector = Collector::start().await;
    let mock = MockUpstream::start(Behavior::tokens(&["from ", "the cli"]));
    let dir = Workdir::seed(&mock.base_url);
    dir.write(
        "model-compose.yml",
        &(support::seed_for(&mock.base_url) + &tracer_for(&collector)),
    );
    let printed = tokio::task::spawn_blocking(move || {
        let input = r#"{"prompt": "Hi", "temperature": 0.2}"#;
        let output = support::run(&dir, &["run", "--input", input]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            support::stderr(&output)
        );
        support::stdout(&output)
    })
    .await
    .unwrap();
    assert_eq!(printed, "from the cli\n");
    let spans = collector.spans.lock().clone();
    let run = all_named(&spans, "workflow __workflow__")[0];
    let job = all_named(&spans, "job __job__")[0];
    let call = all_named(&spans, "chat gpt-4o")[0];
    assert_eq!(
        (job.parent_span_id.clone(), call.parent_span_id.clone()),
        (run.span_id.clone(), job.span_id.clone())
    );
    assert_attribute(run, "model_compose.status", "completed");
    assert_attribute(run, "output.value", "from the cli");
}

/// With two tracers, each gets the whole trace: the run, the job, and the upstream call as the
/// job's child (in its own trace); the request carries the first tracer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_several_tracers_gets_every_span() {
    let (first, second) = (Collector::start().await, Collector::start().await);
    let tracers = format!(
        "tracers:\n  - driver: otlp\n    endpoint: {}/v1/traces\n  \
         - driver: otlp\n    endpoint: {}/v1/traces\n",
        first.base, second.base
    );
    let (mock, _dir, mut server) = traced(&["twice"], &tracers);
    assert!(streamed_run(&server, "Hi").await.contains("twice"));
    assert!(server.stop().success());

    let mut traces = Vec::new();
    for collector in [&first, &second] {
        let spans = collector.spans.lock().clone();
        let job = all_named(&spans, "job __job__")[0].clone();
        let call = all_named(&spans, "chat gpt-4o")[0].clone();
        assert_eq!(call.parent_span_id, job.span_id, "{spans:#?}");
        assert_eq!(call.trace_id, job.trace_id);
        traces.push((call.trace_id, call.span_id));
    }
    assert_ne!(
        traces[0].0, traces[1].0,
        "each tracer has a trace of its own"
    );
    assert_eq!(
        first_traceparent(&mock),
        traceparent(&traces[0].0, &traces[0].1)
    );
}
