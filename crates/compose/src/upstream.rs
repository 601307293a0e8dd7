//! How requests reach upstreams: the one set of client settings every request the engine
//! sends is made with (connect timeout, user agent, the certificates it trusts), and
//! [`Lanes`], which keep each HTTP/2 connection under the streams a server allows on one and
//! send plain `http://` requests on connections of their own ([`direct`]).

use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use parking_lot::Mutex;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::error::RunError;

mod direct;

pub use direct::READ_BUFFER as HEAD_LIMIT;

/// The `User-Agent` of every request the engine sends.
const USER_AGENT_NAME: &str = concat!("model-compose/", env!("CARGO_PKG_VERSION"));

/// How long connecting to an upstream may take (D13).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most requests in flight on one client, so on one HTTP/2 connection. Past a server's
/// limit (`SETTINGS_MAX_CONCURRENT_STREAMS`) hyper's client queues a request until a stream
/// ends, and opens no second connection: with model answers lasting tens of seconds, run 257
/// would wait for run 1 to finish. 100 is the least HTTP/2 asks servers to allow (RFC 9113
/// §6.5.2); providers allow 100–256.
const STREAMS_PER_CONNECTION: usize = 100;

/// The most of an upstream's answer (or a fetched body) read into memory unless an action
/// says otherwise (`max_body_size`, `max_event_size`).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The certificates an engine's clients trust beyond the built-in roots (webpki-roots): those
/// of the PEM file `SSL_CERT_FILE` names (a company's CA, a model server's own), as other HTTP
/// tools do. Read once per engine, from the path its config was loaded with.
#[derive(Clone, Default)]
pub struct Trust {
    extra: Arc<[reqwest::Certificate]>,
}

impl Trust {
    /// The certificates of `file` (none: the built-in roots alone); fails when the file cannot
    /// be read or holds no certificate.
    pub fn load(file: Option<&Path>) -> Result<Self, RunError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let refused = |reason: String| RunError::TrustedRoots {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|err| refused(err.to_string()))?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(roots) if !roots.is_empty() => Ok(Self {
                extra: roots.into(),
            }),
            Ok(_) => Err(refused("no certificate in it".into())),
            Err(err) => Err(refused(err.to_string())),
        }
    }

    /// The engine's client settings, for a client that adds its own.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT_NAME);
        for root in self.extra.iter() {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
    }

    /// A client with the engine's settings and its own connection pool.
    pub fn client(&self) -> Result<reqwest::Client, RunError> {
        self.builder()
            .build()
            .map_err(|err| RunError::Transport(err.to_string()))
    }
}

/// The clients of one upstream component, each carrying at most `STREAMS_PER_CONNECTION` (100)
/// requests at a time: a request takes the first with room, and a new client (a new
/// connection) is made when none has. Over HTTP/1.1, where each request in flight has a
/// connection of its own anyway, this only splits the pool.
pub struct Lanes {
    trust: Trust,
    lanes: Mutex<Vec<(reqwest::Client, Arc<AtomicUsize>)>>,
    direct: Arc<direct::Direct>,
}

/// An upstream's answer: its status and headers, and its body as it arrives.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: AnswerBody,
    /// The reqwest client's place it took, if it went through one: keep it for as long as
    /// the body is read.
    pub lane: Option<Lane>,
}

/// The pieces of an answer's body, each as it arrives.
pub type AnswerBody =
    Pin<Box<dyn Stream<Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// Why a request got no answer.
pub enum Failed {
    /// What reqwest said.
    Client(reqwest::Error),
    /// A direct connection could not be made (`host` is `host:port`).
    Unreachable { host: String, detail: String },
    /// A direct connection failed once made.
    Broken(hyper::Error),
    /// No client could be made for it.
    NoClient(RunError),
}

/// A request's place on a client, given back when dropped.
pub struct Lane {
    client: reqwest::Client,
    in_flight: Arc<AtomicUsize>,
}

impl Lanes {
    /// The first client, trusting what `trust` says.
    pub fn new(trust: Trust) -> Result<Self, RunError> {
        Ok(Self {
            lanes: Mutex::new(vec![(trust.client()?, Arc::default())]),
            trust,
            direct: Arc::default(),
        })
    }

    /// A place for one more request.
    fn take(&self) -> Result<Lane, RunError> {
        let mut lanes = self.lanes.lock();
        let free = lanes
            .iter()
            .find(|(_, in_flight)| in_flight.load(Ordering::Relaxed) < STREAMS_PER_CONNECTION);
        let (client, in_flight) = match free {
            Some(lane) => lane.clone(),
            None => {
                let lane = (self.trust.client()?, Arc::default());
                lanes.push(lane.clone());
                lane
            }
        };
        in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Lane { client, in_flight })
    }

    /// A client to build requests with (any of them: [`Lanes::send`] picks the one that
    /// sends).
    pub fn builder(&self) -> reqwest::Client {
        self.lanes.lock()[0].0.clone()
    }

    /// Sends `request`: directly when it can go so ([`direct`]), else with reqwest, on the
    /// first client with room.
    pub async fn send(&self, request: reqwest::Request) -> Result<Answer, Failed> {
        if direct::eligible(&request) {
            if let direct::Sent::Answer(answer) = self.direct.send(&request).await? {
                return Ok(answer);
            }
        }
        let lane = self.take().map_err(Failed::NoClient)?;
        let mut response = lane.client.execute(request).await.map_err(Failed::Client)?;
        Ok(Answer {
            status: response.status(),
            headers: std::mem::take(response.headers_mut()),
            body: Box::pin(response.bytes_stream().map_err(Into::into)),
            lane: Some(lane),
        })
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The HTTP clients of the MCP SDK and of the trace exporters (reqwest 0.13, rustls without a
/// provider of its own) need a process-wide crypto provider: ring, as the engine's other HTTPS
/// uses. Call it before building one (the MCP component and the tracers do; a test or a bench
/// that uses the SDK's client too).
pub fn ensure_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_takes_the_first_client_with_room_and_gives_it_back() {
        let lanes = Lanes::new(Trust::default()).unwrap();
        let mut first: Vec<Lane> = (0..STREAMS_PER_CONNECTION)
            .map(|_| lanes.take().unwrap())
            .collect();
        let overflow = lanes.take().unwrap();
        assert_eq!(lanes.lanes.lock().len(), 2);
        assert!(!Arc::ptr_eq(&first[0].in_flight, &overflow.in_flight));
        // A place freed on the first client is taken again before the second's.
        first.pop();
        let again = lanes.take().unwrap();
        let lanes = lanes.lanes.lock();
        assert!(Arc::ptr_eq(&lanes[0].1, &again.in_flight));
        assert_eq!(lanes[0].1.load(Ordering::Relaxed), STREAMS_PER_CONNECTION);
        assert_eq!(lanes[1].1.load(Ordering::Relaxed), 1);
    }
}
