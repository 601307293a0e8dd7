//! One task's state and the ways to watch it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::pieces::Pieces;
use crate::media::Blob;
use crate::metrics::Usage;
use crate::record::{
    Failure, FailureKind, JobEvent, Kept, Output, Point, RunRecord, Status, TaskView,
};
use crate::workflow::WorkflowPlan;
use crate::workflow::{AgentStep, Asked};

/// Why a task could not be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("Task not found: {0}")]
    NotFound(String),
    #[error("Task '{0}' is not in interrupted state (current: {1})")]
    NotInterrupted(String, Status),
}

/// What a listener sees, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Follow {
    /// A piece of streamed text.
    Piece(String),
    /// A step of an agent's work, in order with its text: the text itself, or the JSON of a
    /// message or block (see [`AgentStep`]).
    Step(AgentStep, String),
    /// A piece of a binary output.
    Bytes(Bytes),
    /// A job started or ended.
    Job(JobEvent),
    /// The points the run waits on changed: these are left (none: it goes on).
    Interrupt(Vec<Point>),
    /// The run ended: how, and why when it failed or was cancelled.
    End(Status, Option<Failure>),
}

impl Follow {
    /// The text it adds to the answer: a piece, or an agent's text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Follow::Piece(text) | Follow::Step(AgentStep::Text, text) => Some(text),
            _ => None,
        }
    }
}

/// What the output of a run turned out to be, once it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Text pieces: an SSE stream.
    Text,
    /// Bytes with this content type (and file name): a body of that type.
    Bytes {
        content_type: String,
        filename: Option<String>,
    },
    /// One value, or none: the run's state says.
    Value,
}

/// A binary output: its type, and its pieces so far.
#[derive(Debug)]
pub(super) struct BinaryOut {
    pub content_type: String,
    pub filename: Option<String>,
    pub chunks: Vec<Bytes>,
}

impl BinaryOut {
    /// The bytes as one value, a data URI (see [`crate::media`]).
    fn data_uri(&self) -> String {
        Blob::received(
            &self.content_type,
            self.filename.clone(),
            self.chunks.concat(),
        )
        .to_data_uri()
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub status: Status,
    pub is_stream: bool,
    pub binary: Option<BinaryOut>,
    /// What happened to the jobs, in order.
    pub jobs: Vec<JobEvent>,
    /// What is left of the room for the jobs' values.
    pub kept: Kept,
    /// The points the run waits on (published, not answered yet).
    pub interrupt: Vec<Asked>,
    /// Counts the changes to `interrupt`, for followers.
    pub interrupt_changes: u64,
    /// The run's input, until the run is recorded finished (then only the history needs it).
    pub input: Option<Arc<Value>>,
    pub pieces: Pieces,
    pub output: Option<Value>,
    pub error: Option<Failure>,
    pub first_chunk_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// When the run ended, for how long the task is kept.
    pub ended: Option<Instant>,
}

/// One run of a workflow.
pub struct Task {
    pub id: String,
    pub workflow_id: String,
    /// Whether the workflow's output is a stream (its schema says so, before the run does).
    pub streams: bool,
    started_at: i64,
    started: Instant,
    pub(super) state: Mutex<State>,
    changed: watch::Sender<u64>,
    pub(super) cancel: CancellationToken,
    /// Deleted from the history: never to be recorded again.
    deleted: AtomicBool,
    /// The `X-Request-Id` of the request that started it.
    pub request_id: Option<String>,
    /// The `traceparent` of the request that started it: its trace goes on in the run's.
    pub traceparent: Option<String>,
    /// The trace the run is exported as, once it has started (`tracer:`).
    pub trace_id: std::sync::OnceLock<String>,
    /// The conversation it is a turn of, when a chat started it (its trace says so).
    pub conversation_id: std::sync::OnceLock<String>,
    /// The tokens its upstreams report, as they do.
    pub usage: Arc<Usage>,
}

impl Task {
    pub(super) fn new(
        id: String,
        workflow: &WorkflowPlan,
        input: Arc<Value>,
        (request_id, traceparent): (Option<String>, Option<String>),
    ) -> Self {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            id,
            workflow_id: workflow.id.clone(),
            streams: workflow.streams(),
            started_at,
            started: Instant::now(),
            state: Mutex::new(State {
                status: Status::Pending,
                is_stream: false,
                binary: None,
                jobs: Vec::new(),
                kept: Kept::default(),
                interrupt: Vec::new(),
                interrupt_changes: 0,
                input: Some(input),
                pieces: Pieces::default(),
                output: None,
                error: None,
                first_chunk_ms: None,
                duration_ms: None,
                ended: None,
            }),
            changed: watch::channel(0).0,
            cancel: CancellationToken::new(),
            deleted: AtomicBool::new(false),
            request_id,
            traceparent,
            trace_id: std::sync::OnceLock::new(),
            conversation_id: std::sync::OnceLock::new(),
            usage: Arc::default(),
        }
    }

    /// Applies `change` to the state and wakes every listener.
    pub(super) fn update(&self, change: impl FnOnce(&mut State, i64)) {
        self.change_quietly(change);
        self.notify();
    }

    /// Applies `change` without waking anyone yet (see [`Task::notify`]).
    pub(super) fn change_quietly(&self, change: impl FnOnce(&mut State, i64)) {
        let elapsed = self.started.elapsed().as_millis() as i64;
        let mut state = self.state.lock();
        change(&mut state, elapsed);
    }

    /// Wakes every listener to look at the state again.
    pub(super) fn notify(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    /// Marks the task as being cancelled and stops its run (and so its upstream request).
    pub fn request_cancel(&self, reason: &str) {
        self.update(|state, _| {
            // A run that has settled (its end being recorded) keeps the outcome it has.
            let settled = state.duration_ms.is_some();
            if !state.status.is_terminal() && !settled {
                state.status = Status::Cancelling;
                state.error = Some(Failure::new(
                    FailureKind::Cancelled,
                    format!("cancelled: {reason}"),
                ));
            }
        });
        self.cancel.cancel();
    }

    /// Marks the run as deleted from the history, so that its end is not recorded.
    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    pub fn status(&self) -> Status {
        self.state.lock().status
    }

    /// The task as the API shows it; a finished stream shows its text as the output (D4).
    pub fn view(&self) -> TaskView {
        self.record(false).into_view()
    }

    /// The task as it was when accepted: pending, nothing produced yet (what a request that
    /// does not wait is answered, whatever the run has done since).
    pub fn accepted(&self) -> TaskView {
        TaskView {
            task_id: self.id.clone(),
            status: Status::Pending,
            workflow_id: self.workflow_id.clone(),
            interrupt: Vec::new(),
            output: None,
            error: None,
            trace_id: None,
        }
    }

    /// Milliseconds from the start to the first piece, and to the end, once known.
    pub fn timings(&self) -> (Option<i64>, Option<i64>) {
        let state = self.state.lock();
        (state.first_chunk_ms, state.duration_ms)
    }

    /// The history record of the task as it stands; the input (which may be large) only when
    /// asked for: a store keeps the input it got first.
    pub fn record(&self, with_input: bool) -> RunRecord {
        let state = self.state.lock();
        let output = if state.is_stream {
            Some(Output::Text(state.pieces.text().into_owned()))
        } else if let Some(binary) = &state.binary {
            Some(Output::Bytes(binary.data_uri()))
        } else {
            state.output.clone().map(Output::Json)
        };
        RunRecord {
            task_id: self.id.clone(),
            workflow_id: self.workflow_id.clone(),
            input: state
                .input
                .as_deref()
                .filter(|_| with_input)
                .cloned()
                .unwrap_or(Value::Null),
            output,
            status: state.status,
            error: state.error.clone(),
            started_at: self.started_at,
            first_chunk_ms: state.first_chunk_ms,
            duration_ms: state.duration_ms,
            request_id: self.request_id.clone(),
            trace_id: self.trace_id.get().cloned(),
            usage: self.usage.count().reported(),
            uploads: Vec::new(),
            interrupt: state.interrupt.iter().map(|a| a.point.clone()).collect(),
            // Given by the saves that keep them (see `drive`): a view does not need them.
            jobs: Vec::new(),
        }
    }

    /// What happened to its jobs so far.
    pub fn job_events(&self) -> Vec<JobEvent> {
        self.state.lock().jobs.clone()
    }

    /// When the run started, in milliseconds since the Unix epoch.
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// When the run ended, if it has.
    pub fn ended(&self) -> Option<Instant> {
        self.state.lock().ended
    }

    /// Lets go of the input once the run is recorded finished: the history has it.
    pub(super) fn release_input(&self) {
        self.state.lock().input = None;
    }

    /// Joins the pieces of a run that ended at least `after` ago and that nobody follows, so
    /// that a finished task costs little. (A client replaying it later gets its text in one
    /// piece; those that follow a run as it ends see every piece as it came.)
    pub(super) fn compact(&self, after: std::time::Duration) {
        if self.changed.receiver_count() > 0 {
            return;
        }
        let mut state = self.state.lock();
        if state.ended.is_none_or(|ended| ended.elapsed() < after) {
            return;
        }
        state.pieces.join();
        if let Some(binary) = state.binary.as_mut().filter(|b| b.chunks.len() > 1) {
            binary.chunks = vec![Bytes::from(binary.chunks.concat())];
        }
    }

    /// Waits until the output is known to be a stream or bytes with a first piece, or the
    /// task ended, and says which shape the response should take.
    pub async fn first_output(&self) -> Shape {
        let mut changes = self.changed.subscribe();
        loop {
            {
                let state = self.state.lock();
                let ended = state.status.is_terminal();
                // A stream that ended without a piece is still a (empty) stream; one that
                // failed before its first piece is an error.
                let empty_ok = state.status == Status::Completed;
                if let Some(binary) = &state.binary {
                    if !binary.chunks.is_empty() || empty_ok {
                        return Shape::Bytes {
                            content_type: binary.content_type.clone(),
                            filename: binary.filename.clone(),
                        };
                    }
                }
                if state.is_stream && (!state.pieces.is_empty() || empty_ok) {
                    return Shape::Text;
                }
                if ended || state.status == Status::Interrupted {
                    return Shape::Value;
                }
            }
            if changes.changed().await.is_err() {
                return Shape::Value;
            }
        }
    }

    /// How many pieces of streamed text it has so far: where a listener that has seen them
    /// all follows from (a resumed call that reports the pieces still to come).
    pub fn pieces_so_far(&self) -> usize {
        self.state.lock().pieces.len()
    }

    /// Waits until the task has ended.
    pub async fn finished(&self) -> TaskView {
        self.until(Status::is_terminal).await
    }

    /// Waits until the task has ended or waits for a person.
    pub async fn settled(&self) -> TaskView {
        self.until(|status| status.is_terminal() || status == Status::Interrupted)
            .await
    }

    async fn until(&self, reached: impl Fn(Status) -> bool) -> TaskView {
        let mut changes = self.changed.subscribe();
        loop {
            if reached(self.status()) {
                return self.view();
            }
            if changes.changed().await.is_err() {
                return self.view();
            }
        }
    }

    /// The run waits on `points` (published together): the task is interrupted until they
    /// are answered.
    pub(super) fn interrupt(&self, points: Vec<Asked>) {
        let jobs: Vec<&str> = points.iter().map(|a| a.point.job_id.as_str()).collect();
        tracing::info!(task = %self.id, workflow = %self.workflow_id, ?jobs, "run interrupted");
        self.update(|state, _| {
            if state.status == Status::Processing {
                state.status = Status::Interrupted;
            }
            state.interrupt.extend(points);
            state.interrupt_changes += 1;
        });
    }

    /// Answers the points named in `answers` (none: every point, with null); the run goes
    /// on once none is left. Unknown ids are passed over (as the original does).
    pub fn resume(
        &self,
        answers: Option<serde_json::Map<String, Value>>,
    ) -> Result<TaskView, ResumeError> {
        {
            let mut state = self.state.lock();
            if state.status != Status::Interrupted {
                return Err(ResumeError::NotInterrupted(self.id.clone(), state.status));
            }
            let points = std::mem::take(&mut state.interrupt);
            for asked in points {
                let answer = match &answers {
                    None => Value::Null,
                    Some(answers) => match answers.get(&asked.point.id) {
                        Some(answer) => answer.clone(),
                        None => {
                            state.interrupt.push(asked);
                            continue;
                        }
                    },
                };
                // A run that stopped waiting (cancelled) needs no answer.
                let _ = asked.answer.send(answer);
            }
            if state.interrupt.is_empty() {
                state.status = Status::Processing;
            }
            state.interrupt_changes += 1;
        }
        self.notify();
        Ok(self.view())
    }

    /// Every piece produced from `from` on, then the end: replays what exists and follows.
    /// A follower copies at most [`FOLLOW_ROOM`] bytes of what is new at a time (and takes
    /// more once its reader has taken those), so that a slow reader holds no copy of its own
    /// of what it has not read yet: the task's pieces are the one copy.
    pub fn follow(
        self: &std::sync::Arc<Self>,
        from: usize,
    ) -> impl Stream<Item = Follow> + Send + 'static {
        let task = std::sync::Arc::clone(self);
        async_stream::stream! {
            let mut changes = task.changed.subscribe();
            let mut next = from;
            let mut next_job = 0;
            let mut interrupt_changes = 0;
            // What is new at each wake, taken under the lock; kept from wake to wake.
            let mut ready = Vec::new();
            loop {
                let (more, end) = {
                    let state = task.state.lock();
                    let jobs = state.jobs.get(next_job..).unwrap_or_default();
                    next_job += jobs.len();
                    ready.extend(jobs.iter().cloned().map(Follow::Job));
                    // Every change is told, the last (none left) too, even once the run ended.
                    if state.interrupt_changes != interrupt_changes {
                        interrupt_changes = state.interrupt_changes;
                        let points = state.interrupt.iter().map(|a| a.point.clone()).collect();
                        ready.push(Follow::Interrupt(points));
                    }
                    let more = match &state.binary {
                        Some(binary) => take_within(
                            binary.chunks.get(next..).unwrap_or_default().iter(),
                            |chunk| chunk.len(),
                            |chunk| Follow::Bytes(chunk.clone()),
                            &mut ready,
                        ),
                        None => take_within(
                            state.pieces.since(next),
                            |(_, piece)| piece.len(),
                            |(step, piece)| match step {
                                None => Follow::Piece(piece.to_string()),
                                Some(step) => Follow::Step(step, piece.to_string()),
                            },
                            &mut ready,
                        ),
                    };
                    let end = (!more && state.status.is_terminal())
                        .then(|| (state.status, state.error.clone()));
                    (more, end)
                };
                for piece in ready.drain(..) {
                    if !matches!(piece, Follow::Job(_) | Follow::Interrupt(_)) {
                        next += 1;
                    }
                    yield piece;
                }
                // Room for a few at a time is kept; a follower that fell behind and took
                // hundreds at once does not keep room for as many for as long as it follows.
                ready.shrink_to(super::KEEP_ROOM);
                if let Some((status, error)) = end {
                    yield Follow::End(status, error);
                    return;
                }
                if !more && changes.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The most of a task's output a follower copies at once (one item more when a single one
/// is larger).
const FOLLOW_ROOM: usize = 64 * 1024;

/// Moves items into `ready` as `follow` makes them, until they add up to [`FOLLOW_ROOM`]
/// bytes (at least one); true when some were left for later.
fn take_within<T>(
    items: impl Iterator<Item = T>,
    size: impl Fn(&T) -> usize,
    follow: impl Fn(T) -> Follow,
    ready: &mut Vec<Follow>,
) -> bool {
    let mut room = FOLLOW_ROOM;
    for (taken, item) in items.enumerate() {
        let bytes = size(&item);
        if taken > 0 && bytes > room {
            return true;
        }
        room = room.saturating_sub(bytes);
        ready.push(follow(item));
    }
    false
}
