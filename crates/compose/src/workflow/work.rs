//! What a job does, by its type, compiled from its config: call a component's action, wait,
//! filter, route, or run the jobs inside it (`for-each`, `loop`, `pipeline`, `accumulate`).

use std::sync::Arc;

use crate::binding::operators::Filter;
use crate::binding::{Binding, Expr};
use crate::component::{Action, Command, HttpClient, McpAction, McpClient, Shell};
use crate::config::{self, Component, JobKind};

use super::agent::AgentCall;
use super::nested::WorkflowCall;
use super::plan::{compile, JobPlan};
use super::route::Router;

/// A configured component, built.
pub(super) enum Built {
    Http(Arc<HttpClient>),
    Shell(Arc<Shell>),
    Mcp(Arc<McpClient>),
    /// Its actions are compiled with each job that calls them.
    Workflow,
    /// Its actions are compiled with each job that calls them, with its model's action.
    Agent,
}

/// What compiling a job needs: the components, configured and built, how to build one
/// written in a job, and the workflow's id.
pub(super) struct Parts<'a> {
    pub configured: &'a [Component],
    pub components: &'a [Built],
    pub build: &'a dyn Fn(&Component) -> Result<Built, String>,
    pub workflow: &'a str,
}

/// What a job does, by its type.
pub enum Work {
    /// Calls an action of an http-client.
    Component {
        component: Arc<HttpClient>,
        action: Arc<Action>,
    },
    /// Runs a command of a shell component.
    Command {
        shell: Arc<Shell>,
        command: Arc<Command>,
    },
    /// Calls a tool of an MCP server (an mcp-client's action).
    Tool {
        client: Arc<McpClient>,
        action: Arc<McpAction>,
    },
    /// Runs another workflow (a workflow component's action).
    Call(Arc<WorkflowCall>),
    /// Asks a model and runs the tools it calls until it answers (an agent's action).
    Agent(Arc<AgentCall>),
    /// Waits as long as `duration` renders to (none, null or 0: not at all), or until `time`
    /// (with its `timezone`) when it has one.
    Delay {
        duration: Option<Binding>,
        until: Option<(Binding, Option<Binding>)>,
    },
    /// Keeps the items of the job's input that pass `condition` (none: all of them); as a
    /// stream of them when `streaming` (or when its input comes as a stream).
    Filter {
        condition: Option<Filter>,
        streaming: bool,
    },
    /// Decides which job the run goes to next.
    Route(Router),
    /// Runs `body` for each item of the job's input, `batch_size` at once; its results as a
    /// stream when `streaming` (or when its input comes as a stream).
    ForEach {
        body: Box<JobPlan>,
        batch_size: usize,
        streaming: bool,
    },
    /// Runs `body` until `condition` holds (`until`) or while it does.
    Loop {
        body: Box<JobPlan>,
        condition: Filter,
        until: bool,
        max_iterations: u32,
    },
    /// Runs each step on the last one's output.
    Pipeline { steps: Vec<JobPlan> },
    /// Folds the job's input through `body`, from `accumulator`.
    Accumulate {
        body: Box<JobPlan>,
        accumulator: Option<Binding>,
    },
    /// Gives each branch named the input's items; a branch handed to its reader as a stream
    /// may be `buffer` chunks ahead of the slowest other.
    FanOut {
        branches: Vec<String>,
        buffer: usize,
    },
}

/// A loop's limit when it sets none.
const MAX_ITERATIONS: u32 = 100;

/// How far a fan-out's branch may be ahead of the slowest other, when it sets nothing (the
/// original's default).
const FAN_OUT_BUFFER: usize = 32;

/// Whether a `filter` or a `for-each` gives its items as a stream: `streaming: true` (a
/// template's text "false" is not true, OD29).
fn streaming(job: &config::Job) -> bool {
    job.streaming == Some(serde_json::Value::Bool(true))
}

impl Work {
    /// What `job` does; `id` is its id in the run (`<parent>[do]` inside another).
    pub(super) fn compile(job: &config::Job, id: &str, parts: &Parts) -> Result<Self, String> {
        let at = &format!("workflow '{}' job '{id}'", parts.workflow);
        let inner =
            |job: &config::Job, name: &str| JobPlan::compile(job, &format!("{id}[{name}]"), parts);
        let body = || match &job.body {
            Some(body) => inner(body, "do").map(Box::new),
            None => Err(format!("{at}: no 'do'")),
        };
        Ok(match job.kind {
            JobKind::Component => Self::component(job, at, parts)?,
            JobKind::Delay => Work::Delay {
                duration: compile(&job.duration, &job.id, "duration")?,
                until: match (job.mode, &job.time) {
                    (Some(config::Mode::SpecificTime), time) => {
                        let time = compile(time, &job.id, "time")?
                            .ok_or_else(|| format!("{at}: no 'time'"))?;
                        let timezone = job.timezone.clone().map(serde_json::Value::String);
                        Some((time, compile(&timezone, &job.id, "timezone")?))
                    }
                    _ => None,
                },
            },
            JobKind::Filter => Work::Filter {
                condition: job
                    .condition
                    .as_ref()
                    .map(Filter::compile)
                    .transpose()
                    .map_err(|err| format!("{at}: where: {err}"))?,
                streaming: streaming(job),
            },
            JobKind::If | JobKind::Switch | JobKind::RandomRouter => {
                match Router::compile(job, parts.workflow)? {
                    Some(router) => Work::Route(router),
                    None => return Err(format!("{at}: not a router")),
                }
            }
            JobKind::ForEach => Work::ForEach {
                body: body()?,
                batch_size: job.batch_size.unwrap_or(1).max(1),
                streaming: streaming(job),
            },
            JobKind::Loop => {
                let (condition, until) = match (&job.while_holds, &job.until) {
                    (_, Some(until)) => (until, true),
                    (Some(holds), None) => (holds, false),
                    (None, None) => return Err(format!("{at}: no 'while' or 'until'")),
                };
                Work::Loop {
                    body: body()?,
                    condition: Filter::compile(condition).map_err(|e| format!("{at}: {e}"))?,
                    until,
                    max_iterations: job.max_iteration_count.unwrap_or(MAX_ITERATIONS),
                }
            }
            JobKind::Pipeline => Work::Pipeline {
                steps: job
                    .steps
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(k, step)| inner(step, &format!("step:{k}")))
                    .collect::<Result<_, _>>()?,
            },
            JobKind::Accumulate => Work::Accumulate {
                body: body()?,
                accumulator: compile(&job.accumulator, &job.id, "accumulator")?,
            },
            JobKind::FanOut => Work::FanOut {
                branches: job
                    .output
                    .iter()
                    .flat_map(|names| names.as_array().into_iter().flatten())
                    .filter_map(|name| name.as_str().map(str::to_string))
                    .collect(),
                buffer: job.buffer_size.unwrap_or(FAN_OUT_BUFFER).max(1),
            },
        })
    }

    /// A component job: the action of an http-client, a shell, a workflow or an agent
    /// component.
    fn component(job: &config::Job, at: &str, parts: &Parts) -> Result<Self, String> {
        let target = job
            .target(parts.configured, at)
            .map_err(|err| err.message)?;
        // A component written in the job is the job's own (not shared by id, OD21).
        let inline;
        let built = match target.index {
            Some(index) => parts.components.get(index),
            None => {
                inline = (parts.build)(target.component)?;
                Some(&inline)
            }
        };
        Self::action_of((target.component, built), target.action, at, parts)
    }

    /// The work of calling the action at `action` of a component (configured, and built).
    pub(super) fn action_of(
        (component, built): (&Component, Option<&Built>),
        action: usize,
        at: &str,
        parts: &Parts,
    ) -> Result<Self, String> {
        let not_found = || format!("{at}: component '{}' has no such action", component.id());
        Ok(match built {
            Some(Built::Http(client)) => Work::Component {
                action: Arc::clone(client.actions.get(action).ok_or_else(not_found)?),
                component: Arc::clone(client),
            },
            Some(Built::Shell(shell)) => Work::Command {
                command: Arc::clone(shell.actions.get(action).ok_or_else(not_found)?),
                shell: Arc::clone(shell),
            },
            Some(Built::Mcp(client)) => Work::Tool {
                action: Arc::clone(client.actions.get(action).ok_or_else(not_found)?),
                client: Arc::clone(client),
            },
            Some(Built::Workflow) => {
                let action = component.actions().get(action).ok_or_else(not_found)?;
                Work::Call(Arc::new(
                    WorkflowCall::compile(action).map_err(|e| format!("{at}: {e}"))?,
                ))
            }
            Some(Built::Agent) => {
                let config::Component::Agent(agent) = component else {
                    return Err(format!(
                        "{at}: component '{}' is not an agent",
                        component.id()
                    ));
                };
                let action = agent.actions.get(action).ok_or_else(not_found)?;
                Work::Agent(Arc::new(AgentCall::compile(agent, action, at, parts)?))
            }
            None => return Err(format!("{at}: component '{}' not found", component.id())),
        })
    }

    /// The templates that read the job's input (and declare the workflow's inputs when the
    /// job passes that on): an action's, a delay's duration, a condition's; for the jobs of a
    /// `for-each` or an `accumulate`, whose `${input}` is the workflow's, their templates.
    pub(super) fn exprs(&self) -> Vec<&Expr> {
        let mut exprs = Vec::new();
        match self {
            Work::Component { action, .. } => exprs = action.exprs(),
            Work::Command { command, .. } => exprs = command.exprs(),
            Work::Tool { action, .. } => exprs = action.exprs(),
            Work::Call(call) => exprs = call.exprs(),
            Work::Agent(agent) => exprs = agent.exprs(),
            Work::Delay { duration, until } => {
                let until = until
                    .iter()
                    .flat_map(|(time, zone)| std::iter::once(time).chain(zone));
                exprs.extend(duration.iter().chain(until).flat_map(Binding::exprs))
            }
            Work::Filter { condition, .. } => {
                if let Some(condition) = condition {
                    condition.collect(&mut exprs);
                }
            }
            Work::Route(router) => router.collect(&mut exprs),
            Work::ForEach { body, .. } | Work::Accumulate { body, .. } => {
                exprs.extend(body.templates().flat_map(Binding::exprs))
            }
            Work::Loop { .. } | Work::Pipeline { .. } | Work::FanOut { .. } => {}
        }
        exprs
    }

    /// The action's output template, if it maps its response.
    pub(super) fn output(&self) -> Option<&Binding> {
        match self {
            Work::Component { action, .. } => action.output(),
            Work::Command { command, .. } => command.output(),
            Work::Tool { action, .. } => action.output(),
            Work::Call(call) => call.output(),
            Work::Agent(agent) => agent.output(),
            _ => None,
        }
    }
}
