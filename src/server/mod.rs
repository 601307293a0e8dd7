//! The HTTP servers: the web UI (and, later, the REST API) on the ports the config names.
//! Thin doors into the engine; nothing here knows how a workflow runs.

mod assets;
mod webui;

use std::future::Future;
use std::io;

use tokio::net::TcpListener;

use crate::compose::config::Config;

/// Why the servers could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("the config has no controller.webui, so there is nothing to serve yet")]
    NothingToServe,
    #[error("server failed: {0}")]
    Io(#[from] io::Error),
}

/// Serves everything the config asks for until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let webui = config.controller.webui.ok_or(ServeError::NothingToServe)?;
    let addr = format!("{}:{}", webui.host, webui.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr()?;
    tracing::info!("web UI on http://{local}");
    axum::serve(listener, webui::router())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
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
    tracing::info!("shutting down");
}
