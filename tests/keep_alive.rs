//! Streams that survive slow first tokens (D23): behind a proxy that cuts responses idle for
//! 2 s, a model that thinks for 4 s before its first token reaches the client whole when the
//! server says it is alive every second, and is cut when it does not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir};

/// The seed with `controller.keep_alive` set as given.
fn with_keep_alive(base_url: &str, keep_alive: &str) -> String {
    support::seed_for(base_url).replace(
        "controller:\n",
        &format!("controller:\n  keep_alive: {keep_alive}\n"),
    )
}

/// `http://HOST:PORT…` of `url` with its address replaced by `address`.
fn through(url: &str, address: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    format!("http://{address}{path}")
}

/// What a client read of a response before it ended or was cut: its body, and whether it
/// ended cleanly.
async fn read_all(response: reqwest::Response) -> (String, bool) {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => text.extend_from_slice(&chunk),
            Err(_) => return (String::from_utf8_lossy(&text).into_owned(), false),
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), true)
}

/// The body without its keep-alive comments, and how many there were.
fn without_comments(body: &str) -> (String, usize) {
    let comments = body.matches(": keep-alive\n\n").count();
    (body.replace(": keep-alive\n\n", ""), comments)
}

#[tokio::test]
async fn a_slow_first_token_survives_a_proxy_that_cuts_idle_responses() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Thought", " it", " over"]).first_after(Duration::from_secs(4)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(
        &dir,
        &with_keep_alive(&mock.base_url, "{first: 1s, every: 1s}"),
    );
    let api_address = server.api_address();
    let ui_address = server.webui.trim_start_matches("http://");
    let api_proxy = testkit::idle_proxy::start(api_address, Duration::from_secs(2));
    let ui_proxy = testkit::idle_proxy::start(ui_address.to_string(), Duration::from_secs(2));
    let client = reqwest::Client::new();

    // The REST API: the headers and a comment after 1 s, a comment every second, then the
    // answer, all of it.
    for body in [
        r#"{"input":{"prompt":"Think"}}"#,
        r#"{"input":{"prompt":"Think"},"output_only":true}"#,
    ] {
        let response = client
            .post(format!(
                "{}/workflows/runs",
                through(&server.api, &api_proxy)
            ))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let (text, whole) = read_all(response).await;
        assert!(whole, "cut: {text:?}");
        assert!(text.starts_with(": keep-alive\n\n"), "{text:?}");
        let (events, comments) = without_comments(&text);
        assert_eq!(events, "data: Thought\n\ndata:  it\n\ndata:  over\n\n");
        assert!(
            (2..=9).contains(&comments),
            "{comments} comments in {text:?}"
        );
    }

    // The web UI's streaming server function, the same way.
    let chat = client
        .post(format!("{}/_ui/chat", through(&server.webui, &ui_proxy)))
        .form(&[
            ("workflow_id", "__workflow__"),
            ("input", r#"{"prompt":"Think"}"#),
            ("prompt", "Think"),
        ])
        .send()
        .await
        .unwrap();
    let (text, whole) = read_all(chat).await;
    assert!(whole, "cut: {text:?}");
    let (events, comments) = without_comments(&text);
    assert!(comments >= 2, "{text:?}");
    assert!(
        events.contains("event: piece\ndata: \"Thought\""),
        "{events}"
    );
    assert!(
        events.contains("event: end\ndata: {\"status\":\"completed\""),
        "{events}"
    );
}

#[tokio::test]
async fn without_keep_alive_the_proxy_cuts_a_slow_first_token() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Too", " late"]).first_after(Duration::from_secs(4)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(&dir, &with_keep_alive(&mock.base_url, "false"));
    let api_address = server.api_address();
    let proxy = testkit::idle_proxy::start(api_address, Duration::from_secs(2));
    let response = reqwest::Client::new()
        .post(format!("{}/workflows/runs", through(&server.api, &proxy)))
        .header("Content-Type", "application/json")
        .body(r#"{"input":{"prompt":"Think"}}"#)
        .send()
        .await;
    // Nothing came back before the proxy gave up: not even the headers.
    assert!(response.is_err(), "{response:?}");
    // The server saw the client go, and stopped the run (D8).
    support::eventually(
        Duration::from_secs(10),
        "the run to be cancelled",
        || async {
            support::get_json(format!("{}/runs", server.api)).await[0]["status"] == "cancelled"
        },
    )
    .await;
}
