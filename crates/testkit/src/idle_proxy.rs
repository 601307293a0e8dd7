//! A TCP proxy that closes a connection once it has been idle for a while, as reverse proxies
//! and load balancers do to responses that send nothing (nginx's `proxy_read_timeout`, 60 s by
//! default): to test that streams say they are alive.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a proxy on a free port of 127.0.0.1 to `target` (`host:port`) that closes both sides
/// of a connection after `idle` without a byte either way; returns its `host:port`.
pub fn start(target: String, idle: Duration) -> String {
    let base = super::listen("tcp", move |listener| async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(&target).await {
                    relay(client, server, idle).await;
                }
            });
        }
    });
    base.trim_start_matches("tcp://").to_string()
}

/// Copies bytes both ways until either side closes or nothing moves for `idle`.
async fn relay(client: TcpStream, server: TcpStream, idle: Duration) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let moved = tokio::time::timeout(idle, async {
            tokio::select! {
                read = client_read.read(&mut up) => match read {
                    Ok(0) | Err(_) => false,
                    Ok(n) => server_write.write_all(&up[..n]).await.is_ok(),
                },
                read = server_read.read(&mut down) => match read {
                    Ok(0) | Err(_) => false,
                    Ok(n) => client_write.write_all(&down[..n]).await.is_ok(),
                },
            }
        })
        .await;
        if !matches!(moved, Ok(true)) {
            return;
        }
    }
}
