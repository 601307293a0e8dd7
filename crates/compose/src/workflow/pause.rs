//! Pauses for a person (spec §14): a job stops before or after its work at an interrupt point
//! and waits for its answer (null: go on as it was; anything else replaces the job's input, or
//! its result). The points a run waits on are published together once nothing else in the run
//! is at work (§14.2), to whoever answers them: the task (the API, the web UI) or the terminal.
//! Nested workflows share their parent's pauses, so their points surface on the parent's task.

use std::future::Future;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::binding::operators::Comparison;
use crate::binding::{Binding, Scope};
use crate::config;
use crate::error::{Redactor, RunError};
use crate::record::{Phase, Point};

/// Who answers a run's points.
pub trait Answerer: Send + Sync {
    /// The run waits on `points`, published together; each is answered through its sender.
    /// A sender dropped unanswered fails the job that waits on it.
    fn ask(&self, points: Vec<Asked>);
}

/// A point the run waits on, and where its answer goes.
#[derive(Debug)]
pub struct Asked {
    pub point: Point,
    pub answer: oneshot::Sender<Value>,
}

/// Answers every point with null at once: for runs nobody attends to.
pub struct GoOn;

impl Answerer for GoOn {
    fn ask(&self, points: Vec<Asked>) {
        for asked in points {
            // A run that stopped waiting has nothing to be told.
            let _ = asked.answer.send(Value::Null);
        }
    }
}

/// A job's pauses, compiled.
pub struct Interrupt {
    before: Option<Stop>,
    after: Option<Stop>,
}

/// One pause, compiled: when it holds, and what the person is told.
struct Stop {
    condition: Option<(Comparison, Binding, Binding)>,
    message: Option<Binding>,
    metadata: Option<Binding>,
}

impl Interrupt {
    /// A job's `interrupt`, its templates compiled (none when it pauses nowhere).
    pub(super) fn compile(written: &config::Interrupts, job: &str) -> Result<Option<Self>, String> {
        let template = |value: &Value, field: &str| {
            Binding::compile(value).map_err(|err| format!("job '{job}': interrupt: {field}: {err}"))
        };
        let stop = |pause: &Option<config::Pause>| -> Result<Option<Stop>, String> {
            let Some(pause) = pause else { return Ok(None) };
            let condition = match &pause.condition {
                Some(condition) => {
                    let operator = condition.operator.as_deref().unwrap_or("eq");
                    let comparison = Comparison::parse(operator).ok_or_else(|| {
                        format!("job '{job}': interrupt: unknown operator '{operator}'")
                    })?;
                    let input = template(&condition.input, "condition.input")?;
                    Some((
                        comparison,
                        input,
                        template(&condition.value, "condition.value")?,
                    ))
                }
                None => None,
            };
            let message = pause.message.as_ref().map(|m| Value::String(m.clone()));
            Ok(Some(Stop {
                condition,
                message: message.map(|m| template(&m, "message")).transpose()?,
                metadata: pause
                    .metadata
                    .as_ref()
                    .map(|m| template(m, "metadata"))
                    .transpose()?,
            }))
        };
        let interrupt = Self {
            before: stop(&written.before)?,
            after: stop(&written.after)?,
        };
        Ok((interrupt.before.is_some() || interrupt.after.is_some()).then_some(interrupt))
    }

    pub(super) fn pauses_after(&self) -> bool {
        self.after.is_some()
    }
}

/// What a run's pauses share: who answers, how many of its jobs are at work, and the points
/// entered since the last were published.
pub(super) struct Pauses<'a> {
    answerer: &'a dyn Answerer,
    state: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    working: usize,
    unpublished: Vec<Asked>,
}

impl<'a> Pauses<'a> {
    pub fn new(answerer: &'a dyn Answerer) -> Self {
        Self {
            answerer,
            state: Mutex::default(),
        }
    }

    /// Counts a job at work until the guard is dropped (or idles).
    pub fn working(&self) -> Working<'_> {
        self.state.lock().working += 1;
        Working {
            pauses: self,
            counted: true,
        }
    }

    /// Called when the run cannot go on by itself for now: publishes the points entered since
    /// the last publication if no job is at work (they are all parked, or waiting on jobs
    /// inside them that are).
    pub fn settle(&self) {
        let points = {
            let mut state = self.state.lock();
            if state.working > 0 || state.unpublished.is_empty() {
                return;
            }
            std::mem::take(&mut state.unpublished)
        };
        self.answerer.ask(points);
    }

    /// Enters `point` and waits for its answer.
    pub async fn ask(&self, point: Point) -> Result<Value, RunError> {
        let (answer, answered) = oneshot::channel();
        let job = point.job_id.clone();
        // The wait is a span of the job's (or its agent iteration's), when traced.
        let waiting = crate::traces::Inner::start(
            || format!("interrupt {job}"),
            || {
                vec![
                    opentelemetry::KeyValue::new("model_compose.job_id", job.clone()),
                    opentelemetry::KeyValue::new("model_compose.point_id", point.id.clone()),
                    opentelemetry::KeyValue::new("model_compose.phase", point.phase.as_str()),
                ]
            },
        );
        self.state.lock().unpublished.push(Asked { point, answer });
        answered.await.map_err(|_| {
            let message = format!("job '{job}' was waiting for an answer that will not come");
            waiting.failed(&message);
            RunError::Flow(message)
        })
    }

    /// Pauses a job at `phase` when its `interrupt` says to, and gives the person's answer
    /// (none: go on as it was). Its templates see `scope` and `${job.input}` (and, after,
    /// `${job.output}`) as `about` has them.
    pub async fn at(
        &self,
        (interrupt, job, run_id): (&Interrupt, &str, &str),
        phase: Phase,
        (fetcher, redactor, scope, about): (&crate::fetch::Fetcher, &Redactor, &Scope<'_>, &Value),
        working: &mut Working<'_>,
    ) -> Result<Option<Value>, RunError> {
        let stop = match phase {
            Phase::Before => &interrupt.before,
            Phase::After => &interrupt.after,
        };
        let Some(stop) = stop else { return Ok(None) };
        let scope = scope.clone().with("job", about);
        if let Some((comparison, input, value)) = &stop.condition {
            let input = fetcher.render(input, scope.clone()).await?;
            let value = fetcher.render(value, scope.clone()).await?;
            if !comparison.holds(&input, &value)? {
                return Ok(None);
            }
        }
        let message = match &stop.message {
            Some(message) => Some(match fetcher.render(message, scope.clone()).await? {
                Value::String(text) => text,
                other => other.to_string(),
            }),
            None => None,
        };
        let metadata = match &stop.metadata {
            Some(metadata) => Some(fetcher.render(metadata, scope).await?),
            None => None,
        };
        tracing::debug!(
            job,
            phase = phase.as_str(),
            "job '{job}' waits for a person"
        );
        // What the person is shown (and the history keeps) holds no secret of the config's.
        let message = message.map(|text| redactor.text(&text).unwrap_or(text));
        let metadata = metadata.map(|value| redactor.value(&value).unwrap_or(value));
        let point = Point {
            id: ulid::Ulid::new().to_string(),
            job_id: job.to_string(),
            run_id: run_id.to_string(),
            phase,
            message,
            metadata,
        };
        let answer = working.idle(self.ask(point)).await?;
        Ok(Some(answer).filter(|answer| !answer.is_null()))
    }
}

/// A job at work, counted as such while it lives (and does not idle).
pub(super) struct Working<'a> {
    pauses: &'a Pauses<'a>,
    counted: bool,
}

impl Working<'_> {
    /// Awaits `waiting` not counted as at work: the job waits for a person, or for the jobs
    /// inside it (they count themselves).
    pub async fn idle<T>(&mut self, waiting: impl Future<Output = T>) -> T {
        self.count(false);
        let out = waiting.await;
        self.count(true);
        out
    }

    fn count(&mut self, counted: bool) {
        if self.counted != counted {
            let mut state = self.pauses.state.lock();
            match counted {
                true => state.working += 1,
                false => state.working -= 1,
            }
            self.counted = counted;
        }
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.count(false);
    }
}
