//! Accepting and serving connections, with bounds: a connection must send a request's headers
//! within the header timeout (which also closes a kept-alive connection that sends nothing
//! more), at most `max_connections` are served at once (past it, new ones wait in the
//! listening socket's queue instead of taking descriptors the server needs), and a failing
//! `accept` (no descriptor left) is retried with a growing pause and reported once, not
//! once per attempt. TCP_NODELAY on every connection: each token is written the moment it
//! arrives, and Nagle's algorithm would hold it back until the client's delayed ACK.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a request's headers may take, by default (and an idle kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors kept for everything but client connections (files, the history, listeners).
const RESERVED_DESCRIPTORS: u64 = 128;

/// Bounds shared by the servers of this process.
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    /// One permit per connection being served, across every server of the process.
    pub permits: Arc<Semaphore>,
}

impl ConnectionLimits {
    /// At most `max_connections` at once; `None`: as many as the descriptor limit allows,
    /// once raised to its hard limit, counting one more descriptor per connection for its
    /// upstream request.
    pub fn new(header_timeout: Option<Duration>, max_connections: Option<usize>) -> Self {
        let max = max_connections.unwrap_or_else(|| {
            let descriptors = raise_descriptor_limit();
            let usable = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 2;
            usize::try_from(usable).unwrap_or(usize::MAX).max(16)
        });
        tracing::debug!("serving at most {max} connections at once");
        Self {
            header_timeout: header_timeout.unwrap_or(HEADER_TIMEOUT),
            permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one; returns the limit in force.
fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!("cannot raise the open-file limit: {err}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Who is at the other end of a request's connection: a client, or a proxy in front of it
/// (see `client`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// `app` with every request of one connection carrying its [`Peer`].
fn with_peer(
    app: Router,
    peer: SocketAddr,
) -> tower::util::MapRequest<Router, impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone> {
    tower::ServiceExt::map_request(app, move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        request
    })
}

/// Serves `app` on `listener` (HTTP/1.1, which is what browsers and curl speak without TLS)
/// until `stop`, then lets the connections finish the requests they are serving.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<ConnectionLimits>,
    stop: CancellationToken,
) -> io::Result<()> {
    let connections = TaskTracker::new();
    let mut pause = Duration::from_millis(10);
    let mut failing = false;
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limits.permits).acquire_owned() => permit.map_err(io::Error::other)?,
            () = stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                if !failing {
                    tracing::warn!("cannot accept connections: {err} (retrying)");
                    failing = true;
                }
                drop(permit);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if failing {
            tracing::info!("accepting connections again");
            failing = false;
            pause = Duration::from_millis(10);
        }
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {err}");
        }
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(with_peer(app.clone(), peer)),
            )
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop.cancelled() => {
                    // Finish the request being served, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!("connection ended: {err}");
            }
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}
