//! The WebSocket route, driven by a real WebSocket client: the original's message shapes, the
//! streamed output as it arrives, errors, keep-alive pings, and the same protection as the
//! rest of the API (access keys, allowed origins).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The seed with these lines added to its adapter.
fn seed_with(mock: &MockUpstream, adapter: &str) -> String {
    support::seed_for(&mock.base_url).replace(
        "    base_path: /api\n",
        &format!("    base_path: /api\n{adapter}"),
    )
}

fn ws_url(server: &Server, path: &str) -> String {
    format!("{}{path}", server.api.replacen("http://", "ws://", 1))
}

async fn connect(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next JSON message (pings are answered by the client library and skipped).
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Messages until (and with) the one of type `last`.
async fn until(socket: &mut Socket, last: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        let message = next(socket).await;
        let done = message["type"] == last;
        messages.push(message);
        if done {
            return messages;
        }
    }
}

fn types(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_run_streams_its_output_and_ends_with_the_original_events() {
    let mock = MockUpstream::start(Behavior::tokens(&["Hello", " world"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let mut socket = connect(&ws_url(&server, "/ws")).await;
    send(
        &mut socket,
        json!({"type": "run_workflow", "id": "r1", "data": {"input": {"prompt": "Hi"}}}),
    )
    .await;
    let messages = until(&mut socket, "task_state").await;
    assert_eq!(
        types(&messages),
        [
            "workflow_started",
            "task_event",
            "job_event",
            "job_event",
            "task_output",
            "task_output",
            "task_event",
            "task_state"
        ]
    );
    let task = messages[0]["data"]["task_id"].as_str().unwrap().to_string();
    assert_eq!(messages[0]["id"], "r1");
    assert_eq!(
        messages[0]["data"],
        json!({"task_id": task, "workflow_id": "__workflow__", "status": "pending"})
    );
    let stamp = messages[0]["timestamp"].as_str().unwrap();
    assert!(stamp.ends_with('Z') && stamp.len() == 27, "{stamp}");
    assert_eq!(messages[1]["data"]["event"], "started");
    assert_eq!(messages[2]["data"]["event"], "started");
    assert_eq!(messages[2]["data"]["job_id"], "__job__");
    assert_eq!(messages[3]["data"]["event"], "completed");
    let chunks: Vec<&str> = messages[4..6]
        .iter()
        .map(|m| m["data"]["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(chunks, ["Hello", " world"]);
    assert_eq!(messages[6]["data"]["event"], "completed");
    assert_eq!(messages[6]["data"]["output"], "Hello world");
    assert_eq!(
        messages[7]["data"],
        json!({"task_id": task, "status": "completed", "workflow_id": "__workflow__", "output": "Hello world"})
    );

    // A finished task can be read and followed again.
    send(
        &mut socket,
        json!({"type": "get_task", "id": 2, "data": {"task_id": task}}),
    )
    .await;
    let state = next(&mut socket).await;
    assert_eq!(
        (state["type"].as_str(), state["id"].as_i64()),
        (Some("task_state"), Some(2))
    );
    send(
        &mut socket,
        json!({"type": "subscribe_task", "data": {"task_id": task}}),
    )
    .await;
    let replay = until(&mut socket, "task_state").await;
    assert_eq!(replay[0]["type"], "task_subscribed");
    assert_eq!(replay[0]["data"]["state"]["status"], "completed");
    assert!(types(&replay).contains(&"task_event".to_string()));
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_stays() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let mut socket = connect(&ws_url(&server, "/ws")).await;
    let cases = [
        (
            json!({"type": "launch", "id": "a"}).to_string(),
            json!({"type": "error", "id": "a", "data": {"code": "INVALID_REQUEST", "message": "Unknown message type: launch"}}),
        ),
        (
            "{not json".to_string(),
            json!({"type": "error", "data": {"code": "INVALID_REQUEST", "message": "Invalid JSON"}}),
        ),
        (
            json!({"type": "get_task", "id": "b", "data": {"task_id": "nope"}}).to_string(),
            json!({"type": "error", "id": "b", "data": {"code": "TASK_NOT_FOUND", "message": "Task 'nope' not found"}}),
        ),
        (
            json!({"type": "run_workflow", "id": "c", "data": {"workflow_id": "nope"}}).to_string(),
            json!({"type": "error", "id": "c", "data": {"code": "WORKFLOW_NOT_FOUND", "message": "Workflow 'nope' not found"}}),
        ),
        (
            json!({"type": "ping", "id": "d"}).to_string(),
            json!({"type": "pong", "id": "d", "data": {}}),
        ),
    ];
    for (sent, want) in cases {
        socket.send(Message::text(sent)).await.unwrap();
        let mut got = next(&mut socket).await;
        got.as_object_mut().unwrap().remove("timestamp").unwrap();
        assert_eq!(got, want);
    }
    send(&mut socket, json!({"type": "subscribe_task", "data": {}})).await;
    let got = next(&mut socket).await;
    assert_eq!(got["data"]["code"], "INVALID_REQUEST");
    assert!(
        got["data"]["message"].as_str().unwrap().contains("task_id"),
        "{got}"
    );
    send(
        &mut socket,
        json!({"type": "run_workflow", "data": {"input": {"temperature": "hot"}}}),
    )
    .await;
    let got = next(&mut socket).await;
    assert_eq!(got["data"]["code"], "INVALID_REQUEST", "{got}");
    assert!(
        got["data"]["message"].as_str().unwrap().contains("prompt"),
        "{got}"
    );
}

#[tokio::test]
async fn the_route_can_move_or_be_turned_off_and_silent_clients_are_closed() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let off = Server::start_with(&dir, &seed_with(&mock, "    websocket: false\n"));
    let refused = tokio_tungstenite::connect_async(ws_url(&off, "/ws")).await;
    assert!(refused.is_err(), "the route is off");
    drop(off);

    let dir = Workdir::seed(&mock.base_url);
    let config = seed_with(
        &mock,
        "    websocket:\n      path: /live\n      ping_interval: 200ms\n      ping_timeout: 300ms\n",
    );
    let server = Server::start_with(&dir, &config);
    // A client that never reads never answers the pings: it is closed.
    let mut silent = connect(&ws_url(&server, "/live")).await;
    let log = dir.path.join("server.log");
    support::eventually(Duration::from_secs(10), "the silent client closed", || {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        std::future::ready(log.contains("a WebSocket client did not answer pings"))
    })
    .await;
    let mut close = None;
    while let Some(Ok(message)) = silent.next().await {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1011);
    assert_eq!(close.reason.as_str(), "keepalive ping timeout");
    // One that reads answers them and stays.
    let mut lively = connect(&ws_url(&server, "/live?session=s1")).await;
    for _ in 0..3 {
        send(&mut lively, json!({"type": "ping"})).await;
        assert_eq!(next(&mut lively).await["type"], "pong");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A second connection of the same session is refused.
    let mut twin = connect(&ws_url(&server, "/live?session=s1")).await;
    match twin.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4409),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn access_keys_and_origins_guard_the_route() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let key = "mc-ws-key-0123456789";
    let config = support::seed_for(&mock.base_url).replace(
        "controller:\n",
        &format!("controller:\n  access_keys: [{key}]\n"),
    );
    let server = Server::start_with(&dir, &config);
    let url = ws_url(&server, "/ws");
    let without = tokio_tungstenite::connect_async(&url).await.unwrap_err();
    assert!(without.to_string().contains("401"), "{without}");
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");

    let mut evil = url.as_str().into_client_request().unwrap();
    evil.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    evil.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(evil).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
}

#[tokio::test]
async fn a_run_posted_over_rest_can_be_followed_by_a_websocket_session() {
    let mock = MockUpstream::start(Behavior::tokens(&["Hi", " there"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let mut socket = connect(&ws_url(&server, "/ws?session=s9")).await;
    let post = |query: &'static str, body: Value| {
        let url = format!("{}/workflows/runs{query}", server.api);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, body)
        }
    };
    let input = json!({"prompt": "Hi"});
    let refusals = [
        (
            "?session_id=s9",
            json!({"input": input, "subscribe_task": true}),
            "subscribe_task=true requires wait_for_completion=false",
        ),
        (
            "",
            json!({"input": input, "subscribe_task": true, "wait_for_completion": false}),
            "session_id query parameter required when subscribe_task=true",
        ),
        (
            "?session_id=nobody",
            json!({"input": input, "subscribe_task": true, "wait_for_completion": false}),
            "No active WebSocket connection for session",
        ),
    ];
    for (query, body, detail) in refusals {
        assert_eq!(post(query, body).await, (400, json!({"detail": detail})));
    }
    let (status, started) = post(
        "?session_id=s9",
        json!({"input": input, "subscribe_task": true, "wait_for_completion": false}),
    )
    .await;
    assert_eq!((status, &started["status"]), (200, &json!("pending")));
    let messages = until(&mut socket, "task_state").await;
    assert_eq!(messages[0]["data"]["task_id"], started["task_id"]);
    let messages = until(&mut socket, "task_state").await;
    let chunks: Vec<&str> = messages
        .iter()
        .filter(|m| m["type"] == "task_output")
        .map(|m| m["data"]["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(chunks, ["Hi", " there"]);
    assert_eq!(messages.last().unwrap()["data"]["status"], "completed");
}

#[tokio::test]
async fn an_interrupted_run_is_told_and_resumed_over_the_socket() {
    let config = &format!(
        r#"controller:
  adapter: {{type: http-server, port: 0, base_path: /api}}
  webui: {{port: 0}}
workflow:
  job:
    component: sh
    input: {{command: echo hi}}
    interrupt: {{before: {{message: Run it?}}}}
{}"#,
        testkit::SH_COMPONENT
    );
    let dir = Workdir::empty();
    dir.write("model-compose.yml", config);
    let server = Server::start_with(&dir, config);
    let mut socket = connect(&ws_url(&server, "/ws")).await;
    send(
        &mut socket,
        json!({"type": "run_workflow", "id": "r", "data": {"input": {}}}),
    )
    .await;
    let messages = until(&mut socket, "job_event").await;
    let task = messages[0]["data"]["task_id"].as_str().unwrap().to_string();
    let interrupted = next(&mut socket).await;
    assert_eq!(interrupted["type"], "task_event");
    assert_eq!(interrupted["data"]["event"], "interrupted");
    assert_eq!(interrupted["data"]["status"], "interrupted");
    let point = &interrupted["data"]["interrupt"][0];
    assert_eq!(
        (&point["job_id"], &point["message"]),
        (&json!("__job__"), &json!("Run it?"))
    );
    // An unknown task, then the answer (by the point's id).
    send(
        &mut socket,
        json!({"type": "resume_task", "id": "x", "data": {"task_id": "01NONE"}}),
    )
    .await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["data"]["code"], "TASK_NOT_FOUND");
    send(
        &mut socket,
        json!({"type": "resume_task", "id": "y", "data": {"task_id": task, "answer": {point["id"].as_str().unwrap(): null}}}),
    )
    .await;
    let rest = until(&mut socket, "task_state").await;
    let resumed = rest.iter().find(|m| m["type"] == "task_resumed").unwrap();
    assert_eq!(resumed["id"], "y");
    assert_eq!(
        resumed["data"],
        json!({"task_id": task, "status": "processing"})
    );
    assert!(rest
        .iter()
        .any(|m| m["type"] == "task_event" && m["data"]["event"] == "resumed"));
    assert_eq!(rest.last().unwrap()["data"]["output"], "hi");
}
