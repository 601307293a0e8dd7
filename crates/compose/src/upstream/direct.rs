//! HTTP/1.1 to a plain `http://` upstream (a local model server: vLLM, Ollama, llama.cpp all
//! answer HTTP/1.1) on hyper's own connection, driven by the task that reads the answer rather
//! than by a task of its own. With reqwest, each streamed event crossed three tasks: the
//! connection's task read it and handed it to the run's task, whose taking it woke the
//! connection's task again. Here the run's task reads the socket itself, so an event costs one
//! task wake-up (issue 28: 5 % fewer instructions per token). Its answer's head may take up
//! to [`READ_BUFFER`] bytes.
//!
//! Only what reqwest would send the same way goes here: an `http://` URL, a body already in
//! memory, no proxy in the environment. A redirect is left to reqwest to follow.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::task::AtomicWaker;
use futures::Stream;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use reqwest::header::{HeaderValue, ACCEPT, HOST, USER_AGENT};
use reqwest::Url;
use tokio::net::TcpStream;

use super::{Answer, Failed, CONNECT_TIMEOUT, USER_AGENT_NAME};

/// The read buffer of one connection, and so the most its answer's head may take (nginx's
/// proxy allows an upstream's head one page by default, `proxy_buffer_size`). Fixed: hyper's
/// adaptive buffer grows to hundreds of KiB under a fast answer, and read by the answer's own
/// task, a 32 MiB answer then held twice its size (`tests/limits.rs`).
pub const READ_BUFFER: usize = 8192;
/// How long a connection may wait unused for the next request to its upstream (reqwest's
/// default too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The most unused connections kept per upstream; past it, one that is given back is closed.
const IDLE_PER_UPSTREAM: usize = 256;

type Conn = Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One upstream connection: what sends on it, and what reads and writes its socket.
struct Held {
    sender: SendRequest<Full<Bytes>>,
    connection: Conn,
}

/// The unused connections to each upstream (`host:port`), the latest given back last.
#[derive(Default)]
pub(super) struct Direct {
    idle: Mutex<HashMap<String, Vec<(Instant, Held)>>>,
}

/// What sending directly came to.
pub(super) enum Sent {
    Answer(Answer),
    /// For reqwest to send: the upstream redirected (reqwest follows), or the URL's target is
    /// not one hyper takes.
    Elsewhere,
}

/// Whether `request` goes out directly: see the module's comment.
pub(super) fn eligible(request: &reqwest::Request) -> bool {
    request.url().scheme() == "http"
        && request.url().host().is_some()
        && request.body().is_none_or(|body| body.as_bytes().is_some())
        && !proxied()
}

/// Whether the environment names a proxy for plain HTTP, which reqwest would go through.
fn proxied() -> bool {
    static PROXIED: OnceLock<bool> = OnceLock::new();
    *PROXIED.get_or_init(|| {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    })
}

impl Direct {
    /// Sends `request` (which [`eligible`] accepted) on an unused connection to its upstream,
    /// or a new one, and gives its answer as it arrives.
    pub(super) async fn send(self: &Arc<Self>, request: &reqwest::Request) -> Result<Sent, Failed> {
        let url = request.url();
        let key = authority(url);
        let Some(mut hyper_request) = to_hyper(request, &key) else {
            return Ok(Sent::Elsewhere);
        };
        let mut reused = self.take(&key);
        loop {
            let (mut held, was_reused) = match reused.take() {
                Some(held) => (held, true),
                None => (connect(url, &key).await?, false),
            };
            let sending = held.sender.try_send_request(hyper_request);
            let mut sending = pin!(sending);
            let mut open = true;
            let answer = poll_fn(|cx| {
                if open && Pin::new(&mut held.connection).poll(cx).is_ready() {
                    open = false;
                }
                sending.as_mut().poll(cx)
            })
            .await;
            let response = match answer {
                Ok(response) => response,
                // A connection the upstream had closed while it waited: once more on a new one,
                // as the request did not go out.
                Err(mut err) if was_reused => match err.take_message() {
                    Some(unsent) => {
                        hyper_request = unsent;
                        continue;
                    }
                    None => return Err(Failed::Broken(err.into_error())),
                },
                Err(err) => return Err(Failed::Broken(err.into_error())),
            };
            if response.status().is_redirection()
                && response.headers().contains_key(reqwest::header::LOCATION)
            {
                return Ok(Sent::Elsewhere);
            }
            let (parts, body) = response.into_parts();
            let body = Driven::new(body, open.then_some(held), key, Arc::downgrade(self));
            return Ok(Sent::Answer(Answer {
                status: parts.status,
                headers: parts.headers,
                body: Box::pin(body),
                lane: None,
            }));
        }
    }

    /// The latest unused connection to `key` that is still open and ready.
    fn take(&self, key: &str) -> Option<Held> {
        let mut idle = self.idle.lock();
        let list = idle.get_mut(key)?;
        while let Some((since, mut held)) = list.pop() {
            if since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // What the upstream did meanwhile (closed it, say) is read now.
            let mut cx = Context::from_waker(Waker::noop());
            if Pin::new(&mut held.connection).poll(&mut cx).is_pending() && held.sender.is_ready() {
                return Some(held);
            }
        }
        None
    }

    /// Keeps `held` for the next request to `key`, unless enough are kept.
    fn give_back(&self, key: String, held: Held) {
        let mut idle = self.idle.lock();
        let list = idle.entry(key).or_default();
        list.retain(|(since, _)| since.elapsed() <= IDLE_TIMEOUT);
        if list.len() < IDLE_PER_UPSTREAM {
            list.push((Instant::now(), held));
        }
    }
}

/// `host:port` of an `http://` URL, as its `Host` header says it (the port left out when 80).
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// A new connection to `url`'s host, within the connect timeout.
async fn connect(url: &Url, key: &str) -> Result<Held, Failed> {
    let port = url.port_or_known_default().unwrap_or(80);
    let connecting = async {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await,
            Some(url::Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await,
            Some(url::Host::Domain(name)) => TcpStream::connect((name, port)).await,
            None => Err(std::io::ErrorKind::InvalidInput.into()),
        }
    };
    let unreachable = |detail: String| Failed::Unreachable {
        host: match url.port() {
            Some(_) => key.to_string(),
            None => format!("{key}:{port}"),
        },
        detail,
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return Err(unreachable(err.to_string())),
        Err(_) => return Err(unreachable("no answer within the connect timeout".into())),
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::Builder::new()
        .read_buf_exact_size(Some(READ_BUFFER))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(Failed::Broken)?;
    Ok(Held { sender, connection })
}

/// `request` as hyper sends it: origin-form target, `Host`, and the headers reqwest's client
/// would add.
fn to_hyper(request: &reqwest::Request, key: &str) -> Option<http::Request<Full<Bytes>>> {
    let url = request.url();
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = http::Uri::try_from(target).ok()?;
    let body = request
        .body()
        .and_then(|body| body.as_bytes())
        .map(Bytes::copy_from_slice)
        .unwrap_or_default();
    let mut out = http::Request::new(Full::new(body));
    *out.method_mut() = request.method().clone();
    *out.uri_mut() = target;
    let headers = out.headers_mut();
    headers.reserve(request.headers().len() + 3);
    if let Ok(host) = HeaderValue::from_str(key) {
        headers.insert(HOST, host);
    }
    for (name, value) in request.headers() {
        headers.append(name, value.clone());
    }
    headers
        .entry(USER_AGENT)
        .or_insert(HeaderValue::from_static(USER_AGENT_NAME));
    headers
        .entry(ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    Some(out)
}

/// An answer's body, read by its reader's task along with the connection it comes on. When it
/// has been read to its end, the connection is kept for the next request; dropped before, the
/// connection closes (and the upstream sees the caller leave).
struct Driven {
    reading: Reading,
    key: String,
    pool: std::sync::Weak<Direct>,
    relay: Arc<Relay>,
    /// `relay` as a waker, made once.
    waker: Waker,
}

/// The body and, until it closes, its connection.
struct Reading {
    body: Incoming,
    held: Option<Held>,
    ended: bool,
}

type Piece = Option<Result<Bytes, hyper::Error>>;

impl Driven {
    fn new(body: Incoming, held: Option<Held>, key: String, pool: std::sync::Weak<Direct>) -> Self {
        let relay = Arc::new(Relay::default());
        Self {
            reading: Reading {
                body,
                held,
                ended: false,
            },
            key,
            pool,
            waker: Waker::from(Arc::clone(&relay)),
            relay,
        }
    }
}

impl Reading {
    /// The body's next piece: what the connection has handed over, else what it reads now.
    /// `relay` tells whether the connection handed anything over (or ended) meanwhile.
    fn step(&mut self, cx: &mut Context<'_>, relay: &Relay) -> Poll<Piece> {
        // The body first: taking its last piece is what lets the connection read the next.
        if let Poll::Ready(next) = self.body_piece(cx) {
            return Poll::Ready(next);
        }
        let Some(held) = &mut self.held else {
            return Poll::Pending;
        };
        relay.state.store(POLLING, Ordering::SeqCst);
        // Done: closed, or failed (the body is told why).
        if Pin::new(&mut held.connection).poll(cx).is_ready() {
            self.held = None;
        }
        match relay.state.load(Ordering::SeqCst) {
            WOKEN => self.body_piece(cx),
            _ => Poll::Pending,
        }
    }

    fn body_piece(&mut self, cx: &mut Context<'_>) -> Poll<Piece> {
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                // Trailers, which an answer's reader has no use for, are passed over.
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
            }
        }
    }
}

/// How many times a poll goes round again when the connection and the body woke each other
/// during it, before it lets the task be woken instead (tokio's budget wakes a task it stops).
const ROUNDS: usize = 4;

impl Stream for Driven {
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.relay.task.register(cx.waker());
        let mut inner = Context::from_waker(&this.waker);
        for _ in 0..ROUNDS {
            this.relay.state.store(POLLING, Ordering::SeqCst);
            let next = this.reading.step(&mut inner, &this.relay);
            let woken = this.relay.state.swap(IDLE, Ordering::SeqCst) == WOKEN;
            if next.is_ready() || !woken {
                return next.map(|piece| piece.map(|piece| piece.map_err(Into::into)));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        let reading = &mut self.reading;
        if let (true, Some(held), Some(pool)) =
            (reading.ended, reading.held.take(), self.pool.upgrade())
        {
            pool.give_back(std::mem::take(&mut self.key), held);
        }
    }
}

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// The waker the connection and the body are polled with. The connection wakes it when the
/// body's reader takes a piece, and the body when the connection hands one over: both happen
/// inside the reader's own poll, where waking the task would only poll it again for nothing.
/// A wake during the poll is noted (the poll goes round again); one at any other time (the
/// socket became readable) wakes the task.
#[derive(Default)]
struct Relay {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Err(IDLE) =
            self.state
                .compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst)
        {
            self.task.wake();
        }
    }
}

#[cfg(test)]
mod tests;
