//! Workflows: jobs run in dependency order, each calling one component action (or, a `delay`
//! job, waiting); the output of the terminal jobs (or the workflow's `output` template) is
//! the run's output (spec §4).

mod delay;
mod filter;
mod gate;
mod plan;
mod recover;
mod stream;

use futures::future::try_join_all;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

use super::binding::{Owner, Scope, StreamEncoding};
use super::component::{Binary, Output};
use super::error::RunError;
use super::fetch::Fetcher;
use super::metrics::Usage;

pub use gate::RunRequest;
pub use plan::{Access, Engine, JobPlan, Work, WorkflowPlan};
use stream::Produced;
pub use stream::TextStream;

/// What a run gives back: a value, text pieces as they are produced, or bytes.
pub enum RunOutput {
    Value(Value),
    Stream(TextStream),
    Bytes(Binary),
}

/// What happened to one job of a run, for those who watch it (the WebSocket's `job_event`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub job_id: String,
    pub event: JobStage,
    /// Seconds since the run started.
    pub elapsed: f64,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStage {
    Started,
    Completed,
    Failed,
}

impl JobStage {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStage::Started => "started",
            JobStage::Completed => "completed",
            JobStage::Failed => "failed",
        }
    }
}

/// Who is told of job events.
pub type Observer<'a> = &'a (dyn Fn(JobEvent) + Send + Sync);

impl Engine {
    /// Runs a request that passed the gate ([`Engine::request`]). `context` is what
    /// `${context}` reads (the task id). Dropping the returned stream, or the future before it
    /// resolves, cancels the run and its upstream requests.
    pub async fn run(&self, request: &RunRequest, context: Value) -> Result<RunOutput, RunError> {
        let usage = Arc::default();
        self.run_observed(request, context, &|_| {}, &usage).await
    }

    /// [`Engine::run`], telling `observer` when each job starts and ends, and adding to `usage`
    /// the tokens the upstreams report.
    pub async fn run_observed(
        &self,
        request: &RunRequest,
        context: Value,
        observer: Observer<'_>,
        usage: &Arc<Usage>,
    ) -> Result<RunOutput, RunError> {
        let started = std::time::Instant::now();
        let tell = |job: &str, event: JobStage| {
            observer(JobEvent {
                job_id: job.to_string(),
                event,
                elapsed: started.elapsed().as_secs_f64(),
            })
        };
        let (workflow, input) = (request.workflow(), request.input());
        let run = Run {
            fetcher: self.fetcher(),
            from_caller: request.from_caller(),
            input,
            secrets: self.secrets(),
        };
        let mut jobs = Map::new();
        let mut done: HashSet<&str> = HashSet::new();
        let mut pending: Vec<&JobPlan> = workflow.jobs.iter().collect();
        let mut result: Option<Produced> = None;
        while !pending.is_empty() {
            let (ready, waiting): (Vec<&JobPlan>, Vec<&JobPlan>) =
                pending.into_iter().partition(|job| {
                    job.depends_on
                        .iter()
                        .all(|any| any.iter().any(|d| done.contains(d.as_str())))
                });
            if ready.is_empty() {
                return Err(RunError::Unsupported(
                    "no runnable jobs but pending jobs remain".into(),
                ));
            }
            let jobs_value = Value::Object(jobs.clone());
            let outputs = try_join_all(ready.iter().map(|job| {
                tell(&job.id, JobStage::Started);
                let run = recover::run_recovering(job, &run, (&jobs_value, &context), usage);
                async {
                    let outcome = run.await;
                    if outcome.is_err() {
                        tell(&job.id, JobStage::Failed);
                    }
                    outcome
                }
            }))
            .await?;
            for (job, produced) in ready.iter().zip(outputs) {
                tell(&job.id, JobStage::Completed);
                done.insert(job.id.as_str());
                if workflow.output.is_none() && workflow.is_terminal(&job.id) {
                    result = Some(match result.take() {
                        None => produced,
                        Some(before) => merge(before.drain().await?, produced.drain().await?),
                    });
                } else {
                    let output = produced.drain().await?;
                    jobs.insert(job.id.clone(), serde_json::json!({ "output": output }));
                }
            }
            pending = waiting;
        }
        if let Some(template) = &workflow.output {
            let jobs = Value::Object(jobs);
            let scope = Scope::new()
                .with_owned("input", input, run.input_owner())
                .with("jobs", &jobs)
                .with("context", &context);
            result = Some(Produced::rendered(run.fetcher, template, scope).await?);
        }
        Ok(match result {
            Some(Produced::Stream { chunks, encoding }) => {
                RunOutput::Stream(stream::encode(chunks, encoding))
            }
            Some(Produced::Bytes(binary)) => RunOutput::Bytes(binary),
            Some(Produced::Value(value)) => RunOutput::Value(value),
            None => RunOutput::Value(Value::Null),
        })
    }
}

/// Terminal outputs in completion order: mappings merge (later keys win), anything else replaces.
fn merge(before: Value, after: Value) -> Produced {
    Produced::Value(match (before, after) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (_, after) => after,
    })
}

/// What every job of one run shares.
struct Run<'a> {
    fetcher: &'a Arc<Fetcher>,
    /// Whether the run's input is a caller's (D32).
    from_caller: bool,
    input: &'a Value,
    /// Redacted from the error messages a job's `on_error` reads.
    secrets: &'a [String],
}

impl Run<'_> {
    /// Whose values the run's input holds.
    fn input_owner(&self) -> Owner<'static> {
        if self.from_caller {
            Owner::Caller
        } else {
            Owner::Server
        }
    }
}

/// Runs one job: does its work (renders its input and calls its component, or waits), then
/// maps the output.
async fn run_job(
    job: &JobPlan,
    run: &Run<'_>,
    (jobs, context): (&Value, &Value),
    usage: &Arc<Usage>,
) -> Result<Produced, RunError> {
    let workflow_input = run.input;
    let scope = Scope::new()
        .with_owned("input", workflow_input, run.input_owner())
        .with("jobs", jobs)
        .with("context", context);
    let output = match &job.work {
        Work::Component { component, action } => {
            let input = match &job.input {
                Some(template) => run.fetcher.render(template, scope.clone()).await?,
                None => workflow_input.clone(),
            };
            let owner = job.input_owner(run.from_caller);
            component
                .call(action, (input, owner), context, usage)
                .await?
        }
        Work::Delay { duration } => {
            if let Some(duration) = duration {
                let wait = run.fetcher.render(duration, scope.clone()).await?;
                tokio::time::sleep(delay::wait(&job.id, &wait)?).await;
            }
            Output::Value(Value::Null)
        }
        Work::Filter { condition } => {
            let input = match &job.input {
                Some(template) => run.fetcher.render(template, scope.clone()).await?,
                None => workflow_input.clone(),
            };
            Output::Value(filter::kept(input, condition.as_ref(), &scope)?)
        }
    };
    let Some(template) = &job.output else {
        return Ok(Produced::from(output));
    };
    match output {
        Output::Stream(chunks) => match stream::passthrough_encoding(template) {
            Some(encoding) => Ok(Produced::Stream { chunks, encoding }),
            None if stream::operates_on_stream(template) => Ok(Produced::Stream {
                chunks: stream::operate(
                    template.clone(),
                    chunks,
                    Arc::clone(run.fetcher),
                    (workflow_input.clone(), run.from_caller),
                    jobs.clone(),
                    context.clone(),
                ),
                encoding: StreamEncoding::Text,
            }),
            None => {
                let value = Produced::from(Output::Stream(chunks)).drain().await?;
                Produced::rendered(run.fetcher, template, scope.with("output", &value)).await
            }
        },
        Output::Bytes(binary) if stream::passes_bytes(template) => Ok(Produced::Bytes(binary)),
        output => {
            let value = Produced::from(output).drain().await?;
            Produced::rendered(run.fetcher, template, scope.with("output", &value)).await
        }
    }
}
