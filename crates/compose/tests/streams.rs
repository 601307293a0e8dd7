//! Streams through jobs (spec §13.7): a `filter` that reads another job's streamed output
//! filters it chunk by chunk as the upstream sends it, so a terminal filter's output reaches
//! the client as it comes; `streaming: true` gives a list's kept items as a stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use compose::workflow::Access;
use compose::RunOutput;
use support::{load, run};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::Workdir;

/// A streaming chat whose pieces go through a filter that drops " skip".
fn filtered_chat(base_url: &str, output: &str) -> String {
    format!(
        r#"components:
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
    - id: keep
      type: filter
      depends_on: [chat]
      input: ${{jobs.chat.output}}
      where: {{input: '${{item}}', operator: neq, value: ' skip'}}
{output}"#
    )
}

#[tokio::test]
async fn a_filter_over_a_streamed_output_passes_each_chunk_as_it_comes() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Hello", " skip", " world"]).delay(Duration::from_millis(150)),
    );
    let dir = Workdir::empty();
    let engine = load(&dir, &filtered_chat(&mock.base_url, "")).unwrap();
    let request = engine
        .request(None, json!({"prompt": "Hi"}), Access::All)
        .unwrap();
    let started = Instant::now();
    let RunOutput::Stream(mut pieces) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("a filter over a stream is a stream");
    };
    assert_eq!(pieces.next().await.unwrap().unwrap(), "Hello");
    assert!(
        mock.finished_at().is_none(),
        "the first piece came before the upstream ended"
    );
    let rest: Vec<String> = pieces.map(|p| p.unwrap()).collect().await;
    assert_eq!(rest, [" world"]);
    assert!(started.elapsed() >= Duration::from_millis(300));

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
    let pieces: Vec<String> = pieces.map(|p| p.unwrap()).collect().await;
    // Each item a piece, as the original encodes a value in a text stream.
    assert_eq!(pieces, [r#"{"n": 2}"#, r#"{"n": 3}"#]);
}
