//! The engine built from a config: components with their connection pools, and workflows
//! with their templates compiled and their schemas inferred.

use std::collections::HashSet;
use std::sync::Arc;

use crate::binding::{Binding, Expr, Owner};
use crate::component::managed::ManagedServer;
use crate::component::{HttpClient, McpClient, Shell};
use crate::config::{self, resolve, Component, Config, DEFAULT_REF};
use crate::error::RunError;
use crate::fetch::{Fetcher, Policy};
use crate::metrics::Metrics;
use crate::schema::{self, Variable};
use crate::upstream::Trust;

use super::pause::Interrupt;
use super::work::{Built, Parts, Work};

/// Who asks for a workflow: private workflows are the config owner's own business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The API and the web UI: private workflows are neither listed nor run.
    Public,
    /// The command line, run by whoever holds the config: every workflow.
    All,
}

/// Everything needed to run the config's workflows.
pub struct Engine {
    workflows: Vec<Arc<WorkflowPlan>>,
    secrets: Arc<[String]>,
    /// The secrets' forms, for what a run shows of its jobs.
    redactor: Arc<crate::error::Redactor>,
    metrics: Arc<Metrics>,
    fetcher: Arc<Fetcher>,
    /// The local servers its http-server components start and stop.
    services: Vec<Arc<ManagedServer>>,
    /// Where its runs are exported as traces (`tracer:`).
    traces: crate::traces::Traces,
}

/// A workflow ready to run.
pub struct WorkflowPlan {
    pub id: String,
    pub name: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub default: bool,
    /// Hidden from listings and not runnable over the API.
    pub private: bool,
    pub jobs: Vec<JobPlan>,
    pub output: Option<Binding>,
    pub input_schema: Vec<Variable>,
    pub output_schema: Vec<Variable>,
    /// The jobs some job routes to: they run only when routed to (spec §13.2).
    pub routing_targets: HashSet<String>,
    /// Each job's `depends_on`, by the jobs' indexes: any of a group, every group.
    dependencies: Vec<Vec<Vec<usize>>>,
    /// For each job, the job its output stream is handed to as it comes (see `hand_off`).
    hand_offs: Vec<Option<super::hand_off::HandOff>>,
}

/// A job ready to run: what it does, its input and output templates, what it waits for.
pub struct JobPlan {
    pub id: String,
    /// Its `type`.
    pub kind: config::JobKind,
    /// Where it is in its workflow's list (0 inside another job).
    pub(super) index: usize,
    /// Whether no other job of its workflow depends on it.
    pub(super) terminal: bool,
    pub work: Work,
    /// `None` when absent or exactly `${input}`: the workflow input is passed as it is.
    pub input: Option<Binding>,
    /// `None` when absent or exactly `${output}`: the component output is the job output.
    pub output: Option<Binding>,
    pub depends_on: Vec<Vec<String>>,
    /// Run again when it fails.
    pub retry: Option<config::Retry>,
    /// What the job gives when every attempt failed, instead of failing the run.
    pub on_error: Option<Fallback>,
    /// How many times it may run in one run (rewinds run it again).
    pub max_run_count: u32,
    /// Where it pauses for a person.
    pub(super) interrupt: Option<Box<Interrupt>>,
    /// The jobs it may route to (a router's targets, `on_error.to`).
    pub routes: Vec<String>,
    /// How much of the input the component gets is the run's input (D32).
    share: Share,
}

/// A failed job's `on_error`.
pub enum Fallback {
    /// This output instead (`None`: null, `on_error: ignore`), rendered with `${error.message}`.
    Output(Option<Binding>),
    /// The run goes on at this job (`on_error.to`).
    To(String),
}

/// How much of a job's input is taken from the run's input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Share {
    /// All of it: the job passes the run's input on, or its input template reads it whole.
    All,
    /// All but these keys of the mapping the job's input template makes (they read only the
    /// config's text, other jobs' outputs or the context).
    AllBut(Vec<String>),
}

impl Share {
    fn of(input: Option<&Binding>) -> Self {
        match input {
            None => Share::All,
            Some(binding) => match binding.fields_not_reading("input") {
                Some(keys) => Share::AllBut(keys),
                None if binding.reads(&["input"]) => Share::All,
                None => Share::AllBut(Vec::new()),
            },
        }
    }
}

impl Engine {
    /// Builds the engine; fails with a message when a schema cannot be inferred.
    pub fn new(config: &Config) -> Result<Self, String> {
        let secrets: Arc<[String]> = config.secrets.clone().into();
        let metrics = Arc::new(Metrics::new());
        let policy = Policy::new(
            &config.controller.fetch,
            &config.controller.files,
            &config.dir,
        )?;
        let trust = Trust::load(config.trusted_roots.as_deref()).map_err(|err| err.to_string())?;
        let fetcher = Arc::new(Fetcher::new(policy, trust.clone()));
        let redactor = Arc::new(crate::error::Redactor::new(Arc::clone(&secrets)));
        let traces =
            crate::traces::Traces::start(&config.tracers, Arc::clone(&redactor), &metrics)?;
        let http = |client: &config::HttpClient| {
            HttpClient::new(
                client,
                &trust,
                Arc::clone(&secrets),
                Arc::clone(&metrics),
                Arc::clone(&fetcher),
            )
            .map(|client| Built::Http(Arc::new(client)))
            .map_err(|err| err.to_string())
        };
        let build = |component: &Component| match component {
            Component::HttpClient(client) => http(client),
            Component::Shell(shell) => Shell::new(shell, &config.dir)
                .map(|shell| Built::Shell(Arc::new(shell)))
                .map_err(|err| format!("component '{}': {err}", shell.id)),
            // Its actions are an http-client's, at its own address.
            Component::HttpServer(server) => http(&server.client()),
            Component::McpClient(client) => McpClient::new(client, &config.dir)
                .map(|client| Built::Mcp(Arc::new(client)))
                .map_err(|err| format!("component '{}': {err}", client.id)),
            Component::Workflow(_) => Ok(Built::Workflow),
            Component::Agent(_) => Ok(Built::Agent),
        };
        let components: Vec<Built> = config
            .components
            .iter()
            .map(build)
            .collect::<Result<_, _>>()?;
        let workflows = config
            .workflows
            .iter()
            .map(|workflow| {
                WorkflowPlan::new(workflow, (&config.components, &components), &build).map(Arc::new)
            })
            .collect::<Result<_, _>>()?;
        let services = config
            .components
            .iter()
            .filter_map(|component| match component {
                Component::HttpServer(server) => Some(ManagedServer::new(server, &config.dir)),
                _ => None,
            })
            .collect();
        Ok(Self {
            workflows,
            redactor,
            secrets,
            metrics,
            fetcher,
            services,
            traces,
        })
    }

    /// Every workflow, in config order.
    pub fn workflows(&self) -> &[Arc<WorkflowPlan>] {
        &self.workflows
    }

    /// Starts the local servers of its http-server components (before any run needs them),
    /// each once it has listened; the first that cannot start stops the others and says why.
    pub async fn start_services(&self) -> Result<(), String> {
        for (started, service) in self.services.iter().enumerate() {
            if let Err(err) = service.start().await {
                for running in &self.services[..started] {
                    running.stop().await;
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Stops the local servers it started.
    pub async fn stop_services(&self) {
        for service in &self.services {
            service.stop().await;
        }
    }

    /// How its local servers are doing, for `/health`.
    pub fn services(&self) -> Vec<crate::component::managed::Health> {
        self.services.iter().map(|s| s.health()).collect()
    }

    /// The workflows the API and the web UI show: all but the private ones.
    pub fn public_workflows(&self) -> impl Iterator<Item = &Arc<WorkflowPlan>> {
        self.workflows.iter().filter(|w| !w.private)
    }

    /// The workflow with this id (none: the only one, or the one marked default), if `access`
    /// may see it.
    pub fn workflow(
        &self,
        id: Option<&str>,
        access: Access,
    ) -> Result<Arc<WorkflowPlan>, RunError> {
        let id = id.unwrap_or(DEFAULT_REF);
        resolve(&self.workflows, id, |w| &w.id, |w| w.default)
            .filter(|w| access == Access::All || !w.private)
            .cloned()
            .ok_or_else(|| RunError::WorkflowNotFound(id.to_string()))
    }

    /// The commands whose arguments a caller of the API chooses: `(workflow, job)` for each
    /// `shell` job with an argument built from its input, in a public workflow or one a public
    /// workflow runs.
    pub fn commands_from_input(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut reach: Vec<&WorkflowPlan> = self.public_workflows().map(|w| &**w).collect();
        while let Some(workflow) = reach.pop() {
            if !seen.insert(&workflow.id) {
                continue;
            }
            for job in &workflow.jobs {
                match &job.work {
                    Work::Command { command, .. } if command.reads_input() => {
                        found.push((workflow.id.clone(), job.id.clone()));
                    }
                    Work::Call(call) => {
                        let id = &call.workflow;
                        let called = resolve(&self.workflows, id, |w| &w.id, |w| w.default);
                        reach.extend(called.map(|w| &**w));
                    }
                    // A model may call its tools with what a caller wrote.
                    Work::Agent(agent) => {
                        for call in agent.tool_workflows() {
                            let id = &call.workflow;
                            let called = resolve(&self.workflows, id, |w| &w.id, |w| w.default);
                            reach.extend(called.map(|w| &**w));
                        }
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// Where runs are exported as traces.
    pub fn traces(&self) -> &crate::traces::Traces {
        &self.traces
    }

    /// What the engine and the servers around it count (`GET /metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Values that must never be shown (the environment's substitutions).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// What finds the secrets in what a run shows of its jobs.
    pub fn redactor(&self) -> &crate::error::Redactor {
        &self.redactor
    }

    /// What `;url` and `;path` read with, and what a caller's values may reach.
    pub fn fetcher(&self) -> &Arc<Fetcher> {
        &self.fetcher
    }
}

impl WorkflowPlan {
    fn new(
        workflow: &config::Workflow,
        (configured, components): (&[Component], &[Built]),
        build: &dyn Fn(&Component) -> Result<Built, String>,
    ) -> Result<Self, String> {
        let jobs = workflow
            .jobs
            .iter()
            .map(|job| {
                let parts = Parts {
                    configured,
                    components,
                    build,
                    workflow: &workflow.id,
                };
                JobPlan::compile(job, &job.id, &parts)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let at = |err: String| format!("workflow '{}': {err}", workflow.id);
        let output = workflow
            .output
            .as_ref()
            .map(Binding::compile)
            .transpose()
            .map_err(|err| at(format!("output: {err}")))?;
        let input_schema =
            schema::collect_inputs(input_exprs(&jobs, output.as_ref())).map_err(at)?;
        let mut plan = Self {
            id: workflow.id.clone(),
            name: workflow.name.clone(),
            title: workflow.title.clone(),
            description: workflow.description.clone(),
            default: workflow.default,
            private: workflow.private,
            jobs,
            output,
            input_schema,
            output_schema: Vec::new(),
            routing_targets: HashSet::new(),
            dependencies: Vec::new(),
            hand_offs: Vec::new(),
        };
        let routed = plan.jobs.iter().flat_map(|job| job.routes.iter().cloned());
        plan.routing_targets = routed.collect();
        let terminal: Vec<bool> = plan.jobs.iter().map(|j| plan.is_terminal(&j.id)).collect();
        for (index, job) in plan.jobs.iter_mut().enumerate() {
            job.index = index;
            job.terminal = terminal[index];
        }
        plan.dependencies = plan
            .jobs
            .iter()
            .map(|job| {
                job.depends_on
                    .iter()
                    .map(|group| {
                        group
                            .iter()
                            .filter_map(|id| plan.jobs.iter().position(|j| &j.id == id))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        plan.hand_offs = super::hand_off::hand_offs(&plan.jobs, plan.output.as_ref());
        plan.output_schema = plan.infer_outputs();
        Ok(plan)
    }

    /// Whether it is a conversation: it takes the turns so far as `messages`, a list (the web
    /// UI's chat sends them; the OpenAI-compatible endpoint gives a request's).
    pub fn is_conversation(&self) -> bool {
        self.input_schema
            .iter()
            .any(|v| v.name.as_deref() == Some("messages") && (v.is_list || v.kind == "list"))
    }

    /// Whether a run of it may wait for a person: one of its jobs has an interrupt, or is an
    /// agent with tools the caller runs.
    pub fn may_pause(&self) -> bool {
        self.jobs.iter().any(|job| {
            job.interrupt.is_some()
                || matches!(&job.work, super::Work::Agent(agent) if agent.asks_caller())
        })
    }

    /// Whether the output is a stream of text pieces, as the schema infers it.
    pub fn streams(&self) -> bool {
        self.output_schema.iter().any(|v| v.kind == "stream")
    }

    /// The `depends_on` groups of the job at `index`, by index.
    pub(super) fn dependencies(&self, index: usize) -> &[Vec<usize>] {
        self.dependencies.get(index).map_or(&[], Vec::as_slice)
    }

    /// Where the stream of the job at `index` is handed, if anywhere.
    pub(super) fn hands_off(&self, index: usize) -> Option<&super::hand_off::HandOff> {
        self.hand_offs.get(index).and_then(Option::as_ref)
    }

    /// Whether the job at `index` waits to be routed to.
    pub(super) fn is_routing_target(&self, index: usize) -> bool {
        self.jobs
            .get(index)
            .is_some_and(|job| self.routing_targets.contains(&job.id))
    }

    /// Whether no other job depends on `job`.
    pub fn is_terminal(&self, job: &str) -> bool {
        !self
            .jobs
            .iter()
            .any(|j| j.depends_on.iter().flatten().any(|d| d == job))
    }

    fn infer_outputs(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        if let Some(output) = &self.output {
            out = schema::collect_outputs(output);
        } else {
            for job in self.jobs.iter().filter(|j| self.is_terminal(&j.id)) {
                match (&job.output, job.work.output()) {
                    (Some(output), _) => out.extend(schema::collect_outputs(output)),
                    (None, Some(output)) => out.extend(schema::collect_outputs(output)),
                    (None, None) => {}
                }
            }
        }
        if out.is_empty() {
            out.push(Variable {
                name: None,
                kind: "any".into(),
                subtype: None,
                format: None,
                is_list: false,
                default: None,
                description: None,
                required: false,
                conversion: None,
            });
        }
        out
    }
}

/// Where input variables are declared: the action of a job that passes the workflow input
/// through, else the job's own templates; then the workflow output.
fn input_exprs<'a>(jobs: &'a [JobPlan], output: Option<&'a Binding>) -> Vec<&'a Expr> {
    let mut exprs = Vec::new();
    for job in jobs {
        match &job.input {
            None => exprs.extend(job.work.exprs()),
            Some(input) => {
                exprs.extend(input.exprs());
                if let Some(output) = &job.output {
                    exprs.extend(output.exprs());
                }
            }
        }
    }
    if let Some(output) = output {
        exprs.extend(output.exprs());
    }
    exprs
}

impl JobPlan {
    /// A job of a workflow, or (with the id `<parent>[do]`) inside another job.
    pub(super) fn compile(job: &config::Job, id: &str, parts: &Parts) -> Result<Self, String> {
        let work = Work::compile(job, id, parts)?;
        Self::new(job, id, work)
    }

    /// The job's own templates: its input and output.
    pub(super) fn templates(&self) -> impl Iterator<Item = &Binding> {
        self.input.iter().chain(&self.output)
    }

    /// The job doing `work`.
    fn new(job: &config::Job, id: &str, work: Work) -> Result<Self, String> {
        let input = compile(&job.input, &job.id, "input")?.filter(|b| !b.is_exactly("input"));
        // A fan-out's `output` names its branches: it maps nothing.
        let output = match work {
            Work::FanOut { .. } => None,
            _ => compile(&job.output, &job.id, "output")?.filter(|b| !b.is_exactly("output")),
        };
        Ok(Self {
            id: id.to_string(),
            kind: job.kind,
            index: 0,
            terminal: false,
            work,
            share: Share::of(input.as_ref()),
            input,
            output,
            depends_on: job.depends_on.clone(),
            retry: job.retry.clone(),
            on_error: match &job.on_error {
                Some(on_error) => Some(match &on_error.to {
                    Some(to) => Fallback::To(to.clone()),
                    None => {
                        Fallback::Output(compile(&on_error.output, &job.id, "on_error.output")?)
                    }
                }),
                None => None,
            },
            max_run_count: job.max_run_count,
            routes: job.routes_to().into_iter().map(|(_, to)| to).collect(),
            interrupt: match &job.interrupt {
                Some(interrupt) => Interrupt::compile(interrupt, &job.id)?.map(Box::new),
                None => None,
            },
        })
    }

    /// Whose values the component's `input` holds in a run whose input is a caller's or not.
    pub fn input_owner(&self, from_caller: bool) -> Owner<'_> {
        match (from_caller, &self.share) {
            (false, _) => Owner::Server,
            (true, Share::All) => Owner::Caller,
            (true, Share::AllBut(keys)) => Owner::CallerBut(keys),
        }
    }
}

/// A job's `input` or `output` compiled, if it has one.
pub(super) fn compile(
    value: &Option<serde_json::Value>,
    job: &str,
    field: &str,
) -> Result<Option<Binding>, String> {
    value
        .as_ref()
        .map(Binding::compile)
        .transpose()
        .map_err(|err| format!("job '{job}': {field}: {err}"))
}
