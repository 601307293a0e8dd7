//! The `controller` block: how the workflows are served.

use serde::{Deserialize, Deserializer};

/// `controller:`: the API adapters and the web UI. Unknown keys are accepted and ignored,
/// as the original ignores them.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawController")]
pub struct Controller {
    /// `controller.name`: the server's name to MCP clients (spec §15.1).
    pub name: Option<String>,
    pub adapters: Vec<Adapter>,
    /// `controller.webui`: absent means no web UI.
    pub webui: Option<WebUi>,
    /// `controller.history`: where runs are recorded.
    pub history: History,
    /// How long running tasks may finish after a stop request before they are cancelled.
    pub shutdown_timeout: std::time::Duration,
    /// `controller.access_keys` (D17): when any, the API wants one of them as a Bearer token
    /// and the web UI a signed-in session. Usually `${env.…}`.
    pub access_keys: Vec<String>,
    /// `controller.limits`: what bounds the server's memory and connections.
    pub limits: Limits,
    /// `controller.mcp` (this implementation's addition, D29): where the API port serves the
    /// workflows as MCP tools (Streamable HTTP), outside `base_path`; `None` when not asked for.
    pub mcp: Option<String>,
    /// `controller.metrics` (this implementation's addition): where the API port serves
    /// Prometheus metrics, outside `base_path`; `None` when turned off (`metrics: false`).
    pub metrics: Option<String>,
    /// `controller.fetch`: what a caller's links may reach (D32).
    pub fetch: super::FetchSettings,
    /// `controller.files`: where a caller's paths may point (D32).
    pub files: super::FileSettings,
    /// `controller.trusted_proxies`: whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `controller.sessions`: how long a web UI sign-in lasts, and how many are kept.
    pub sessions: super::SessionSettings,
}

/// `controller.limits` (this implementation's addition): bounds on what a running server keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// How many finished tasks stay in memory, readable at `/tasks/{id}`; beyond it the
    /// oldest are forgotten first (the history keeps every run).
    pub finished_tasks: usize,
    /// How long a finished task stays in memory.
    pub task_retention: super::Duration,
    /// How long a connection may take to send a request's headers, and may stay open
    /// between requests (default 30 s).
    pub header_timeout: Option<super::Duration>,
    /// How many connections are served at once, on both ports together (default: as many as
    /// the open-file limit allows, which is raised to its hard limit at start).
    pub max_connections: Option<usize>,
    /// `controller.max_output`: the most a run's output may hold (streamed text or bytes);
    /// past it the run fails. Kept here, with the other bounds a task registry applies.
    #[serde(skip)]
    pub max_output: usize,
    /// `controller.keep_alive` (D23): when event streams that say nothing send a comment;
    /// `None` when turned off. Kept here, where every door that streams finds it.
    #[serde(skip)]
    pub keep_alive: Option<KeepAlive>,
}

/// `controller.keep_alive` (D23, this implementation's addition): an event stream whose run has
/// produced nothing for `first` is answered at once with an SSE comment (`: keep-alive`),
/// and then with one after every `every` of silence, so that proxies that cut idle responses
/// (nginx after 60 s) do not cut a model that thinks for minutes. `false` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepAlive {
    pub first: super::Duration,
    pub every: super::Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self {
            first: super::Duration(std::time::Duration::from_secs(5)),
            every: super::Duration(std::time::Duration::from_secs(15)),
        }
    }
}

/// `keep_alive: false` turns it off, `true` (or nothing) keeps the defaults, a mapping sets them.
fn keep_alive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<KeepAlive>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        On(bool),
        Settings(KeepAlive),
    }
    let settings = match Option::<Raw>::deserialize(deserializer)? {
        None | Some(Raw::On(true)) => Some(KeepAlive::default()),
        Some(Raw::On(false)) => None,
        Some(Raw::Settings(settings)) => Some(settings),
    };
    match settings {
        Some(s) if s.first.0.is_zero() || s.every.0.is_zero() => Err(serde::de::Error::custom(
            "keep_alive periods must be longer than 0 s (keep_alive: false turns it off)",
        )),
        other => Ok(other),
    }
}

/// A run's output may hold this much unless `controller.max_output` says otherwise.
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            finished_tasks: 10_000,
            task_retention: super::Duration(std::time::Duration::from_secs(3600)),
            header_timeout: None,
            max_connections: None,
            max_output: DEFAULT_MAX_OUTPUT,
            keep_alive: Some(KeepAlive::default()),
        }
    }
}

#[derive(Deserialize)]
struct RawController {
    name: Option<String>,
    #[serde(default, deserialize_with = "super::mcp::endpoint")]
    mcp: Option<String>,
    adapter: Option<Adapter>,
    adapters: Option<Vec<Adapter>>,
    #[serde(default)]
    webui: Option<WebUi>,
    #[serde(default)]
    history: History,
    shutdown_timeout: Option<super::Duration>,
    #[serde(default, deserialize_with = "access_keys")]
    access_keys: Vec<String>,
    #[serde(default)]
    limits: Limits,
    #[serde(default = "default_metrics", deserialize_with = "metrics")]
    metrics: Option<String>,
    max_output: Option<super::Size>,
    #[serde(default = "default_keep_alive", deserialize_with = "keep_alive")]
    keep_alive: Option<KeepAlive>,
    #[serde(default)]
    fetch: super::FetchSettings,
    #[serde(default)]
    files: super::FileSettings,
    #[serde(default, deserialize_with = "super::exposure::trusted_proxies")]
    trusted_proxies: Vec<ipnet::IpNet>,
    #[serde(default)]
    sessions: super::SessionSettings,
}

impl TryFrom<RawController> for Controller {
    type Error = String;

    fn try_from(raw: RawController) -> Result<Self, String> {
        let adapters = super::one_or_many(raw.adapters, raw.adapter);
        for adapter in &adapters {
            let listed = adapter.allowed_hosts.is_some() || adapter.allowed_origins.is_some();
            if adapter.disable_dns_rebinding_protection && listed {
                return Err(
                    "an mcp-server adapter with disable_dns_rebinding_protection: true \
                            takes no allowed_hosts or allowed_origins"
                        .into(),
                );
            }
        }
        Ok(Self {
            name: raw.name,
            mcp: raw.mcp,
            adapters,
            webui: raw.webui,
            history: raw.history,
            shutdown_timeout: raw
                .shutdown_timeout
                .map_or(DEFAULT_SHUTDOWN_TIMEOUT, |d| d.0),
            access_keys: raw.access_keys,
            limits: Limits {
                max_output: raw.max_output.map_or(DEFAULT_MAX_OUTPUT, |size| size.0),
                keep_alive: raw.keep_alive,
                ..raw.limits
            },
            metrics: raw.metrics,
            fetch: raw.fetch,
            files: raw.files,
            trusted_proxies: raw.trusted_proxies,
            sessions: raw.sessions,
        })
    }
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            name: None,
            mcp: None,
            adapters: Vec::new(),
            webui: None,
            history: History::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            access_keys: Vec::new(),
            limits: Limits::default(),
            metrics: default_metrics(),
            fetch: super::FetchSettings::default(),
            files: super::FileSettings::default(),
            trusted_proxies: Vec::new(),
            sessions: super::SessionSettings::default(),
        }
    }
}

/// The original's default `shutdown_timeout`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `controller.history` (this implementation's addition, D14): the SQLite file runs are
/// recorded in (`path`, relative to the config's directory), or a PostgreSQL database that
/// several replicas share (`url: postgres://…`, usually `${env.DATABASE_URL}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "RawHistory")]
pub struct History {
    pub path: Option<std::path::PathBuf>,
    pub url: Option<String>,
    /// How long runs and the files they carried are kept, and how much room files take.
    pub retention: Retention,
}

/// `controller.history.retention`: what the history keeps. Uploads (the files runs' inputs
/// carried) go after `uploads`, or sooner, oldest first, when they take more than
/// `uploads_size`; runs go after `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub runs: super::Duration,
    pub uploads: super::Duration,
    pub uploads_size: super::Size,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            runs: super::Duration(std::time::Duration::from_secs(90 * DAY)),
            uploads: super::Duration(std::time::Duration::from_secs(7 * DAY)),
            uploads_size: super::Size(1024 * 1024 * 1024),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    path: Option<std::path::PathBuf>,
    url: Option<String>,
    #[serde(default)]
    retention: Retention,
}

impl TryFrom<RawHistory> for History {
    type Error = String;

    fn try_from(raw: RawHistory) -> Result<Self, String> {
        if raw.path.is_some() && raw.url.is_some() {
            return Err("history: give `path` (SQLite) or `url` (PostgreSQL), not both".into());
        }
        if let Some(url) = &raw.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(
                    "history.url must be a PostgreSQL URL (postgres://user:password@host/database)"
                        .into(),
                );
            }
        }
        Ok(Self {
            path: raw.path,
            url: raw.url,
            retention: raw.retention,
        })
    }
}

/// `controller.adapter`: how the workflows are served over the network.
#[derive(Debug, Clone, Deserialize)]
pub struct Adapter {
    #[serde(rename = "type")]
    pub kind: AdapterKind,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_api_port", deserialize_with = "port")]
    pub port: u16,
    /// A prefix for every route, such as `/api`.
    pub base_path: Option<String>,
    /// Which web pages may call the API from a browser (CORS, D15).
    #[serde(default)]
    pub origins: Origins,
    /// `websocket`: the WebSocket route, on by default as in the original; `false` turns it
    /// off, `true` or a mapping sets it up.
    #[serde(default = "default_websocket", deserialize_with = "websocket")]
    pub websocket: Option<WebSocket>,
    /// `mcp-server` only: `http` (Streamable HTTP, the default) or `stdio`.
    #[serde(default)]
    pub transport: super::McpTransport,
    /// `mcp-server` only (spec §15.1): no Host and Origin checks at all.
    #[serde(default)]
    pub disable_dns_rebinding_protection: bool,
    /// `mcp-server` only: the `Host` values it answers (globs: `localhost:*`); absent, the
    /// rule of every server here (D16).
    pub allowed_hosts: Option<Vec<String>>,
    /// `mcp-server` only: the page origins it answers (globs); absent, loopback origins and
    /// those of `origins` (D15).
    pub allowed_origins: Option<Vec<String>>,
}

/// An adapter's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterKind {
    /// The REST API (spec §5).
    HttpServer,
    /// The workflows as MCP tools (spec §15).
    McpServer,
}

impl AdapterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::HttpServer => "http-server",
            AdapterKind::McpServer => "mcp-server",
        }
    }
}

/// `websocket:` of an http-server adapter (unknown keys are ignored, as the original does).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct WebSocket {
    /// Under `base_path`: `/api/ws` for the seed.
    pub path: String,
    /// How many WebSocket clients at once; more are closed with code 4429.
    pub max_connection_count: Option<usize>,
    /// How often the server pings a client; `0s` never.
    pub ping_interval: super::Duration,
    /// How long a pong may take before the connection is closed.
    pub ping_timeout: super::Duration,
}

impl Default for WebSocket {
    fn default() -> Self {
        Self {
            path: "/ws".into(),
            max_connection_count: None,
            ping_interval: super::Duration(std::time::Duration::from_secs(30)),
            ping_timeout: super::Duration(std::time::Duration::from_secs(10)),
        }
    }
}

/// Where metrics are served unless the config says otherwise.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

fn default_metrics() -> Option<String> {
    Some(DEFAULT_METRICS_PATH.to_string())
}

/// `metrics: false` turns them off, `true` (or nothing) serves them at `/metrics`, and
/// `metrics: {path: /internal/metrics}` elsewhere.
fn metrics<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    served_at(deserializer, "metrics", DEFAULT_METRICS_PATH, true)
}

/// A route of the API's port that a setting turns on (`true`, or `{path: /somewhere}`) or off
/// (`false`); nothing means `absent`. Its path starts with `/` (a trailing one is dropped).
pub(super) fn served_at<'de, D: Deserializer<'de>>(
    deserializer: D,
    key: &str,
    default: &str,
    absent: bool,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        path: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        On(bool),
        Settings(Settings),
    }
    let on = match Option::<Raw>::deserialize(deserializer)? {
        None => absent,
        Some(Raw::On(on)) => on,
        Some(Raw::Settings(Settings { path })) => {
            let path = path.trim_end_matches('/');
            if !path.starts_with('/') {
                return Err(serde::de::Error::custom(format!(
                    "{key}.path must start with / and name a path, got {path:?}"
                )));
            }
            return Ok(Some(path.to_string()));
        }
    };
    Ok(on.then(|| default.to_string()))
}

fn default_keep_alive() -> Option<KeepAlive> {
    Some(KeepAlive::default())
}

fn default_websocket() -> Option<WebSocket> {
    Some(WebSocket::default())
}

fn websocket<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<WebSocket>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        On(bool),
        Settings(WebSocket),
    }
    let websocket = match Option::<Raw>::deserialize(deserializer)? {
        None | Some(Raw::On(true)) => Some(WebSocket::default()),
        Some(Raw::On(false)) => None,
        Some(Raw::Settings(settings)) => Some(settings),
    };
    if let Some(ws) = &websocket {
        if !ws.path.starts_with('/') {
            return Err(serde::de::Error::custom(format!(
                "websocket.path must start with /, got {:?}",
                ws.path
            )));
        }
    }
    Ok(websocket)
}

/// `origins`: the web origins allowed to call the API from a browser. Absent, only pages
/// served from this machine (loopback origins); a list (or one comma-separated string) adds
/// those origins; `"*"` allows any page, without credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origins {
    #[default]
    Loopback,
    Listed(Vec<String>),
    Any,
}

impl<'de> Deserialize<'de> for Origins {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let listed: Vec<String> = match Raw::deserialize(deserializer)? {
            Raw::One(text) => vec![text],
            Raw::Many(list) => list,
        };
        let origins: Vec<String> = listed
            .iter()
            .flat_map(|entry| entry.split(','))
            .map(|origin| origin.trim().trim_end_matches('/').to_string())
            .filter(|origin| !origin.is_empty())
            .collect();
        if origins.iter().any(|o| o == "*") {
            return Ok(Origins::Any);
        }
        if let Some(bad) = origins.iter().find(|o| !o.contains("://")) {
            return Err(serde::de::Error::custom(format!(
                "an origin is a scheme and a host, like http://app.example:3000; got {bad:?}"
            )));
        }
        Ok(if origins.is_empty() {
            Origins::Loopback
        } else {
            Origins::Listed(origins)
        })
    }
}

/// `access_keys`: a list of keys, or one key; an empty key would let anyone in.
fn access_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let keys = match Raw::deserialize(deserializer)? {
        Raw::One(key) => vec![key],
        Raw::Many(keys) => keys,
    };
    if keys.iter().any(|k| k.trim().is_empty()) {
        return Err(serde::de::Error::custom("an access key cannot be empty"));
    }
    Ok(keys)
}

/// `controller.webui`: where the web UI is served.
#[derive(Debug, Clone, Deserialize)]
pub struct WebUi {
    /// `gradio` and `static` both mean the built-in UI here.
    #[serde(default)]
    pub driver: WebUiDriver,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_webui_port", deserialize_with = "port")]
    pub port: u16,
}

/// The original's web UI drivers; all of them are served by the built-in Leptos UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebUiDriver {
    #[default]
    Gradio,
    Static,
    Dynamic,
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}

fn default_api_port() -> u16 {
    8080
}

fn default_webui_port() -> u16 {
    8081
}

/// A TCP port, 1..=65535 as the original validates it, or 0 (an addition): any free port,
/// which `up` reports once it is bound.
fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let value = u64::deserialize(deserializer)?;
    u16::try_from(value).map_err(|_| {
        serde::de::Error::custom(format!(
            "port must be between 1 and 65535 (or 0 for any free port), got {value}"
        ))
    })
}
