//! `examples/agent-tools`, as a user runs it against the provider mocks: an agent whose
//! streamed OpenAI model calls a calculator (`bc`), a clock (`date`) and a web search (Tavily)
//! until it answers; through `model-compose run`, the REST API and the web UI's server
//! functions. The mock model calls the tools a prompt's `CALL [...]` line names, then answers
//! `Done: ` and their results.
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

    // The REST API: the web search, its default applied, the key sent to Tavily only.
    let server = Server::start_with(&dir, &config);
    let body = json!({
        "input": asking(json!([{"name": "search_web", "arguments": {"query": "rust"}}])),
        "wait_for_completion": true,
    });
    let (status, state) = api_json(&server, body).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["status"], "completed", "{state}");
    let answer = state["output"].as_str().unwrap();
    assert!(
        answer.starts_with(r#"Done: [{"title": "A result", "url": "https://example.com/a""#),
        "{answer}"
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

    // The web UI's chat: the same answer.
    let question = asking(json!([{"name": "calculate", "arguments": {"expression": "6*7"}}]));
    let output = ui_output(&server, "ask", question).await;
    assert_eq!(output, "Done: 42");
}

/// Today's date as `date +%Y-%m-%d` prints it here.
fn chrono_free_today() -> String {
    let output = std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}
