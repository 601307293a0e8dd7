//! What a job does, by its type, once its input is rendered: call a component, run a
//! command or a workflow, wait, filter, route, or run the jobs inside it.

use std::sync::Arc;

use serde_json::Value;

use super::stream::{self, Encoding, Produced};
use super::work::Work;
use super::{composite, delay, filter, hand_off, pause, run_nested, Frame, JobPlan, Run};
use crate::binding::{Owner, Scope, StreamEncoding};
use crate::component::{ChunkStream, Output};
use crate::error::RunError;
use crate::metrics::Usage;

/// What a job's work ends with: a result, or (a router) where the run goes next, or nothing
/// more: its results went out as they came (see `publish`).
pub(super) enum Done {
    Output(Output),
    Route(Option<String>),
    Sent,
}

/// Where a job sends its results as they come, when they are the run's answer: its output is
/// the run's, it gives a stream (`streams`), nothing needs its result whole (a pause after
/// it, a retry, a fallback) and its `output` passes a stream on. The stream goes out at once;
/// `capacity` results may wait in it for the reader.
fn answer_sink(
    job: &JobPlan,
    (frame, run): (&Frame<'_>, &Run<'_>),
    (streams, steps): (bool, bool),
    capacity: usize,
) -> Option<composite::Sink> {
    let whole = job.retry.is_some()
        || job.on_error.is_some()
        || job.interrupt.as_ref().is_some_and(|i| i.pauses_after());
    if !streams || !frame.answers || whole || !run.sent.open() {
        return None;
    }
    let encoding = match &job.output {
        None => StreamEncoding::Text,
        Some(template) => stream::passthrough_encoding(template)?,
    };
    // An agent's stream is its steps, however the job encodes it.
    let encoding = match steps {
        true => Encoding::Steps,
        false => encoding.into(),
    };
    let (sink, mut results) = tokio::sync::mpsc::channel(capacity.max(1));
    let results = futures::stream::poll_fn(move |cx| results.poll_recv(cx));
    let results = Produced::Stream {
        chunks: Box::pin(futures::StreamExt::flatten(results)),
        encoding,
    };
    run.sent.send(Some(results)).is_ok().then_some(sink)
}

/// Does a job's work on its (rendered) `input`. A job that runs jobs idles while they do.
pub(super) async fn work(
    job: &JobPlan,
    (input, handed): (Value, Option<ChunkStream>),
    run: &Run<'_>,
    (jobs, context): (&Value, &Value),
    frame: &Frame<'_>,
    usage: &Arc<Usage>,
    working: &mut pause::Working<'_>,
) -> Result<Done, RunError> {
    let scope = frame.scope(run, jobs, context);
    let owner = match frame.inline {
        true => run.input_owner(),
        false => job.input_owner(run.from_caller),
    };
    // What the jobs inside it share, for a job that runs jobs.
    let parent = composite::Parent {
        job,
        run,
        seen: (jobs, context),
        frame,
        usage,
    };
    Ok(Done::Output(match &job.work {
        Work::Component { .. } | Work::Command { .. } | Work::Tool { .. } | Work::Call(_) => {
            call(&job.work, (input, owner), run, context, usage, working).await?
        }
        Work::Agent(agent) => {
            // The run's answer: each message goes out as it is added.
            let sink = answer_sink(job, (frame, run), (agent.streaming, true), 1);
            let sent = sink.is_some();
            let seen = (input, owner);
            // Boxed: an agent's loop is a large future, and not every job needs its room.
            let output = Box::pin(agent.run(job, seen, run, (context, usage), working, sink));
            let output = output.await?;
            if sent {
                return Ok(Done::Sent);
            }
            output
        }
        Work::Delay { duration, until } => {
            let wait = match (until, duration) {
                (Some((time, zone)), _) => {
                    let time = run.fetcher.render(time, scope.clone()).await?;
                    let zone = match zone {
                        Some(zone) => run.fetcher.render(zone, scope.clone()).await?,
                        None => Value::Null,
                    };
                    delay::until(&job.id, &time, zone.as_str())?
                }
                (None, Some(duration)) => {
                    let wait = run.fetcher.render(duration, scope.clone()).await?;
                    delay::wait(&job.id, &wait)?
                }
                (None, None) => std::time::Duration::ZERO,
            };
            // No wait is no timer: a zero sleep would wait for the timer's next tick.
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Output::Value(Value::Null)
        }
        Work::Filter {
            condition,
            streaming,
        } => match handed {
            Some(chunks) => {
                let seen = (run.input.clone(), run.input_owner());
                Output::Stream(hand_off::filtered(chunks, condition.clone(), seen))
            }
            None => match filter::kept(input, condition.as_ref(), &scope)? {
                Value::Array(items) if *streaming => {
                    Output::Stream(Box::pin(futures::stream::iter(items.into_iter().map(Ok))))
                }
                kept => Output::Value(kept),
            },
        },
        Work::Route(router) => {
            return Ok(Done::Route(
                router.decide(&input, run.fetcher, scope).await?,
            ));
        }
        Work::FanOut { branches, .. } => match handed {
            // Its readers are handed their branches as they come (see `hand_off`).
            Some(chunks) => Output::Stream(chunks),
            None => Output::Value(composite::fan_out(branches, input)),
        },
        Work::ForEach {
            body,
            batch_size,
            streaming,
        } => {
            let streams = handed.is_some() || *streaming;
            let items = match handed {
                Some(chunks) => composite::Items::Stream(chunks),
                None => composite::Items::Value(input),
            };
            // The run's answer: each result goes out as it comes.
            let sink = answer_sink(job, (frame, run), (streams, false), *batch_size);
            let sent = sink.is_some();
            let results = parent.for_each(body, *batch_size, items, sink);
            let results = working.idle(results).await?;
            if sent {
                return Ok(Done::Sent);
            }
            Output::Value(results)
        }
        Work::Loop { .. } | Work::Pipeline { .. } | Work::Accumulate { .. } => {
            Output::Value(working.idle(parent.run(input, &scope)).await?)
        }
    }))
}

/// Calls a component's action with `input` (a caller's when `owner` says so): an
/// http-client's request, a shell's command, or another workflow, run inside this one (the
/// caller idles meanwhile: the workflow's jobs count themselves).
pub(super) async fn call(
    work: &Work,
    (input, owner): (Value, Owner<'_>),
    run: &Run<'_>,
    context: &Value,
    usage: &Arc<Usage>,
    working: &mut pause::Working<'_>,
) -> Result<Output, RunError> {
    match work {
        Work::Component { component, action } => {
            component.call(action, (input, owner), context, usage).await
        }
        Work::Command { shell, command } => {
            shell
                .call(command, (input, owner), context, run.fetcher)
                .await
        }
        Work::Tool { client, action } => {
            client
                .call(action, (input, owner), context, run.fetcher)
                .await
        }
        Work::Call(call) => {
            let scope = Scope::new()
                .with_owned("input", &input, owner)
                .with("context", context);
            let input = match &call.input {
                Some(template) => run.fetcher.render(template, scope.clone()).await?,
                None => input.clone(),
            };
            let nested = run_nested(call, &input, run, context, usage);
            let output = working.idle(nested).await?;
            Ok(match call.output() {
                Some(template) => {
                    let value = Produced::from(output).drain().await?;
                    let scope = scope.with("output", &value);
                    Output::Value(run.fetcher.render(template, scope).await?)
                }
                None => output,
            })
        }
        _ => Err(RunError::Flow("this job type calls no component".into())),
    }
}
