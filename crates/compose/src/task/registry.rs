//! The tasks of a running server: start, look up, cancel, and shut down cleanly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::task::TaskTracker;

use super::state::{BinaryOut, State, Status, Task, TaskView};
use crate::config::Limits;
use crate::error::redact;
use crate::metrics::{Metrics, RunEnd};
use crate::record::{RunStore, StoreError};
use crate::workflow::{Access, Engine, RunOutput, RunRequest};
use crate::RunError;

/// How often finished tasks are compacted and forgotten.
const TIDY_EVERY: Duration = Duration::from_secs(30);
/// How long after its end a task's pieces stay as they came (for clients attaching late).
const COMPACT_AFTER: Duration = Duration::from_secs(10);

/// Most pieces a run hands to its listeners at once, and the longest it gathers them.
const BATCH_PIECES: usize = 256;
const BATCH_TIME: Duration = Duration::from_millis(2);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Service is shutting down")]
    ShuttingDown,
    /// Refused by the gate: an unknown or private workflow, or a wrong input.
    #[error(transparent)]
    Refused(#[from] RunError),
}

/// Why a task could not be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("Task not found: {0}")]
    NotFound(String),
    #[error("Task '{0}' has already finished: {1}")]
    Finished(String, &'static str),
}

/// Every task of this process: the running ones, and finished ones for a while
/// ([`Limits`]), so that they can still be read at `/tasks/{id}`.
pub struct TaskRegistry {
    engine: Arc<Engine>,
    store: Option<Arc<dyn RunStore>>,
    tasks: Mutex<HashMap<String, Arc<Task>>>,
    limits: Limits,
    runners: TaskTracker,
    shutting_down: AtomicBool,
}

impl TaskRegistry {
    pub fn new(engine: Arc<Engine>, store: Option<Arc<dyn RunStore>>, limits: Limits) -> Self {
        Self {
            engine,
            store,
            tasks: Mutex::new(HashMap::new()),
            limits,
            runners: TaskTracker::new(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Tidies the finished tasks now and then, for as long as the registry lives.
    pub fn keep_tidy(self: &Arc<Self>) {
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TIDY_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                match registry.upgrade() {
                    Some(registry) => registry.tidy(),
                    None => return,
                }
            }
        });
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The bounds the registry keeps, and when streams say they are alive.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> Option<&Arc<dyn RunStore>> {
        self.store.as_ref()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Runs a workflow in the background, once the gate ([`Engine::request`]) has let the
    /// request through: the workflow (`None`: the default one) must be public and the input
    /// must fit its schema. `request_id` is the asking request's, for the logs and the history.
    pub fn start(
        &self,
        workflow: Option<&str>,
        input: Value,
        request_id: Option<String>,
    ) -> Result<Arc<Task>, StartError> {
        if self.is_shutting_down() {
            return Err(StartError::ShuttingDown);
        }
        let request = self.engine.request(workflow, input, Access::Public)?;
        let task = Arc::new(Task::new(
            ulid::Ulid::new().to_string(),
            request.workflow(),
            request.shared_input(),
            request_id,
        ));
        let over = {
            let mut tasks = self.tasks.lock();
            tasks.insert(task.id.clone(), Arc::clone(&task));
            tasks.len() > self.limits.finished_tasks
        };
        if over {
            self.tidy();
        }
        let runner = drive(
            Arc::clone(&self.engine),
            request,
            Arc::clone(&task),
            self.store.clone(),
            self.limits.max_output,
        );
        self.runners.spawn(runner);
        Ok(task)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.tasks.lock().get(id).cloned()
    }

    /// Cancels a task and waits until it has stopped.
    pub async fn cancel(&self, id: &str, reason: &str) -> Result<TaskView, CancelError> {
        let task = self.request_cancel(id, reason).map(|_| self.get(id))?;
        Ok(match task {
            Some(task) => task.finished().await,
            None => return Err(CancelError::NotFound(id.to_string())),
        })
    }

    /// Starts cancelling a task; returns its state at once.
    pub fn request_cancel(&self, id: &str, reason: &str) -> Result<TaskView, CancelError> {
        let task = self
            .get(id)
            .ok_or_else(|| CancelError::NotFound(id.to_string()))?;
        let status = task.status();
        if status.is_terminal() {
            return Err(CancelError::Finished(id.to_string(), status.as_str()));
        }
        task.request_cancel(reason);
        Ok(task.view())
    }

    /// Deletes a run from the history; a run still going is cancelled first and is not recorded
    /// again when it ends. False when there was no such run.
    pub async fn delete_run(&self, id: &str) -> Result<bool, StoreError> {
        let live = self.tasks.lock().remove(id);
        if let Some(task) = &live {
            task.mark_deleted();
            if !task.status().is_terminal() {
                task.request_cancel("the run was deleted");
                task.finished().await;
            }
        }
        let stored = match &self.store {
            Some(store) => store.delete(id).await?,
            None => false,
        };
        Ok(stored || live.is_some())
    }

    /// Refuses new runs, lets running ones finish for up to `grace`, cancels the rest, and
    /// returns once every run has been recorded.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.runners.close();
        if tokio::time::timeout(grace, self.runners.wait())
            .await
            .is_err()
        {
            let running: Vec<Arc<Task>> = self.tasks.lock().values().cloned().collect();
            for task in running.iter().filter(|t| !t.status().is_terminal()) {
                task.request_cancel("the server is shutting down");
            }
            self.runners.wait().await;
        }
    }

    /// Compacts the finished tasks nobody follows, forgets those that finished longer ago than
    /// the retention and, beyond the cap, the oldest (down to nine tenths of it, so that this
    /// runs seldom under a burst of runs).
    fn tidy(&self) {
        let now = Instant::now();
        let retention = self.limits.task_retention.0;
        let mut tasks = self.tasks.lock();
        tasks.retain(|_, task| {
            task.compact(COMPACT_AFTER);
            task.ended()
                .is_none_or(|ended| now.duration_since(ended) < retention)
        });
        let mut finished: Vec<(Instant, String)> = tasks
            .values()
            .filter_map(|task| task.ended().map(|ended| (ended, task.id.clone())))
            .collect();
        let cap = self.limits.finished_tasks;
        if finished.len() > cap {
            finished.sort_unstable();
            let keep = cap - cap / 10;
            for (_, id) in finished.iter().take(finished.len() - keep) {
                tasks.remove(id);
            }
        }
    }
}

/// Runs the workflow of `task` to its end (or its cancellation), keeping the task's state and
/// the history up to date; an output past `max_output` bytes fails the run.
async fn drive(
    engine: Arc<Engine>,
    request: RunRequest,
    task: Arc<Task>,
    store: Option<Arc<dyn RunStore>>,
    max_output: usize,
) {
    task.update(|state, _| state.status = Status::Processing);
    let metrics = engine.metrics();
    metrics.run_started(&task.workflow_id);
    let pieces_made = metrics.pieces(&task.workflow_id);
    let context = json!({ "task_id": task.id });
    let run = async {
        let observer = |event| task.update(|state, _| state.jobs.push(event));
        // Boxed, here and for the first save below: what they need lives only until the
        // stream starts, not beside each of thousands of streams for as long as it lasts.
        match Box::pin(engine.run_observed(&request, context, &observer, &task.usage)).await? {
            RunOutput::Value(value) => Ok::<_, RunError>(Some(value)),
            RunOutput::Stream(mut pieces) => {
                task.update(|state, _| {
                    state.is_stream = true;
                    state.status = Status::Streaming;
                });
                let mut first = true;
                let mut batch = Vec::new();
                let mut room = Room(max_output);
                while let Some(piece) = pieces.next().await {
                    // Take every piece that is already there, then wake the listeners once:
                    // under load this saves a wake-up and a write per token; it never waits
                    // for the upstream. What came before a failure is kept.
                    let until = Instant::now() + BATCH_TIME;
                    let mut next = Some(piece);
                    let mut failure = None;
                    loop {
                        while let Some(piece) = next.take() {
                            match piece {
                                Ok(piece) => batch.push(piece),
                                Err(err) => {
                                    failure = Some(err);
                                    break;
                                }
                            }
                            next = pieces.next().now_or_never().flatten();
                        }
                        // The first piece goes out at once: it is the one a user waits for.
                        if std::mem::take(&mut first)
                            || failure.is_some()
                            || batch.len() >= BATCH_PIECES
                            || Instant::now() >= until
                        {
                            break;
                        }
                        // The upstream's connection hands over one HTTP chunk (one token) at
                        // a time: let it, and every other ready task, run once, and take what
                        // that brought. A token that came alone goes out after one such round.
                        yield_to_ready_tasks().await;
                        next = pieces.next().now_or_never().flatten();
                        if next.is_none() {
                            break;
                        }
                    }
                    if let Some(over) = batch.iter().position(|piece| !room.take(piece.len())) {
                        batch.truncate(over);
                        failure = Some(RunError::OutputTooLarge(max_output));
                    }
                    if !batch.is_empty() {
                        pieces_made.inc_by(batch.len() as u64);
                        task.update(|state, elapsed| {
                            state.first_chunk_ms.get_or_insert(elapsed);
                            batch.iter().for_each(|piece| state.pieces.push(piece));
                        });
                        // A large batch (a stream that fell behind) does not keep its room
                        // for as long as the stream lasts.
                        batch.clear();
                        batch.shrink_to(super::KEEP_ROOM);
                    }
                    if let Some(err) = failure {
                        return Err(err);
                    }
                }
                Ok(None)
            }
            RunOutput::Bytes(mut binary) => {
                task.update(|state, _| {
                    state.binary = Some(BinaryOut {
                        content_type: binary.content_type.clone(),
                        filename: binary.filename.take(),
                        chunks: Vec::new(),
                    });
                });
                let mut room = Room(max_output);
                while let Some(chunk) = binary.chunks.next().await {
                    let chunk = chunk?;
                    if !room.take(chunk.len()) {
                        return Err(RunError::OutputTooLarge(max_output));
                    }
                    task.update(|state, elapsed| {
                        state.first_chunk_ms.get_or_insert(elapsed);
                        if let Some(out) = state.binary.as_mut() {
                            out.chunks.push(chunk);
                        }
                    });
                }
                Ok(None)
            }
        }
    };
    let run = async {
        tokio::select! {
            biased;
            () = task.cancel.cancelled() => None,
            outcome = run => Some(outcome),
        }
    };
    // The run is recorded as it starts, without making the upstream request wait for the disk.
    let ((), outcome) = tokio::join!(Box::pin(save(&store, &task, Recorded::Start)), run);
    drop(request);
    let secrets = engine.secrets();
    // The end is recorded before anyone hears of it, so that a listener that then reads the
    // history (the UI does) finds the run there, finished. It is counted and logged under the
    // same lock that ends it: whoever sees it ended (a client may scrape right after) sees it
    // counted.
    task.change_quietly(|state, elapsed| {
        state.duration_ms = Some(elapsed);
        state.ended = Some(Instant::now());
        match outcome {
            None => state.status = Status::Cancelled,
            Some(Ok(output)) => {
                state.status = Status::Completed;
                if !state.is_stream && state.binary.is_none() {
                    state.first_chunk_ms = Some(elapsed);
                }
                state.output = output;
            }
            Some(Err(err)) => {
                state.status = Status::Failed;
                state.http_status = err.http_status();
                state.error = Some(redact(&err.to_string(), secrets));
            }
        }
        report_end(&task, state, metrics);
    });
    save(&store, &task, Recorded::End).await;
    task.release_input();
    task.notify();
}

/// What is left of a run's output allowance (`controller.max_output`), in bytes.
struct Room(usize);

impl Room {
    /// Takes `bytes` from what is left; false, taking nothing, when they do not fit.
    fn take(&mut self, bytes: usize) -> bool {
        match self.0.checked_sub(bytes) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => false,
        }
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
    let error = state.error.as_deref();
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

/// Which save of a run: the first records its input, the last its outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Start,
    End,
}

async fn save(store: &Option<Arc<dyn RunStore>>, task: &Task, which: Recorded) {
    if task.is_deleted() {
        return;
    }
    if let Some(store) = store {
        if let Err(err) = store.save(&task.record(which == Recorded::Start)).await {
            tracing::warn!(task = %task.id, "{err}");
        }
    }
}

/// Returns after every task that is ready to run has run once: this one goes to the back of
/// the scheduler's queue (tokio's `yield_now` would wait for the next poll of the I/O driver).
async fn yield_to_ready_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}
