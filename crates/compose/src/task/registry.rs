//! The tasks of a running server: start, look up, cancel, and shut down cleanly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::task::TaskTracker;

use super::drive::drive;
use super::state::{ResumeError, Task};
use crate::config::Limits;
use crate::record::{Failure, FailureKind, TaskView};
use crate::record::{RunStore, StoreError};
use crate::workflow::{Access, Engine};
use crate::RunError;

/// How often finished tasks are compacted and forgotten.
const TIDY_EVERY: Duration = Duration::from_secs(30);
/// How long after its end a task's pieces stay as they came (for clients attaching late).
const COMPACT_AFTER: Duration = Duration::from_secs(10);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Service is shutting down")]
    ShuttingDown,
    /// Refused by the gate: an unknown or private workflow, or a wrong input.
    #[error(transparent)]
    Refused(#[from] RunError),
}

impl StartError {
    /// The refusal as every door reports it (the REST API, the WebSocket, the web UI).
    pub fn failure(&self) -> Failure {
        match self {
            StartError::ShuttingDown => Failure::new(FailureKind::ShuttingDown, self.to_string()),
            StartError::Refused(err) => err.failure(&[]),
        }
    }
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
    /// must fit its schema. `request_id` is the asking request's, for the logs and the history;
    /// `traceparent` its W3C trace context, which the run's trace continues.
    pub fn start(
        &self,
        workflow: Option<&str>,
        input: Value,
        (request_id, traceparent): (Option<String>, Option<String>),
    ) -> Result<Arc<Task>, StartError> {
        if self.is_shutting_down() {
            return Err(StartError::ShuttingDown);
        }
        let request = self.engine.request(workflow, input, Access::Public)?;
        let task = Arc::new(Task::new(
            next_task_id(),
            request.workflow(),
            request.shared_input(),
            (request_id, traceparent),
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

    /// Answers an interrupted task's points (see [`Task::resume`]).
    pub fn resume(
        &self,
        id: &str,
        answers: Option<serde_json::Map<String, Value>>,
    ) -> Result<TaskView, ResumeError> {
        let task = self
            .get(id)
            .ok_or_else(|| ResumeError::NotFound(id.to_string()))?;
        task.resume(answers)
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

/// A new task id: a ULID, later than every earlier one, within the same millisecond too (a
/// plain ULID's random part is not): the history lists runs in the order of their ids.
fn next_task_id() -> String {
    static IDS: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let next = IDS.lock().generate();
    next.unwrap_or_else(|_| ulid::Ulid::new()).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_ids_follow_the_order_runs_start_in() {
        // Thousands in a few milliseconds: many share one.
        let ids: Vec<String> = (0..5000).map(|_| super::next_task_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
