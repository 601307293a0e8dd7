//! The one Server-Sent Events encoder: how a task's stream goes out over HTTP.
//!
//! Framing follows the original (0.4.120): every line of a piece becomes `data: <line>\n`
//! (leading spaces kept), then one `\n`. On failure after the first byte, one
//! `event: error` carrying `{"detail": ...}` closes the body (D3); success just ends it.

use std::sync::Arc;
use std::task::Poll;

use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use compose::config::KeepAlive;
use compose::metrics::Metrics;
use compose::task::{Follow, Status, Task};
use compose::AgentStep;
use tokio::time::Instant;

/// Most events sent in one write: a client that fell behind gets what is waiting in one
/// frame (and so one system call) instead of one per token, but never a frame without bound.
const EVENTS_PER_FRAME: usize = 256;
/// Frames up to this size are cut from a buffer each stream keeps; larger ones have their own.
const FRAME_ROOM: usize = 256;

/// Where events are written: a frame of the body, or one event's own string.
trait Out {
    fn put(&mut self, text: &str);
}

impl Out for String {
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl Out for BytesMut {
    fn put(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
}

/// Appends one piece of text as an SSE event to `out`.
fn push_event(out: &mut impl Out, piece: &str) {
    for line in piece.split('\n') {
        out.put("data: ");
        out.put(line);
        out.put("\n");
    }
    out.put("\n");
}

/// Appends one named event (`event: NAME`) whose data is `data`, framed like a piece.
fn push_named(out: &mut impl Out, name: &str, data: &str) {
    out.put("event: ");
    out.put(name);
    out.put("\n");
    push_event(out, data);
}

/// `body`, a stream of events, as the response that carries it.
pub fn event_stream(body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One event whose data is `data` (each of its lines a `data:` line).
pub fn event(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 8);
    push_event(&mut out, data);
    out
}

/// One named event (`event: NAME`) whose data is `data`, framed like a piece.
pub fn named(name: &str, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + name.len() + 16);
    push_named(&mut out, name, data);
    out
}

/// What an agent's steps become in an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// Each an event named for it: `text`, `message`, `tool_call`, `tool_result` (issue 26).
    Named,
    /// The original's bytes (`output_only`): each message as a `data:` event, nothing else.
    Original,
}

/// Appends what a client of the stream is told of `follow`: a piece as an event, an agent's
/// step as `steps` says, the points a run waits on as `event: interrupt` (their ids answer
/// them, `POST /tasks/{id}/resume`), a failed or cancelled end as the closing `event: error`;
/// nothing for the rest.
fn push_follow(out: &mut impl Out, follow: Follow, steps: Steps) {
    match follow {
        Follow::Piece(piece) => push_event(out, &piece),
        Follow::Step(step, text) => match steps {
            Steps::Named => push_named(out, step.name(), &text),
            Steps::Original if step == AgentStep::Message => push_event(out, &text),
            Steps::Original => {}
        },
        Follow::Interrupt(points) if !points.is_empty() => push_named(
            out,
            "interrupt",
            &serde_json::json!({ "interrupt": points }).to_string(),
        ),
        // A binary output is never followed as SSE (see `binary`).
        Follow::Bytes(_)
        | Follow::Job(_)
        | Follow::Interrupt(_)
        | Follow::End(Status::Completed, _) => {}
        Follow::End(status, error) => {
            let detail = error.map_or_else(|| format!("the run ended: {status}"), |f| f.message);
            push_named(
                out,
                "error",
                &serde_json::json!({ "detail": detail }).to_string(),
            );
        }
    }
}

/// The comment an event stream sends to say it is alive while its run says nothing (D23).
pub const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// When an event stream sends [`KEEP_ALIVE`]: the periods (none: never), and whether the first
/// goes out at once (the headers go out before the run's first piece, because it is slow).
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub periods: Option<KeepAlive>,
    pub comment_first: bool,
}

impl Liveness {
    /// The periods `periods`, the first comment after `first` of silence.
    pub fn after(periods: Option<KeepAlive>) -> Self {
        Self {
            periods,
            comment_first: false,
        }
    }
}

/// Streams a task's pieces (an agent's steps as `steps` says), the client counted in
/// `metrics` while it reads. When `owned`, the caller's leaving (the body being dropped before the end) cancels the task
/// and so the upstream request (D8).
pub fn response(
    task: Arc<Task>,
    (owned, steps): (bool, Steps),
    metrics: &Arc<Metrics>,
    liveness: Liveness,
) -> Response {
    let guard = owned.then(|| CancelOnDrop::new(Arc::clone(&task)));
    let id = task.id.clone();
    following(id, (task.follow(0), steps), guard, metrics, liveness)
}

/// Streams what `follow` yields of task `id` (a run here, or on another replica); `guard`
/// lives as long as the body.
pub fn following(
    id: String,
    (follow, steps): (impl futures::Stream<Item = Follow> + Send + 'static, Steps),
    guard: Option<CancelOnDrop>,
    metrics: &Arc<Metrics>,
    liveness: Liveness,
) -> Response {
    let client = metrics.sse_client();
    let mut follow = Box::pin(follow).fuse();
    // Whatever is ready goes out as one frame: hyper writes each frame with its own call.
    // Small frames (a token or a few) are cut from one buffer, which takes its room back once
    // they are written: such a frame costs no allocation of its own.
    let mut frame = BytesMut::new();
    let mut silence = Silence::new(liveness);
    let keep_alive = || Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE.as_bytes()))));
    let body = futures::stream::poll_fn(move |cx| {
        let _owner = (&guard, &client);
        if silence.as_mut().is_some_and(|s| s.opens(cx)) {
            return keep_alive();
        }
        for _ in 0..EVENTS_PER_FRAME {
            match follow.poll_next_unpin(cx) {
                Poll::Ready(Some(next)) => push_follow(&mut frame, next, steps),
                Poll::Ready(None) if frame.is_empty() => return Poll::Ready(None),
                Poll::Pending if frame.is_empty() => {
                    if silence.as_mut().is_some_and(|s| s.due(cx)) {
                        return keep_alive();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if frame.is_empty() {
            // As many events as a frame holds, none of them for the client: look again soon.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let out = frame.split().freeze();
        if out.len() > FRAME_ROOM {
            // A large frame (a client that fell behind): its buffer goes once written, rather
            // than staying with the stream for as long as it lasts.
            frame = BytesMut::new();
        }
        if let Some(silence) = silence.as_mut() {
            silence.spoke();
        }
        Poll::Ready(Some(Ok::<_, std::convert::Infallible>(out)))
    });
    let mut response = event_stream(Body::from_stream(body));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-task-id", value);
    }
    response
}

/// `stream` with a [`KEEP_ALIVE`] comment (`comment()`) when it has been silent: the first after
/// `first` (if nothing went out by then), then whenever nothing went out for half of `every`,
/// so that the stream is never silent longer than `every`. An item costs a flag: the one
/// timer ticks every half period, and only a tick reads the clock.
pub fn keep_alive<S, T>(
    stream: S,
    liveness: Liveness,
    comment: fn() -> T,
) -> impl Stream<Item = T> + Send + 'static
where
    S: Stream<Item = T> + Send + 'static,
    T: Send + 'static,
{
    let mut stream = Box::pin(stream);
    let mut silence = Silence::new(liveness);
    futures::stream::poll_fn(move |cx| {
        if silence.as_mut().is_some_and(|s| s.opens(cx)) {
            return Poll::Ready(Some(comment()));
        }
        match stream.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                if let Some(silence) = silence.as_mut() {
                    silence.spoke();
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if silence.as_mut().is_some_and(|s| s.due(cx)) => {
                Poll::Ready(Some(comment()))
            }
            Poll::Pending => Poll::Pending,
        }
    })
}

/// Whether an event stream has said anything lately.
struct Silence {
    periods: KeepAlive,
    /// Nothing went out since the timer was last set.
    quiet: bool,
    /// A comment goes out before anything else.
    comment_now: bool,
    /// Set once the stream first waits; it wakes the stream when it fires.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Silence {
    /// `None` when keep-alive is off.
    fn new(liveness: Liveness) -> Option<Self> {
        liveness.periods.map(|periods| Self {
            periods,
            quiet: true,
            comment_now: liveness.comment_first,
            timer: None,
        })
    }

    /// Whether the stream opens with a comment (now, once).
    fn opens(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        let opens = std::mem::take(&mut self.comment_now);
        if opens {
            self.arm(self.periods.every.0 / 2, cx);
        }
        opens
    }

    /// Something went out.
    fn spoke(&mut self) {
        self.quiet = false;
    }

    /// Sets the timer `after` from now (waking this task), and counts from there.
    fn arm(&mut self, after: std::time::Duration, cx: &mut std::task::Context<'_>) {
        let at = Instant::now() + after;
        let timer = match self.timer.as_mut() {
            Some(timer) => {
                timer.as_mut().reset(at);
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        let _ = timer.as_mut().poll(cx);
        self.quiet = true;
    }

    /// At a wait of the stream: whether a comment is due (the timer fired and nothing went
    /// out since it was set). Between ticks this is one look at the timer.
    fn due(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        match &self.timer {
            None => {
                self.arm(self.periods.first.0, cx);
                // Until the first tick, what goes out counts as nothing: the first comment
                // comes after `first` unless the stream spoke.
                false
            }
            Some(timer) if !timer.is_elapsed() => false,
            Some(_) => {
                let due = self.quiet;
                self.arm(self.periods.every.0 / 2, cx);
                due
            }
        }
    }
}

/// Cancels a task that has not ended when the one who started it goes away.
pub struct CancelOnDrop(Option<Arc<Task>>);

impl CancelOnDrop {
    pub fn new(task: Arc<Task>) -> Self {
        Self(Some(task))
    }

    /// Lets go without cancelling: someone else now answers for the task.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take().filter(|t| !t.status().is_terminal()) {
            task.request_cancel("the client disconnected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(follows: Vec<Follow>) -> String {
        framed_as(follows, Steps::Named)
    }

    fn framed_as(follows: Vec<Follow>, steps: Steps) -> String {
        let mut out = String::new();
        follows
            .into_iter()
            .for_each(|f| push_follow(&mut out, f, steps));
        out
    }

    #[test]
    fn an_agents_steps_are_named_events_or_the_originals_messages() {
        let step = |step, text: &str| Follow::Step(step, text.to_string());
        let follows = vec![
            step(AgentStep::Message, r#"{"role": "assistant"}"#),
            step(AgentStep::ToolCall, r#"{"type": "tool_call"}"#),
            step(AgentStep::ToolResult, r#"{"type": "tool_result"}"#),
            step(AgentStep::Text, "Two\nlines"),
            step(AgentStep::Message, r#"{"role": "tool"}"#),
        ];
        assert_eq!(
            framed(follows.clone()),
            "event: message\ndata: {\"role\": \"assistant\"}\n\n\
             event: tool_call\ndata: {\"type\": \"tool_call\"}\n\n\
             event: tool_result\ndata: {\"type\": \"tool_result\"}\n\n\
             event: text\ndata: Two\ndata: lines\n\n\
             event: message\ndata: {\"role\": \"tool\"}\n\n"
        );
        assert_eq!(
            framed_as(follows, Steps::Original),
            "data: {\"role\": \"assistant\"}\n\ndata: {\"role\": \"tool\"}\n\n"
        );
    }

    fn piece(text: &str) -> Follow {
        Follow::Piece(text.to_string())
    }

    #[test]
    fn frames_pieces_like_the_original() {
        assert_eq!(framed(vec![piece("Hello")]), "data: Hello\n\n");
        assert_eq!(framed(vec![piece(" world")]), "data:  world\n\n");
        assert_eq!(
            framed(vec![piece(" world\nline2")]),
            "data:  world\ndata: line2\n\n"
        );
        assert_eq!(
            framed(vec![piece("\n\nlast")]),
            "data: \ndata: \ndata: last\n\n"
        );
        assert_eq!(
            framed(vec![piece(" h\u{e9}llo \"q\"")]),
            "data:  h\u{e9}llo \"q\"\n\n"
        );
        assert_eq!(named("end", "{}"), "event: end\ndata: {}\n\n");
        assert_eq!(named("piece", "a\nb"), "event: piece\ndata: a\ndata: b\n\n");
    }

    #[test]
    fn a_batch_is_its_events_one_after_another_and_a_failure_closes_it() {
        let end = Follow::End(
            Status::Failed,
            Some(compose::record::Failure::new(
                compose::record::FailureKind::Stream,
                "upstream stream failed: reset",
            )),
        );
        assert_eq!(
            framed(vec![piece("a"), piece("b"), end]),
            "data: a\n\ndata: b\n\nevent: error\ndata: {\"detail\":\"upstream stream failed: reset\"}\n\n"
        );
        assert_eq!(
            framed(vec![piece("a"), Follow::End(Status::Completed, None)]),
            "data: a\n\n"
        );
        assert_eq!(
            framed(vec![Follow::End(Status::Cancelled, None)]),
            "event: error\ndata: {\"detail\":\"the run ended: cancelled\"}\n\n"
        );
    }

    #[test]
    fn a_run_that_waits_says_so_with_its_points_and_says_nothing_once_answered() {
        let point = compose::record::Point {
            id: "01P".into(),
            job_id: "send".into(),
            run_id: "01R".into(),
            phase: compose::record::Phase::Before,
            message: Some("Send it?".into()),
            metadata: None,
        };
        assert_eq!(
            framed(vec![piece("a"), Follow::Interrupt(vec![point]), Follow::Interrupt(vec![])]),
            "data: a\n\nevent: interrupt\ndata: {\"interrupt\":[{\"id\":\"01P\",\"job_id\":\"send\",\"run_id\":\"01R\",\"phase\":\"before\",\"message\":\"Send it?\"}]}\n\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_says_it_is_alive_after_first_and_is_never_silent_for_every() {
        use compose::config::Duration as Period;
        use std::time::Duration;
        let periods = KeepAlive {
            first: Period(Duration::from_secs(5)),
            every: Period(Duration::from_secs(15)),
        };
        let (sender, receiver) = futures::channel::mpsc::unbounded::<String>();
        let stream = keep_alive(receiver, Liveness::after(Some(periods)), || "#".to_string());
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let started = Instant::now();
        let collect = {
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(item) = stream.next().await {
                    seen.lock().push((started.elapsed().as_secs(), item));
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(12)).await;
        sender.unbounded_send("a".into()).unwrap();
        tokio::time::sleep(Duration::from_secs(40)).await;
        drop(sender);
        collect.await.unwrap();
        let seen: Vec<(u64, String)> = seen.lock().clone();
        // 5 s of silence, then one each 7.5 s without anything else: never 15 s of silence.
        let at = |item: &str| -> Vec<u64> {
            seen.iter()
                .filter(|(_, i)| i == item)
                .map(|(t, _)| *t)
                .collect()
        };
        assert_eq!(at("a"), [12]);
        assert_eq!(at("#"), [5, 20, 27, 35, 42, 50]);
        let mut last = 0;
        for (time, _) in &seen {
            assert!(time - last <= 15, "{seen:?}");
            last = *time;
        }
        // Off: the stream as it is.
        let items = keep_alive(
            futures::stream::iter(["x".to_string()]),
            Liveness::after(None),
            || "#".to_string(),
        )
        .collect::<Vec<_>>()
        .await;
        assert_eq!(items, ["x"]);
        // At once, when the headers go out before the run's first piece.
        let now = Liveness {
            periods: Some(periods),
            comment_first: true,
        };
        let items = keep_alive(futures::stream::iter(["x".to_string()]), now, || {
            "#".to_string()
        })
        .collect::<Vec<_>>()
        .await;
        assert_eq!(items, ["#", "x"]);
    }
}
