//! Workflows: jobs run in dependency order, each calling one component action (or, a `delay`
//! job, waiting); the output of the terminal jobs (or the workflow's `output` template) is
//! the run's output (spec §4).

mod agent;
mod composite;
mod delay;
mod deltas;
mod filter;
mod gate;
mod hand_off;
mod nested;
mod pause;
mod perform;
mod plan;
mod publish;
mod recover;
mod route;
mod schedule;
mod stream;
mod tee;
mod tools;
mod work;

use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::binding::{Owner, Scope, StreamEncoding};
use super::component::{Binary, ChunkStream, Output};
use super::config;
use super::error::{Redactor, RunError};
use super::fetch::Fetcher;
use super::metrics::Usage;
use super::record::{size_within, too_large, JobEvent, JobStage, Phase, VALUE_ROOM};
use super::traces::{within, RunSpans};

pub use gate::RunRequest;
use nested::WorkflowCall;
pub use nested::RUN_STACK;
use pause::Pauses;
pub use pause::{Answerer, Asked, GoOn};
use perform::{work, Done};
pub use plan::{Access, Engine, Fallback, JobPlan, WorkflowPlan};
pub use route::Router;
use schedule::{Said, Schedule, Step, Tell};
use stream::Produced;
pub use stream::{AgentStep, Piece, TextStream};
pub use work::Work;

/// What a run gives back: a value, text pieces as they are produced, or bytes. A stream that
/// comes while the run's other jobs still work borrows what they do (see `publish`).
pub enum RunOutput<'a> {
    Value(Value),
    Stream(TextStream<'a>),
    Bytes(Binary),
}

/// What the engine tells of a job as it happens, borrowed: the observer keeps what it wants
/// of it (see [`JobNews::event`]).
pub struct JobNews<'a> {
    pub job_id: &'a str,
    /// The job's `type` (`component`, `if`, …).
    pub job_type: &'static str,
    pub event: JobStage,
    /// Where a router sent the run (`routed`).
    pub next_job_id: Option<&'a str>,
    /// Seconds since the run started.
    pub elapsed: f64,
    /// Which item, round or step, inside another job.
    pub iteration: Option<u32>,
    /// Its input (`started`), output (`completed`) or error message (`failed`, redacted).
    pub value: Option<&'a Value>,
    /// The value's size as JSON, when it was measured already (an input or an output).
    pub size: Option<usize>,
}

impl JobNews<'_> {
    /// The news as the history keeps it, with `value` for its value (what the observer keeps
    /// of it).
    pub fn event(&self, value: Option<Value>) -> JobEvent {
        JobEvent {
            job_id: self.job_id.to_string(),
            job_type: std::borrow::Cow::Borrowed(self.job_type),
            event: self.event,
            next_job_id: self.next_job_id.map(str::to_string),
            elapsed: self.elapsed,
            iteration: self.iteration,
            value,
        }
    }
}

/// Who is told of each job as it starts and ends.
pub type Observer<'a> = &'a (dyn Fn(&JobNews<'_>) + Send + Sync);

/// Who attends a run: who is told of its jobs, what counts its tokens, who answers its
/// pauses, and the run's spans when it is traced (its jobs' work runs in their spans).
pub struct Watch<'a> {
    pub observer: Observer<'a>,
    pub usage: Arc<Usage>,
    pub answerer: &'a dyn Answerer,
    pub traced: Option<&'a RunSpans<'a>>,
}

/// Nobody is told of the jobs.
fn unheard(_: &JobNews<'_>) {}

impl Engine {
    /// Runs a request that passed the gate ([`Engine::request`]), nobody attending (a pause
    /// goes on at once). `context` is what `${context}` reads (the task id). Dropping the
    /// returned stream, or the future before it resolves, cancels the run and its upstream
    /// requests.
    pub async fn run<'a>(
        &'a self,
        request: &'a RunRequest,
        context: Value,
    ) -> Result<RunOutput<'a>, RunError> {
        let watch = Watch {
            observer: &unheard,
            usage: Arc::default(),
            answerer: &GoOn,
            traced: None,
        };
        self.run_observed(request, context, watch).await
    }

    /// [`Engine::run`], telling the watch's observer when each job starts and ends, adding to
    /// its usage the tokens the upstreams report, and asking its answerer at each pause.
    pub async fn run_observed<'a>(
        &'a self,
        request: &'a RunRequest,
        context: Value,
        watch: Watch<'a>,
    ) -> Result<RunOutput<'a>, RunError> {
        let (sent, published) = publish::Publish::new();
        let driver = Box::pin(self.drive(request, context, watch, sent));
        publish::output(driver, published).await
    }

    /// Runs the request's workflow to its end, its output sent through `sent` (see `publish`).
    async fn drive(
        &self,
        request: &RunRequest,
        context: Value,
        watch: Watch<'_>,
        sent: publish::Publish,
    ) -> Result<(), RunError> {
        let started = std::time::Instant::now();
        let (secrets, redactor) = (self.secrets(), self.redactor());
        let tell = |job: &JobPlan, event: JobStage, said: Said<'_>| {
            // An error is told as its message, without a secret.
            let message = said
                .error
                .map(|err| Value::String(err.failure(secrets).message));
            // A job's input or output may hold a secret the config put in it: never shown. One
            // too large to be kept is told as the note kept instead (and not read for secrets).
            let (redacted, size) = match said
                .value
                .map(|value| (value, size_within(value, VALUE_ROOM)))
            {
                Some((value, Some(size))) => match redactor.value(value) {
                    Some(redacted) => {
                        let size = size_within(&redacted, VALUE_ROOM);
                        (Some(redacted), size)
                    }
                    None => (None, Some(size)),
                },
                Some((_, None)) => (Some(too_large()), None),
                None => (None, None),
            };
            (watch.observer)(&JobNews {
                job_id: &job.id,
                job_type: job.kind.name(),
                event,
                next_job_id: said.next,
                elapsed: started.elapsed().as_secs_f64(),
                iteration: said.iteration,
                value: redacted.as_ref().or(said.value).or(message.as_ref()),
                size,
            })
        };
        let pauses = Pauses::new(watch.answerer);
        let run = Run {
            fetcher: self.fetcher(),
            from_caller: request.from_caller(),
            input: request.input(),
            secrets: self.secrets(),
            redactor: self.redactor(),
            workflows: self.workflows(),
            pauses: &pauses,
            tell: &tell,
            traced: watch.traced.filter(|spans| spans.exporting()),
            sent: &sent,
            depth: 0,
        };
        let mut running = run_plan(request.workflow(), &run, &context, &watch.usage);
        // Each time the run cannot go on by itself, the points it waits on may be published.
        let result = std::future::poll_fn(|cx| {
            let polled = running.as_mut().poll(cx);
            if polled.is_pending() {
                pauses.settle();
            }
            polled
        })
        .await?;
        // Unless a stream was sent while the jobs went on.
        let _ = sent.send(result);
        Ok(())
    }
}

/// Runs a workflow's jobs in the order the schedule allows and gives its output: its `output`
/// template rendered, or its terminal jobs' outputs (none: no job gave one). Boxed: a
/// workflow's run holds its jobs' runs, which may hold a workflow's run (a `workflow`
/// component).
fn run_plan<'a>(
    workflow: &'a WorkflowPlan,
    run: &'a Run<'a>,
    context: &'a Value,
    usage: &'a Arc<Usage>,
) -> Pin<Box<dyn Future<Output = Result<Option<Produced>, RunError>> + Send + 'a>> {
    use hand_off::HandOff::{Branches, To};
    Box::pin(async move {
        let keeps_whole = |job: &JobPlan| workflow.output.is_none() && job.terminal;
        let mut result: Option<Produced> = None;
        // Streams on their way from a job to the one they are handed to, by its index.
        let handed: parking_lot::Mutex<Vec<Option<ChunkStream>>> =
            parking_lot::Mutex::new((0..workflow.jobs.len()).map(|_| None).collect());
        let handed = &handed;
        let jobs = Schedule::new(workflow)
            .run(
                |job, jobs| {
                    Box::pin(async move {
                        let mut frame = Frame::top(run);
                        frame.answers = run.depth == 0 && keeps_whole(job);
                        *frame.handed.lock() = handed.lock()[job.index].take();
                        let outcome =
                            recover::run_recovering(job, run, (&jobs, context), &frame, usage);
                        let outcome = match (outcome.await, workflow.hands_off(job.index)) {
                            (Ok(Step::Output(Produced::Stream { chunks, .. })), Some(To(to))) => {
                                // Its reader takes it as it comes; `${jobs}` keeps null.
                                handed.lock()[*to] = Some(chunks);
                                Ok(Step::Output(Produced::Value(Value::Null)))
                            }
                            (Ok(Step::Output(produced)), Some(Branches(readers))) => {
                                // A fan-out: each branch to its reader, as it comes.
                                let Work::FanOut { branches, buffer } = &job.work else {
                                    unreachable!("only a fan-out has branches")
                                };
                                tee::branches(produced, branches, *buffer).map(|streams| {
                                    let mut handed = handed.lock();
                                    for (stream, reader) in streams.into_iter().zip(readers) {
                                        handed[*reader] = Some(stream);
                                    }
                                    Step::Output(Produced::Value(Value::Null))
                                })
                            }
                            (Ok(Step::Output(produced)), _) if !keeps_whole(job) => produced
                                .drain()
                                .await
                                .map(|value| Step::Output(Produced::Value(value))),
                            (outcome, _) => outcome,
                        };
                        (job, outcome)
                    })
                },
                |job, produced| {
                    let Produced::Value(value) = &produced else {
                        // The run's stream goes out now, while its other jobs go on.
                        // (Dropped if another was sent first, not to hold back a fan-out.)
                        match produced {
                            stream @ Produced::Stream { .. } if run.depth == 0 => {
                                let _ = run.sent.send(Some(stream));
                            }
                            other => result = Some(other),
                        }
                        return Ok(None);
                    };
                    let value = value.clone();
                    if keeps_whole(job) {
                        result = Some(merge(result.take(), produced));
                    }
                    Ok(Some(value))
                },
                run.tell,
            )
            .await?;
        if let Some(template) = &workflow.output {
            let scope = Scope::new()
                .with_owned("input", run.input, run.input_owner())
                .with("jobs", &jobs)
                .with("context", context);
            result = Some(Produced::rendered(run.fetcher, template, scope).await?);
        }
        Ok(result)
    })
}

/// What a nested workflow's jobs tell: nothing (their events are not the run's).
fn unwatched(_: &JobPlan, _: JobStage, _: Said<'_>) {}

/// A workflow run by a job (a `workflow` component), inside the same run, one level deeper.
async fn run_nested(
    call: &WorkflowCall,
    input: &Value,
    run: &Run<'_>,
    context: &Value,
    usage: &Arc<Usage>,
) -> Result<Output, RunError> {
    let workflow = config::resolve(run.workflows, &call.workflow, |w| &w.id, |w| w.default)
        .ok_or_else(|| RunError::WorkflowNotFound(call.workflow.clone()))?;
    if run.depth + 1 >= nested::MAX_DEPTH {
        return Err(RunError::Flow(format!(
            "workflow '{}' is called {} workflows deep: does it call itself?",
            workflow.id,
            nested::MAX_DEPTH
        )));
    }
    let child = Run {
        input,
        depth: run.depth + 1,
        tell: &unwatched,
        traced: None,
        ..*run
    };
    let produced = run_plan(workflow, &child, context, usage).await?;
    Ok(match produced {
        None => Output::Value(Value::Null),
        Some(Produced::Value(value)) => Output::Value(value),
        Some(Produced::Stream { chunks, .. }) => Output::Stream(chunks),
        Some(Produced::Bytes(binary)) => Output::Bytes(binary),
    })
}

/// Terminal outputs in completion order: mappings merge (later keys win), anything else
/// replaces.
fn merge(before: Option<Produced>, after: Produced) -> Produced {
    match (before, after) {
        (Some(Produced::Value(Value::Object(mut a))), Produced::Value(Value::Object(b))) => {
            a.extend(b);
            Produced::Value(Value::Object(a))
        }
        (_, after) => after,
    }
}

/// What every job of one run shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    fetcher: &'a Arc<Fetcher>,
    /// Whether the run's input is a caller's (D32).
    from_caller: bool,
    input: &'a Value,
    /// Redacted from the error messages a job's `on_error` reads.
    secrets: &'a [String],
    /// Finds them in what is shown of the jobs (their values, a person's points).
    redactor: &'a Redactor,
    /// What `workflow` components may run.
    workflows: &'a [Arc<WorkflowPlan>],
    /// Where its jobs pause for a person (shared by the workflows it runs).
    pauses: &'a Pauses<'a>,
    /// Who hears of its jobs.
    tell: Tell<'a>,
    /// Its jobs' spans, when it is traced (none in a workflow a job runs: its jobs are not
    /// the run's, and their work's spans are the calling job's).
    traced: Option<&'a RunSpans<'a>>,
    /// Where its output goes (a stream as soon as a terminal job has it, see `publish`).
    sent: &'a publish::Publish,
    /// How many workflow calls deep this run is.
    depth: usize,
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

/// Runs one job: renders its input, pauses before its work if it says so, does its work
/// (calls its component, waits, filters or routes), pauses after it if it says so, then maps
/// the output.
async fn run_job(
    job: &JobPlan,
    run: &Run<'_>,
    (jobs, context): (&Value, &Value),
    frame: &Frame<'_>,
    usage: &Arc<Usage>,
) -> Result<Step, RunError> {
    let scope = frame.scope(run, jobs, context);
    let mut working = run.pauses.working();
    let handed = frame.handed.lock().take();
    let input = match &job.work {
        _ if handed.is_some() => Value::Null,
        Work::Delay { .. } => Value::Null,
        Work::Route(router) if !router.reads_input() => Value::Null,
        _ => job_input(job, frame, run, &scope).await?,
    };
    let said = Said {
        iteration: frame.iteration,
        value: Some(&input),
        ..Said::default()
    };
    (run.tell)(job, JobStage::Started, said);
    // Its work, and what it starts, in its span (when the run is traced).
    let traced = run
        .traced
        .and_then(|t| t.job_context(&job.id, frame.iteration));
    // Where the job pauses, and the id of this run of it (its points' `run_id`).
    let run_id = job
        .interrupt
        .as_ref()
        .map(|_| ulid::Ulid::new().to_string());
    let pauses = job.interrupt.as_deref().zip(run_id.as_deref());
    let fetcher = &**run.fetcher;
    let input = match pauses {
        Some((interrupt, run_id)) => {
            let about = json!({ "input": input });
            let at = (interrupt, job.id.as_str(), run_id);
            let seen = (fetcher, run.redactor, &scope, &about);
            match Box::pin(within(
                traced.clone(),
                run.pauses.at(at, Phase::Before, seen, &mut working),
            ))
            .await?
            {
                Some(answer) if !matches!(job.work, Work::Delay { .. }) => answer,
                _ => taken(about, "input"),
            }
        }
        None => input,
    };
    // What `${job.input}` reads after the work, kept only for a pause after it.
    let after = pauses.filter(|(interrupt, _)| interrupt.pauses_after());
    let kept = after.map(|_| input.clone());
    let seen = (jobs, context);
    let done = work(job, (input, handed), run, seen, frame, usage, &mut working);
    // Traced, in its span's context. Boxed, as the pauses are: a workflow a job calls nests
    // here, and a larger job's future would take more of the stack at each level (see
    // `nested::MAX_DEPTH`).
    let done = match &traced {
        Some(context) => Box::pin(within(Some(context.clone()), done)).await,
        None => done.await,
    };
    let output = match done? {
        Done::Sent => return Ok(Step::Output(Produced::Value(Value::Null))),
        Done::Route(target) => {
            if let Some((interrupt, run_id)) = after {
                let about = json!({ "input": kept, "output": null });
                let at = (interrupt, job.id.as_str(), run_id);
                let seen = (fetcher, run.redactor, &scope, &about);
                Box::pin(within(
                    traced.clone(),
                    run.pauses.at(at, Phase::After, seen, &mut working),
                ))
                .await?;
            }
            return Ok(Step::Route(target));
        }
        Done::Output(output) => match after {
            Some((interrupt, run_id)) => {
                let output = Produced::from(output).drain().await?;
                let about = json!({ "input": kept, "output": output });
                let at = (interrupt, job.id.as_str(), run_id);
                let seen = (fetcher, run.redactor, &scope, &about);
                match Box::pin(within(
                    traced.clone(),
                    run.pauses.at(at, Phase::After, seen, &mut working),
                ))
                .await?
                {
                    Some(answer) => Output::Value(answer),
                    None => Output::Value(taken(about, "output")),
                }
            }
            None => output,
        },
    };
    drop(working);
    let Some(template) = &job.output else {
        return Ok(Step::Output(Produced::from(output)));
    };
    let produced = match output {
        Output::Stream(chunks) => match stream::passthrough_encoding(template) {
            Some(encoding) => Produced::Stream {
                chunks,
                encoding: encoding.into(),
            },
            None if stream::operates_on_stream(template) => Produced::Stream {
                chunks: stream::operate(
                    template.clone(),
                    chunks,
                    Arc::clone(run.fetcher),
                    (frame.input.clone(), run.from_caller),
                    jobs.clone(),
                    context.clone(),
                ),
                encoding: StreamEncoding::Text.into(),
            },
            None => {
                let value = Produced::from(Output::Stream(chunks)).drain().await?;
                Produced::rendered(run.fetcher, template, scope.with("output", &value)).await?
            }
        },
        Output::Bytes(binary) if stream::passes_bytes(template) => Produced::Bytes(binary),
        output => {
            let value = Produced::from(output).drain().await?;
            Produced::rendered(run.fetcher, template, scope.with("output", &value)).await?
        }
    };
    Ok(Step::Output(produced))
}

/// The value at `key` of what a pause was shown, taken back (the pause did not replace it).
fn taken(about: Value, key: &str) -> Value {
    match about {
        Value::Object(mut map) => map.remove(key).unwrap_or_default(),
        _ => Value::Null,
    }
}

/// A job's input: its `input` rendered, or what it gets by default (the run's input, or what
/// the job around it hands it).
async fn job_input(
    job: &JobPlan,
    frame: &Frame<'_>,
    run: &Run<'_>,
    scope: &Scope<'_>,
) -> Result<Value, RunError> {
    match &job.input {
        Some(template) => Ok(run.fetcher.render(template, scope.clone()).await?),
        None => Ok(frame.default_input.clone()),
    }
}

/// What a job's templates see beside `${jobs}` and `${context}`: the run's input, or, inside
/// another job (`do`, `steps`), what that job hands it (spec §13.13).
pub(super) struct Frame<'a> {
    /// What `${input}` reads.
    input: &'a Value,
    /// The job's input when it has no `input` template.
    default_input: &'a Value,
    /// Further sources (`item`, `output`, `iteration`, …).
    extra: Vec<(&'static str, &'a Value)>,
    /// Inside another job: every value it sees is as much the caller's as the run's input.
    inline: bool,
    /// Inside another job: which item, round or step.
    iteration: Option<u32>,
    /// Whether its output is the run's (a terminal job of the run's workflow): a stream it
    /// makes as it works goes out as it comes (see `publish`).
    answers: bool,
    /// The stream of the job it reads, handed to it as it comes (see `hand_off`).
    handed: parking_lot::Mutex<Option<ChunkStream>>,
}

impl<'a> Frame<'a> {
    /// A workflow's job: `${input}` is the run's input.
    fn top(run: &Run<'a>) -> Self {
        Self {
            input: run.input,
            default_input: run.input,
            extra: Vec::new(),
            inline: false,
            iteration: None,
            answers: false,
            handed: parking_lot::Mutex::new(None),
        }
    }

    /// The scope a job's templates render in.
    fn scope(&'a self, run: &Run<'a>, jobs: &'a Value, context: &'a Value) -> Scope<'a> {
        let owner = run.input_owner();
        let mut scope = Scope::new()
            .with_owned("input", self.input, owner)
            .with("jobs", jobs)
            .with("context", context);
        for (name, value) in &self.extra {
            scope = scope.with_owned(name, value, owner);
        }
        scope
    }
}
