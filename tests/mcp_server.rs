//! The workflows as MCP tools (spec §15, D29), driven by the official Rust SDK's client
//! (rmcp): over Streamable HTTP on an `mcp-server` adapter's port and beside the REST API
//! (`controller.mcp`, with its access keys and origins), and over stdio with `model-compose
//! up` launched by the client. Tools have real schemas; results are content blocks; an
//! interrupted run is resumed with `resume_workflow`; a streamed output arrives as progress
//! notifications; a client's cancel cancels the run; runs are tasks like any other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use support::{eventually, get_json, Server};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::{Workdir, SH_COMPONENT};

/// Workflows of every kind a tool can be: text with typed, described inputs, an image, a
/// private one, one that waits for a person.
fn tools_config(adapters: &str) -> String {
    format!(
        r#"controller:
  name: test-mcp
{adapters}
  webui:
    port: 8081
workflows:
  - id: greet
    name: greet_user
    title: Greet
    description: Greets a user by name.
    job:
      component: sh
      input:
        command: printf 'Hello %s, x%s' '${{input.name @(description The user's name)}}' '${{input.times as integer | 2 @(description Repeat count)}}'
  - id: pixel
    output: ${{jobs.j.output as image/png;base64}}
    jobs:
      - id: j
        component: sh
        input: {{command: printf iVBORw0KGgo=}}
  - id: hidden
    private: true
    job:
      component: sh
      input: {{command: echo hi}}
  - id: approve
    description: Asks before it runs.
    job:
      component: sh
      input: {{command: "printf 'ran %s' '${{input.what}}'"}}
      interrupt: {{before: {{message: Run it?}}}}
{SH_COMPONENT}"#
    )
}

/// An HTTP-server adapter (the REST API, to look at the tasks) and an MCP one on its own port.
const BOTH_ADAPTERS: &str = "  adapters:
    - type: http-server
      port: 8080
      base_path: /api
    - type: mcp-server
      port: 0
      base_path: /mcp";

/// The same workflows served on stdio only (no web UI, no HTTP).
fn stdio_config() -> String {
    let adapters = "  adapter:\n    type: mcp-server\n    transport: stdio";
    tools_config(adapters).replace("  webui:\n    port: 8081\n", "")
}

/// A client of the SDK that keeps the progress notifications it gets.
#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let message = params.message.unwrap_or_default();
        self.progress.lock().unwrap().push(message);
    }
}

async fn connect(url: &str, key: Option<&str>) -> RunningService<RoleClient, Client> {
    try_connect(url, key).await.unwrap()
}

async fn try_connect(
    url: &str,
    key: Option<&str>,
) -> Result<RunningService<RoleClient, Client>, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    compose::upstream::ensure_crypto_provider();
    let transport = StreamableHttpClientTransport::from_config(config);
    Client::default()
        .serve(transport)
        .await
        .map_err(|err| err.to_string())
}

async fn call(
    client: &RunningService<RoleClient, Client>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let params = CallToolRequestParams::new(tool.to_string())
        .with_arguments(arguments.as_object().cloned().unwrap());
    client.call_tool(params).await.unwrap()
}

/// A result as JSON, the way a client reads it.
fn json_of(result: &CallToolResult) -> Value {
    serde_json::to_value(result).unwrap()
}

fn text_of(result: &CallToolResult) -> String {
    json_of(result)["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn workflows_are_tools_with_real_schemas_and_content() {
    let dir = Workdir::empty();
    let server = Server::start_with(&dir, &tools_config(BOTH_ADAPTERS));
    let url = server.mcp.clone().expect("up reports where MCP is served");
    assert!(url.ends_with("/mcp"), "{url}");
    let client = connect(&url, None).await;

    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "test-mcp");
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.unwrap();
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["greet_user", "pixel", "approve", "resume_workflow"]);
    assert_eq!(
        tools[0],
        json!({"name": "greet_user", "title": "Greet", "description": "Greets a user by name.",
               "inputSchema": {"type": "object", "properties": {
                   "name": {"type": "string", "description": "The user's name"},
                   "times": {"type": "integer", "description": "Repeat count", "default": 2}},
                 "required": ["name"]}})
    );
    assert!(tools[2]["description"]
        .as_str()
        .unwrap()
        .ends_with("can be passed to `resume_workflow` after collecting the required answer."));

    let greeted = call(&client, "greet_user", json!({"name": "Ann"})).await;
    assert_eq!(
        json_of(&greeted),
        json!({"content": [{"type": "text", "text": "Hello Ann, x2"}], "isError": false})
    );
    let pixel = call(&client, "pixel", json!({})).await;
    assert_eq!(
        json_of(&pixel)["content"],
        json!([{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}])
    );

    // What a model can act on: unknown and private tools, wrong and unknown arguments.
    for (tool, arguments, said) in [
        ("hidden", json!({}), "Unknown tool: hidden"),
        ("nope", json!({}), "Unknown tool: nope"),
        (
            "greet_user",
            json!({"name": "Ann", "times": "abc"}),
            "input.times must be an integer, got \"abc\"",
        ),
        (
            "greet_user",
            json!({"name": "Ann", "bogus": 1}),
            "tool 'greet_user' has no parameter 'bogus' (it takes: name, times)",
        ),
    ] {
        let result = call(&client, tool, arguments).await;
        assert_eq!(result.is_error, Some(true), "{tool}");
        assert_eq!(text_of(&result), said);
    }

    // A run that waits for a person answers its status; resume_workflow goes on with it
    // (the answer as the original's clients send it, a JSON text).
    let paused = call(&client, "approve", json!({"what": "x"})).await;
    let status: Value = serde_json::from_str(&text_of(&paused)).unwrap();
    assert_eq!(status["status"], "interrupted");
    assert_eq!(status["interrupt"][0]["message"], "Run it?");
    let task = status["task_id"].as_str().unwrap();
    let point = status["interrupt"][0]["id"].as_str().unwrap();
    let answer = json!({point: null}).to_string();
    let resumed = call(
        &client,
        "resume_workflow",
        json!({"task_id": task, "answer": answer}),
    )
    .await;
    assert_eq!(text_of(&resumed), "ran x");
    let again = call(
        &client,
        "resume_workflow",
        json!({"task_id": task, "answer": {}}),
    )
    .await;
    assert_eq!(again.is_error, Some(true));
    assert!(text_of(&again).contains("is not in interrupted state"));

    // Runs over MCP are tasks like any other.
    let state = get_json(format!("{}/tasks/{task}", server.api)).await;
    assert_eq!(state["status"], "completed");
    assert_eq!(state["workflow_id"], "approve");
    client.cancel().await.unwrap();
}

/// The seed, with MCP served beside its REST API.
fn seed_with_mcp(base_url: &str, extra: &str) -> String {
    testkit::seed_for(base_url).replace(
        "controller:\n",
        &format!("controller:\n  mcp: true\n{extra}"),
    )
}

/// Calls the seed's workflow with `prompt`, with a progress token (the SDK gives one), without
/// waiting for the answer.
async fn ask_seed(
    client: &RunningService<RoleClient, Client>,
    prompt: &str,
) -> rmcp::service::RequestHandle<RoleClient> {
    let params = CallToolRequestParams::new("__workflow__")
        .with_arguments(json!({"prompt": prompt}).as_object().cloned().unwrap());
    let request = ClientRequest::CallToolRequest(Request::new(params));
    client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_streamed_answer_comes_as_progress_and_a_cancel_cancels_the_run() {
    let tokens = ["Hel", "lo", " there"];
    let upstream = MockUpstream::start(Behavior::tokens(&tokens).delay(Duration::from_millis(20)));
    let dir = Workdir::seed(&upstream.base_url);
    let server = Server::start_with(&dir, &seed_with_mcp(&upstream.base_url, ""));
    let url = server.mcp.clone().unwrap();
    assert_eq!(url, format!("{}/mcp", server.api.trim_end_matches("/api")));
    let client = connect(&url, None).await;

    let handle = ask_seed(&client, "Hi").await;
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result");
    };
    assert_eq!(text_of(&result), "Hello there");
    let progress = client.service().progress.lock().unwrap().clone();
    assert_eq!(progress, tokens);

    // A client that cancels its call cancels the run.
    upstream.set(Behavior::endless("tick").delay(Duration::from_millis(20)));
    let handle = ask_seed(&client, "Go on").await;
    let progress = Arc::clone(&client.service().progress);
    eventually(Duration::from_secs(10), "the endless run streams", || {
        let progress = Arc::clone(&progress);
        async move { progress.lock().unwrap().len() > tokens.len() }
    })
    .await;
    handle.cancel(Some("enough".into())).await.unwrap();
    let runs = format!("{}/runs", server.api);
    eventually(Duration::from_secs(10), "the run is cancelled", || {
        let runs = runs.clone();
        async move {
            let listed = get_json(runs).await;
            listed[0]["status"] == "cancelled"
        }
    })
    .await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn beside_the_api_the_access_keys_and_origins_apply() {
    let upstream = MockUpstream::start(Behavior::tokens(&["ok"]));
    let dir = Workdir::seed(&upstream.base_url);
    let config = seed_with_mcp(&upstream.base_url, "  access_keys: [mcp-key-1]\n");
    let server = Server::start_with(&dir, &config);
    let url = server.mcp.clone().unwrap();

    let refused = try_connect(&url, None).await;
    assert!(refused.is_err(), "no key, no session");
    let wrong = try_connect(&url, Some("wrong")).await;
    assert!(wrong.is_err(), "a wrong key, no session");
    let client = connect(&url, Some("mcp-key-1")).await;
    let result = call(&client, "__workflow__", json!({"prompt": "Hi"})).await;
    assert_eq!(text_of(&result), "ok");
    client.cancel().await.unwrap();

    // Another site's page is refused whatever it asks, reads included (MCP's Origin rule).
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "page", "version": "1"}}});
    for (origin, status) in [
        ("https://evil.example", 403),
        ("http://localhost:5173", 200),
    ] {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth("mcp-key-1")
            .header("origin", origin)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(initialize.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{origin}");
    }
    let read = reqwest::Client::new()
        .get(&url)
        .bearer_auth("mcp-key-1")
        .header("origin", "https://evil.example")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 403);
}

#[tokio::test]
async fn a_client_launches_up_on_stdio() {
    let dir = Workdir::empty();
    dir.write("model-compose.yml", &stdio_config());
    let mut up = tokio::process::Command::new(support::binary());
    up.arg("up")
        .current_dir(&dir.path)
        .env_clear()
        .stderr(std::process::Stdio::null());
    let child = TokioChildProcess::new(up).unwrap();
    let client = Client::default().serve(child).await.unwrap();
    assert_eq!(
        client
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .unwrap()
            .name,
        "test-mcp"
    );
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 4);
    let greeted = call(&client, "greet_user", json!({"name": "Cli", "times": 3})).await;
    assert_eq!(text_of(&greeted), "Hello Cli, x3");
    // Closing its end stops the server.
    client.cancel().await.unwrap();
}

/// The official Python client (PyPI's `mcp`, installed by `scripts/setup.sh`) running
/// `tests/clients/mcp_client.py` with `args`: what it printed.
fn python_client(args: &[&str]) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tools = std::env::var("TOOLS_DIR").map_or_else(|_| root.join(".tools"), Into::into);
    let python = tools.join("python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/setup.sh` (it installs the Python MCP client)",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(root.join("tests/clients/mcp_client.py"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

/// What the Python client saw, the same over either transport.
fn assert_python_saw(said: &Value) {
    assert_eq!(said["server"], "test-mcp");
    let names: Vec<&str> = said["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greet_user", "pixel", "approve", "resume_workflow"]);
    assert_eq!(
        said["tools"][0]["inputSchema"]["properties"]["times"],
        json!({"type": "integer", "description": "Repeat count", "default": 2})
    );
    assert_eq!(
        said["greet"],
        json!({"content": [{"type": "text", "text": "Hello Ann, x2"}], "isError": false})
    );
    assert_eq!(
        said["pixel"]["content"],
        json!([{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}])
    );
    let paused: Value =
        serde_json::from_str(said["paused"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(paused["status"], "interrupted");
    assert_eq!(
        said["resumed"],
        json!({"content": [{"type": "text", "text": "ran x"}], "isError": false})
    );
}

#[tokio::test]
async fn the_official_python_client_over_http_and_stdio() {
    let dir = Workdir::empty();
    let server = Server::start_with(&dir, &tools_config(BOTH_ADAPTERS));
    let url = server.mcp.clone().unwrap();
    let said = tokio::task::spawn_blocking(move || python_client(&["http", &url]))
        .await
        .unwrap();
    assert_python_saw(&said);

    let stdio = Workdir::empty();
    stdio.write("model-compose.yml", &stdio_config());
    let bin = support::binary().display().to_string();
    let at = stdio.path.display().to_string();
    let said = tokio::task::spawn_blocking(move || python_client(&["stdio", &bin, &at]))
        .await
        .unwrap();
    assert_python_saw(&said);
}

#[tokio::test]
async fn the_mcp_tools_example_over_http_and_launched_on_stdio() {
    let providers = testkit::providers::Providers::start();
    let (dir, config) = support::examples::example("mcp-tools", &providers);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mcp-tools/stdio.yml");
    dir.write("stdio.yml", &std::fs::read_to_string(example).unwrap());

    let server = Server::start_with(&dir, &config);
    let client = connect(server.mcp.as_deref().unwrap(), None).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["summarize", "count_words", "current_time"]);
    let counted = call(&client, "count_words", json!({"text": "one two  three"})).await;
    assert_eq!(text_of(&counted), "3");
    let summary = call(&client, "summarize", json!({"text": "A long story."})).await;
    assert_eq!(text_of(&summary), "You said: A long story.");
    let asked = providers.take().pop().unwrap().json();
    assert_eq!(
        asked["messages"][0]["content"],
        "Summarize the user's text in at most 3 sentences."
    );
    client.cancel().await.unwrap();

    // As Claude Desktop launches it: the two files, from the project's directory.
    let mut up = tokio::process::Command::new(support::binary());
    up.args(["-f", "model-compose.yml", "-f", "stdio.yml", "up"])
        .current_dir(&dir.path)
        .env_clear()
        .stderr(std::process::Stdio::null());
    let client = Client::default()
        .serve(TokioChildProcess::new(up).unwrap())
        .await
        .unwrap();
    let counted = call(
        &client,
        "count_words",
        json!({"text": "four words right here"}),
    )
    .await;
    assert_eq!(text_of(&counted), "4");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_mcp_adapter_answers_only_the_hosts_it_allows() {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}})
    .to_string();
    let status = |url: String, host: String| {
        let initialize = initialize.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("host", host)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .body(initialize)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // By default, as every server here on a loopback address (D16): this machine's names only.
    let dir = Workdir::empty();
    let server = Server::start_with(&dir, &tools_config(BOTH_ADAPTERS));
    let url = server.mcp.clone().unwrap();
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(status(url.clone(), format!("localhost:{port}")).await, 200);
    assert_eq!(
        status(url.clone(), format!("evil.example:{port}")).await,
        403
    );

    // The adapter's own list (globs), as the original's allowed_hosts.
    let listed = Workdir::empty();
    let adapters = format!("{BOTH_ADAPTERS}\n      allowed_hosts: ['tools.internal:*']");
    let server = Server::start_with(&listed, &tools_config(&adapters));
    let url = server.mcp.clone().unwrap();
    assert_eq!(
        status(url.clone(), format!("tools.internal:{port}")).await,
        200
    );
    assert_eq!(status(url.clone(), format!("localhost:{port}")).await, 421);
}

#[tokio::test]
async fn a_resumed_call_reports_the_answer_that_comes_after_the_pause() {
    let tokens = ["Hel", "lo"];
    let upstream = MockUpstream::start(Behavior::tokens(&tokens));
    let dir = Workdir::seed(&upstream.base_url);
    // The seed, a person looking at the answer before it is final.
    let config = seed_with_mcp(&upstream.base_url, "").replace(
        "    output: ${output as stream/text}\n",
        "    output: ${output as stream/text}\n    interrupt: {after: {message: Keep it?}}\n",
    );
    assert!(config.contains("Keep it?"), "the seed's job moved");
    let server = Server::start_with(&dir, &config);
    let client = connect(&server.mcp.clone().unwrap(), None).await;

    let ServerResult::CallToolResult(paused) = ask_seed(&client, "Hi")
        .await
        .await_response()
        .await
        .unwrap()
    else {
        panic!("not a tool result");
    };
    let status: Value = serde_json::from_str(&text_of(&paused)).unwrap();
    assert_eq!(status["status"], "interrupted", "{status}");
    // The person sees the answer before it goes on: nothing of it is told yet.
    assert!(client.service().progress.lock().unwrap().is_empty());

    let point = status["interrupt"][0]["id"].as_str().unwrap();
    let answer = json!({"task_id": status["task_id"], "answer": {point: null}});
    let params = CallToolRequestParams::new("resume_workflow")
        .with_arguments(answer.as_object().cloned().unwrap());
    let request = ClientRequest::CallToolRequest(Request::new(params));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    let ServerResult::CallToolResult(resumed) = handle.await_response().await.unwrap() else {
        panic!("not a tool result");
    };
    assert_eq!(text_of(&resumed), "Hello", "{resumed:?}");
    // The resumed call tells what comes after the pause (from the pieces it had, none here).
    assert_eq!(*client.service().progress.lock().unwrap(), ["Hello"]);
    client.cancel().await.unwrap();
}
