//! The engine used as a library, against the mock upstream: several jobs, other stream
//! shapes, schema inference, and cancellation dropping the upstream request.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use model_compose::compose::config::{self, EnvSources};
use model_compose::compose::{Engine, RunOutput};
use serde_json::{json, Value};
use support::mock_upstream::{Behavior, MockUpstream};
use support::Workdir;

fn engine(dir: &Workdir, yaml: &str) -> Engine {
    let path = dir.write("model-compose.yml", yaml);
    let env = dir.write(
        "test.env",
        &format!("OPENAI_API_KEY={}\n", support::TEST_KEY),
    );
    let sources = EnvSources {
        env_files: vec![env],
        overrides: vec![],
    };
    let config = config::load(&[path], &sources).unwrap();
    Engine::new(&config).unwrap()
}

async fn run_to_text(
    engine: &Engine,
    workflow: Option<&str>,
    input: Value,
) -> Result<String, String> {
    let workflow = engine.workflow(workflow).map_err(|e| e.to_string())?;
    let output = engine
        .run(&workflow, input, json!({"task_id": "t"}))
        .await
        .map_err(|e| e.to_string())?;
    match output {
        RunOutput::Stream(stream) => {
            let pieces: Vec<_> = stream.collect().await;
            pieces
                .into_iter()
                .collect::<Result<String, _>>()
                .map_err(|e| e.to_string())
        }
        RunOutput::Value(value) => Ok(value.to_string()),
    }
}

#[tokio::test]
async fn the_seed_schema_is_inferred() {
    let dir = Workdir::empty();
    let engine = engine(&dir, support::SEED);
    let workflow = engine.workflow(None).unwrap();
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
    let schema = serde_json::to_value(&engine.workflow(None).unwrap().input_schema).unwrap();
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
async fn text_streams_and_json_encoding() {
    let mock = MockUpstream::start(Behavior::tokens(&["a"]));
    let base = support::seed_for(&mock.base_url);
    let dir = Workdir::empty();
    let text_yaml = base
        .replace("stream_format: json", "stream_format: text")
        .replace("${response[].choices[0].delta.content}", "${response[]}");
    let text = run_to_text(&engine(&dir, &text_yaml), None, json!({"prompt": "x"}))
        .await
        .unwrap();
    let raw: String = support::mock_upstream::events(&["a".to_string()]).concat();
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
    let engine = engine(&dir, &support::seed_for(&mock.base_url));
    let workflow = engine.workflow(None).unwrap();
    let RunOutput::Stream(mut stream) = engine
        .run(&workflow, json!({"prompt": "Hi"}), json!({}))
        .await
        .unwrap()
    else {
        panic!("a stream");
    };
    assert_eq!(stream.next().await.unwrap().unwrap(), "a");
    assert_eq!(mock.open_streams(), 1);
    let dropped = Instant::now();
    drop(stream);
    while mock.open_streams() > 0 {
        assert!(
            dropped.elapsed() < Duration::from_millis(200),
            "the upstream is still being read"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        mock.finished_at().is_none(),
        "the upstream never got to finish"
    );
}

#[tokio::test]
async fn unknown_workflows_and_default_resolution() {
    let dir = Workdir::empty();
    let two = support::SEED.replace("workflow:\n  title", "workflows:\n- id: one\n  title").replace(
        "    output: ${output as stream/text}\n",
        "    output: ${output as stream/text}\n- id: two\n  default: true\n  job:\n    output: ${output as stream/text}\n",
    );
    let engine = engine(&dir, &two);
    assert_eq!(engine.workflow(None).unwrap().id, "two");
    assert_eq!(engine.workflow(Some("one")).unwrap().id, "one");
    assert_eq!(
        engine.workflow(Some("nope")).err().unwrap().to_string(),
        "workflow not found: nope"
    );
}
