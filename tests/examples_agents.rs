//! `examples/agent-tools` and `examples/agent-anthropic`, as a user runs them against the
//! provider mocks: an agent whose streamed OpenAI (or Anthropic) model calls a calculator
//! (`bc`), a clock (`date`) and a web search (Tavily) until it answers; through
//! `model-compose run`, the REST API and the web UI's server functions. The mock model calls
//! the tools a prompt's `CALL [...]` line names, then answers `Done: ` and their results.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::examples::*;
use support::Server;
use testkit::providers::Providers;

fn asking(calls: Value) -> Value {
    json!({ "question": format!("CALL {calls}") })
}

#[tokio::test]
async fn the_agent_calls_its_tools_through_every_door() {
    let providers = Providers::start();
    let (dir, config) = example("agent-tools", &providers);

    // `run`: two tools of one turn; the clock's date is this machine's.
    let question = asking(json!([
        {"name": "calculate", "arguments": {"expression": "2^10"}},
        {"name": "current_time", "arguments": {}},
    ]));
    let printed = run_ok(&dir, &["run", "--input", &question.to_string()]);
    let today = chrono_free_today();
    assert!(
        printed.starts_with(&format!("Done: 1024; {today}")),
        "{printed}"
    );
    let asked = providers.take();
    let first = asked[0].json();
    assert_eq!(first["stream"], true, "the model streams");
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["calculate", "current_time", "search_web"]);
    assert_eq!(
        first["tools"][2]["function"]["parameters"]["properties"]["max_results"],
        json!({"type": "integer", "description": "How many results, at most", "default": 3})
    );

    // The REST API: the answer as it comes and each step, as named events.
    let server = Server::start_with(&dir, &config);
    let six_times_seven =
        asking(json!([{"name": "calculate", "arguments": {"expression": "6*7"}}]));
    let body = json!({"input": six_times_seven, "wait_for_completion": true});
    let response = api(&server, body.clone()).await;
    assert_eq!(response.status(), 200);
    let call = r#"{"type": "tool_call", "id": "call_0_0", "name": "calculate", "arguments": {"expression": "6*7"}}"#;
    let result = r#"{"type": "tool_result", "id": "call_0_0", "content": "42"}"#;
    let calls = format!(r#"{{"role": "assistant", "content": [{call}]}}"#);
    let results = format!(r#"{{"role": "tool", "content": [{result}]}}"#);
    let answer = r#"{"role": "assistant", "content": [{"type": "text", "text": "Done: 42"}]}"#;
    assert_eq!(
        response.text().await.unwrap(),
        format!(
            "event: message\ndata: {calls}\n\nevent: tool_call\ndata: {call}\n\n\
             event: tool_result\ndata: {result}\n\nevent: message\ndata: {results}\n\n\
             event: text\ndata: Done:\n\nevent: text\ndata:  42\n\n\
             event: message\ndata: {answer}\n\n"
        )
    );
    // `output_only`: the original's bytes, the messages alone.
    let mut only = body;
    only["output_only"] = json!(true);
    let response = api(&server, only).await;
    assert_eq!(
        response.text().await.unwrap(),
        format!("data: {calls}\n\ndata: {results}\n\ndata: {answer}\n\n")
    );

    // The web UI's chat streams the answer's text: the web search, its default applied, the
    // key sent to Tavily only.
    let question = asking(json!([{"name": "search_web", "arguments": {"query": "rust"}}]));
    let text = ui_text(&server, "ask", question).await;
    assert!(
        text.starts_with(r#"Done: [{"title": "A result", "url": "https://example.com/a""#),
        "{text}"
    );
    let search = providers
        .take()
        .into_iter()
        .find(|seen| seen.uri == "/tavily/search")
        .expect("Tavily was asked");
    assert_eq!(
        search.json(),
        json!({"api_key": TAVILY_KEY, "query": "rust", "max_results": 3})
    );
}

/// Today's date as `date +%Y-%m-%d` prints it here.
fn chrono_free_today() -> String {
    let output = std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn the_same_tools_over_anthropics_tool_use() {
    let providers = Providers::start();
    let (dir, config) = example("agent-anthropic", &providers);
    let question = asking(json!([
        {"name": "calculate", "arguments": {"expression": "2^10"}},
        {"name": "calculate", "arguments": {"expression": "3*3"}},
    ]));
    let printed = run_ok(&dir, &["run", "--input", &question.to_string()]);
    assert_eq!(printed.trim_end(), "Done: 1024; 9");
    let asked: Vec<Value> = providers.take().iter().map(|seen| seen.json()).collect();
    assert_eq!(asked.len(), 2, "two model calls");
    // Claude's own shapes: the system prompt apart, tools with their input schema, the calls
    // as tool_use blocks and their results as tool_result blocks of user turns.
    assert!(asked[0]["system"]
        .as_str()
        .unwrap()
        .starts_with("You answer questions."));
    assert_eq!(asked[0]["tools"][0]["name"], "calculate");
    assert_eq!(
        asked[0]["tools"][0]["input_schema"]["properties"]["expression"]["type"],
        "string"
    );
    assert_eq!(
        asked[1]["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_0_0", "name": "calculate", "input": {"expression": "2^10"}},
            {"type": "tool_use", "id": "toolu_0_1", "name": "calculate", "input": {"expression": "3*3"}}]})
    );
    assert_eq!(
        asked[1]["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0_0", "content": "1024"}]})
    );

    // The REST API.
    let server = Server::start_with(&dir, &config);
    let body = json!({"input": asking(json!([{"name": "current_time", "arguments": {}}])), "wait_for_completion": true});
    let events = api(&server, body).await.text().await.unwrap();
    let today = chrono_free_today();
    assert!(
        events.contains(
            r#"event: tool_call
data: {"type": "tool_call", "id": "toolu_0_0", "name": "current_time", "arguments": {}}"#
        ) && events.contains(&format!("event: text\ndata:  {today}")),
        "{events}"
    );

    // The web UI's chat: the same answer.
    let question = asking(json!([{"name": "calculate", "arguments": {"expression": "6*7"}}]));
    assert_eq!(ui_text(&server, "ask", question).await, "Done: 42");
}
