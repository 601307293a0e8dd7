//! The `mcp-client` component (spec §16) against this implementation's own MCP server: over
//! Streamable HTTP (its headers sent: the server's access key) and over stdio (the server
//! started by the component and stopped with it); `${response}` one entry per content block;
//! a tool's error fails the run with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, run, stderr, stdout, Server};
use testkit::{Workdir, SH_COMPONENT};

/// The MCP server's workflows: a greeting and a picture.
fn server_config(adapters: &str) -> String {
    format!(
        r#"controller:
{adapters}
  webui:
    port: 8081
workflows:
  - id: greet
    name: greet_user
    job:
      component: sh
      input:
        command: printf 'Hello %s, x%s' '${{input.name}}' '${{input.times as integer | 2}}'
  - id: pixel
    output: ${{jobs.j.output as image/png;base64}}
    jobs:
      - id: j
        component: sh
        input: {{command: printf iVBORw0KGgo=}}
{SH_COMPONENT}"#
    )
}

/// A client project: its workflows call the server's tools through `server` (the component's
/// `url:` or `command:` lines).
fn client_config(server: &str) -> String {
    format!(
        r#"workflows:
  - id: hello
    job:
      component: tools
      action: greet
      input: {{name: "${{input.name}}"}}
  - id: picture
    job:
      component: tools
      action: pixel
  - id: missing
    job:
      component: tools
      action: nope
components:
  - id: tools
    type: mcp-client
{server}
    actions:
      - id: greet
        tool: greet_user
        arguments: {{name: "${{input.name}}", times: 3}}
        output: {{first: "${{response[0]}}", all: "${{response}}"}}
      - id: pixel
        tool: pixel
      - id: nope
        tool: nope
"#
    )
}

/// The names of the tools a request to the model offered, as OpenAI functions.
fn offered(asked: &Value) -> Vec<&str> {
    let tools = asked["tools"].as_array().unwrap();
    tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect()
}

/// The agent-tools example, its agent's tools all those of the MCP server at `url`.
fn agent_on(url: &str, providers: &testkit::providers::Providers) -> (Workdir, String) {
    let (dir, config) = support::examples::example("agent-tools", providers);
    let config = config
        .replace(
            "    tools: [calculate, now, search]",
            "    tools: [{mcp: remote}]",
        )
        .replace(
            "components:\n",
            &format!("components:\n  - id: remote\n    type: mcp-client\n    url: {url}\n"),
        );
    (dir, config)
}

fn run_json(dir: &Workdir, args: &[&str]) -> Value {
    let output = run(dir, args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

#[test]
fn tools_of_a_server_over_http_with_its_headers() {
    let served = Workdir::empty();
    let adapters = "  access_keys: [k-123]
  adapters:
    - type: http-server
      port: 8080
    - type: mcp-server
      port: 0
      base_path: /mcp";
    let server = Server::start_with(&served, &server_config(adapters));
    let url = server.mcp.clone().unwrap();

    let client = Workdir::empty();
    let component = format!("    url: {url}\n    headers:\n      Authorization: Bearer k-123");
    client.write("model-compose.yml", &client_config(&component));
    assert_eq!(
        run_json(&client, &["run", "hello", "--input", r#"{"name": "Cli"}"#]),
        json!({"first": "Hello Cli, x3", "all": ["Hello Cli, x3"]})
    );
    assert_eq!(
        run_json(&client, &["run", "picture", "--input", "{}"]),
        json!(["iVBORw0KGgo="])
    );
    let failed = run(&client, &["run", "missing", "--input", "{}"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("Tool 'nope' failed with: Unknown tool: nope"),
        "{}",
        stderr(&failed)
    );

    // Without the header the server refuses the session, and the run says why.
    let keyless = Workdir::empty();
    keyless.write(
        "model-compose.yml",
        &client_config(&format!("    url: {url}")),
    );
    let refused = run(&keyless, &["run", "picture", "--input", "{}"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("cannot open an MCP session"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_server_it_starts_on_stdio() {
    let served = Workdir::empty();
    let adapters = "  adapter:\n    type: mcp-server\n    transport: stdio";
    let config = server_config(adapters).replace("  webui:\n    port: 8081\n", "");
    served.write("model-compose.yml", &config);

    let client = Workdir::empty();
    let component = format!(
        "    command: [{}, -f, {}, up]",
        support::binary().display(),
        served.join("model-compose.yml").display()
    );
    client.write("model-compose.yml", &client_config(&component));
    assert_eq!(
        run_json(&client, &["run", "hello", "--input", r#"{"name": "Io"}"#]),
        json!({"first": "Hello Io, x3", "all": ["Hello Io, x3"]})
    );
}

#[tokio::test]
async fn an_agent_takes_all_tools_of_an_mcp_server() {
    // The server: greet_user and pixel, over HTTP.
    let served = Workdir::empty();
    let adapters = "  adapters:
    - type: http-server
      port: 8080
    - type: mcp-server
      port: 0";
    let server = Server::start_with(&served, &server_config(adapters));
    let url = server.mcp.clone().unwrap();

    // The agent-tools example, its tools those of that server.
    let providers = testkit::providers::Providers::start();
    let (dir, config) = agent_on(&url, &providers);
    dir.write("model-compose.yml", &config);
    let calls = r#"[{"name": "greet_user", "arguments": {"name": "Ann"}}]"#;
    let question = json!({"question": format!("CALL {calls}")}).to_string();
    let output =
        tokio::task::spawn_blocking(move || run(&dir, &["run", "ask", "--input", &question]))
            .await
            .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Done: Hello Ann, x2"),
        "{}",
        stdout(&output)
    );

    // The model saw the server's tools, with their schemas, as functions.
    let asked = providers.take().remove(0).json();
    let names = offered(&asked);
    assert_eq!(names, ["greet_user", "pixel"]);
    assert_eq!(
        asked["tools"][0]["function"]["parameters"]["properties"]["times"],
        json!({"type": "integer", "default": 2})
    );
}

#[tokio::test]
async fn the_agent_mcp_example_uses_the_mcp_tools_examples_tools() {
    let providers = testkit::providers::Providers::start();
    let (dir, config) = support::examples::example("agent-mcp", &providers);
    // The MCP server it starts: this build, on the repository's mcp-tools example.
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let config = config.replace(
        "command: [model-compose, -f, ../mcp-tools/model-compose.yml, -f, ../mcp-tools/stdio.yml, up]",
        &format!(
            "command: [{}, -f, {examples}/mcp-tools/model-compose.yml, -f, {examples}/mcp-tools/stdio.yml, up]",
            support::binary().display()
        ),
    );
    assert!(config.contains(examples), "the example's command moved");
    let server = Server::start_with(&dir, &config);
    let calls = r#"[{"name": "count_words", "arguments": {"text": "one two three"}}]"#;
    let body = json!({"input": {"question": format!("CALL {calls}")},
                      "wait_for_completion": true, "output_only": true});
    let answer = support::post(&server, &body.to_string())
        .await
        .text()
        .await
        .unwrap();
    assert!(answer.contains("Done: 3"), "{answer}");
    let asked = providers.take().remove(0).json();
    let names = offered(&asked);
    assert_eq!(names, ["summarize", "count_words", "current_time"]);
}

#[tokio::test]
async fn a_session_lost_with_its_server_is_opened_again() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let adapters = format!(
        "  adapters:\n    - type: http-server\n      port: 8080\n    - type: mcp-server\n      port: {port}"
    );
    let served = Workdir::empty();
    let mut first = Server::start_with(&served, &server_config(&adapters));

    // A client served by `up`: one session for its calls.
    let client = Workdir::empty();
    let url = format!("http://127.0.0.1:{port}/");
    let project = client_config(&format!("    url: {url}")).replacen(
        "workflows:",
        "controller:\n  adapter:\n    type: http-server\n    port: 8080\n  webui:\n    port: 8081\nworkflows:",
        1,
    );
    let calling = Server::start_with(&client, &project);
    let hello = r#"{"workflow_id": "hello", "input": {"name": "Bo"}, "wait_for_completion": true, "output_only": true}"#;
    let said = support::post(&calling, hello).await.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&said).unwrap()["first"],
        "Hello Bo, x3"
    );

    // The MCP server restarts: its sessions are gone; the next call opens a new one.
    assert!(first.stop().success());
    let _second = Server::start_with(&served, &server_config(&adapters));
    let said = support::post(&calling, hello).await.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&said).unwrap()["first"],
        "Hello Bo, x3",
        "{said}"
    );
}

/// An MCP server whose tool list grows, and says so (`notifications/tools/list_changed`).
#[derive(Clone, Default)]
struct Growing {
    tools: Arc<Mutex<Vec<String>>>,
    peers: Arc<Mutex<Vec<rmcp::Peer<rmcp::RoleServer>>>>,
}

impl rmcp::ServerHandler for Growing {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        let capabilities = rmcp::model::ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        rmcp::model::ServerConfig::new(capabilities)
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<rmcp::RoleServer>) {
        self.peers.lock().unwrap().push(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        let schema = json!({"type": "object", "properties": {}});
        let tools = self.tools.lock().unwrap().clone();
        let tools = tools
            .into_iter()
            .map(|name| {
                let schema = schema.as_object().cloned().unwrap();
                rmcp::model::Tool::new(name, "a tool", Arc::new(schema))
            })
            .collect();
        Ok(rmcp::model::ListToolsResult {
            tools,
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn an_agent_sees_the_tools_an_mcp_server_adds() {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let server = Growing::default();
    server.tools.lock().unwrap().push("alpha".into());
    let served = server.clone();
    let service = StreamableHttpService::new(
        move || Ok(served.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let url = testkit::serve(axum::Router::new().route_service("/mcp", service));

    let providers = testkit::providers::Providers::start();
    let (dir, config) = agent_on(&format!("{url}/mcp"), &providers);
    let calling = Server::start_with(&dir, &config);
    let ask = json!({"input": {"question": "Which tools?"}, "wait_for_completion": true,
                     "output_only": true})
    .to_string();
    support::post(&calling, &ask).await.text().await.unwrap();
    assert_eq!(offered(&providers.take().remove(0).json()), ["alpha"]);

    // The server adds a tool and says so: the next question offers it.
    server.tools.lock().unwrap().push("beta".into());
    let peers = server.peers.lock().unwrap().clone();
    assert!(!peers.is_empty(), "the agent's session was initialized");
    for peer in peers {
        peer.notify_tool_list_changed().await.unwrap();
    }
    eventually(Duration::from_secs(10), "the new tool is offered", || {
        let (calling, ask, providers) = (&calling, &ask, &providers);
        async move {
            support::post(calling, ask).await.text().await.unwrap();
            offered(&providers.take().remove(0).json()) == ["alpha", "beta"]
        }
    })
    .await;
}
