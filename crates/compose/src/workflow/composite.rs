//! Jobs that run jobs (spec §13.8–§13.11): `for-each` runs its `do` job for each item,
//! `batch_size` at once, results in the items' order; `loop` runs it until (or while) its
//! condition holds, at most `max_iteration_count` times; `pipeline` runs its `steps`, each on
//! the last one's output; `accumulate` folds the items through it. What each inner job sees is
//! the scoping table of §13.13.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::recover::run_recovering;
use super::schedule::{Said, Step};
use super::work::Work;
use super::{Frame, JobPlan, Run};
use crate::binding::Scope;
use crate::component::ChunkStream;
use crate::error::RunError;
use crate::metrics::Usage;
use crate::record::JobStage;

/// What a `for-each` runs its job for: the items of a value, or chunks as they come.
pub(super) enum Items {
    Value(Value),
    Stream(ChunkStream),
}

/// Where a job whose results are the run's answer sends them as they come (a `for-each`'s
/// results, an agent's steps): streams, read one after the other. A value goes as a stream of
/// one ([`one`]); an agent's streamed text goes as its model's stream itself, read by the run's
/// answer rather than handed over token by token.
pub(super) type Sink = tokio::sync::mpsc::Sender<ChunkStream>;

/// `value` as a stream of one, for a [`Sink`].
pub(super) fn one(value: Value) -> ChunkStream {
    Box::pin(futures::stream::once(std::future::ready(Ok(value))))
}

/// A job that runs jobs, with everything its inner jobs share.
pub(super) struct Parent<'a> {
    pub job: &'a JobPlan,
    pub run: &'a Run<'a>,
    /// `${jobs}` and `${context}`.
    pub seen: (&'a Value, &'a Value),
    /// What the parent itself sees (its `${input}`, inside yet another job).
    pub frame: &'a Frame<'a>,
    pub usage: &'a Arc<Usage>,
}

impl<'a> Parent<'a> {
    /// Runs the inner jobs on `input` (the parent's rendered input) and gives the parent's
    /// result, before its own `output` maps it.
    pub async fn run(&self, input: Value, scope: &Scope<'_>) -> Result<Value, RunError> {
        match &self.job.work {
            Work::Loop {
                body,
                condition,
                until,
                max_iterations,
            } => {
                let mut last = Value::Null;
                for iteration in 0..*max_iterations {
                    let count = Value::from(iteration);
                    let previous = (iteration > 0).then_some(&last);
                    let mut frame = self.inner(&input, previous.unwrap_or(&input), iteration);
                    frame.extra = vec![("output", previous.unwrap_or(&Value::Null))];
                    frame.extra.push(("iteration", &count));
                    let output = self.run_inner(body, &frame).await?;
                    let judged = self.inner(&input, &input, iteration);
                    let scope = judged.scope(self.run, self.seen.0, self.seen.1);
                    let holds = condition
                        .holds(&scope.with("output", &output).with("iteration", &count))?;
                    last = output;
                    if holds == *until {
                        return Ok(last);
                    }
                }
                Err(RunError::Flow(format!(
                    "Loop job '{}' exceeded max_iteration_count ({max_iterations}).",
                    self.job.id
                )))
            }
            Work::Pipeline { steps } => {
                let mut last: Option<Value> = None;
                for (index, step) in steps.iter().enumerate() {
                    let default = last.as_ref().unwrap_or(&input);
                    let about = json!({ "input": default, "index": index });
                    let mut frame = self.inner(&input, default, index as u32);
                    if let Some(previous) = &last {
                        frame.extra.push(("output", previous));
                    }
                    frame.extra.push(("step", &about));
                    last = Some(self.run_inner(step, &frame).await?);
                }
                Ok(last.unwrap_or(Value::Null))
            }
            Work::Accumulate { body, accumulator } => {
                let mut folded = match accumulator {
                    Some(template) => self.run.fetcher.render(template, scope.clone()).await?,
                    None => Value::Null,
                };
                for (index, item) in items(input).into_iter().enumerate() {
                    let mut frame = self.inner(self.frame.input, &item, index as u32);
                    frame.extra = vec![("item", &item), ("accumulator", &folded)];
                    let next = self.run_inner(body, &frame).await?;
                    folded = next;
                }
                Ok(folded)
            }
            _ => Ok(input),
        }
    }

    /// Each item through `body`, `batch_size` at once, results in the items' order; a single
    /// value that is not a list gives its one result, not a list. Items that come as a stream
    /// start as they come. With a `sink`, each result goes there as soon as it and those
    /// before it are done, and the job's own result is null.
    pub async fn for_each(
        &self,
        body: &JobPlan,
        batch_size: usize,
        items: Items,
        mut sink: Option<Sink>,
    ) -> Result<Value, RunError> {
        let single = matches!(&items, Items::Value(value) if !value.is_array());
        let items: ChunkStream = match items {
            Items::Value(value) => Box::pin(futures::stream::iter(
                self::items(value).into_iter().map(Ok),
            )),
            // A null or empty chunk is no item (as it is no piece of a text stream): an OpenAI
            // stream's first, which names the role, and its last, which says why it stopped.
            Items::Stream(chunks) => Box::pin(chunks.try_filter(|chunk| {
                std::future::ready(!chunk.is_null() && chunk.as_str() != Some(""))
            })),
        };
        let mut results = items
            .enumerate()
            .map(|(index, item)| async move {
                let item = item?;
                let mut frame = self.inner(self.frame.input, &item, index as u32);
                frame.extra = vec![("item", &item)];
                self.run_inner(body, &frame).await
            })
            .buffered(batch_size);
        let mut collected = Vec::new();
        while let Some(result) = results.next().await {
            match sink.as_mut() {
                Some(sink) => {
                    // Nobody reads the results any more: the run is over.
                    if sink.send(one(result?)).await.is_err() {
                        break;
                    }
                }
                None => collected.push(result?),
            }
        }
        Ok(match (single, collected.pop()) {
            (true, Some(result)) => result,
            _ if sink.is_some() => Value::Null,
            (_, last) => {
                collected.extend(last);
                Value::Array(collected)
            }
        })
    }

    /// What an inner job sees in `iteration`: `input` as `${input}`, `default` as its input
    /// by default.
    fn inner<'f>(&self, input: &'f Value, default: &'f Value, iteration: u32) -> Frame<'f> {
        Frame {
            input,
            default_input: default,
            extra: Vec::new(),
            inline: true,
            iteration: Some(iteration),
            answers: false,
            handed: parking_lot::Mutex::new(None),
        }
    }

    /// Runs an inner job with its recovery, to its whole value. Boxed: a job's run may hold
    /// its inner jobs' runs.
    fn run_inner<'f>(
        &'f self,
        job: &'f JobPlan,
        frame: &'f Frame<'f>,
    ) -> Pin<Box<dyn Future<Output = Result<Value, RunError>> + Send + 'f>> {
        Box::pin(async move {
            let result = match run_recovering(job, self.run, self.seen, frame, self.usage).await {
                Ok(Step::Output(produced)) => produced.drain().await,
                Ok(Step::Route(_)) => Ok(Value::Null),
                Err(err) => Err(err),
            };
            let said = Said {
                iteration: frame.iteration,
                ..Said::default()
            };
            match &result {
                Ok(value) => (self.run.tell)(
                    job,
                    JobStage::Completed,
                    Said {
                        value: Some(value),
                        ..said
                    },
                ),
                Err(err) => (self.run.tell)(
                    job,
                    JobStage::Failed,
                    Said {
                        error: Some(err),
                        ..said
                    },
                ),
            }
            result
        })
    }
}

/// A `fan-out` (spec §13.12): each branch gets the input's items, a list of its own that may
/// be read any number of times (the original's single-use streams gave `[]` the second time,
/// OD26).
pub(super) fn fan_out(branches: &[String], input: Value) -> Value {
    let items = Value::Array(items(input));
    Value::Object(
        branches
            .iter()
            .map(|branch| (branch.clone(), items.clone()))
            .collect(),
    )
}

/// A list's items; anything else is one item.
fn items(input: Value) -> Vec<Value> {
    match input {
        Value::Array(items) => items,
        single => vec![single],
    }
}
