//! The engine used as a library, against the mock upstream: several jobs, other stream
//! shapes, schema inference, and cancellation dropping the upstream request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use compose::config::{self, Sources};
use compose::workflow::Access;
use compose::{Engine, RunOutput};
use futures::StreamExt;
use serde_json::{json, Value};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::Workdir;

fn engine(dir: &Workdir, yaml: &str) -> Engine {
    let path = dir.write("model-compose.yml", yaml);
    let sources = Sources::isolated(&dir.path, &[("OPENAI_API_KEY", testkit::TEST_KEY)]);
    let config = config::load(&[path], &sources).unwrap();
    Engine::new(&config).unwrap()
}

async fn run_to_text(
    engine: &Engine,
    workflow: Option<&str>,
    input: Value,
) -> Result<String, String> {
    let request = engine
        .request(workflow, input, Access::All)
        .map_err(|e| e.to_string())?;
    let output = engine
        .run(&request, json!({"task_id": "t"}))
        .await
        .map_err(|e| e.to_string())?;
    match output {
        RunOutput::Stream(stream) => {
            let pieces: Vec<_> = stream.collect().await;
            pieces
                .into_iter()
                .map(|piece| piece.map(support::text))
                .collect::<Result<String, _>>()
                .map_err(|e| e.to_string())
        }
        RunOutput::Value(value) => Ok(value.to_string()),
        RunOutput::Bytes(binary) => Ok(format!("bytes of {}", binary.content_type)),
    }
}

#[tokio::test]
async fn the_seed_schema_is_inferred() {
    let dir = Workdir::empty();
    let engine = engine(&dir, testkit::SEED);
    let workflow = engine.workflow(None, Access::All).unwrap();
    assert_eq!(workflow.id, "__workflow__");
    let input = serde_json::to_value(&workflow.input_schema).unwrap();
    assert_eq!(
        input,
        json!([
            {"name": "prompt", "type": "text", "is_list": false, "required": true},
            {"name": "temperature", "type": "number", "is_list": false, "default": 0.7}
        ])
    );
    let output = serde_json::to_value(&workflow.output_schema).unwrap();
    assert_eq!(
        output,
        json!([{"type": "stream", "subtype": "text", "is_list": false}])
    );
}

#[tokio::test]
async fn jobs_run_in_dependency_order_and_read_each_others_output() {
    let mock = MockUpstream::start(Behavior::tokens(&["draft", " one"]));
    let yaml = format!(
        r#"
components:
  - id: chat
    type: http-client
    base_url: {base}
    action:
      path: /chat/completions
      headers:
        Content-Type: application/json
      body:
        model: m
        messages:
          - role: user
            content: ${{input.prompt}}
        stream: true
      stream_format: json
      output: ${{response[].choices[0].delta.content}}
workflow:
  jobs:
    - id: refine
      component: chat
      depends_on: [draft]
      input:
        prompt: "Improve: ${{jobs.draft.output}}"
      output: ${{output as stream/text}}
    - id: draft
      component: chat
      input:
        prompt: ${{input.topic}}
      output: ${{output as text}}
"#,
        base = mock.base_url
    );
    let dir = Workdir::empty();
    let engine = engine(&dir, &yaml);
    let schema =
        serde_json::to_value(&engine.workflow(None, Access::All).unwrap().input_schema).unwrap();
    assert_eq!(
        schema,
        json!([{"name": "topic", "type": "string", "is_list": false, "required": true}])
    );
    let text = run_to_text(&engine, None, json!({"topic": "rust"}))
        .await
        .unwrap();
    assert_eq!(text, "draft one");
    let prompts: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| r.body["messages"][0]["content"].clone())
        .collect();
    assert_eq!(prompts, [json!("rust"), json!("Improve: draft one")]);
}

#[tokio::test]
async fn anthropic_streams_map_content_block_deltas() {
    let mock = MockUpstream::start(Behavior::tokens(&["Bonjour", " le", " monde"]));
    let yaml = format!(
        r#"
component:
  type: http-client
  base_url: {base}
  action:
    path: /messages
    headers:
      x-api-key: ${{env.OPENAI_API_KEY}}
      Content-Type: application/json
    body:
      model: claude
      stream: true
      messages:
        - role: user
          content: ${{input.prompt as text}}
    stream_format: json
    output: ${{response[].delta.text}}
workflow:
  job:
    output: ${{output as sse-text}}
"#,
        base = mock.base_url
    );
    let dir = Workdir::empty();
    let engine = engine(&dir, &yaml);
    let text = run_to_text(&engine, None, json!({"prompt": "Hi"}))
        .await
        .unwrap();
    assert_eq!(text, "Bonjour le monde");
}

#[tokio::test]
async fn a_streamed_output_that_reads_the_input_and_context_sees_them() {
    // The stream keeps `input` and `context` for its events only when its output reads them.
    let mock = MockUpstream::start(Behavior::tokens(&["a"]));
    let yaml = testkit::seed_for(&mock.base_url).replace(
        "${response[].choices[0].delta.content}",
        "\"[${input.prompt}:${context.task_id}:${response[].choices[0].delta.content}]\"",
    );
    let text = run_to_text(
        &engine(&Workdir::empty(), &yaml),
        None,
        json!({"prompt": "x"}),
    )
    .await
    .unwrap();
    assert!(text.contains("[x:t:a]"), "{text}");
}

#[tokio::test]
async fn text_streams_and_json_encoding() {
    let mock = MockUpstream::start(Behavior::tokens(&["a"]));
    let base = testkit::seed_for(&mock.base_url);
    let dir = Workdir::empty();
    let text_yaml = base
        .replace("stream_format: json", "stream_format: text")
        .replace("${response[].choices[0].delta.content}", "${response[]}");
    let text = run_to_text(&engine(&dir, &text_yaml), None, json!({"prompt": "x"}))
        .await
        .unwrap();
    let raw: String = testkit::mock_upstream::events(&["a".to_string()]).concat();
    assert_eq!(text, raw, "every event's data, as text");

    let json_yaml = base.replace("${output as stream/text}", "${output as stream/json}");
    let text = run_to_text(&engine(&dir, &json_yaml), None, json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(
        text, r#""""a""#,
        "each chunk JSON-encoded; the empty role chunk too"
    );
}

#[tokio::test]
async fn dropping_the_stream_drops_the_upstream_request() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["a", "b", "c", "d", "e", "f"]).delay(Duration::from_millis(300)),
    );
    let dir = Workdir::empty();
    let engine = engine(&dir, &testkit::seed_for(&mock.base_url));
    let request = engine
        .request(None, json!({"prompt": "Hi"}), Access::All)
        .unwrap();
    let RunOutput::Stream(mut stream) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("a stream");
    };
    assert_eq!(support::text(stream.next().await.unwrap().unwrap()), "a");
    assert_eq!(mock.open_streams(), 1);
    let dropped = Instant::now();
    drop(stream);
    while mock.open_streams() > 0 {
        assert!(
            dropped.elapsed() < Duration::from_millis(200),
            "the upstream is still being read"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        mock.finished_at().is_none(),
        "the upstream never got to finish"
    );
}

#[tokio::test]
async fn unknown_workflows_and_default_resolution() {
    let dir = Workdir::empty();
    let two = testkit::SEED.replace("workflow:\n  title", "workflows:\n- id: one\n  title").replace(
        "    output: ${output as stream/text}\n",
        "    output: ${output as stream/text}\n- id: two\n  default: true\n  job:\n    output: ${output as stream/text}\n",
    );
    let engine = engine(&dir, &two);
    assert_eq!(engine.workflow(None, Access::All).unwrap().id, "two");
    assert_eq!(engine.workflow(Some("one"), Access::All).unwrap().id, "one");
    assert_eq!(
        engine
            .workflow(Some("nope"), Access::All)
            .err()
            .unwrap()
            .to_string(),
        "workflow not found: nope"
    );
}

#[tokio::test]
async fn private_workflows_are_run_only_from_the_command_line() {
    let dir = Workdir::empty();
    let private = testkit::SEED.replace("workflow:\n", "workflow:\n  private: true\n");
    let engine = engine(&dir, &private);
    assert_eq!(engine.public_workflows().count(), 0);
    let refused = engine.request(None, json!({"prompt": "Hi"}), Access::Public);
    assert_eq!(
        refused.err().unwrap().to_string(),
        "workflow not found: __default__"
    );
    let gate = engine.request(None, json!({"prompt": "Hi"}), Access::All);
    assert_eq!(gate.unwrap().workflow().id, "__workflow__");
}

#[tokio::test]
async fn inputs_are_checked_by_the_conversion_the_run_would_make() {
    let dir = Workdir::empty();
    let yaml = testkit::SEED.replace(
        "      stream: true\n",
        "      stream: true\n      user: ${input.chat_id}\n      n: ${input.n as integer | 1}\n      style: ${input.style as select/short,long | short}\n",
    );
    let engine = engine(&dir, &yaml);
    // `chat_id` is used without a type: any JSON value passes; it has no default, so it is
    // required like `prompt`.
    let check = |mut input: Value| {
        if input.get("chat_id").is_none() {
            input["chat_id"] = json!("c1");
        }
        engine
            .request(None, input, Access::Public)
            .map(|_| ())
            .map_err(|err| (err.http_status(), err.to_string()))
    };
    let refused = |field: &str, expected: &str, got: &str| {
        Err((400, format!("input.{field} must be {expected}, got {got}")))
    };
    assert_eq!(check(json!({"prompt": "Hi"})), Ok(()));
    // What converts is accepted, as the run will convert it.
    assert_eq!(
        check(json!({"prompt": 42, "temperature": "0.5", "n": "3"})),
        Ok(())
    );
    assert_eq!(
        check(json!({"prompt": "Hi", "chat_id": {"a": [1, null]}})),
        Ok(())
    );
    assert_eq!(
        check(json!({"prompt": "Hi", "temperature": "NaN"})),
        refused("temperature", "a number", "\"NaN\"")
    );
    assert_eq!(
        check(json!({"prompt": "Hi", "temperature": "hot"})),
        refused("temperature", "a number", "\"hot\"")
    );
    assert_eq!(
        check(json!({"prompt": "Hi", "n": "2.5"})),
        refused("n", "an integer", "\"2.5\"")
    );
    assert_eq!(
        check(json!({"prompt": "Hi", "style": "epic"})),
        refused("style", "one of short,long", "\"epic\"")
    );
    assert_eq!(
        check(json!({"temperature": 0.5})),
        Err((400, "input.prompt is required".to_string()))
    );
}

#[tokio::test]
async fn the_conversation_example_sends_the_system_prompt_then_the_turns() {
    let mock = MockUpstream::start(Behavior::tokens(&["Eleven"]));
    let dir = Workdir::empty();
    let example = include_str!("../../../examples/openai-chat-conversation/model-compose.yml")
        .replace("https://api.openai.com/v1", &mock.base_url);
    let engine = engine(&dir, &example);
    let turns = json!([
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "And the next one?"}
    ]);
    let text = run_to_text(
        &engine,
        None,
        json!({"messages": turns, "temperature": 0.2}),
    )
    .await
    .unwrap();
    assert_eq!(text, "Eleven");
    let body = &mock.requests()[0].body;
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are a helpful assistant."})
    );
    assert_eq!(
        body["messages"].as_array().unwrap()[1..],
        turns.as_array().unwrap()[..]
    );
    assert_eq!(body["temperature"], json!(0.2));
    let schema =
        serde_json::to_value(&engine.workflow(None, Access::All).unwrap().input_schema).unwrap();
    assert_eq!(schema[1]["name"], "messages");
    assert_eq!(schema[1]["type"], "list");
}

#[tokio::test]
async fn operators_map_and_join_a_stream_as_it_comes() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["Hello", " skip", " world"]).delay(Duration::from_millis(100)),
    );
    let dir = Workdir::empty();
    let with_output = |output: &str| {
        testkit::seed_for(&mock.base_url).replace("    output: ${output as stream/text}\n", output)
    };
    // A map with `where` over the stream: each chunk as it arrives, the filtered ones (the
    // empty role chunk, " skip") left out; `${index}` counts every chunk.
    let mapped = with_output(
        "    output:\n      \"*\":\n        input: ${output}\n        where: { all: [ { input: \"${item}\", operator: neq, value: \" skip\" }, { not: { input: \"${item}\", value: \"\" } } ] }\n      text: \"[${item}#${index}]\"\n",
    );
    let mapping = engine(&dir, &mapped);
    let request = mapping
        .request(None, json!({"prompt": "Hi"}), Access::All)
        .unwrap();
    let RunOutput::Stream(mut stream) = mapping.run(&request, json!({})).await.unwrap() else {
        panic!("a map over a stream is a stream");
    };
    let first = Instant::now();
    assert_eq!(
        support::text(stream.next().await.unwrap().unwrap()),
        r#"{"text": "[Hello#1]"}"#
    );
    assert!(
        mock.finished_at().is_none(),
        "the first chunk came before the upstream ended"
    );
    let rest: Vec<String> = stream.map(|p| support::text(p.unwrap())).collect().await;
    assert_eq!(rest, [r#"{"text": "[ world#3]"}"#]);
    assert!(first.elapsed() >= Duration::from_millis(150));

    // A join of text around the stream: one flattened stream.
    let joined = with_output("    output: { \"+\": [\"<\", \"${output}\", null, \">\"] }\n");
    let joining = engine(&dir, &joined);
    assert_eq!(
        run_to_text(&joining, None, json!({"prompt": "Hi"}))
            .await
            .unwrap(),
        "<Hello skip world>"
    );
}

/// An OpenAI chat component (its lines after `- id: …`), streaming or not, asking for the
/// usage or not, mapped through `output`.
fn chat_component(openai: &str, stream: bool, usage: bool, output: &str) -> String {
    let options = if usage {
        "\n        stream_options:\n          include_usage: true"
    } else {
        ""
    };
    let format = if stream {
        "\n      stream_format: json"
    } else {
        ""
    };
    format!(
        r#"
    type: http-client
    base_url: {openai}
    action:
      path: /chat/completions
      headers:
        Content-Type: application/json
      body:
        model: m
        messages:
          - role: user
            content: ${{input.prompt}}
        stream: {stream}{options}{format}
      output: {output}"#
    )
}

#[tokio::test]
async fn formats_are_read_everywhere_a_terminal_output_included() {
    let providers = testkit::providers::Providers::start();
    let yaml = format!(
        r#"
components:
  - id: chat{chat}
workflow:
  jobs:
    - id: read
      component: chat
      input:
        prompt: "${{input.notes as text;url}} + ${{input.notes as text;url}}"
      output:
        said: ${{output}}
        picture: ${{input.picture as image/png;base64}}
    - id: answer
      component: chat
      depends_on: [read]
      input:
        prompt: ${{jobs.read.output.picture as base64}}
      output:
        said: ${{output}}
        link: ${{input.link as image;url}}
        picture: ${{jobs.read.output.picture}}
        first: ${{jobs.read.output.said}}
        count: ${{input.count as integer;base64}}
"#,
        chat = chat_component(
            &providers.openai(),
            false,
            false,
            "${response.choices[0].message.content}"
        )
    );
    let dir = Workdir::empty();
    let notes = dir.write("notes.txt", "my notes");
    let engine = engine(&dir, &yaml);
    let input = json!({
        "notes": format!("file://{}", notes.display()),
        "picture": "iVBORw==",
        "link": format!("{}/files/1.png", providers.base),
        "count": "MTIz",
    });
    let output = run_to_text(&engine, None, input.clone()).await.unwrap();
    let output: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(
        output,
        json!({
            // A `file:` URL is read (once for both places), a non-terminal job's base64 is
            // bytes, which the next job reads as base64 again.
            "first": "You said: my notes + my notes",
            "said": "You said: iVBORw==",
            "picture": "data:image/png;base64,iVBORw==",
            // A terminal job's output reads its formats too (as the original does): the
            // link's bytes, the number the base64 spells.
            "link": format!(
                "data:image/png;name=1.png;base64,{}",
                compose::media::encode_base64(&testkit::providers::PNG)
            ),
            "count": 123,
        })
    );
    assert_eq!(
        providers
            .take()
            .iter()
            .filter(|seen| seen.uri.contains("/files/"))
            .count(),
        1
    );

    // A body that is not there fails the run with the URL and the status, and nothing is
    // sent upstream.
    let missing = format!("{}/nothing.txt", providers.base);
    let error = run_to_text(
        &engine,
        None,
        json!({"notes": missing, "picture": "", "link": "", "count": ""}),
    )
    .await
    .unwrap_err();
    assert_eq!(error, format!("cannot fetch {missing} (`;url`): HTTP 404"));
    let seen = providers.take();
    assert_eq!(seen.len(), 1, "only the fetch: {seen:?}");
    assert_eq!(seen[0].uri, "/nothing.txt");
}

/// A run whose output is one media value answers its bytes, typed as they came (the original
/// answers the bytes too, as `application/octet-stream`): fetched from a link the upstream
/// returned, or decoded from its base64.
#[tokio::test]
async fn a_single_media_output_is_the_bytes_it_names() {
    let providers = testkit::providers::Providers::start();
    let yaml = format!(
        r#"
component:
  type: http-client
  base_url: {openai}
  action:
    path: /images/generations
    headers:
      Content-Type: application/json
    body:
      model: dall-e-3
      prompt: ${{input.prompt}}
      response_format: ${{input.format}}
workflows:
  - id: link
    job:
      output: ${{output.data[0].url as image;url}}
  - id: data
    job:
      output: ${{output.data[0].b64_json as image/png;base64}}
  - id: list
    job:
      output: ${{output.data[*].url as image[];url}}
"#,
        openai = providers.openai()
    );
    let dir = Workdir::empty();
    let engine = engine(&dir, &yaml);
    for (workflow, format) in [("link", "url"), ("data", "b64_json")] {
        let request = engine
            .request(
                Some(workflow),
                json!({"prompt": "a cat", "format": format}),
                Access::All,
            )
            .unwrap();
        let RunOutput::Bytes(binary) = engine.run(&request, json!({})).await.unwrap() else {
            panic!("{workflow}: bytes expected");
        };
        assert_eq!(binary.content_type, "image/png", "{workflow}");
        let bytes: Vec<bytes::Bytes> = binary.chunks.map(Result::unwrap).collect().await;
        assert_eq!(bytes.concat(), testkit::providers::PNG, "{workflow}");
    }
    // A list of media values stays a value: the bytes of each as a data URI.
    let output = run_to_text(
        &engine,
        Some("list"),
        json!({"prompt": "a cat", "format": "url"}),
    )
    .await
    .unwrap();
    let png = compose::media::encode_base64(&testkit::providers::PNG);
    assert_eq!(
        output,
        json!([format!("data:image/png;name=1.png;base64,{png}")]).to_string()
    );
}

#[tokio::test]
async fn the_tokens_upstreams_report_are_added_up_per_run() {
    let providers = testkit::providers::Providers::start();
    let openai = providers.openai();
    let yaml = format!(
        r#"
components:
  - id: plain{plain}
  - id: streamed{streamed}
  - id: streamed-without{without}
  - id: claude
    type: http-client
    base_url: {anthropic}
    action:
      path: /messages
      headers:
        x-api-key: k
        anthropic-version: "2023-06-01"
        Content-Type: application/json
      body:
        model: claude
        stream: true
        messages:
          - role: user
            content: ${{input.prompt}}
      stream_format: json
      output: ${{response[].delta.text}}
workflows:
  - id: two-jobs
    jobs:
      - id: first
        component: plain
        output: ${{output as text}}
      - id: second
        component: streamed
        depends_on: [first]
        input:
          prompt: ${{jobs.first.output}}
        output: ${{output as text}}
  - id: without
    job:
      component: streamed-without
      output: ${{output as text}}
  - id: claude
    job:
      component: claude
      output: ${{output as text}}
"#,
        plain = chat_component(
            &openai,
            false,
            false,
            "${response.choices[0].message.content}"
        ),
        streamed = chat_component(
            &openai,
            true,
            true,
            "${response[].choices[0].delta.content}"
        ),
        without = chat_component(
            &openai,
            true,
            false,
            "${response[].choices[0].delta.content}"
        ),
        anthropic = providers.anthropic(),
    );
    let dir = Workdir::empty();
    let engine = engine(&dir, &yaml);
    let used = |workflow: &'static str| {
        let engine = &engine;
        async move {
            let request = engine
                .request(Some(workflow), json!({"prompt": "Hi"}), Access::All)
                .unwrap();
            let usage = std::sync::Arc::default();
            let watch = compose::workflow::Watch {
                observer: &|_| {},
                usage: std::sync::Arc::clone(&usage),
                answerer: &compose::workflow::GoOn,
                traced: None,
            };
            let output = engine
                .run_observed(&request, json!({}), watch)
                .await
                .unwrap();
            if let RunOutput::Stream(stream) = output {
                stream.collect::<Vec<_>>().await;
            }
            let count = usage.count();
            (count.prompt_tokens, count.completion_tokens)
        }
    };
    // A JSON `usage` (5 + 4), then a stream asked for its usage (5 + 5 pieces): added up.
    assert_eq!(used("two-jobs").await, (Some(10), Some(9)));
    // Nothing is asked that the YAML did not ask for, and nothing is made up.
    assert_eq!(used("without").await, (None, None));
    let requests = providers.take();
    let streamed: Vec<Value> = requests.iter().map(|r| r.json()).collect();
    assert_eq!(
        streamed[1]["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(streamed[2].get("stream_options"), None);
    // Anthropic: input tokens at `message_start`, the running output count at `message_delta`.
    assert_eq!(used("claude").await, (Some(5), Some(3)));
}
