//! One run, driven to its end: the workflow runs, what it produces is kept in the task as it
//! comes (pieces in batches, bytes, or a value) within `controller.max_output`, a cancel stops
//! it, and the history records its start and its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::gather::Gathering;
use super::state::{BinaryOut, State, Task};
use crate::component::Binary;
use crate::metrics::{Metrics, RunEnd};
use crate::record::RunStore;
use crate::record::Status;
use crate::traces::RunSpans;
use crate::workflow::{Answerer, Asked, Engine, JobNews, RunOutput, RunRequest, TextStream, Watch};
use crate::RunError;

/// Runs the workflow of `task` to its end (or its cancellation), keeping the task's state and
/// the history up to date; an output past `max_output` bytes fails the run.
pub(super) async fn drive(
    engine: Arc<Engine>,
    request: RunRequest,
    task: Arc<Task>,
    store: Option<Arc<dyn RunStore>>,
    max_output: usize,
) {
    task.update(|state, _| state.status = Status::Processing);
    let metrics = engine.metrics();
    metrics.run_started(&task.workflow_id);
    let attendant = Attendant {
        task: Arc::clone(&task),
        store: store.clone(),
        saving: Mutex::new(None),
    };
    let spans = engine
        .traces()
        .run(&task.id, &task.workflow_id, task.traceparent.as_deref());
    if let Some(trace_id) = spans.trace_id() {
        let _ = task.trace_id.set(trace_id);
    }
    // The run is recorded as it starts (its trace id with it), without making the upstream
    // request wait for the disk.
    attendant.save_later(Recorded::Start);
    let producing = produce(&engine, &request, &attendant, Room::new(max_output), &spans);
    let outcome = tokio::select! {
        biased;
        () = task.cancel.cancelled() => None,
        outcome = producing => Some(outcome),
    };
    drop(request);
    attendant.saved().await;
    let status = settle(&task, outcome, engine.secrets());
    save(&store, &task, Recorded::End(status)).await;
    if spans.exporting() {
        let mut record = task.record(true);
        record.status = status;
        spans.end(&record, task.conversation_id.get().map(String::as_str));
    }
    task.release_input();
    end(&task, status, metrics);
}

/// Runs the workflow and keeps what it produces in the task; a value is returned, streamed
/// pieces and bytes are kept as they come.
async fn produce(
    engine: &Engine,
    request: &RunRequest,
    attendant: &Attendant,
    room: Room,
    spans: &RunSpans<'_>,
) -> Result<Option<Value>, RunError> {
    let task = &*attendant.task;
    let context = json!({ "task_id": task.id });
    let observer = |news: &JobNews<'_>| {
        spans.job(news);
        task.update(|state, _| {
            let value = news.value.map(|value| state.kept.keep(value, news.size));
            state.jobs.push(news.event(value));
        })
    };
    let watch = Watch {
        observer: &observer,
        usage: Arc::clone(&task.usage),
        answerer: attendant,
        traced: Some(spans),
    };
    // Boxed, here and for the first save: what they need lives only until the stream starts,
    // not beside each of thousands of streams for as long as it lasts.
    let output = Box::pin(engine.run_observed(request, context, watch)).await?;
    match output {
        RunOutput::Value(value) => Ok(Some(value)),
        RunOutput::Stream(pieces) => {
            let made = engine.metrics().pieces(&task.workflow_id);
            keep_pieces(task, pieces, room, &made).await.map(|()| None)
        }
        RunOutput::Bytes(binary) => keep_bytes(task, binary, room).await.map(|()| None),
    }
}

/// Keeps a stream's pieces in the task, a batch at a time (each batch wakes the listeners
/// once), counting them in `made`.
async fn keep_pieces(
    task: &Task,
    pieces: TextStream<'_>,
    mut room: Room,
    made: &prometheus_client::metrics::counter::Counter,
) -> Result<(), RunError> {
    task.update(|state, _| {
        state.is_stream = true;
    });
    let mut gathering = Gathering::new(pieces);
    while let Some(batch) = gathering.next().await {
        let mut failure = batch.failure;
        if let Some(over) = batch.pieces.iter().position(|p| !room.take(p.size())) {
            batch.pieces.truncate(over);
            failure = Some(room.exceeded());
        }
        if !batch.pieces.is_empty() {
            made.inc_by(batch.pieces.len() as u64);
            task.update(|state, elapsed| {
                state.first_chunk_ms.get_or_insert(elapsed);
                batch
                    .pieces
                    .drain(..)
                    .for_each(|piece| state.pieces.push(piece));
            });
        }
        if let Some(err) = failure {
            return Err(err);
        }
    }
    Ok(())
}

/// Keeps a binary output's chunks in the task as they come.
async fn keep_bytes(task: &Task, mut binary: Binary, mut room: Room) -> Result<(), RunError> {
    task.update(|state, _| {
        state.binary = Some(BinaryOut {
            content_type: binary.content_type.clone(),
            filename: binary.filename.take(),
            chunks: Vec::new(),
        });
    });
    while let Some(chunk) = binary.chunks.next().await {
        let chunk = chunk?;
        if !room.take(chunk.len()) {
            return Err(room.exceeded());
        }
        task.update(|state, elapsed| {
            state.first_chunk_ms.get_or_insert(elapsed);
            if let Some(out) = state.binary.as_mut() {
                out.chunks.push(chunk);
            }
        });
    }
    Ok(())
}

/// Keeps how the run ended (`None`: cancelled): its output or error, its timings; returns the
/// status it ends with. The status itself is set by [`end`], once the history has it: whoever
/// sees the run ended (a client that then reads the history, as the UI does) finds it there,
/// finished.
fn settle(
    task: &Task,
    outcome: Option<Result<Option<Value>, RunError>>,
    secrets: &[String],
) -> Status {
    let mut status = Status::Cancelled;
    task.change_quietly(|state, elapsed| {
        state.duration_ms = Some(elapsed);
        state.interrupt.clear();
        match outcome {
            None => {}
            Some(Ok(output)) => {
                status = Status::Completed;
                if !state.is_stream && state.binary.is_none() {
                    state.first_chunk_ms = Some(elapsed);
                }
                state.output = output;
            }
            Some(Err(err)) => {
                status = Status::Failed;
                state.error = Some(err.failure(secrets));
            }
        }
    });
    status
}

/// Ends the run with `status` and tells everyone. It is counted and logged under the same lock
/// that ends it: whoever sees it ended (a client may scrape right after) sees it counted.
fn end(task: &Task, status: Status, metrics: &Metrics) {
    task.update(|state, _| {
        state.status = status;
        state.ended = Some(Instant::now());
        report_end(task, state, metrics);
    });
}

/// What is left of a run's output allowance (`controller.max_output`), in bytes.
struct Room {
    left: usize,
    max: usize,
}

impl Room {
    fn new(max: usize) -> Self {
        Self { left: max, max }
    }

    /// Takes `bytes` from what is left; false, taking nothing, when they do not fit.
    fn take(&mut self, bytes: usize) -> bool {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }

    fn exceeded(&self) -> RunError {
        RunError::OutputTooLarge(self.max)
    }
}

/// The run's end in the metrics and the log: one line with its workflow, status, timings,
/// tokens and (redacted) error.
fn report_end(task: &Task, state: &State, metrics: &Metrics) {
    let ms = |ms: Option<i64>| Duration::from_millis(ms.unwrap_or(0).max(0) as u64);
    let streamed = (state.is_stream || state.binary.is_some())
        .then_some(state.first_chunk_ms)
        .flatten();
    let (status, duration_ms) = (state.status.as_str(), state.duration_ms);
    let usage = task.usage.count();
    let error = state.error.as_ref().map(|failure| failure.message.as_str());
    metrics.run_ended(
        &task.workflow_id,
        &RunEnd {
            status,
            duration: ms(duration_ms),
            first_piece: streamed.map(|first| ms(Some(first))),
            usage,
        },
    );
    tracing::info!(
        task = %task.id,
        workflow = %task.workflow_id,
        status,
        duration_ms,
        first_token_ms = streamed,
        prompt_tokens = usage.prompt_tokens,
        completion_tokens = usage.completion_tokens,
        request_id = task.request_id.as_deref(),
        error,
        "run ended"
    );
}

/// Which save of a run: the first records its input, the last its outcome (the status it
/// ends with); between them, it waits for a person.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Start,
    Interrupted,
    End(Status),
}

/// Publishes the points a run waits on, on its task; records the task in the history as it
/// starts and each time it waits, one save after another, the last done before the run's end
/// is recorded.
struct Attendant {
    task: Arc<Task>,
    store: Option<Arc<dyn RunStore>>,
    saving: Mutex<Option<JoinHandle<()>>>,
}

impl Answerer for Attendant {
    fn ask(&self, points: Vec<Asked>) {
        self.task.interrupt(points);
        self.save_later(Recorded::Interrupted);
    }
}

impl Attendant {
    /// Saves the task as it will then be, once the saves asked for before are done.
    fn save_later(&self, which: Recorded) {
        if self.store.is_none() {
            return;
        }
        let (task, store) = (Arc::clone(&self.task), self.store.clone());
        let mut saving = self.saving.lock();
        let before = saving.take();
        *saving = Some(tokio::spawn(async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            save(&store, &task, which).await;
        }));
    }

    /// Waits until what the history was given is saved.
    async fn saved(&self) {
        let last = self.saving.lock().take();
        if let Some(last) = last {
            let _ = last.await;
        }
    }
}

async fn save(store: &Option<Arc<dyn RunStore>>, task: &Task, which: Recorded) {
    if task.is_deleted() {
        return;
    }
    if let Some(store) = store {
        let mut record = task.record(!matches!(which, Recorded::End(_)));
        if which != Recorded::Start {
            record.jobs = task.job_events();
        }
        if let Recorded::End(status) = which {
            record.status = status;
        }
        if let Err(err) = store.save(&record).await {
            tracing::warn!(task = %task.id, "{err}");
        }
    }
}
