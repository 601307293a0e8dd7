//! The REST API of `model-compose up`, the real binary against the mock upstream: exact SSE
//! bytes, JSON shapes, status codes, cancellation, disconnects and the run history.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use support::mock_upstream::{Behavior, MockUpstream};
use support::{post, Server, Workdir, TEST_KEY};

const SEED_BODY: &str =
    r#"{"input":{"prompt":"Explain machine learning in simple terms","temperature":0.7}}"#;
const SEED_BYTES: &str = "data: Hello\n\ndata:  world\ndata: line2\n\ndata: 42\n\n";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

async fn get_json(url: String) -> (u16, Value) {
    json_of(client().get(url).send().await.unwrap()).await
}

fn seed_mock() -> MockUpstream {
    MockUpstream::start(Behavior::tokens(&["Hello", " world\nline2", "42"]))
}

#[tokio::test]
async fn the_seed_curl_streams_sse_with_the_reference_framing() {
    let mock = seed_mock();
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    for body in [
        SEED_BODY.to_string(),
        SEED_BODY.replace("}}", "},\"output_only\":true}"),
    ] {
        let response = post(&server, &body).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-cache");
        let task_id = headers["x-task-id"].to_str().unwrap().to_string();
        assert_eq!(task_id.len(), 26);
        assert_eq!(response.text().await.unwrap(), SEED_BYTES, "body {body}");
        let (status, task) = get_json(format!("{}/tasks/{task_id}", server.api)).await;
        assert_eq!(status, 200);
        assert_eq!(
            task,
            json!({"task_id": task_id, "status": "completed", "workflow_id": "__workflow__",
                   "output": "Hello world\nline242"})
        );
    }
    let request = &mock.requests()[0];
    assert_eq!(
        request.body,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Explain machine learning in simple terms"}],
               "temperature": 0.7, "stream": true})
    );
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {TEST_KEY}")
    );
}

#[tokio::test]
async fn a_task_started_without_waiting_can_be_read_and_followed() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["one", " two", " three", " four"]).delay(Duration::from_millis(150)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let (status, started) = json_of(
        post(
            &server,
            &SEED_BODY.replace("}}", "},\"wait_for_completion\":false}"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let task_id = started["task_id"].as_str().unwrap().to_string();
    assert_eq!(
        started,
        json!({"task_id": task_id, "status": "pending", "workflow_id": "__workflow__"})
    );

    // Follow it live: the first event arrives long before the end.
    let response = client()
        .get(format!("{}/tasks/{task_id}/stream", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let began = Instant::now();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: one\n\n"), "{first:?}");
    let first_at = began.elapsed();
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(
        began.elapsed() > first_at + Duration::from_millis(300),
        "it was followed, not read at the end"
    );
    assert_eq!(
        text,
        "data: one\n\ndata:  two\n\ndata:  three\n\ndata:  four\n\n"
    );

    let (status, task) = get_json(format!("{}/tasks/{task_id}", server.api)).await;
    assert_eq!(status, 200);
    assert_eq!(task["status"], "completed");
    assert_eq!(task["output"], "one two three four");
    let (status, output) =
        get_json(format!("{}/tasks/{task_id}?output_only=true", server.api)).await;
    assert_eq!((status, output), (200, json!("one two three four")));

    // A finished stream is replayed whole.
    let replay = client()
        .get(format!("{}/tasks/{task_id}/stream", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.text().await.unwrap(), text);
}

/// Starts the seed's run without waiting for it; returns its task id once the upstream is
/// answering.
async fn start_streaming(server: &Server, mock: &MockUpstream) -> String {
    let body = SEED_BODY.replace("}}", "},\"wait_for_completion\":false}");
    let (_, started) = json_of(post(server, &body).await).await;
    support::eventually(Duration::from_secs(5), "the upstream request", || async {
        mock.open_streams() > 0
    })
    .await;
    started["task_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn cancel_stops_the_run_and_its_upstream_request() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["a", "b", "c", "d", "e", "f", "g"]).delay(Duration::from_millis(200)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let task_id = start_streaming(&server, &mock).await;
    let cancel = format!("{}/tasks/{task_id}/cancel", server.api);
    let (status, task) = json_of(client().post(&cancel).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(task["status"], "cancelled");
    support::eventually(
        Duration::from_millis(200),
        "the upstream request to close",
        || async { mock.open_streams() == 0 },
    )
    .await;
    let (status, body) = json_of(client().post(&cancel).send().await.unwrap()).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"detail": format!("Task '{task_id}' has already finished: cancelled")})
    );
    let (status, body) = json_of(
        client()
            .post(format!("{}/tasks/nope/cancel", server.api))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Task not found: nope"}))
    );
}

#[tokio::test]
async fn upstream_failures_before_the_first_byte_are_502_without_the_key() {
    let echo = format!(r#"{{"error": {{"message": "Incorrect API key provided: {TEST_KEY}"}}}}"#);
    let mock = MockUpstream::start(Behavior::error(401, &echo));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let (status, body) = json_of(post(&server, SEED_BODY).await).await;
    assert_eq!(status, 502);
    assert_eq!(
        body,
        json!({"detail": "upstream returned 401: Incorrect API key provided: [redacted]"})
    );

    mock.set(Behavior::error(
        500,
        r#"{"error": {"message": "The server had an error"}}"#,
    ));
    let (status, body) =
        json_of(post(&server, &SEED_BODY.replace("}}", "},\"output_only\":true}")).await).await;
    assert_eq!(
        (status, body),
        (
            502,
            json!({"detail": "upstream returned 500: The server had an error"})
        )
    );

    let (_, runs) = get_json(format!("{}/runs", server.api)).await;
    assert!(!runs.to_string().contains(TEST_KEY));
    assert_eq!(runs[1]["status"], "failed");
    // The history keeps the failure whole: what kind it is drives the web UI's hint.
    assert_eq!(
        runs[1]["error"],
        json!({"kind": "upstream_status", "http_status": 502,
               "message": "upstream returned 401: Incorrect API key provided: [redacted]",
               "detail": {"status": 401}})
    );
}

#[tokio::test]
async fn a_failure_after_the_first_byte_ends_with_an_error_event() {
    let mock = MockUpstream::start(Behavior::tokens(&["partial", " answer", " lost"]).cut_after(2));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let response = post(&server, SEED_BODY).await;
    assert_eq!(response.status(), 200);
    let task_id = response.headers()["x-task-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.text().await.expect("a clean end of body");
    let (events, error) = body.split_once("event: error\n").expect("an error event");
    assert_eq!(events, "data: partial\n\ndata:  answer\n\n");
    assert!(
        error.starts_with("data: {\"detail\":\"upstream stream failed: "),
        "{error}"
    );
    assert!(error.ends_with("\"}\n\n"), "{error}");
    let (_, task) = get_json(format!("{}/tasks/{task_id}", server.api)).await;
    assert_eq!(task["status"], "failed");
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_run_at_once() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["a", "b", "c", "d", "e", "f", "g", "h"])
            .delay(Duration::from_millis(100)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let response = post(&server, SEED_BODY).await;
    let task_id = response.headers()["x-task-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut body = response.bytes_stream();
    assert_eq!(body.next().await.unwrap().unwrap(), "data: a\n\n");
    drop(body);
    support::eventually(
        Duration::from_millis(200),
        "the upstream request to close",
        || async { mock.open_streams() == 0 },
    )
    .await;
    assert!(mock.finished_at().is_none());
    // The task says `cancelling` until its start is saved (a disk write that a busy machine
    // may take a while to do), then `cancelled`.
    let task = format!("{}/tasks/{task_id}", server.api);
    support::eventually(
        Duration::from_secs(5),
        "the task to be cancelled",
        || async {
            let (_, task) = get_json(task.clone()).await;
            assert!(
                ["cancelling", "cancelled"].contains(&task["status"].as_str().unwrap_or_default()),
                "{task}"
            );
            task["status"] == "cancelled"
        },
    )
    .await;
    // The server goes on serving.
    mock.set(Behavior::tokens(&["Hello", " world\nline2", "42"]));
    assert_eq!(
        post(&server, SEED_BODY).await.text().await.unwrap(),
        SEED_BYTES
    );
}

#[tokio::test]
async fn concurrent_streams_do_not_mix() {
    let mock = MockUpstream::start(Behavior::echo().delay(Duration::from_millis(20)));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let words = |name: &str| {
        (0..15)
            .map(|i| format!("{name}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let body = |prompt: &str| json!({"input": {"prompt": prompt}}).to_string();
    let (left, right) = (words("left"), words("right"));
    let (left_body, right_body) = (body(&left), body(&right));
    let (a, b) = tokio::join!(post(&server, &left_body), post(&server, &right_body));
    let (a, b) = tokio::join!(a.text(), b.text());
    let expected = |text: &str| {
        text.split(' ')
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    format!("data: {w}\n\n")
                } else {
                    format!("data:  {w}\n\n")
                }
            })
            .collect::<String>()
    };
    assert_eq!(a.unwrap(), expected(&left));
    assert_eq!(b.unwrap(), expected(&right));
}

#[tokio::test]
async fn listing_schemas_health_and_unknown_routes() {
    let mock = seed_mock();
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let schema = json!({"workflow_id": "__workflow__", "title": "Chat with OpenAI GPT-4o",
        "description": "Generate text responses using OpenAI’s GPT-4o",
        "input": [{"name": "prompt", "type": "text", "is_list": false, "required": true},
                  {"name": "temperature", "type": "number", "is_list": false, "default": 0.7}],
        "output": [{"type": "stream", "is_list": false, "subtype": "text"}]});
    let cases = [
        (
            "/workflows",
            200,
            json!([{"workflow_id": "__workflow__", "title": "Chat with OpenAI GPT-4o"}]),
        ),
        (
            "/workflows?include_schema=true",
            200,
            json!([schema.clone()]),
        ),
        ("/workflows/__workflow__/schema", 200, schema),
        (
            "/workflows/__default__/schema",
            404,
            json!({"detail": "Workflow not found."}),
        ),
        ("/health", 200, json!({"status": "ok"})),
        ("/tasks/nope", 404, json!({"detail": "Task not found."})),
        ("/runs/nope", 404, json!({"detail": "Run not found."})),
        ("/nonexistent", 404, json!({"detail": "Not Found"})),
    ];
    for (path, status, body) in cases {
        assert_eq!(
            get_json(format!("{}{path}", server.api)).await,
            (status, body),
            "{path}"
        );
    }
    let outside = client()
        .get(format!("{}/workflows", server.api.trim_end_matches("/api")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(outside).await,
        (404, json!({"detail": "Not Found"}))
    );
    let wrong_method = client()
        .get(format!("{}/workflows/runs", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(wrong_method).await,
        (405, json!({"detail": "Method Not Allowed"}))
    );
}

#[tokio::test]
async fn non_stream_outputs_give_task_json_or_the_output() {
    let mock = MockUpstream::start(Behavior::tokens(&["a", "b"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replace(
        "    output: ${output as stream/text}",
        "    output:\n      answer: ${output as text}",
    );
    let server = Server::start_with(&dir, &config);
    let (status, task) = json_of(post(&server, SEED_BODY).await).await;
    assert_eq!(status, 200);
    assert_eq!(task["status"], "completed");
    assert_eq!(task["output"], json!({"answer": "ab"}));
    let (status, output) = json_of(
        post(
            &server,
            &SEED_BODY.replace("}}", "},\"output_only\":\"yes\"}"),
        )
        .await,
    )
    .await;
    assert_eq!((status, output), (200, json!({"answer": "ab"})));

    mock.set(Behavior::error(500, "down"));
    let (status, task) = json_of(post(&server, SEED_BODY).await).await;
    assert_eq!(status, 200, "a failed non-stream run is a task state");
    assert_eq!(task["status"], "failed");
    assert_eq!(task["error"], "upstream returned 500: down");
}

#[tokio::test]
async fn the_history_survives_a_restart() {
    let mock = MockUpstream::start(Behavior::echo());
    let dir = Workdir::seed(&mock.base_url);
    let mut server = Server::start(&dir, &mock.base_url);
    for prompt in ["first run", "second run"] {
        let body = json!({"input": {"prompt": prompt, "temperature": 0.3}}).to_string();
        post(&server, &body).await.text().await.unwrap();
    }
    assert!(server.stop().success());
    let server = Server::start(&dir, &mock.base_url);
    let (status, runs) = get_json(format!("{}/runs", server.api)).await;
    assert_eq!(status, 200);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    // The list carries summaries; a run's input and output come with its record.
    let second = &runs[0];
    assert_eq!(second["title"], "second run");
    assert_eq!(second["settings"], json!({"temperature": 0.3}));
    assert_eq!(second["status"], "completed");
    assert!(second.get("input").is_none() && second.get("output").is_none());
    assert!(second["first_chunk_ms"].as_i64().unwrap() <= second["duration_ms"].as_i64().unwrap());
    let id = second["task_id"].as_str().unwrap();
    let (status, run) = get_json(format!("{}/runs/{id}", server.api)).await;
    assert_eq!(status, 200);
    assert_eq!(
        run["input"],
        json!({"prompt": "second run", "temperature": 0.3})
    );
    assert_eq!(run["output"], "second run");
    assert_eq!(run["started_at"], second["started_at"]);
    let id = runs[1]["task_id"].as_str().unwrap();
    let (_, run) = get_json(format!("{}/runs/{id}", server.api)).await;
    assert_eq!(run["output"], "first run");
}

#[tokio::test]
async fn down_stops_a_server_started_in_the_same_directory() {
    let mock = seed_mock();
    let dir = Workdir::seed(&mock.base_url);
    let mut server = Server::start(&dir, &mock.base_url);
    let output = support::run(&dir, &["down"]);
    assert_eq!(output.status.code(), Some(0));
    support::eventually(Duration::from_secs(5), "the server to exit", || {
        let exited = server.child.try_wait().unwrap().is_some();
        async move { exited }
    })
    .await;
    assert!(server.child.wait().unwrap().success());
    assert!(!dir.path.join(".stop").exists());
}

#[tokio::test]
async fn up_detached_reports_where_it_serves_and_runs_until_down() {
    let mock = seed_mock();
    let dir = Workdir::seed(&mock.base_url);
    dir.write(
        "model-compose.yml",
        &testkit::seed_on_any_port(&mock.base_url),
    );
    let output = support::run(&dir, &["up", "-d"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::stderr(&output)
    );
    let printed = support::stdout(&output);
    assert!(printed.contains("in the background (pid "), "{printed}");
    let (api, _) = support::served_addresses(&printed).expect("the addresses");
    let health = format!("{api}/health");
    assert_eq!(reqwest::get(&health).await.unwrap().status(), 200);

    assert_eq!(support::run(&dir, &["down"]).status.code(), Some(0));
    support::eventually(Duration::from_secs(10), "the server to stop", || async {
        reqwest::get(&health).await.is_err()
    })
    .await;
    // Stopped cleanly: the history is closed, with no write-ahead log left behind.
    let history = dir.path.join(".model-compose-history.db");
    let wal = dir.path.join(".model-compose-history.db-wal");
    support::eventually(Duration::from_secs(5), "the history to close", || {
        let closed = history.exists() && !wal.exists();
        async move { closed }
    })
    .await;
}

#[tokio::test]
async fn up_detached_reports_a_server_that_cannot_start() {
    let dir = Workdir::seed("http://127.0.0.1:9/v1");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    dir.write(
        "model-compose.yml",
        &testkit::seed_for("http://127.0.0.1:9/v1")
            .replace("    port: 8080", &format!("    port: {port}"))
            .replace("    port: 8081", "    port: 0"),
    );
    let output = support::run(&dir, &["up", "-d"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = support::stderr(&output);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_private_workflow_is_neither_listed_nor_run_over_http() {
    let mock = seed_mock();
    let dir = Workdir::seed(&mock.base_url);
    let config =
        support::seed_for(&mock.base_url).replace("workflow:\n", "workflow:\n  private: true\n");
    let server = Server::start_with(&dir, &config);
    let (status, listed) = get_json(format!("{}/workflows", server.api)).await;
    assert_eq!((status, listed), (200, json!([])));
    let (status, body) = json_of(post(&server, SEED_BODY).await).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Workflow '__default__' not found."}))
    );
    // The web UI's server functions go through the same gate.
    let run = [
        ("workflow_id", "__workflow__"),
        ("input", r#"{"prompt":"Hi"}"#),
        ("prompt", "Hi"),
    ];
    let ui = support::ui_call(&server, "chat", &run).await;
    let ui = ui.text().await.unwrap();
    assert!(ui.contains("workflow not found: __workflow__"), "{ui}");
    assert!(!ui.contains("event: start"), "{ui}");
    let listed = support::ui_call(&server, "workflows", &[]).await;
    assert_eq!(listed.text().await.unwrap(), "[]");
    assert!(mock.requests().is_empty());
    // The command line, run by whoever holds the config, may run it.
    let output = support::run(&dir, &["run", "--input", r#"{"prompt":"Hi"}"#]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::stderr(&output)
    );
}

#[tokio::test]
async fn a_run_deleted_while_it_streams_is_cancelled_and_stays_deleted() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["a", "b", "c", "d", "e", "f"]).delay(Duration::from_millis(200)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let task_id = start_streaming(&server, &mock).await;
    let deleted = client()
        .delete(format!("{}/runs/{task_id}", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (_, task) = get_json(format!("{}/tasks/{task_id}", server.api)).await;
    assert_eq!(task, json!({"detail": "Task not found."}));
    support::eventually(
        Duration::from_millis(500),
        "the upstream request to close",
        || async { mock.open_streams() == 0 },
    )
    .await;
    assert!(mock.finished_at().is_none(), "the run was cancelled");
    let (status, _) = get_json(format!("{}/runs/{task_id}", server.api)).await;
    assert_eq!(status, 404);
    let (_, runs) = get_json(format!("{}/runs", server.api)).await;
    assert_eq!(runs, json!([]));
    let again = client()
        .delete(format!("{}/runs/{task_id}", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn the_history_is_listed_a_page_at_a_time() {
    let mock = MockUpstream::start(Behavior::echo());
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    for i in 0..5 {
        let body = json!({"input": {"prompt": format!("run {i}")}}).to_string();
        post(&server, &body).await.text().await.unwrap();
    }
    let mut titles = Vec::new();
    let mut url = format!("{}/runs?limit=2", server.api);
    loop {
        let response = client().get(&url).send().await.unwrap();
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        let (_, page) = json_of(response).await;
        titles.extend(page.as_array().unwrap().iter().map(|r| r["title"].clone()));
        let Some(link) = link else { break };
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        url = format!("{}{next}", server.api.trim_end_matches("/api"));
    }
    assert_eq!(titles, ["run 4", "run 3", "run 2", "run 1", "run 0"]);
}

/// The chunks of a raw HTTP/1.1 response with chunked transfer encoding: each is one write
/// of the server's.
fn http_chunks(response: &[u8]) -> Vec<Vec<u8>> {
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the end of the headers")
        + 4;
    let mut rest = &response[start..];
    let mut chunks = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return chunks;
        }
        let data = &rest[line_end + 2..line_end + 2 + size];
        chunks.push(data.to_vec());
        rest = &rest[line_end + 2 + size + 2..];
    }
}

#[tokio::test]
async fn tokens_already_there_go_out_together_not_one_write_each() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that is ahead of the client: 300 tokens sent in one piece.
    let tokens: Vec<String> = (0..300).map(|i| format!(" t{i}")).collect();
    let body: String = support::mock_upstream::openai_events(&tokens, None)
        .iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    let mock = MockUpstream::start(Behavior::raw(&body));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let address = server
        .api
        .trim_start_matches("http://")
        .trim_end_matches("/api");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /api/workflows/runs HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SEED_BODY}",
        SEED_BODY.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let chunks = http_chunks(&response);
    let expected: String = tokens.iter().map(|t| format!("data: {t}\n\n")).collect();
    assert_eq!(String::from_utf8(chunks.concat()).unwrap(), expected);
    assert!(chunks.len() <= 8, "{} writes for 300 tokens", chunks.len());
}
