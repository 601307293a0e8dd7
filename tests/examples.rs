//! The chat examples in `examples/`, run as a user would (`run`, the REST API, the web UI's
//! server function) against mocks of their providers' wire formats: the exact request each
//! provider received, and what each door delivers. (The media examples: `examples_media.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::examples::*;
use support::{Server, Workdir, TEST_KEY};
use testkit::providers::Providers;

#[tokio::test]
async fn openai_chat_completions_answers_at_once() {
    let providers = Providers::start();
    let (dir, config) = example("openai-chat-completions", &providers);
    let printed = run_ok(&dir, &["run", "--input", r#"{"prompt": "Hi there"}"#]);
    assert_eq!(
        printed,
        "{\n  \"message\": \"You said: Hi there\",\n  \"tokens\": 9\n}\n"
    );
    let seen = providers.take();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/openai/v1/chat/completions");
    assert_eq!(
        seen[0].text(),
        r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi there"}], "temperature": 0.7}"#
    );
    assert_eq!(
        seen[0].header("authorization").unwrap(),
        format!("Bearer {TEST_KEY}")
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));

    let server = Server::start_with(&dir, &config);
    let (status, body) = api_json(
        &server,
        json!({"input": {"prompt": "Hey", "model": "gpt-4o-mini"}, "output_only": true}),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "You said: Hey", "tokens": 9}))
    );
    assert_eq!(providers.take()[0].json()["model"], "gpt-4o-mini");
    let (status, body) = api_json(
        &server,
        json!({"input": {"prompt": "Hey", "model": "gpt-5"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(providers.take().is_empty(), "a refused input sends nothing");
    let output = ui_output(&server, "__default__", json!({"prompt": "From the UI"})).await;
    assert_eq!(
        output,
        json!({"message": "You said: From the UI", "tokens": 9})
    );

    // A plain value `as stream/text` is a stream of one chunk, served as SSE.
    let streamed = config.replace(
        "    output: ${output}\n",
        "    output: ${output.message as stream/text}\n",
    );
    assert_ne!(streamed, config);
    let dir = Workdir::empty();
    dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
    let server = Server::start_with(&dir, &streamed);
    let response = api(&server, json!({"input": {"prompt": "Hey"}})).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "data: You said: Hey\n\n");
}

#[tokio::test]
async fn anthropic_messages_with_its_own_headers() {
    let providers = Providers::start();
    let (dir, config) = example("anthropic-messages", &providers);
    let printed = run_ok(&dir, &["run", "--input", r#"{"prompt": "Hi"}"#]);
    assert_eq!(
        printed,
        "{\n  \"answer\": \"You said: Hi\",\n  \"stop\": \"end_turn\"\n}\n"
    );
    let seen = providers.take();
    assert_eq!(seen[0].uri, "/anthropic/v1/messages");
    assert_eq!(seen[0].header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(
        seen[0].text(),
        r#"{"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]}"#
    );
    let server = Server::start_with(&dir, &config);
    let (status, body) = api_json(
        &server,
        json!({"input": {"prompt": "Hi", "max_tokens": "64"}, "output_only": true}),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"answer": "You said: Hi", "stop": "end_turn"}))
    );
    assert_eq!(providers.take()[0].json()["max_tokens"], 64);
    let output = ui_output(&server, "__default__", json!({"prompt": "From the UI"})).await;
    assert_eq!(
        output,
        json!({"answer": "You said: From the UI", "stop": "end_turn"})
    );
}

#[tokio::test]
async fn anthropic_stream_keeps_only_the_text_deltas() {
    let providers = Providers::start();
    let (dir, config) = example("anthropic-messages-stream", &providers);
    assert_eq!(
        run_ok(&dir, &["run", "--input", r#"{"prompt": "Hi"}"#]),
        "You said: Hi\n"
    );
    assert_eq!(providers.take()[0].json()["stream"], true);
    let server = Server::start_with(&dir, &config);
    let response = api(
        &server,
        json!({"input": {"prompt": "Hi"}, "output_only": true}),
    )
    .await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "data: You\n\ndata:  said:\n\ndata:  Hi\n\n"
    );
    // The web UI's chat streams the same pieces.
    let pieces = ui_text(&server, "__default__", json!({"prompt": "Hi"})).await;
    assert_eq!(pieces, "You said: Hi");
}
