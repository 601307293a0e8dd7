//! The `mcp-client` component (spec §16): calls a tool of an MCP server, through the official
//! SDK's client. One session per component, opened at the first call and kept; a call that
//! fails on the session's transport reopens it once (a server restarted, a stdio server that
//! died). Over Streamable HTTP the configured `headers` are sent (not OD28); over stdio
//! (beyond the original) the component starts the server's `command` and stops it with itself.
//! `${response}` is one entry per content block: text, the base64 of an image or audio, a
//! resource's text or blob, a link's URI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents, Tool};
use rmcp::service::{MaybeSendFuture, NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Map, Value};

use super::Output;
use crate::binding::{Binding, BindingError, Expr, Owner, Scope};
use crate::config;
use crate::error::RunError;
use crate::fetch::Fetcher;

/// What a call gets when the action names no tool (the original's default).
const DEFAULT_TOOL: &str = "__workflow__";

/// The variables a stdio server gets from this process besides its `env` (as a shell does).
const PASSED_ON: [&str; 3] = ["PATH", "HOME", "LANG"];

/// An `mcp-client` component, ready to call.
pub struct McpClient {
    id: String,
    server: Server,
    session: tokio::sync::Mutex<Option<RunningService<RoleClient, Listener>>>,
    /// The server's tools as last listed, until it says they changed (an agent's tools).
    tools: parking_lot::Mutex<Option<Arc<Vec<Tool>>>>,
    /// Set when the server says its tool list changed.
    stale: Arc<AtomicBool>,
    pub actions: Vec<Arc<McpAction>>,
}

/// What the client hears from the server besides answers: that its tools changed.
#[derive(Clone)]
struct Listener {
    stale: Arc<AtomicBool>,
}

impl ClientHandler for Listener {
    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + MaybeSendFuture + '_ {
        self.stale.store(true, Ordering::SeqCst);
        std::future::ready(())
    }
}

/// Where the MCP server is.
enum Server {
    Http {
        url: String,
        bearer: Option<String>,
        headers: HashMap<http::HeaderName, http::HeaderValue>,
    },
    Stdio {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        dir: PathBuf,
    },
}

/// An action: the tool, its arguments, the output mapped from `${response}`.
pub struct McpAction {
    tool: Option<Binding>,
    arguments: Option<Binding>,
    output: Option<Binding>,
}

impl McpAction {
    fn compile(action: &config::Action) -> Result<Self, BindingError> {
        let compile = |value: &Option<Value>| value.as_ref().map(Binding::compile).transpose();
        Ok(Self {
            tool: compile(&action.tool)?,
            arguments: compile(&action.arguments)?,
            output: compile(&action.output)?,
        })
    }

    /// The templates that read the job's input.
    pub fn exprs(&self) -> Vec<&Expr> {
        [&self.tool, &self.arguments]
            .into_iter()
            .flatten()
            .flat_map(Binding::exprs)
            .collect()
    }

    pub fn output(&self) -> Option<&Binding> {
        self.output.as_ref()
    }
}

impl McpClient {
    pub fn new(config: &config::McpClient, dir: &Path) -> Result<Self, String> {
        let server = match (&config.url, &config.command) {
            (Some(url), _) => {
                let mut bearer = None;
                let mut headers = HashMap::new();
                for (name, value) in &config.headers {
                    if name.eq_ignore_ascii_case("authorization") {
                        if let Some(token) = value.strip_prefix("Bearer ") {
                            bearer = Some(token.to_string());
                            continue;
                        }
                    }
                    let name = http::HeaderName::try_from(name.as_str())
                        .map_err(|err| format!("header '{name}': {err}"))?;
                    let value = http::HeaderValue::try_from(value.as_str())
                        .map_err(|err| format!("header '{name}': {err}"))?;
                    headers.insert(name, value);
                }
                Server::Http {
                    url: url.clone(),
                    bearer,
                    headers,
                }
            }
            (None, Some(argv)) => Server::Stdio {
                argv: argv.clone(),
                env: config
                    .env
                    .iter()
                    .map(|(key, value)| {
                        let text = match value {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        };
                        (key.clone(), text)
                    })
                    .collect(),
                dir: dir.to_path_buf(),
            },
            (None, None) => return Err("an mcp-client needs a 'url' or a 'command'".into()),
        };
        Ok(Self {
            id: config.id.clone(),
            server,
            session: tokio::sync::Mutex::new(None),
            tools: parking_lot::Mutex::new(None),
            stale: Arc::new(AtomicBool::new(false)),
            actions: config
                .actions
                .iter()
                .map(|a| McpAction::compile(a).map(Arc::new))
                .collect::<Result<_, _>>()
                .map_err(|err| err.to_string())?,
        })
    }

    /// Calls the action's tool with this job input, and maps `${response}` through `output`.
    ///
    /// Boxed where it is made: the SDK's futures are large, and a job's future that held one
    /// inline would carry its room at every level of nested workflows (a stack overflow 16
    /// calls deep in a debug build).
    pub fn call<'a>(
        &'a self,
        action: &'a McpAction,
        (input, owner): (Value, Owner<'a>),
        context: &'a Value,
        fetcher: &'a Fetcher,
    ) -> futures::future::BoxFuture<'a, Result<Output, RunError>> {
        Box::pin(self.call_unboxed(action, (input, owner), context, fetcher))
    }

    async fn call_unboxed(
        &self,
        action: &McpAction,
        (input, owner): (Value, Owner<'_>),
        context: &Value,
        fetcher: &Fetcher,
    ) -> Result<Output, RunError> {
        let scope = Scope::new()
            .with_owned("input", &input, owner)
            .with("context", context);
        let tool = match &action.tool {
            Some(tool) => match fetcher.render(tool, scope.clone()).await? {
                Value::String(name) => name,
                other => other.to_string(),
            },
            None => DEFAULT_TOOL.to_string(),
        };
        let arguments = match &action.arguments {
            Some(arguments) => match fetcher.render(arguments, scope.clone()).await? {
                Value::Object(map) => map,
                Value::Null => Map::new(),
                other => {
                    return Err(RunError::Flow(format!(
                        "component '{}': the arguments of tool '{tool}' must be a mapping, got \
                         {other}",
                        self.id
                    )))
                }
            },
            None => Map::new(),
        };
        let result = self.call_tool(&tool, arguments).await?;
        let response = response(&result);
        if result.is_error == Some(true) {
            return Err(RunError::Flow(format!(
                "Tool '{tool}' failed with: {}",
                as_text(&response)
            )));
        }
        Ok(Output::Value(match &action.output {
            Some(output) => {
                fetcher
                    .render(output, scope.with("response", &response))
                    .await?
            }
            None => response,
        }))
    }

    /// The component's id in the config.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The server's tools: listed at the first ask, and again once it says they changed.
    pub async fn list_tools(&self) -> Result<Arc<Vec<Tool>>, RunError> {
        if !self.stale.swap(false, Ordering::SeqCst) {
            if let Some(tools) = self.tools.lock().clone() {
                return Ok(tools);
            }
        }
        let mut session = self.session.lock().await;
        for attempt in 0..2 {
            if session.as_ref().is_none_or(|s| s.is_closed()) {
                *session = Some(self.connect().await?);
            }
            let Some(open) = session.as_ref() else {
                continue;
            };
            match open.list_all_tools().await {
                Ok(tools) => {
                    let tools = Arc::new(tools);
                    *self.tools.lock() = Some(Arc::clone(&tools));
                    return Ok(tools);
                }
                Err(err) if attempt == 0 => {
                    tracing::warn!(component = %self.id, "MCP session lost ({err}): reopening it");
                    *session = None;
                }
                Err(err) => return Err(self.unreachable(err)),
            }
        }
        Err(self.unreachable(rmcp::ServiceError::TransportClosed))
    }

    /// Calls `tool` with `arguments`: the result, or why the server could not be asked.
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<CallToolResult, RunError> {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let mut session = self.session.lock().await;
        for attempt in 0..2 {
            if session.as_ref().is_none_or(|s| s.is_closed()) {
                *session = Some(self.connect().await?);
            }
            let Some(open) = session.as_ref() else {
                continue;
            };
            match open.call_tool(params.clone()).await {
                Ok(result) => return Ok(result),
                Err(rmcp::ServiceError::McpError(err)) => {
                    return Err(RunError::Flow(format!(
                        "component '{}': tool '{tool}': {}",
                        self.id, err.message
                    )))
                }
                Err(err) if attempt == 0 => {
                    tracing::warn!(component = %self.id, "MCP session lost ({err}): reopening it");
                    *session = None;
                }
                Err(err) => return Err(self.unreachable(err)),
            }
        }
        Err(self.unreachable(rmcp::ServiceError::TransportClosed))
    }

    /// Opens a session: `initialize` over HTTP, or the server started and initialized.
    async fn connect(&self) -> Result<RunningService<RoleClient, Listener>, RunError> {
        let listener = Listener {
            stale: Arc::clone(&self.stale),
        };
        // A new session lists the tools again.
        *self.tools.lock() = None;
        let opened = match &self.server {
            Server::Http {
                url,
                bearer,
                headers,
            } => {
                crate::upstream::ensure_crypto_provider();
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(headers.clone());
                if let Some(token) = bearer {
                    config = config.auth_header(token.clone());
                }
                listener
                    .serve(StreamableHttpClientTransport::from_config(config))
                    .await
                    .map_err(|err| err.to_string())
            }
            Server::Stdio { argv, env, dir } => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command
                    .args(&argv[1..])
                    .current_dir(dir)
                    .env_clear()
                    .stderr(std::process::Stdio::inherit());
                for name in PASSED_ON {
                    if let Ok(value) = std::env::var(name) {
                        command.env(name, value);
                    }
                }
                command.envs(env.iter().map(|(k, v)| (k, v)));
                match TokioChildProcess::new(command) {
                    Ok(child) => listener.serve(child).await.map_err(|err| err.to_string()),
                    Err(err) => Err(format!("cannot start `{}`: {err}", argv.join(" "))),
                }
            }
        };
        opened.map_err(|err| {
            RunError::Transport(format!(
                "component '{}': cannot open an MCP session: {err}",
                self.id
            ))
        })
    }

    fn unreachable(&self, err: rmcp::ServiceError) -> RunError {
        RunError::Transport(format!(
            "component '{}': the MCP server cannot be reached: {err}",
            self.id
        ))
    }
}

/// A result as `${response}` holds it: one entry per content block.
pub fn response(result: &CallToolResult) -> Value {
    Value::Array(result.content.iter().map(entry).collect())
}

/// A response as a model or a person reads it: its texts, one per line; anything else as JSON.
pub fn as_text(response: &Value) -> String {
    match response {
        Value::Array(entries) if entries.iter().all(Value::is_string) => entries
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// One content block as `${response}` holds it (spec §16).
fn entry(block: &ContentBlock) -> Value {
    match block {
        ContentBlock::Text(text) => Value::String(text.text.clone()),
        ContentBlock::Image(image) => Value::String(image.data.clone()),
        ContentBlock::Audio(audio) => Value::String(audio.data.clone()),
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { text, .. } => Value::String(text.clone()),
            ResourceContents::BlobResourceContents { blob, .. } => Value::String(blob.clone()),
            _ => Value::Null,
        },
        ContentBlock::ResourceLink(link) => Value::String(link.uri.clone()),
        _ => Value::Null,
    }
}
