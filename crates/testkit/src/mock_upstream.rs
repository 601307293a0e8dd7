//! A mock OpenAI-compatible `/v1/chat/completions` on 127.0.0.1 with deterministic tokens,
//! an optional delay per token, and failures on demand (error status, a cut-off stream, a
//! stall after the headers). It records every request it receives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// What the mock does with the next requests.
#[derive(Debug, Clone)]
pub struct Behavior {
    pub tokens: Vec<String>,
    pub delay: Duration,
    /// Answer with this status and body instead of a stream.
    pub error: Option<(u16, String)>,
    /// Drop the connection after this many tokens.
    pub cut_after: Option<usize>,
    /// Send the headers, then nothing, forever.
    pub stall: bool,
    /// Answer with the words of the prompt instead of `tokens`.
    pub echo: bool,
    /// Send this many tokens, then nothing, forever.
    pub stall_after: Option<usize>,
    /// Send exactly this SSE body instead of events built from tokens.
    pub raw: Option<String>,
    /// The content type of the answer (default `text/event-stream; charset=utf-8`).
    pub content_type: Option<String>,
    /// Accept the request, then answer nothing at all, not even headers.
    pub silent: bool,
    /// Send `tokens` again and again, as fast as the client reads, forever.
    pub endless: bool,
    /// Send the headers, then nothing for this long before the first token (a model that
    /// thinks before it answers).
    pub first_after: Duration,
    /// Answer the first this many requests with this status and body, then as the rest says.
    pub failing_first: Option<(usize, u16, String)>,
}

impl Behavior {
    pub fn tokens(tokens: &[&str]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            delay: Duration::ZERO,
            error: None,
            cut_after: None,
            stall: false,
            echo: false,
            stall_after: None,
            raw: None,
            content_type: None,
            silent: false,
            endless: false,
            first_after: Duration::ZERO,
            failing_first: None,
        }
    }

    /// Fails the first `times` requests with `status` and `body` (an upstream that recovers).
    pub fn failing_first(mut self, times: usize, status: u16, body: &str) -> Self {
        self.failing_first = Some((times, status, body.to_string()));
        self
    }

    /// Waits `wait` after the headers before the first token.
    pub fn first_after(mut self, wait: Duration) -> Self {
        self.first_after = wait;
        self
    }

    /// Sends `token` again and again, as fast as the client takes it, and never ends.
    pub fn endless(token: &str) -> Self {
        Self {
            endless: true,
            ..Self::tokens(&[token])
        }
    }

    /// Answers `body` as it is, with this content type.
    pub fn body(content_type: &str, body: &str) -> Self {
        Self {
            content_type: Some(content_type.to_string()),
            ..Self::raw(body)
        }
    }

    /// Never answers.
    pub fn silent() -> Self {
        Self {
            silent: true,
            ..Self::tokens(&[])
        }
    }

    pub fn stall_after(mut self, tokens: usize) -> Self {
        self.stall_after = Some(tokens);
        self
    }

    pub fn raw(body: &str) -> Self {
        Self {
            raw: Some(body.to_string()),
            ..Self::tokens(&[])
        }
    }

    /// Replies with the prompt's words, one token each (" word" after the first).
    pub fn echo() -> Self {
        Self {
            echo: true,
            ..Self::tokens(&[])
        }
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn error(status: u16, body: &str) -> Self {
        Self {
            error: Some((status, body.to_string())),
            ..Self::tokens(&[])
        }
    }

    pub fn cut_after(mut self, tokens: usize) -> Self {
        self.cut_after = Some(tokens);
        self
    }

    pub fn stall() -> Self {
        Self {
            stall: true,
            ..Self::tokens(&[])
        }
    }
}

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    behavior: Mutex<Option<Behavior>>,
    requests: Mutex<Vec<Recorded>>,
    /// When the last stream sent its last byte.
    finished: Mutex<Option<Instant>>,
    /// Streams whose body is still being sent (a dropped connection ends one).
    open_streams: AtomicUsize,
}

/// A running mock; stops with the test process.
pub struct MockUpstream {
    /// Base URL to put in a config, ending in `/v1`.
    pub base_url: String,
    shared: Arc<Shared>,
}

impl MockUpstream {
    /// Starts the mock on a free port, on its own thread and runtime.
    pub fn start(behavior: Behavior) -> Self {
        Self::start_on(behavior, super::serve)
    }

    /// The same mock over HTTPS and HTTP/2 only, at most `max_streams` streams per connection
    /// (see [`super::serve_https_h2`]).
    pub fn start_https_h2(behavior: Behavior, max_streams: u32) -> Self {
        Self::start_on(behavior, |app| super::serve_https_h2(app, max_streams))
    }

    fn start_on(behavior: Behavior, serve: impl FnOnce(Router) -> String) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.behavior.lock().unwrap() = Some(behavior);
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/messages", post(anthropic_messages))
            .with_state(Arc::clone(&shared));
        let base_url = format!("{}/v1", serve(app));
        Self { base_url, shared }
    }

    pub fn set(&self, behavior: Behavior) {
        *self.shared.behavior.lock().unwrap() = Some(behavior);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn finished_at(&self) -> Option<Instant> {
        *self.shared.finished.lock().unwrap()
    }

    pub fn open_streams(&self) -> usize {
        self.shared.open_streams.load(Ordering::SeqCst)
    }
}

/// The SSE events of a reply, as OpenAI sends them.
pub fn events(tokens: &[String]) -> Vec<String> {
    openai_events(tokens, None)
}

/// The SSE events of a reply, as OpenAI sends them; with `prompt_tokens` (a request with
/// `stream_options: {include_usage: true}`) every chunk has `"usage": null` and the last one,
/// with no choices, the counts (one completion token per token sent).
pub fn openai_events(tokens: &[String], prompt_tokens: Option<u64>) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
            "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if prompt_tokens.is_some() {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut events =
        vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null).to_string()];
    events.extend(
        tokens
            .iter()
            .map(|t| chunk(json!({"content": t}), Value::Null).to_string()),
    );
    events.push(chunk(json!({}), json!("stop")).to_string());
    let mut last = json!({"id": "chatcmpl-mock", "choices": []});
    if let Some(prompt) = prompt_tokens {
        let completion = tokens.len() as u64;
        last["usage"] = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                               "total_tokens": prompt + completion});
    }
    events.push(last.to_string());
    events.push("[DONE]".to_string());
    events
}

/// The events of a reply as Anthropic's Messages API streams it (`event:` lines, a ping,
/// `content_block_delta` events carrying the text, the usage in `message_start` (5 input
/// tokens) and `message_delta` (one output token per token sent)).
pub fn anthropic_events(tokens: &[String]) -> Vec<(String, Value)> {
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_mock",
                   "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0}),
        ),
        ("ping", json!({"type": "ping"})),
    ];
    for token in tokens {
        let delta = json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": token}});
        events.push(("content_block_delta", delta));
    }
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
               "usage": {"output_tokens": tokens.len()}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    events
        .into_iter()
        .map(|(event, data)| (event.to_string(), data))
        .collect()
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared
        .requests
        .lock()
        .unwrap()
        .push(Recorded { headers, body });
    let behavior = shared.behavior.lock().unwrap().clone().expect("a behavior");
    let text: String = anthropic_events(&behavior.tokens)
        .into_iter()
        .map(|(event, data)| format!("event: {event}\r\ndata: {data}\r\n\r\n"))
        .collect();
    ([("content-type", "text/event-stream")], text).into_response()
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut behavior = shared.behavior.lock().unwrap().clone().expect("a behavior");
    if behavior.echo {
        let prompt = body["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_string();
        behavior.tokens = prompt
            .split(' ')
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    w.to_string()
                } else {
                    format!(" {w}")
                }
            })
            .collect();
    }
    let earlier = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(Recorded { headers, body });
        requests.len() - 1
    };
    if let Some((times, status, body)) = behavior.failing_first.take() {
        if earlier < times {
            behavior.error = Some((status, body));
        }
    }
    if behavior.silent {
        std::future::pending::<()>().await;
    }
    if let Some((status, body)) = behavior.error {
        let status = StatusCode::from_u16(status).unwrap();
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let content_type = behavior
        .content_type
        .clone()
        .unwrap_or_else(|| "text/event-stream; charset=utf-8".to_string());
    shared.open_streams.fetch_add(1, Ordering::SeqCst);
    let guard = OpenStream(Arc::clone(&shared));
    let stream = async_stream::stream! {
        let _guard = guard;
        if behavior.stall {
            std::future::pending::<()>().await;
        }
        if let Some(raw) = behavior.raw {
            yield Ok(Bytes::from(raw));
            *_guard.0.finished.lock().unwrap() = Some(Instant::now());
            return;
        }
        if !behavior.first_after.is_zero() {
            tokio::time::sleep(behavior.first_after).await;
        }
        let events = events(&behavior.tokens);
        if behavior.endless {
            loop {
                for event in &events[1..=behavior.tokens.len()] {
                    yield Ok::<_, std::io::Error>(Bytes::from(format!("data: {event}\n\n")));
                }
            }
        }
        for (i, event) in events.iter().enumerate() {
            if behavior.stall_after.is_some_and(|n| i > n) {
                std::future::pending::<()>().await;
            }
            // events[0] is the role chunk; token n is events[n].
            if behavior.cut_after.is_some_and(|n| i > n) {
                // Let the tokens already sent reach the client, then break the connection.
                tokio::time::sleep(Duration::from_millis(50)).await;
                yield Err(std::io::Error::other("mock cut the stream"));
                return;
            }
            if i > 0 && !behavior.delay.is_zero() {
                tokio::time::sleep(behavior.delay).await;
            }
            yield Ok::<_, std::io::Error>(Bytes::from(format!("data: {event}\n\n")));
        }
        *_guard.0.finished.lock().unwrap() = Some(Instant::now());
    };
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Counts a stream as open until its body is dropped (finished or disconnected).
struct OpenStream(Arc<Shared>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An upstream that answers every request with the headers and one token, then resets the
/// connection (TCP RST). Returns its base URL.
pub fn resetting_upstream() -> String {
    let base = super::listen("http", |listener| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let event = events(&["reset".to_string()])[1].clone();
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                let body = format!("data: {event}\n\n");
                let chunk = format!("{head}{:x}\r\n{body}\r\n", body.len());
                let _ = socket.write_all(chunk.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                // A zero linger makes the close a reset; blocking on drop is harmless here.
                #[allow(deprecated)]
                let _ = socket.set_linger(Some(Duration::ZERO));
                drop(socket);
            });
        }
    });
    format!("{base}/v1")
}
