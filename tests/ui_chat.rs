//! The web UI's chat server function, through the real binary against the mock upstream:
//! an event stream framed like the API's, quick tokens gathered into fewer events, and an
//! input that is not JSON refused. (The REST API's refusals: `rest_in_process.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir};

fn seed_mock() -> MockUpstream {
    MockUpstream::start(Behavior::tokens(&["Hello", " world\nline2", "42"]))
}

#[tokio::test]
async fn the_web_ui_refuses_an_input_that_is_not_json() {
    let mock = seed_mock();
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    // The web UI: an input that is not JSON is the caller's mistake.
    let ui = support::ui_call(
        &server,
        "chat",
        &[
            ("workflow_id", "__workflow__"),
            ("input", "{not json"),
            ("prompt", "x"),
        ],
    )
    .await;
    assert_eq!(ui.status(), 400);
    assert!(ui.text().await.unwrap().contains("invalid input"));
}

#[tokio::test]
async fn the_web_ui_chat_is_an_event_stream_framed_like_the_api() {
    // Tokens further apart than the stream gathers pieces for.
    let tokens = Behavior::tokens(&["Hello", " world.\n\nSecond", " line"]);
    let mock = MockUpstream::start(tokens.delay(Duration::from_millis(100)));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let run = [
        ("workflow_id", "__workflow__"),
        ("input", r#"{"prompt":"Hi"}"#),
        ("prompt", "Hi"),
    ];
    let response = support::ui_call(&server, "chat", &run).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let events: Vec<(&str, &str)> = body
        .split_terminator("\n\n")
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            (
                name.strip_prefix("event: ").unwrap(),
                data.strip_prefix("data: ").unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(name, _)| *name).collect();
    assert_eq!(names[..3], ["start", "first-token", "piece"]);
    assert_eq!(names.last(), Some(&"end"));
    let start: Value = serde_json::from_str(events[0].1).unwrap();
    assert_eq!(start["position"], 0);
    assert_eq!(start["version"], 1);
    let conversation = start["conversation_id"].as_str().unwrap();
    // Each piece in an event of its own: the tokens came 100 ms apart.
    assert_eq!(events[2].1, r#""Hello""#);
    let of = |name: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, data)| serde_json::from_str(data).unwrap())
            .collect()
    };
    let text: String = of("piece").iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(text, "Hello world.\n\nSecond line");
    assert_eq!(
        of("block"),
        [
            json!({"html": "<p>Hello world.</p>\n", "consumed": 14}),
            json!({"html": "<p>Second line</p>\n", "consumed": 11}),
        ]
    );
    // A block comes as soon as the next one begins, not at the end.
    assert_eq!(
        names,
        [
            "start",
            "first-token",
            "piece",
            "piece",
            "block",
            "piece",
            "block",
            "end"
        ]
    );
    let end: Value = serde_json::from_str(events.last().unwrap().1).unwrap();
    assert_eq!(end["status"], "completed");
    // The conversation is recorded, with the prompt as its title.
    let listed = support::get_json(format!("{}/conversations", server.api)).await;
    assert_eq!(listed[0]["id"], conversation);
    assert_eq!(listed[0]["title"], "Hi");
}

#[tokio::test]
async fn the_web_ui_chat_gathers_quick_tokens_into_fewer_events() {
    let tokens: Vec<String> = (0..300).map(|i| format!(" t{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mock = MockUpstream::start(Behavior::tokens(&tokens));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let run = [
        ("workflow_id", "__workflow__"),
        ("input", r#"{"prompt":"Count"}"#),
        ("prompt", "Count"),
    ];
    let body = support::ui_call(&server, "chat", &run)
        .await
        .text()
        .await
        .unwrap();
    let pieces: Vec<String> = body
        .split_terminator("\n\n")
        .filter_map(|event| event.strip_prefix("event: piece\ndata: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(pieces.concat(), tokens.concat());
    assert_eq!(pieces[0], " t0", "the first token is not held back");
    assert!(pieces.len() <= 30, "{} piece events", pieces.len());
}
