//! Test support shared by the engine's and the app's tests: mock upstreams that speak each
//! provider's wire format on 127.0.0.1 (port 0), the seed example's config, and scratch
//! directories that are removed when a test ends.
//!
//! A failed set-up here is a failed test, so panicking is the right answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod idle_proxy;
pub mod mock_upstream;
pub mod postgres;
pub mod providers;
mod tool_calls;

use std::path::{Path, PathBuf};

/// Binds a free port of 127.0.0.1 and runs `serve` on it, on a thread and runtime of its own
/// (so that it keeps answering while a test blocks); returns `SCHEME://127.0.0.1:PORT`.
pub fn listen<F, Fut>(scheme: &str, serve: F) -> String
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            serve(tokio::net::TcpListener::from_std(listener).unwrap()).await;
        });
    });
    base
}

/// Serves `app` on a free port of 127.0.0.1 (see [`listen`]); returns `http://127.0.0.1:PORT`.
pub fn serve(app: axum::Router) -> String {
    listen("http", |listener| async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).unwrap());
        axum::serve(listener, app).await.unwrap();
    })
}

/// The seed example's configuration, as shipped.
pub const SEED: &str =
    include_str!("../../../examples/openai-chat-completions-stream/model-compose.yml");

/// The API key the tests give the seed config.
pub const TEST_KEY: &str = "sk-test-0123456789abcdef";

/// The original's `job-flow/interrupt` example's shape (workflow `hitl`): `echo "hi NAME"` run
/// by [`SH_COMPONENT`] (to add), shown to a person before it runs and its result after.
pub const REVIEWED: &str = r#"workflow:
  id: hitl
  job:
    component: sh
    input:
      command: echo "hi ${input.name | you}"
    interrupt:
      before:
        message: "About to execute: ${job.input.command}"
        metadata:
          command: ${job.input.command}
      after:
        message: Command finished.
        metadata:
          result: ${job.output}
    output:
      result: ${output as text}
"#;

/// A config's `component:`: `sh`, a shell that runs its input's `command` with `sh -c` and
/// gives what it prints. What the tests of interrupts pause around.
pub const SH_COMPONENT: &str = "component:
  id: sh
  type: shell
  action:
    command: [sh, -c, '${input.command}']
    output: ${result.stdout}
";

/// The seed config with its OpenAI base URL replaced.
pub fn seed_for(base_url: &str) -> String {
    let seed = SEED.replace("https://api.openai.com/v1", base_url);
    assert_ne!(seed, SEED, "the seed's base_url moved");
    seed
}

/// The seed config pointed at `base_url`, with both servers on port 0 (the system picks free
/// ports; `up` reports them).
pub fn seed_on_any_port(base_url: &str) -> String {
    any_port(&seed_for(base_url))
}

/// A config whose API and web UI ports (the seed's 8080 and 8081) become 0.
pub fn any_port(config: &str) -> String {
    config
        .replace("    port: 8080", "    port: 0")
        .replace("    port: 8081", "    port: 0")
}

/// A scratch directory of its own for one test, removed when dropped.
pub struct Workdir {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Workdir {
    pub fn empty() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mc-test-")
            .tempdir()
            .unwrap();
        Self {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    /// A directory with the seed config pointed at `base_url` and a `.env` holding the test key.
    pub fn seed(base_url: &str) -> Self {
        let dir = Self::empty();
        dir.write("model-compose.yml", &seed_for(base_url));
        dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
        dir
    }

    /// Writes a file in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The CA that signed the HTTPS mock's certificate (`tls/make.sh`), for `SSL_CERT_FILE`.
pub fn test_ca() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/ca.pem")
}

/// Serves `app` like [`serve`], but over TLS (a certificate for 127.0.0.1 that only
/// [`test_ca`] signed) and HTTP/2 only, allowing at most `max_streams` concurrent streams per
/// connection, as providers' servers do (100–256 there); returns `https://127.0.0.1:PORT`.
pub fn serve_https_h2(app: axum::Router, max_streams: u32) -> String {
    serve_tls(app, Some(max_streams))
}

/// Serves `app` over TLS as [`serve_https_h2`] does, but HTTP/1.1 only (what an OTLP/HTTP
/// exporter speaks).
pub fn serve_https_h1(app: axum::Router) -> String {
    serve_tls(app, None)
}

/// `app` over TLS: HTTP/2 with at most this many streams per connection, or HTTP/1.1 (none).
fn serve_tls(app: axum::Router, h2_streams: Option<u32>) -> String {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{crypto, ServerConfig};

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tls");
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let mut tls = ServerConfig::builder_with_provider(crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tls.alpn_protocols = match h2_streams {
        Some(_) => vec![b"h2".to_vec()],
        None => vec![b"http/1.1".to_vec()],
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));

    listen("https", move |listener| async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tcp.set_nodelay(true).unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (io, service) = (TokioIo::new(tls), TowerToHyperService::new(app));
                let _ = match h2_streams {
                    Some(streams) => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .max_concurrent_streams(streams)
                            .serve_connection(io, service)
                            .await
                    }
                    None => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                    }
                };
            });
        }
    })
}
