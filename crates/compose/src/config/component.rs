//! The components of `model-compose.yml` as written, by `type`, and their actions: what each
//! type reads of the keys (the engine compiles the templates in them).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::duration::Duration;
use super::model::{action_id, component_id, default_ref, one_or_many, string_map};
use super::size::Size;

/// `components:` entries, by `type`.
#[derive(Debug, Clone)]
pub enum Component {
    HttpClient(HttpClient),
    Shell(Shell),
    /// Runs another workflow of the config (spec §11).
    Workflow(WorkflowCaller),
    /// A model that calls tools (other workflows) until it answers (spec §10).
    Agent(Agent),
    /// Calls the tools of an MCP server (spec §16).
    McpClient(McpClient),
    /// A local HTTP server it starts, watches and stops, and calls as an http-client (§17).
    HttpServer(HttpServer),
}

impl<'de> Deserialize<'de> for Component {
    /// Read with every type's keys, then sorted by `type`. (A tagged enum would buffer the
    /// component first, and errors inside it would lose their line and column.)
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawComponent::deserialize(deserializer)?;
        let actions = one_or_many(raw.actions, raw.action);
        Ok(match raw.kind {
            ComponentType::HttpClient => Component::HttpClient(HttpClient {
                id: raw.id,
                default: raw.default,
                base_url: raw.base_url,
                headers: raw.headers,
                actions,
            }),
            ComponentType::Shell => Component::Shell(Shell {
                id: raw.id,
                default: raw.default,
                env: raw.env,
                base_dir: raw.base_dir,
                actions,
            }),
            ComponentType::Workflow => Component::Workflow(WorkflowCaller {
                id: raw.id,
                default: raw.default,
                actions,
            }),
            ComponentType::Agent => Component::Agent(Agent {
                id: raw.id,
                default: raw.default,
                model: raw.model,
                instructions: raw.instructions,
                tools: raw.tools,
                max_iteration_count: raw.max_iteration_count.unwrap_or(AGENT_ITERATIONS),
                actions,
            }),
            ComponentType::HttpServer => {
                let manage = raw.manage.unwrap_or_default();
                Component::HttpServer(HttpServer {
                    port: raw.port.unwrap_or(HTTP_SERVER_PORT),
                    base_path: raw.base_path.unwrap_or_default(),
                    headers: raw.headers,
                    manage: Manage {
                        install: manage.install.or(raw.install),
                        build: manage.build.or(raw.build),
                        clean: manage.clean.or(raw.clean),
                        start: manage.start.or(raw.start),
                    },
                    start_timeout: raw.start_timeout.map_or(HTTP_SERVER_START_TIMEOUT, |d| d.0),
                    id: raw.id,
                    default: raw.default,
                    actions,
                })
            }
            ComponentType::McpClient => Component::McpClient(McpClient {
                id: raw.id,
                default: raw.default,
                url: raw.url,
                command: raw.command,
                env: raw.env,
                headers: raw.headers,
                actions,
            }),
        })
    }
}

/// The component types this implementation runs.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ComponentType {
    HttpClient,
    Shell,
    Workflow,
    Agent,
    McpClient,
    HttpServer,
}

/// A component as written: the keys of every type.
#[derive(Deserialize)]
struct RawComponent {
    #[serde(rename = "type")]
    kind: ComponentType,
    #[serde(default = "component_id")]
    id: String,
    #[serde(default)]
    default: bool,
    base_url: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    headers: Vec<(String, String)>,
    #[serde(default)]
    env: serde_json::Map<String, Value>,
    base_dir: Option<String>,
    model: Option<AgentModel>,
    instructions: Option<Value>,
    #[serde(default)]
    tools: Vec<Value>,
    max_iteration_count: Option<u32>,
    url: Option<String>,
    command: Option<Vec<String>>,
    manage: Option<Manage>,
    port: Option<u16>,
    base_path: Option<String>,
    install: Option<Script>,
    build: Option<Script>,
    clean: Option<Script>,
    start: Option<Script>,
    start_timeout: Option<Duration>,
    action: Option<Action>,
    actions: Option<Vec<Action>>,
}

impl Component {
    pub fn id(&self) -> &str {
        match self {
            Component::HttpClient(c) => &c.id,
            Component::Shell(c) => &c.id,
            Component::Workflow(c) => &c.id,
            Component::Agent(c) => &c.id,
            Component::McpClient(c) => &c.id,
            Component::HttpServer(c) => &c.id,
        }
    }

    pub fn is_default(&self) -> bool {
        match self {
            Component::HttpClient(c) => c.default,
            Component::Shell(c) => c.default,
            Component::Workflow(c) => c.default,
            Component::Agent(c) => c.default,
            Component::McpClient(c) => c.default,
            Component::HttpServer(c) => c.default,
        }
    }

    /// Its actions, in the config's order.
    pub fn actions(&self) -> &[Action] {
        match self {
            Component::HttpClient(c) => &c.actions,
            Component::Shell(c) => &c.actions,
            Component::Workflow(c) => &c.actions,
            Component::Agent(c) => &c.actions,
            Component::McpClient(c) => &c.actions,
            Component::HttpServer(c) => &c.actions,
        }
    }
}

/// An `http-client` component: a base URL, shared headers and its actions.
#[derive(Debug, Clone)]
pub struct HttpClient {
    pub id: String,
    pub default: bool,
    pub base_url: Option<String>,
    /// Sent with every request; not rendered (only `${env.X}` applies).
    pub headers: Vec<(String, String)>,
    pub actions: Vec<Action>,
}

/// A `shell` component (spec §12): commands run without a shell, in an environment of the
/// config's making (D27).
#[derive(Debug, Clone)]
pub struct Shell {
    pub id: String,
    pub default: bool,
    /// Variables every action's command gets (templates), under its own `env`.
    pub env: serde_json::Map<String, Value>,
    /// Where relative working directories start (the config's directory when absent).
    pub base_dir: Option<String>,
    pub actions: Vec<Action>,
}

/// An `mcp-client` component (spec §16): one session with an MCP server, over Streamable HTTP
/// (`url`) or stdio (`command`, a program it starts and stops, beyond the original).
#[derive(Debug, Clone)]
pub struct McpClient {
    pub id: String,
    pub default: bool,
    pub url: Option<String>,
    /// The server's argv, for stdio.
    pub command: Option<Vec<String>>,
    /// Variables the stdio server gets (templates of `${env.X}`), beside `PATH`, `HOME`, `LANG`.
    pub env: serde_json::Map<String, Value>,
    /// Sent with every request over HTTP (not OD28).
    pub headers: Vec<(String, String)>,
    pub actions: Vec<Action>,
}

/// An `http-server` component (spec §17): a local server it starts (`manage.start`) and
/// stops, called like an http-client at `http://localhost:<port><base_path>`.
#[derive(Debug, Clone)]
pub struct HttpServer {
    pub id: String,
    pub default: bool,
    pub port: u16,
    pub base_path: String,
    /// Sent with every request, as an http-client's.
    pub headers: Vec<(String, String)>,
    pub manage: Manage,
    /// How long the server may take to listen on its port once started (default 60 s).
    pub start_timeout: std::time::Duration,
    pub actions: Vec<Action>,
}

impl HttpServer {
    /// The http-client its actions are requests of.
    pub fn client(&self) -> HttpClient {
        HttpClient {
            id: self.id.clone(),
            default: self.default,
            base_url: Some(format!("http://localhost:{}{}", self.port, self.base_path)),
            headers: self.headers.clone(),
            actions: self.actions.clone(),
        }
    }
}

/// The original's default port of a managed server.
const HTTP_SERVER_PORT: u16 = 8000;
/// How long a managed server may take to listen, unless `start_timeout` says otherwise.
const HTTP_SERVER_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `manage:` of an http-server: commands run before it starts (`install`, `build`), the
/// server itself (`start`), and after it stopped (`clean`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Manage {
    pub install: Option<Script>,
    pub build: Option<Script>,
    pub clean: Option<Script>,
    pub start: Option<Script>,
}

/// A command: an argv (`[python, server.py]`), or one line for `sh -c`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script(pub Vec<String>);

impl<'de> Deserialize<'de> for Script {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Line(String),
            Argv(Vec<String>),
        }
        Ok(Script(match Raw::deserialize(deserializer)? {
            Raw::Line(line) => vec!["sh".into(), "-c".into(), line],
            Raw::Argv(argv) => argv,
        }))
    }
}

/// A `workflow` component (spec §11): each action runs a workflow of the config.
#[derive(Debug, Clone)]
pub struct WorkflowCaller {
    pub id: String,
    pub default: bool,
    pub actions: Vec<Action>,
}

/// An `agent` component (spec §10): asks its model for the next message, runs the tools it
/// calls, and again, until the model answers without calling one.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub default: bool,
    /// Which component gives the next message (`None`: not written, refused when checked).
    pub model: Option<AgentModel>,
    /// The system message (a template).
    pub instructions: Option<Value>,
    /// Each a workflow's id, or a tool the caller runs (`{name, description, parameters}`).
    pub tools: Vec<Value>,
    /// The most model calls of one run, unless the action says otherwise.
    pub max_iteration_count: u32,
    pub actions: Vec<Action>,
}

/// The original's limit on an agent's model calls.
const AGENT_ITERATIONS: u32 = 32;

/// An agent's model: a component's action, its input rendered from `${messages}` and
/// `${tools}`, its output mapped to the next message.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentModel {
    pub component: String,
    #[serde(default = "default_ref")]
    pub action: String,
    pub input: Option<Value>,
    pub output: Option<Value>,
}

/// One action of a component: a request an http-client makes, a command a shell runs, a
/// workflow a workflow component runs (each type reads its own keys). Templated fields stay
/// raw JSON here; the engine compiles them.
#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    #[serde(default = "action_id")]
    pub id: String,
    #[serde(default)]
    pub default: bool,
    pub endpoint: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub method: Method,
    #[serde(default)]
    pub headers: Value,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub body: Value,
    pub stream_format: Option<StreamFormat>,
    pub output: Option<Value>,
    /// Bounds the whole request, first byte to last (D13).
    pub timeout: Option<Duration>,
    /// How long the upstream may send nothing, waiting for its answer or within it (D18;
    /// default 300 s).
    pub read_timeout: Option<Duration>,
    /// The largest event of a streamed answer (default 16 MiB).
    pub max_event_size: Option<Size>,
    /// The largest answer that is not streamed (default 16 MiB).
    pub max_body_size: Option<Size>,
    /// Shell: one argv (a list of texts), or a list of them run as a batch.
    pub command: Option<Value>,
    /// Shell: where the command runs (a template).
    pub working_dir: Option<String>,
    /// Shell: variables for the command (templates), over the component's.
    #[serde(default)]
    pub env: serde_json::Map<String, Value>,
    /// Shell: what the command reads on its standard input (a template; nothing when absent).
    pub stdin: Option<Value>,
    /// Shell: the output as a stream of stdout's lines.
    pub streaming: Option<Value>,
    /// Shell: how many commands of a batch run at once (default 1).
    pub batch_size: Option<usize>,
    /// Shell: the most stdout or stderr may hold (default 16 MiB).
    pub max_output_size: Option<Size>,
    /// Workflow: the workflow to run (the default one when absent).
    pub workflow: Option<String>,
    /// Workflow: what it runs with (the job's input when absent).
    pub input: Option<Value>,
    /// Agent: the user's message (a template).
    pub prompt: Option<Value>,
    /// Agent: the conversation so far (a template giving a list of messages), before the
    /// prompt: a follow-up continues with the earlier turns (and their tool results) in view.
    pub messages: Option<Value>,
    /// Agent: the most model calls of one run (a number or a template), over the component's.
    pub max_iteration_count: Option<Value>,
    /// MCP client: the tool to call (a template; the original's default `__workflow__`).
    pub tool: Option<Value>,
    /// MCP client: the call's arguments (a mapping template; `{}` when absent).
    pub arguments: Option<Value>,
}

/// HTTP methods the original accepts (upper case only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "PATCH")]
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }
}

/// How the data of an SSE response is read: JSON values, or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamFormat {
    Json,
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;

    use testkit::Workdir;

    #[test]
    fn an_http_server_takes_its_scripts_in_manage_or_beside_it() {
        let dir = Workdir::empty();
        let path = dir.write(
            "a.yml",
            "component:\n  type: http-server\n  install: pip install x\n  manage:\n    \
             start: [python, s.py]\n  action: {path: /a}\n",
        );
        let config =
            super::super::load(&[path], &super::super::Sources::isolated(&dir.path, &[])).unwrap();
        let Component::HttpServer(server) = &config.components[0] else {
            panic!("not an http-server");
        };
        assert_eq!(server.port, 8000);
        assert_eq!(server.start_timeout, std::time::Duration::from_secs(60));
        let start = server.manage.start.as_ref().unwrap();
        assert_eq!(start.0, ["python", "s.py"]);
        let install = server.manage.install.as_ref().unwrap();
        assert_eq!(install.0, ["sh", "-c", "pip install x"]);
        assert_eq!(
            server.client().base_url.as_deref(),
            Some("http://localhost:8000")
        );

        let path = dir.write(
            "b.yml",
            "component:\n  type: http-server\n  action: {path: /a}\n",
        );
        let err = super::super::load(&[path], &super::super::Sources::isolated(&dir.path, &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the command that starts it"), "{err}");
    }
}
