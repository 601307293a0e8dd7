//! Streams through jobs as a `curl` client sees them (spec §13.8, §13.12): a model's answer
//! split by a `fan-out`, one branch filtered to the client event by event while a `for-each`
//! logs each chunk of the other; the run ends once both have, with the error of either.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{get_json, post, Server, Workdir};

/// The model's answer to the client without " skip", each chunk logged by `log` (its
/// `output`: `log_output`).
fn split_answer(base_url: &str, log: &str, log_output: &str) -> String {
    format!(
        r#"controller:
  adapter:
    type: http-server
    port: 8080
    base_path: /api
  webui:
    port: 8081
components:
  - id: llm
    type: http-client
    base_url: {base_url}
    action:
      path: /chat/completions
      method: POST
      body:
        model: gpt-4o
        messages: [{{role: user, content: '${{input.prompt}}'}}]
        stream: true
      stream_format: json
      output: ${{response[].choices[0].delta.content}}
  - id: append
    type: shell
    action:
      command: [sh, -c, 'printf "[%s]" "$0" >> {log}; printf "[%s]" "$0"', '${{input.text}}']
      output: {log_output}
workflow:
  jobs:
    - id: chat
      component: llm
    - id: split
      type: fan-out
      depends_on: [chat]
      input: ${{jobs.chat.output}}
      output: [shown, logged]
    - id: show
      type: filter
      depends_on: [split]
      input: ${{jobs.split.output.shown}}
      where: {{input: '${{item}}', operator: neq, value: ' skip'}}
    - id: log
      type: for-each
      depends_on: [split]
      input: ${{jobs.split.output.logged}}
      do: {{component: append, input: {{text: '${{item}}'}}}}
    - id: logged
      type: delay
      depends_on: [log]
"#
    )
}

fn task_id(response: &reqwest::Response) -> String {
    response.headers()["x-task-id"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_fan_out_streams_one_branch_to_the_client_while_a_for_each_reads_the_other() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Hello", " skip", " world"]).delay(Duration::from_millis(150)),
    );
    let dir = Workdir::empty();
    let log = dir.join("log.txt");
    let config = split_answer(
        &mock.base_url,
        &log.display().to_string(),
        "${result.stdout}",
    );
    let server = Server::start_with(&dir, &config);
    let response = post(&server, r#"{"input": {"prompt": "Hi"}}"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let task = task_id(&response);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: Hello\n\n");
    assert!(
        mock.finished_at().is_none(),
        "the first event came before the upstream ended"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(rest).unwrap(), "data:  world\n\n");
    // The stream ended once the for-each had logged every chunk of its branch.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "[Hello][ skip][ world]"
    );
    let state = get_json(format!("{}/tasks/{task}", server.api)).await;
    assert_eq!(state["status"], "completed", "{state}");
    assert_eq!(state["output"], "Hello world", "{state}");
}

#[tokio::test]
async fn a_branch_that_fails_after_the_stream_started_ends_it_with_an_error_event() {
    let mock = MockUpstream::start(Behavior::tokens(&["Hello", " world"]));
    let dir = Workdir::empty();
    let log = dir.join("log.txt");
    // `[Hello]` is not an integer: the for-each fails on its first chunk.
    let config = split_answer(
        &mock.base_url,
        &log.display().to_string(),
        "${result.stdout as integer}",
    );
    let server = Server::start_with(&dir, &config);
    let response = post(&server, r#"{"input": {"prompt": "Hi"}}"#).await;
    assert_eq!(response.status(), 200);
    let task = task_id(&response);
    let body = response.text().await.unwrap();
    let (_, error) = body
        .split_once("event: error\n")
        .unwrap_or_else(|| panic!("an error event: {body}"));
    assert!(error.starts_with("data: {\"detail\":\""), "{error}");
    assert!(error.ends_with("\"}\n\n"), "{error}");
    let state = get_json(format!("{}/tasks/{task}", server.api)).await;
    assert_eq!(state["status"], "failed", "{state}");
}
