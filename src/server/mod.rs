//! The HTTP servers: the REST API on the adapter's port and the web UI on its own port, from
//! one process and one task registry. Thin doors into the engine.

mod access;
mod assets;
mod binary;
mod client;
mod guard;
mod highlight;
mod listen;
pub mod markdown;
mod mcp;
mod media;
mod observe;
mod remote;
pub mod rest;
pub mod run_view;
pub mod sse;
pub mod ui;
pub mod uploads;
mod webui;

pub use observe::RequestId;
pub use webui::SignInRequired;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::store::{
    Metered, PgStore, RunStore, SessionLimits, SessionStore, SqliteStore, StoreError,
};
use access::AccessKeys;
use compose::config::{AdapterKind, Config, McpTransport, Origins};
use compose::record::{Failure, FailureKind};
use compose::task::TaskRegistry;
use compose::Engine;

/// The history file used when the config names none, beside the config.
pub const DEFAULT_HISTORY_FILE: &str = ".model-compose-history.db";

/// The error recorded for runs a stopped server left unfinished.
pub const ABANDONED: &str = "the server stopped during this run";

/// Why the servers could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error(
        "the config has no http-server or mcp-server adapter and no webui: there is nothing to \
         serve"
    )]
    NothingToServe,
    /// A local server of an http-server component could not start.
    #[error("{0}")]
    Service(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("server failed: {0}")]
    Io(#[from] io::Error),
}

/// Where the servers listen, once they do (with the ports the system picked for `port: 0`).
#[derive(Debug, Clone, Default)]
pub struct Listening {
    /// The API's base URL, `base_path` included.
    pub api: Option<String>,
    pub webui: Option<String>,
    /// The MCP endpoint's URL (an `mcp-server` adapter's, or `controller.mcp` on the API's port).
    pub mcp: Option<String>,
    /// MCP is spoken on standard input and output: nothing else may be written there.
    pub stdio: bool,
}

/// Serves everything the config asks for; `on_ready` learns where, once every port is bound.
/// When `shutdown` resolves, lets running tasks finish (up to `controller.shutdown_timeout`),
/// cancels the rest, and returns.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Listening),
) -> Result<(), ServeError> {
    let engine = Arc::new(Engine::new(&config).map_err(ServeError::Config)?);
    let metrics = Arc::clone(engine.metrics());
    // With a PostgreSQL history this server is one replica among those sharing it (D22).
    let retention = config.controller.history.retention;
    let shared = match &config.controller.history.url {
        Some(url) => Some(Arc::new(
            PgStore::open(url, &ulid::Ulid::new().to_string())
                .await?
                .with_retention(retention),
        )),
        None => None,
    };
    // The web UI's sessions are kept in the same database.
    let (store, sessions): (Arc<dyn RunStore>, Arc<dyn SessionStore>) = match &shared {
        Some(shared) => (Arc::clone(shared) as _, Arc::clone(shared) as _),
        None => {
            let sqlite = SqliteStore::open(&history_path(&config)).await?;
            let sqlite = Arc::new(sqlite.with_retention(retention));
            (Arc::clone(&sqlite) as _, sqlite as _)
        }
    };
    let store: Arc<dyn RunStore> = Arc::new(Metered::new(store, Arc::clone(&metrics)));
    let abandoned = store
        .fail_unfinished(&Failure::new(FailureKind::Interrupted, ABANDONED))
        .await?;
    if abandoned > 0 {
        tracing::warn!(
            "{abandoned} run(s) left unfinished by a server that stopped were marked failed"
        );
    }
    keep_within_retention(Arc::clone(&store), retention);
    let tasks = Arc::new(TaskRegistry::new(
        engine,
        Some(Arc::clone(&store)),
        config.controller.limits.clone(),
    ));
    tasks.keep_tidy();
    let cluster = match shared {
        Some(shared) => Some(
            Cluster::join(shared, Arc::clone(&tasks))
                .await
                .map_err(ServeError::Config)?,
        ),
        None => None,
    };

    let controller = &config.controller;
    let adapter = controller
        .adapters
        .iter()
        .find(|a| a.kind == AdapterKind::HttpServer);
    let mcp_adapter = controller
        .adapters
        .iter()
        .find(|a| a.kind == AdapterKind::McpServer);
    let webui = controller.webui.as_ref();
    if adapter.is_none() && webui.is_none() && mcp_adapter.is_none() {
        return Err(ServeError::NothingToServe);
    }
    if controller.mcp.is_some() && adapter.is_none() {
        return Err(ServeError::Config(
            "controller.mcp serves MCP on the http-server adapter's port, and there is none \
             (add one, or serve MCP with an mcp-server adapter)"
                .into(),
        ));
    }
    let keys = AccessKeys::new(
        &controller.access_keys,
        sessions,
        SessionLimits {
            idle: controller.sessions.idle_timeout.0,
            max: controller.sessions.max_count,
        },
        client::Proxies(controller.trusted_proxies.clone()),
    );
    let limits = &controller.limits;
    let connections = Arc::new(listen::ConnectionLimits::new(
        limits.header_timeout.map(|t| t.0),
        limits.max_connections,
    ));
    let stop = CancellationToken::new();
    let mcp_server = mcp::Workflows::new(Arc::clone(&tasks), controller.name.clone());
    let mut servers = Vec::new();
    let mut listening = Listening::default();
    if let Some(adapter) = adapter {
        let listener = bind(&adapter.host, adapter.port).await?;
        let bound = listener.local_addr()?;
        let base = adapter.base_path.clone().unwrap_or_default();
        listening.api = Some(format!("http://{bound}{base}"));
        warn_if_exposed("the API", bound, keys.is_some());
        warn_if_commands_exposed(tasks.engine(), bound, keys.is_some());
        if adapter.origins == Origins::Any {
            tracing::warn!(
                "origins: \"*\" lets any web page the user visits call the API (without cookies)"
            );
        }
        let beside = controller.mcp.as_deref().map(|path| {
            listening.mcp = Some(format!("http://{bound}{path}"));
            mcp::beside_the_api(
                mcp_server.clone(),
                path,
                &adapter.origins,
                stop.child_token(),
            )
        });
        let app = rest::router(
            Arc::clone(&tasks),
            cluster.clone(),
            adapter,
            rest::Beside {
                metrics: controller.metrics.as_deref(),
                mcp: beside,
            },
            keys.clone(),
        );
        servers.push(tokio::spawn(listen::serve(
            listener,
            observe::layer(guard::protect(app, bound), Arc::clone(&metrics)),
            Arc::clone(&connections),
            stop.clone(),
        )));
    }
    if let Some(webui) = webui {
        let listener = bind(&webui.host, webui.port).await?;
        let bound = listener.local_addr()?;
        listening.webui = Some(format!("http://{bound}"));
        warn_if_exposed("the web UI", bound, keys.is_some());
        let app = webui::router(Arc::clone(&tasks), keys.clone());
        servers.push(tokio::spawn(listen::serve(
            listener,
            observe::layer(guard::protect(app, bound), Arc::clone(&metrics)),
            Arc::clone(&connections),
            stop.clone(),
        )));
    }
    // An MCP client that launched `up` on stdio stops it by closing its end.
    let mut stdio_closed: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> =
        Box::pin(std::future::pending());
    if let Some(adapter) = mcp_adapter {
        match adapter.transport {
            McpTransport::Stdio => {
                listening.stdio = true;
                let served = mcp_server.clone().serve_stdio(stop.child_token());
                stdio_closed = Box::pin(async move {
                    if let Err(err) = served.await {
                        tracing::warn!("MCP on stdio ended: {err}");
                    }
                });
            }
            McpTransport::Http => {
                let listener = bind(&adapter.host, adapter.port).await?;
                let bound = listener.local_addr()?;
                let path = adapter.base_path.clone().unwrap_or_else(|| "/".into());
                listening.mcp = Some(format!("http://{bound}{path}"));
                warn_if_exposed("the MCP server", bound, keys.is_some());
                let app = mcp::adapter_router(
                    mcp_server.clone(),
                    adapter,
                    keys.clone(),
                    stop.child_token(),
                );
                let checks_host =
                    adapter.allowed_hosts.is_none() && !adapter.disable_dns_rebinding_protection;
                servers.push(tokio::spawn(listen::serve(
                    listener,
                    observe::layer(
                        guard::protect_as(app, bound, checks_host),
                        Arc::clone(&metrics),
                    ),
                    Arc::clone(&connections),
                    stop.clone(),
                )));
            }
        }
    }
    // The local servers of http-server components listen before anyone is told to come.
    if let Err(err) = tasks.engine().start_services().await {
        stop.cancel();
        return Err(ServeError::Service(err));
    }
    on_ready(&listening);

    tokio::select! {
        () = shutdown => {},
        () = stdio_closed => tracing::info!("the MCP client closed stdio"),
    }
    tracing::info!("stopping: waiting for running tasks");
    tasks.shutdown(config.controller.shutdown_timeout).await;
    tasks.engine().stop_services().await;
    stop.cancel();
    for server in servers {
        server.await.map_err(io::Error::other)??;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often the history is pruned to its retention (and once at start).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes, now and every hour, the runs and uploads older than the retention keeps.
fn keep_within_retention(store: Arc<dyn RunStore>, retention: compose::config::Retention) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        loop {
            every.tick().await;
            match store.prune(&retention).await {
                Ok(pruned) if pruned.runs + pruned.uploads > 0 => tracing::info!(
                    runs = pruned.runs,
                    uploads = pruned.uploads,
                    "removed what the history's retention no longer keeps"
                ),
                Ok(_) => {}
                Err(err) => tracing::warn!("cannot prune the history: {err}"),
            }
        }
    });
}

/// Without access keys, a server others can reach spends the provider's key for them.
fn warn_if_exposed(what: &str, bound: std::net::SocketAddr, has_keys: bool) {
    if !bound.ip().is_loopback() && !has_keys {
        tracing::warn!(
            "{what} listens on {bound} without access keys: anyone who reaches this port can \
             run workflows and spend the provider key (set controller.access_keys)"
        );
    }
}

/// Without access keys, a server others can reach lets them choose a command's arguments.
fn warn_if_commands_exposed(engine: &Engine, bound: std::net::SocketAddr, has_keys: bool) {
    if bound.ip().is_loopback() || has_keys {
        return;
    }
    for (workflow, job) in engine.commands_from_input() {
        tracing::warn!(
            "workflow '{workflow}' job '{job}' runs a command built from the run's input, and \
             the API listens on {bound} without access keys: anyone who reaches this port \
             chooses its arguments (set controller.access_keys)"
        );
    }
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, ServeError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// `controller.history.path` (relative to the config), else a file beside the config.
fn history_path(config: &Config) -> PathBuf {
    match &config.controller.history.path {
        Some(path) => config.dir.join(path),
        None => config.dir.join(DEFAULT_HISTORY_FILE),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
