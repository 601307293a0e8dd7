//! Streams through jobs (spec §13.7, §13.8, §13.12): a `filter` or a `for-each` that reads
//! another job's streamed output takes it chunk by chunk as the upstream sends it, a `fan-out`
//! hands each branch its copy as it comes, so a terminal job's output reaches the client as it
//! comes; `streaming: true` gives a list's kept items (or results) as a stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use compose::workflow::Access;
use compose::RunOutput;
use support::{load, run, text};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::Workdir;

/// A streaming chat whose pieces go through a filter that drops " skip".
fn filtered_chat(base_url: &str, output: &str) -> String {
    chat_then(
        base_url,
        &format!(
            r#"    - id: keep
      type: filter
      depends_on: [chat]
      input: ${{jobs.chat.output}}
      where: {{input: '${{item}}', operator: neq, value: ' skip'}}
{output}"#
        ),
    )
}

/// A streaming chat (job `chat`), then `jobs`; `say` prints `<text>`.
fn chat_then(base_url: &str, jobs: &str) -> String {
    format!(
        r#"components:
  - id: say
    type: shell
    action:
      command: [printf, '<%s>', '${{input.text}}']
      output: ${{result.stdout}}
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
workflow:
  jobs:
    - id: chat
      component: llm
{jobs}"#
    )
}

/// Runs `engine`'s default workflow on the prompt "Hi": its stream's first piece is `first`,
/// read before `mock` (the upstream) has ended, then the others are `rest`.
async fn as_it_comes(engine: &compose::Engine, mock: &MockUpstream, first: &str, rest: &[&str]) {
    let request = engine
        .request(None, json!({"prompt": "Hi"}), Access::All)
        .unwrap();
    let RunOutput::Stream(mut pieces) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("a stream expected");
    };
    assert_eq!(text(pieces.next().await.unwrap().unwrap()), first);
    assert!(
        mock.finished_at().is_none(),
        "the first piece came before the upstream ended"
    );
    let others: Vec<String> = pieces.map(|p| text(p.unwrap())).collect().await;
    assert_eq!(others, rest);
}

#[tokio::test]
async fn a_filter_over_a_streamed_output_passes_each_chunk_as_it_comes() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Hello", " skip", " world"]).delay(Duration::from_millis(150)),
    );
    let dir = Workdir::empty();
    let engine = load(&dir, &filtered_chat(&mock.base_url, "")).unwrap();
    as_it_comes(&engine, &mock, "Hello", &[" world"]).await;

    // Read by another job too, the output is handed on whole, filtered item by item: a
    // string is one item.
    let shared = filtered_chat(
        &mock.base_url,
        "    - id: also\n      type: delay\n      depends_on: [chat]\n      output: ${jobs.chat.output}\n",
    );
    let engine = load(&dir, &shared).unwrap();
    let out = run(&engine, json!({"prompt": "Hi"})).await.unwrap();
    assert_eq!(out, json!("Hello skip world"));
}

#[tokio::test]
async fn a_filter_with_streaming_gives_the_kept_items_as_a_stream() {
    let dir = Workdir::empty();
    let yaml = r#"workflow:
  job:
    type: filter
    input: ${input.items}
    streaming: true
    where: {input: '${item.n}', operator: gte, value: 2}
"#;
    let engine = load(&dir, yaml).unwrap();
    let request = engine
        .request(
            None,
            json!({"items": [{"n": 1}, {"n": 2}, {"n": 3}]}),
            Access::All,
        )
        .unwrap();
    let RunOutput::Stream(pieces) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("streaming: true is a stream");
    };
    let pieces: Vec<String> = pieces.map(|p| text(p.unwrap())).collect().await;
    // Each item a piece, as the original encodes a value in a text stream.
    assert_eq!(pieces, [r#"{"n": 2}"#, r#"{"n": 3}"#]);
}

#[tokio::test]
async fn a_for_each_over_a_streamed_output_gives_each_result_as_its_chunk_comes() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Hello", " big", " world"]).delay(Duration::from_millis(150)),
    );
    let dir = Workdir::empty();
    let each = r#"    - id: each
      type: for-each
      depends_on: [chat]
      input: ${jobs.chat.output}
      do:
        component: say
        input: {text: '${item}'}
"#;
    let engine = load(&dir, &chat_then(&mock.base_url, each)).unwrap();
    as_it_comes(&engine, &mock, "<Hello>", &["< big>", "< world>"]).await;

    // Read by another job, its results are a list.
    let read = format!("{each}    - id: then\n      type: delay\n      depends_on: [each]\n      output: ${{jobs.each.output}}\n");
    let engine = load(&dir, &chat_then(&mock.base_url, &read)).unwrap();
    let out = run(&engine, json!({"prompt": "Hi"})).await.unwrap();
    assert_eq!(out, json!(["<Hello>", "< big>", "< world>"]));
}

#[tokio::test]
async fn a_for_each_with_streaming_gives_its_results_as_a_stream() {
    let dir = Workdir::empty();
    let yaml = r#"components:
  - id: say
    type: shell
    action:
      command: [printf, '<%s>', '${input.text}']
      output: ${result.stdout}
workflow:
  job:
    type: for-each
    input: ${input.items}
    streaming: true
    batch_size: 2
    do: {component: say, input: {text: '${item}'}}
"#;
    let engine = load(&dir, yaml).unwrap();
    let request = engine
        .request(None, json!({"items": ["a", "b", "c"]}), Access::All)
        .unwrap();
    let RunOutput::Stream(pieces) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("streaming: true is a stream");
    };
    let pieces: Vec<String> = pieces.map(|p| text(p.unwrap())).collect().await;
    assert_eq!(pieces, ["<a>", "<b>", "<c>"]);
}

#[tokio::test]
async fn a_fan_out_of_a_stream_hands_each_branch_its_copy_as_it_comes() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Hello", " skip", " world"]).delay(Duration::from_millis(150)),
    );
    let dir = Workdir::empty();
    let log = dir.join("log.txt");
    let jobs = format!(
        r#"    - id: split
      type: fan-out
      depends_on: [chat]
      input: ${{jobs.chat.output}}
      output: [shown, logged]
    - id: keep
      type: filter
      depends_on: [split]
      input: ${{jobs.split.output.shown}}
      where: {{input: '${{item}}', operator: neq, value: ' skip'}}
    - id: log
      type: for-each
      depends_on: [split]
      input: ${{jobs.split.output.logged}}
      do:
        component: {{type: shell, action: {{command: [sh, -c, 'printf "[%s]" "$0" >> {log}', '${{input.text}}']}}}}
        input: {{text: '${{item}}'}}
    - id: logged
      type: delay
      depends_on: [log]
"#,
        log = log.display()
    );
    let engine = load(&dir, &chat_then(&mock.base_url, &jobs)).unwrap();
    as_it_comes(&engine, &mock, "Hello", &[" world"]).await;
    // The stream ended once the other branch's reader had every chunk too.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged, "[Hello][ skip][ world]");
}
