//! The OpenAI-compatible endpoint (D30) as an OpenAI client uses it: `GET /v1/models` lists
//! the conversation workflows; `POST /v1/chat/completions` runs one with the request's
//! messages and sampling fields, whole or streamed as `chat.completion.chunk` events ending in
//! `data: [DONE]`; errors in OpenAI's shape; the access keys as the SDKs send them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::examples::*;
use support::Server;
use testkit::providers::Providers;

/// The server's root, where OpenAI's clients look (`/v1/...`), outside `base_path`.
fn root(server: &Server) -> String {
    server.api.trim_end_matches("/api").to_string()
}

async fn complete(server: &Server, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", root(server)))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

/// The `data:` of each event of an SSE body.
fn data_of(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_conversation_workflow_is_a_model_whole_or_streamed() {
    let providers = Providers::start();
    let (dir, config) = example("openai-chat-conversation", &providers);
    let server = Server::start_with(&dir, &config);

    let models = get_json(format!("{}/v1/models", root(&server))).await;
    assert_eq!(models["object"], "list");
    let ids: Vec<&Value> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&json!("__workflow__")]);
    assert_eq!(models["data"][0]["object"], "model");

    // Whole: the messages and `temperature` reach the workflow's inputs of those names.
    let body = json!({"model": "__workflow__", "temperature": 0.2, "user": "someone",
                      "messages": [{"role": "user", "content": "Hi"}]});
    let response = complete(&server, &body, None).await;
    assert_eq!(response.status(), 200);
    let task = response.headers()["x-task-id"]
        .to_str()
        .unwrap()
        .to_string();
    let answer = json_of(response).await;
    assert_eq!(answer["id"], format!("chatcmpl-{task}"));
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "__workflow__");
    assert_eq!(
        answer["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "You said: Hi"},
                "finish_reason": "stop"}])
    );
    let asked = providers.take().pop().unwrap().json();
    assert_eq!(asked["temperature"], 0.2);
    assert_eq!(
        asked["messages"][1],
        json!({"role": "user", "content": "Hi"})
    );
    // The run is a task like any other.
    let state = get_json(format!("{}/tasks/{task}", server.api)).await;
    assert_eq!(state["status"], "completed");

    // Streamed: a role chunk, the text as it comes, the end, then [DONE].
    let body = json!({"model": "__workflow__", "stream": true,
                      "messages": [{"role": "user", "content": "Hello there"}]});
    let response = complete(&server, &body, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let events = data_of(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"
        && c["id"] == chunks[0]["id"]
        && c["model"] == "__workflow__"));
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    let text: String = deltas[1..]
        .iter()
        .filter_map(|delta| delta["content"].as_str())
        .collect();
    assert_eq!(text, "You said: Hello there");
    assert!(deltas.len() > 3, "the text came in pieces: {deltas:?}");
    let last = chunks.last().unwrap();
    assert_eq!(
        last["choices"][0],
        json!({"index": 0, "delta": {}, "finish_reason": "stop"})
    );
}

#[tokio::test]
async fn errors_come_in_openais_shape_and_the_access_keys_apply() {
    let providers = Providers::start();
    let (dir, config) = example("openai-chat-conversation", &providers);
    let config = config.replace(
        "controller:\n",
        "controller:\n  access_keys: [sk-local-1]\n",
    );
    let server = Server::start_with(&dir, &config);
    let body = json!({"model": "__workflow__", "messages": [{"role": "user", "content": "Hi"}]});

    let response = complete(&server, &body, None).await;
    assert_eq!(response.status(), 401);
    let error = json_of(response).await;
    assert_eq!(error["error"]["type"], "authentication_error", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("An access key is required"));
    let response = complete(&server, &body, Some("sk-local-1")).await;
    assert_eq!(response.status(), 200);

    let unknown = json!({"model": "gpt-4o", "messages": []});
    let response = complete(&server, &unknown, Some("sk-local-1")).await;
    assert_eq!(response.status(), 404);
    let error = json_of(response).await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["code"], "model_not_found");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("The model `gpt-4o` does not exist"));

    let response = complete(&server, &json!({"messages": []}), Some("sk-local-1")).await;
    assert_eq!(response.status(), 400);
    let error = json_of(response).await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing field `model`"));
}
