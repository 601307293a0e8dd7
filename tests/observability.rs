//! What an operator sees of a running server: the metrics after known traffic (scraped as
//! Prometheus would), request ids, one log line per request and per run end (text and JSON),
//! and the tokens a run used, recorded with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Server, Workdir, TEST_KEY};
use testkit::providers::Providers;

/// Two workflows on one OpenAI component: `chat` streams and asks for its usage, `broken`
/// calls a path the provider does not know (404).
fn config(providers: &Providers, controller: &str) -> String {
    format!(
        r#"
controller:
  adapter:
    type: http-server
    port: 8080
    base_path: /api
  webui:
    port: 8081
{controller}
components:
  - id: openai
    type: http-client
    base_url: {openai}
    headers:
      Authorization: Bearer ${{env.OPENAI_API_KEY}}
    actions:
      - id: chat
        path: /chat/completions
        headers:
          Content-Type: application/json
        body:
          model: gpt-4o
          messages:
            - role: user
              content: ${{input.prompt}}
          stream: true
          stream_options:
            include_usage: true
        stream_format: json
        output: ${{response[].choices[0].delta.content}}
      - id: missing
        path: /nowhere
        headers:
          Content-Type: application/json
        body:
          prompt: ${{input.prompt}}
workflows:
  - id: chat
    default: true
    job:
      component: openai
      action: chat
  - id: broken
    job:
      component: openai
      action: missing
"#,
        openai = providers.openai()
    )
}

fn start(
    providers: &Providers,
    controller: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Workdir, Server) {
    let dir = Workdir::empty();
    dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
    let server = Server::start_with_args(&dir, &config(providers, controller), args, env);
    (dir, server)
}

/// The API port's root (`/metrics` is outside `base_path`).
fn root(server: &Server) -> String {
    server.api.trim_end_matches("/api").to_string()
}

async fn scrape(server: &Server, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", root(server)))
        .await
        .unwrap()
}

/// The value of the sample named exactly `sample` (name and labels), if it is there.
fn sample(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// One run request as a client sends it; the response and the bytes each way.
struct Exchange {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
    sent: usize,
}

async fn exchange(server: &Server, body: Value, request_id: Option<&str>) -> Exchange {
    let body = body.to_string();
    let mut request = reqwest::Client::new()
        .post(format!("{}/workflows/runs", server.api))
        .header("Content-Type", "application/json")
        .body(body.clone());
    if let Some(id) = request_id {
        request = request.header("X-Request-Id", id);
    }
    let response = request.send().await.unwrap();
    Exchange {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        sent: body.len(),
        body: response.text().await.unwrap(),
    }
}

fn header<'a>(exchange: &'a Exchange, name: &str) -> &'a str {
    exchange.headers[name].to_str().unwrap()
}

#[tokio::test]
async fn metrics_count_known_traffic_and_runs_keep_their_request_id_and_tokens() {
    let providers = Providers::start();
    let (dir, server) = start(&providers, "", &[], &[]);

    let chat = json!({"workflow_id": "chat", "input": {"prompt": "Hi there"}, "output_only": true});
    let first = exchange(&server, chat.clone(), Some("req-one")).await;
    let second = exchange(&server, chat, None).await;
    let broken = exchange(
        &server,
        json!({"workflow_id": "broken", "input": {"prompt": "x"}}),
        None,
    )
    .await;
    let refused = exchange(&server, json!({"workflow_id": "chat", "input": {}}), None).await;
    assert_eq!(
        first.body,
        "data: You\n\ndata:  said:\n\ndata:  Hi\n\ndata:  there\n\n"
    );
    assert_eq!(
        [first.status, second.status, broken.status, refused.status],
        [200, 200, 200, 400]
    );

    assert!(
        broken.body.contains("\"status\":\"failed\""),
        "{}",
        broken.body
    );
    // The client's id is kept, else one is made (a ULID); every answer to a run names its task.
    assert_eq!(header(&first, "x-request-id"), "req-one");
    assert_eq!(header(&second, "x-request-id").len(), 26);
    assert_ne!(
        header(&second, "x-request-id"),
        header(&broken, "x-request-id")
    );
    let task = header(&first, "x-task-id").to_string();
    assert_eq!(header(&broken, "x-task-id").len(), 26);

    let response = scrape(&server, "/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let expected = [
        ("model_compose_runs_started_total{workflow=\"chat\"}", 2.0),
        ("model_compose_runs_started_total{workflow=\"broken\"}", 1.0),
        (
            "model_compose_runs_total{workflow=\"chat\",status=\"completed\"}",
            2.0,
        ),
        (
            "model_compose_runs_total{workflow=\"broken\",status=\"failed\"}",
            1.0,
        ),
        ("model_compose_runs_in_flight{workflow=\"chat\"}", 0.0),
        (
            "model_compose_upstream_requests_total{component=\"openai\",status=\"200\"}",
            2.0,
        ),
        (
            "model_compose_upstream_requests_total{component=\"openai\",status=\"404\"}",
            1.0,
        ),
        ("model_compose_stream_pieces_total{workflow=\"chat\"}", 8.0),
        (
            "model_compose_time_to_first_token_seconds_count{workflow=\"chat\"}",
            2.0,
        ),
        (
            "model_compose_run_duration_seconds_count{workflow=\"chat\",status=\"completed\"}",
            2.0,
        ),
        (
            "model_compose_run_duration_seconds_count{workflow=\"broken\",status=\"failed\"}",
            1.0,
        ),
        (
            "model_compose_tokens_total{workflow=\"chat\",kind=\"prompt\"}",
            10.0,
        ),
        (
            "model_compose_tokens_total{workflow=\"chat\",kind=\"completion\"}",
            8.0,
        ),
        ("model_compose_sse_clients", 0.0),
        ("model_compose_history_store_errors_total", 0.0),
        (
            "model_compose_received_bytes_total",
            (first.sent + second.sent + broken.sent + refused.sent) as f64,
        ),
        (
            "model_compose_sent_bytes_total",
            (first.body.len() + second.body.len() + broken.body.len() + refused.body.len()) as f64,
        ),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
    }
    // A refused request is not a run.
    assert_eq!(
        sample(
            &text,
            "model_compose_runs_total{workflow=\"chat\",status=\"failed\"}"
        ),
        None
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    // The history keeps the request id and the tokens with the run.
    let record = reqwest::get(format!("{}/runs/{task}", server.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["request_id"], "req-one");
    assert_eq!(
        record["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4})
    );

    // A run from the web UI carries the id of its server-function call.
    let chat = reqwest::Client::new()
        .post(format!("{}/_ui/chat", server.webui))
        .header("X-Request-Id", "req-ui")
        .form(&[
            ("workflow_id", "chat"),
            ("input", r#"{"prompt": "Hi"}"#),
            ("prompt", "Hi"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(chat.headers()["x-request-id"], "req-ui");
    let events = chat.text().await.unwrap();
    let started = events
        .split("\n\n")
        .find_map(|e| e.strip_prefix("event: start\ndata: "))
        .unwrap_or_else(|| panic!("no start in {events}"));
    let started: Value = serde_json::from_str(started).unwrap();
    let record = reqwest::get(format!(
        "{}/runs/{}",
        server.api,
        started["task_id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(record.contains("\"request_id\":\"req-ui\""), "{record}");

    // One line per request, written when its response has been sent, and one per run end.
    let log = dir.path.join("server.log");
    let lines = || std::fs::read_to_string(&log).unwrap();
    support::eventually(Duration::from_secs(5), "the request lines", || {
        let text = lines();
        async move { text.matches(" request ").count() >= 5 }
    })
    .await;
    let text = lines();
    let request_line = text
        .lines()
        .find(|l| l.contains(" request ") && l.contains("request_id=req-one"))
        .unwrap_or_else(|| panic!("no request line for req-one in\n{text}"));
    for field in [
        "method=POST",
        "path=/api/workflows/runs",
        "status=200",
        "complete=true",
        &format!("task=\"{task}\""),
        &format!("bytes={}", first.body.len()),
    ] {
        assert!(
            request_line.contains(field),
            "{field} not in {request_line}"
        );
    }
    let ended = text
        .lines()
        .find(|l| l.contains("run ended") && l.contains("workflow=broken"))
        .unwrap_or_else(|| panic!("no run end line in\n{text}"));
    assert!(ended.contains("status=\"failed\""), "{ended}");
    assert!(ended.contains("upstream returned 404"), "{ended}");
    assert!(!text.contains(TEST_KEY), "the key is in the log");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_never_hold_the_key() {
    let providers = Providers::start();
    // The environment variable does what `--log-format json` does.
    let (dir, server) = start(&providers, "", &[], &[("MODEL_COMPOSE_LOG_FORMAT", "json")]);
    let run = exchange(
        &server,
        json!({"workflow_id": "chat", "input": {"prompt": "Hi"}, "output_only": true}),
        Some("req-json"),
    )
    .await;
    assert_eq!(run.status, 200);
    let log = dir.path.join("server.log");
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    support::eventually(Duration::from_secs(5), "the request line", || {
        let lines = read();
        async move { lines.iter().any(|l| l["message"] == "request") }
    })
    .await;
    let lines = read();
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["request_id"] == "req-json")
        .unwrap();
    assert_eq!(
        (&request["method"], &request["path"], &request["status"]),
        (&json!("POST"), &json!("/api/workflows/runs"), &json!(200))
    );
    let ended = lines
        .iter()
        .find(|l| l["message"] == "run ended")
        .unwrap_or_else(|| panic!("no run end in {lines:#?}"));
    assert_eq!(
        (&ended["workflow"], &ended["status"], &ended["request_id"]),
        (&json!("chat"), &json!("completed"), &json!("req-json"))
    );
    assert_eq!(
        (&ended["prompt_tokens"], &ended["completion_tokens"]),
        (&json!(5), &json!(3))
    );
    assert!(ended["duration_ms"].as_u64().is_some(), "{ended}");
    assert!(ended["first_token_ms"].as_u64().is_some(), "{ended}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains(TEST_KEY));
}

#[tokio::test]
async fn metrics_can_be_moved_turned_off_or_put_behind_the_keys() {
    let providers = Providers::start();
    let (_off, server) = start(&providers, "  metrics: false", &[], &[]);
    assert_eq!(scrape(&server, "/metrics").await.status(), 404);

    let (_moved, server) = start(
        &providers,
        "  metrics:\n    path: /internal/metrics",
        &[],
        &[],
    );
    assert_eq!(scrape(&server, "/metrics").await.status(), 404);
    let moved = scrape(&server, "/internal/metrics").await;
    assert_eq!(moved.status(), 200);
    assert!(moved
        .text()
        .await
        .unwrap()
        .contains("model_compose_sse_clients 0"));

    let keys = "  access_keys:\n    - scrape-key-0123456789";
    let (_keys, server) = start(&providers, keys, &[], &[]);
    assert_eq!(scrape(&server, "/metrics").await.status(), 401);
    let scraped = reqwest::Client::new()
        .get(format!("{}/metrics", root(&server)))
        .bearer_auth("scrape-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);

    // A path that is not one is a configuration error, with its place.
    let dir = Workdir::empty();
    dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
    dir.write(
        "model-compose.yml",
        &config(&providers, "  metrics:\n    path: metrics"),
    );
    let output = support::run(&dir, &["validate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        support::stderr(&output).contains("metrics.path must start with /"),
        "{}",
        support::stderr(&output)
    );
}
