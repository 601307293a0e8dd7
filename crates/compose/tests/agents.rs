//! The `agent` component (spec §10), the engine as a library, against the OpenAI mock that
//! calls the tools a prompt names (`CALL [...]`): the requests the model gets on each turn,
//! the messages the agent keeps, tool schemas from the tool workflows' inputs, tools of one
//! turn at once, errors the model reads, the iteration limit, tools the caller runs (a pause),
//! and the messages as a stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use futures::StreamExt;
use serde_json::{json, Value};

use compose::workflow::Access;
use compose::{AgentStep, Piece, RunOutput};
use support::{load, refused, run, run_attended, Person};
use testkit::providers::Providers;
use testkit::Workdir;

/// An agent over the OpenAI mock with an echo tool, a tool that fails, a tool the caller runs,
/// and `extra` keys on its action.
fn agent(openai: &str, extra: &str) -> String {
    format!(
        r#"components:
  - id: helper
    type: agent
    instructions: You answer with tools.
    model:
      component: chat
      input: {{messages: '${{messages}}', tools: '${{tools}}'}}
    tools:
      - echo-tool
      - fail-tool
      - name: ext_lookup
        description: Looks a word up on the caller's side
        parameters: {{type: object, properties: {{q: {{type: string}}}}, required: [q]}}
    max_iteration_count: 4
    action:
      prompt: ${{input.question}}
{extra}
  - id: chat
    type: http-client
    base_url: {openai}
    action:
      path: /chat/completions
      headers: {{Content-Type: application/json}}
      body:
        model: gpt-4o
        messages:
          '*': ${{input.messages}}
          role: ${{item.role}}
          content: ${{item.content[0].text}}
          '?':
            - input: ${{item.role}}
              value: assistant
              if_true:
                content: {{'?': {{input: '${{item.content[0].type}}', value: text, if_true: '${{item.content[0].text}}'}}}}
                tool_calls:
                  '*': {{input: '${{item.content}}', where: {{input: '${{item.type}}', value: tool_call}}}}
                  id: ${{item.id}}
                  type: function
                  function: {{name: '${{item.name}}', arguments: '${{item.arguments as text}}'}}
            - input: ${{item.role}}
              value: tool
              if_true: {{content: '${{item.content[0].content}}', tool_call_id: '${{item.content[0].id}}'}}
        tools: {{'*': '${{input.tools}}', type: function, function: '${{item}}'}}
      output:
        role: assistant
        content:
          '+':
            - '?': {{input: '${{response.choices[0].message.content}}', operator: neq, value: null,
                    if_true: [{{type: text, text: '${{response.choices[0].message.content}}'}}]}}
            - '*': ${{response.choices[0].message.tool_calls}}
              type: tool_call
              id: ${{item.id}}
              name: ${{item.function.name}}
              arguments: ${{item.function.arguments as json}}
  - id: echo
    type: shell
    action:
      command: [printf, 'echoed:%s', '${{input.text}}']
      output: ${{result.stdout}}
workflows:
  - id: main
    default: true
    job:
      component: helper
      input: {{question: '${{input.question}}'}}
      output: {{answer: '${{output[-1].content[0].text}}', messages: '${{output}}'}}
  - id: echo-tool
    private: true
    name: echo_tool
    description: Echo the given text back.
    job:
      component: echo
      input: {{text: '${{input.text @(description Text to echo)}}'}}
  - id: fail-tool
    private: true
    name: fail_tool
    description: Always fails.
    job:
      component: {{type: shell, action: {{command: [/nonexistent/binary-xyz]}}}}
"#
    )
}

fn calls(calls: Value) -> Value {
    json!({ "question": format!("CALL {calls}") })
}

/// The pieces of a streaming agent of `yaml` asked to echo "hi", each with its step's name:
/// messages and blocks read as JSON, text as it is.
async fn streamed(dir: &Workdir, yaml: &str) -> Vec<(&'static str, Value)> {
    let engine = load(dir, yaml).unwrap();
    let input = calls(json!([{"name": "echo_tool", "arguments": {"text": "hi"}}]));
    let request = engine.request(None, input, Access::All).unwrap();
    let RunOutput::Stream(pieces) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("a streaming agent is a stream");
    };
    pieces
        .map(|piece| match piece.unwrap() {
            Piece::Step(AgentStep::Text, text) => ("text", Value::String(text)),
            Piece::Step(step, json) => (step.name(), serde_json::from_str(&json).unwrap()),
            Piece::Text(text) => panic!("an agent's stream is its steps, got {text:?}"),
        })
        .collect()
        .await
}

/// A streaming agent's steps as it calls the echo tool: the model's message, the call, its
/// result, the tool's message.
fn echo_steps() -> Vec<(&'static str, Value)> {
    let call = json!({"type": "tool_call", "id": "call_0_0", "name": "echo_tool", "arguments": {"text": "hi"}});
    let result = json!({"type": "tool_result", "id": "call_0_0", "content": "echoed:hi"});
    vec![
        (
            "message",
            json!({"role": "assistant", "content": [call.clone()]}),
        ),
        ("tool_call", call),
        ("tool_result", result.clone()),
        ("message", json!({"role": "tool", "content": [result]})),
    ]
}

fn text(role: &str, text: &str) -> Value {
    json!({"role": role, "content": [{"type": "text", "text": text}]})
}

#[tokio::test]
async fn the_model_is_asked_again_with_the_tool_results_until_it_answers() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let engine = load(&dir, &agent(&providers.openai(), "")).unwrap();
    let input = calls(json!([{"name": "echo_tool", "arguments": {"text": "hello"}}]));
    let out = run(&engine, input).await.unwrap();
    let call = json!({"type": "tool_call", "id": "call_0_0", "name": "echo_tool",
                      "arguments": {"text": "hello"}});
    let question = r#"CALL [{"name":"echo_tool","arguments":{"text":"hello"}}]"#;
    assert_eq!(
        out,
        json!({"answer": "Done: echoed:hello", "messages": [
            text("system", "You answer with tools."),
            text("user", question),
            {"role": "assistant", "content": [call]},
            {"role": "tool", "content": [{"type": "tool_result", "id": "call_0_0", "content": "echoed:hello"}]},
            text("assistant", "Done: echoed:hello"),
        ]})
    );

    let seen = providers.seen();
    assert_eq!(seen.len(), 2, "two model calls");
    let first = seen[0].json();
    assert_eq!(
        first["messages"],
        json!([{"role": "system", "content": "You answer with tools."},
               {"role": "user", "content": question}])
    );
    // Tool schemas from the workflows' inputs, the caller's tool as written.
    assert_eq!(
        first["tools"],
        json!([
            {"type": "function", "function": {"name": "echo_tool", "description": "Echo the given text back.",
              "parameters": {"type": "object", "properties": {"text": {"type": "string", "description": "Text to echo"}},
                             "required": ["text"]}}},
            {"type": "function", "function": {"name": "fail_tool", "description": "Always fails.",
              "parameters": {"type": "object", "properties": {}, "required": []}}},
            {"type": "function", "function": {"name": "ext_lookup", "description": "Looks a word up on the caller's side",
              "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}},
        ])
    );
    // The second request carries the call and its result in OpenAI's spelling.
    assert_eq!(
        seen[1].json()["messages"].as_array().unwrap()[2..],
        [
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_0_0", "type": "function",
              "function": {"name": "echo_tool", "arguments": "{\"text\": \"hello\"}"}}]}),
            json!({"role": "tool", "content": "echoed:hello", "tool_call_id": "call_0_0"}),
        ]
    );
}

#[tokio::test]
async fn unknown_tools_bad_arguments_and_failures_are_results_the_model_reads() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let engine = load(&dir, &agent(&providers.openai(), "")).unwrap();
    let input = calls(json!([
        {"name": "echo_tool", "arguments": {"text": "a"}},
        {"name": "no_such_tool", "arguments": {}},
        {"name": "echo_tool", "arguments": {"bogus": 1}},
        {"name": "fail_tool", "arguments": {}},
    ]));
    let out = run(&engine, input).await.unwrap();
    let results: Vec<Value> = out["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"][0].clone())
        .collect();
    assert_eq!(results.len(), 4, "{out}");
    assert_eq!(
        results[0],
        json!({"type": "tool_result", "id": "call_0_0", "content": "echoed:a"})
    );
    assert_eq!(
        results[1],
        json!({"type": "tool_result", "id": "call_0_1", "content": "Error: Unknown tool 'no_such_tool'", "is_error": true})
    );
    assert_eq!(
        results[2]["content"],
        "Error: tool 'echo_tool' has no parameter 'bogus' (it takes: text)"
    );
    assert_eq!(results[2]["is_error"], true);
    assert_eq!(results[3]["is_error"], true);
    assert!(
        results[3]["content"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/binary-xyz"),
        "{}",
        results[3]
    );
    assert!(out["answer"]
        .as_str()
        .unwrap()
        .starts_with("Done: echoed:a; Error: Unknown tool"));
}

#[tokio::test]
async fn a_model_that_never_stops_calling_tools_stops_at_the_limit() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let engine = load(&dir, &agent(&providers.openai(), "")).unwrap();
    let input =
        json!({"question": r#"ALWAYS [{"name": "echo_tool", "arguments": {"text": "again"}}]"#});
    let out = run(&engine, input).await.unwrap();
    assert_eq!(providers.seen().len(), 4, "max_iteration_count model calls");
    let messages = out["messages"].as_array().unwrap();
    // system, user, then four turns of a call and its result.
    assert_eq!(messages.len(), 10);
    assert_eq!(messages[9]["role"], "tool");
    assert_eq!(out["answer"], Value::Null);
}

#[tokio::test]
async fn a_tool_the_caller_runs_pauses_the_run_for_its_result() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let engine = load(&dir, &agent(&providers.openai(), "")).unwrap();
    let input = calls(json!([{"name": "ext_lookup", "arguments": {"q": "abc"}}]));
    let person = Person::answering(|_| json!({"call_0_0": {"hits": [1, 2]}}));
    let out = run_attended(&engine, input.clone(), &person).await.unwrap();
    assert_eq!(out["answer"], "Done: {\"hits\": [1, 2]}");
    let shown = person.shown.lock().clone();
    assert_eq!(shown.len(), 1);
    let point = &shown[0][0];
    assert_eq!(point.job_id, "__job__");
    assert_eq!(
        point.message.as_deref(),
        Some("Agent is waiting for tool results.")
    );
    assert_eq!(
        point.metadata,
        Some(json!({"kind": "tool_calls", "tool_calls": [
            {"id": "call_0_0", "name": "ext_lookup", "arguments": {"q": "abc"}}]}))
    );

    // No result for the call: the model is told so.
    let person = Person::answering(|_| json!({}));
    let out = run_attended(&engine, input, &person).await.unwrap();
    assert_eq!(
        out["answer"],
        "Done: Error: no result provided for tool_call 'call_0_0'"
    );
}

#[tokio::test]
async fn streaming_gives_each_message_as_it_is_added() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let yaml = agent(&providers.openai(), "      streaming: true").replace(
        "      output: {answer: '${output[-1].content[0].text}', messages: '${output}'}\n",
        "",
    );
    let pieces = streamed(&dir, &yaml).await;
    let mut expected = echo_steps();
    expected.extend([
        // A whole answer's text, whole.
        ("text", json!("Done: echoed:hi")),
        ("message", text("assistant", "Done: echoed:hi")),
    ]);
    assert_eq!(pieces, expected);
}

#[test]
fn a_malformed_agent_is_refused_with_its_line_and_column() {
    let dir = Workdir::empty();
    let base = agent("http://127.0.0.1:9", "");
    let err = refused(
        &dir,
        &base.replace(
            "      - fail-tool\n",
            "      - fail-tool\n      - nowhere\n",
        ),
    );
    assert!(err.contains("tool 'nowhere' is no workflow"), "{err}");
    assert!(err.contains(":11:9:"), "{err}");
    let err = refused(
        &dir,
        &base.replace("component: chat\n", "component: nobody\n"),
    );
    assert!(err.contains("model component 'nobody' not found"), "{err}");
    let err = refused(
        &dir,
        &base.replace(
            "      - fail-tool\n",
            "      - fail-tool\n      - echo-tool\n",
        ),
    );
    assert!(err.contains("two tools are named 'echo_tool'"), "{err}");
}

#[tokio::test]
async fn the_workflow_tools_of_one_turn_run_at_once() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let marks = dir.join("marks.txt");
    let mark = format!(
        "  - id: mark-tool\n    private: true\n    name: mark\n    job:\n      component: \
         {{type: shell, action: {{command: [sh, -c, 'echo start >> {0}; sleep 1; echo end >> {0}']}}}}\n",
        marks.display()
    );
    let yaml = agent(&providers.openai(), "").replace(
        "      - echo-tool\n",
        "      - echo-tool\n      - mark-tool\n",
    ) + &mark;
    let engine = load(&dir, &yaml).unwrap();
    let input =
        calls(json!([{"name": "mark", "arguments": {}}, {"name": "mark", "arguments": {}}]));
    run(&engine, input).await.unwrap();
    // Both started before either ended.
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        "start\nstart\nend\nend\n"
    );
}

/// [`agent`] whose model streams (OpenAI's SSE), its events mapped to canonical deltas.
fn streaming_agent(openai: &str) -> String {
    let whole = agent(openai, "      streaming: true");
    let at = whole
        .find("      output:\n        role: assistant")
        .unwrap();
    let end = whole.find("  - id: echo\n").unwrap();
    let deltas = r#"      stream_format: json
      output:
        '+':
          - '?': {input: '${response[].choices[0].delta.content}', operator: neq, value: null,
                  if_true: [{type: text_delta, text: '${response[].choices[0].delta.content}'}]}
          - '*': ${response[].choices[0].delta.tool_calls}
            type: tool_call_delta
            index: ${item.index}
            id: ${item.id}
            name: ${item.function.name}
            arguments: ${item.function.arguments}
"#;
    let streamed = format!("{}{deltas}{}", &whole[..at], &whole[end..]);
    streamed
        .replace(
            "        model: gpt-4o\n",
            "        model: gpt-4o\n        stream: true\n",
        )
        .replace(
            "      output: {answer: '${output[-1].content[0].text}', messages: '${output}'}\n",
            "",
        )
}

#[tokio::test]
async fn a_streaming_model_streams_the_answer_token_by_token() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let pieces = streamed(&dir, &streaming_agent(&providers.openai())).await;
    // The call, its arguments' text joined from the stream and read as JSON.
    let mut expected = echo_steps();
    expected.extend([
        // The answer's text as it comes.
        ("text", json!("Done:")),
        ("text", json!(" echoed:hi")),
        ("message", text("assistant", "Done: echoed:hi")),
    ]);
    assert_eq!(pieces, expected);
    let asked = providers.seen();
    assert_eq!(asked[0].json()["stream"], true);
}

#[tokio::test]
async fn a_streamed_answer_that_is_no_delta_ends_the_run_with_why() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let yaml = streaming_agent(&providers.openai()).replace("type: text_delta", "type: words");
    let engine = load(&dir, &yaml).unwrap();
    let input = calls(json!([{"name": "echo_tool", "arguments": {"text": "hi"}}]));
    let request = engine.request(None, input, Access::All).unwrap();
    let RunOutput::Stream(pieces) = engine.run(&request, json!({})).await.unwrap() else {
        panic!("a streaming agent is a stream");
    };
    let pieces: Vec<_> = pieces.collect().await;
    let (last, before) = pieces.split_last().unwrap();
    assert!(
        last.as_ref()
            .is_err_and(|err| err.to_string().contains("canonical deltas")),
        "the run ends with why: {pieces:?}"
    );
    // No text went out: the first text the model sent was the one refused.
    assert!(
        !before
            .iter()
            .any(|piece| matches!(piece, Ok(Piece::Step(AgentStep::Text, _)))),
        "{pieces:?}"
    );
}

#[tokio::test]
async fn each_message_added_is_told_as_a_step_of_the_agents_job() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let engine = load(&dir, &agent(&providers.openai(), "")).unwrap();
    let input = calls(json!([{"name": "echo_tool", "arguments": {"text": "hi"}}]));
    let request = engine.request(None, input, Access::All).unwrap();
    let seen = parking_lot::Mutex::new(Vec::new());
    let observer = |news: &compose::JobNews<'_>| {
        seen.lock().push(news.event(news.value.cloned()));
    };
    let watch = compose::workflow::Watch {
        observer: &observer,
        usage: std::sync::Arc::default(),
        answerer: &compose::workflow::GoOn,
        traced: None,
    };
    let output = engine.run_observed(&request, json!({}), watch).await;
    assert!(matches!(output, Ok(RunOutput::Value(_))));
    let stages: Vec<(&str, Value)> = seen
        .lock()
        .iter()
        .filter(|e| e.job_id == "__job__")
        .map(|e| {
            let role = e.value.as_ref().map(|v| v["role"].clone());
            (e.event.as_str(), role.unwrap_or_default())
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("started", Value::Null),
            ("message", json!("assistant")),
            ("message", json!("tool")),
            ("message", json!("assistant")),
            ("completed", Value::Null),
        ]
    );
}

#[tokio::test]
async fn earlier_messages_come_before_the_prompt_tool_results_included() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    let yaml = agent(&providers.openai(), "      messages: ${input.history}").replace(
        "      input: {question: '${input.question}'}",
        "      input: {question: '${input.question}', history: '${input.history as list}'}",
    );
    let engine = load(&dir, &yaml).unwrap();
    let earlier = json!([
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": [{"type": "tool_call", "id": "c1", "name": "echo_tool", "arguments": {"text": "4"}}]},
        {"role": "tool", "content": [{"type": "tool_result", "id": "c1", "content": "echoed:4"}]},
        {"role": "assistant", "content": "It is 4."},
    ]);
    let out = run(
        &engine,
        json!({"question": "And doubled?", "history": earlier}),
    )
    .await
    .unwrap();
    assert_eq!(out["answer"], "You said: And doubled?");
    let sent = providers.seen()[0].json();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You answer with tools."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
              "function": {"name": "echo_tool", "arguments": "{\"text\": \"4\"}"}}]},
            {"role": "tool", "content": "echoed:4", "tool_call_id": "c1"},
            {"role": "assistant", "content": "It is 4.", "tool_calls": []},
            {"role": "user", "content": "And doubled?"},
        ])
    );
    // The messages kept start with the earlier ones, in the agent's form.
    assert_eq!(
        out["messages"][4],
        json!({"role": "assistant", "content": [{"type": "text", "text": "It is 4."}]})
    );

    let err = run(
        &engine,
        json!({"question": "x", "history": ["not a message"]}),
    )
    .await
    .unwrap_err();
    assert!(err.contains("a list of {role, content} mappings"), "{err}");
}
