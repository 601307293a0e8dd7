//! The order jobs run in (spec §4.3, §13.2): a job starts as soon as its `depends_on` are
//! done; routing targets wait until a router (or a failed job's `on_error.to`) routes to them;
//! routing to a job already done runs it again with everything done after it ("rewind"),
//! within each job's `max_run_count`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::{Map, Value};

use super::stream::Produced;
use super::{JobPlan, WorkflowPlan};
use crate::error::RunError;
use crate::record::JobStage;

/// What a job ends with.
pub(super) enum Step {
    /// Its output.
    Output(Produced),
    /// Where the run goes next (a router's decision, or `on_error.to`); none: nowhere.
    Route(Option<String>),
}

/// What a router's decision does (jobs by index).
enum Routed {
    /// Starts a routing target.
    Start(usize),
    /// Runs a done job again (with what depends on it).
    Again(usize),
    /// Nothing: no target, or one that runs (or ran) anyway.
    Nowhere,
}

/// A job's run, started: it gives its job back with how it ended.
type Running<'a> = Pin<Box<dyn Future<Output = (&'a JobPlan, Result<Step, RunError>)> + Send + 'a>>;

/// What is said of a job beside where it is.
#[derive(Default, Clone, Copy)]
pub(super) struct Said<'a> {
    /// Where a router sent the run.
    pub next: Option<&'a str>,
    /// Which item, round or step, inside another job.
    pub iteration: Option<u32>,
    /// Its input (started) or output (completed).
    pub value: Option<&'a Value>,
    /// Why it failed.
    pub error: Option<&'a RunError>,
}

impl<'a> Said<'a> {
    fn next(next: &'a str) -> Self {
        Self {
            next: Some(next),
            ..Self::default()
        }
    }
}

/// What a job tells those who watch the run.
pub(super) type Tell<'a> = &'a (dyn Fn(&JobPlan, JobStage, Said<'_>) + Send + Sync);

/// Where each job of one run is, by its index in the workflow.
pub(super) struct Schedule<'a> {
    plan: &'a WorkflowPlan,
    /// Jobs to start once their `depends_on` are done, in config order.
    pending: Vec<usize>,
    /// Routing targets not routed to yet.
    waiting: Vec<bool>,
    done: Vec<bool>,
    runs: Vec<u32>,
    /// Done jobs' outputs, as `${jobs}` reads them; shared with the jobs that run, copied only
    /// when one changes while a job still reads the last.
    outputs: Arc<Value>,
}

impl<'a> Schedule<'a> {
    pub fn new(plan: &'a WorkflowPlan) -> Self {
        let count = plan.jobs.len();
        let waiting: Vec<bool> = (0..count).map(|i| plan.is_routing_target(i)).collect();
        Self {
            plan,
            pending: (0..count).filter(|i| !waiting[*i]).collect(),
            waiting,
            done: vec![false; count],
            runs: vec![0; count],
            outputs: Arc::new(Value::Object(Map::new())),
        }
    }

    /// Runs every job as the schedule allows; `start` makes a job's run (with the outputs it
    /// may read), `finish` takes each output and says what `${jobs}` keeps of it. Ends when
    /// no job is left to run, with every output kept.
    pub async fn run(
        mut self,
        start: impl Fn(&'a JobPlan, Arc<Value>) -> Running<'a>,
        mut finish: impl FnMut(&'a JobPlan, Produced) -> Result<Option<Value>, RunError>,
        tell: Tell<'_>,
    ) -> Result<Value, RunError> {
        let mut running = FuturesUnordered::new();
        loop {
            for job in self.ready() {
                running.push(self.start(job, &start, tell)?);
            }
            let Some((job, outcome)) = running.next().await else {
                if self.pending.is_empty() {
                    return Ok(Arc::unwrap_or_clone(self.outputs));
                }
                return Err(RunError::Flow(
                    "No runnable jobs but pending jobs remain.".into(),
                ));
            };
            let step = match outcome {
                Ok(step) => step,
                Err(err) => {
                    let said = Said {
                        error: Some(&err),
                        ..Said::default()
                    };
                    tell(job, JobStage::Failed, said);
                    return Err(err);
                }
            };
            let index = job.index;
            match step {
                Step::Output(produced) => {
                    let value = match &produced {
                        Produced::Value(value) => Some(value),
                        _ => None,
                    };
                    let said = Said {
                        value,
                        ..Said::default()
                    };
                    tell(job, JobStage::Completed, said);
                    let kept = finish(job, produced)?;
                    self.record(job, kept);
                    self.done[index] = true;
                }
                Step::Route(target) => match self.route(index, target.as_deref()) {
                    Routed::Start(next) => {
                        let next = &self.plan.jobs[next];
                        tell(job, JobStage::Routed, Said::next(&next.id));
                        tracing::info!("Routing to job '{}' from job '{}'.", next.id, job.id);
                        running.push(self.start(next.index, &start, tell)?);
                    }
                    Routed::Again(next) => {
                        let next = &self.plan.jobs[next].id;
                        tell(job, JobStage::Routed, Said::next(next));
                        tracing::info!("Routing back to job '{next}' from job '{}'.", job.id);
                    }
                    Routed::Nowhere => {
                        tell(job, JobStage::Completed, Said::default());
                        tracing::info!("Job '{}' completed without routing.", job.id);
                    }
                },
            }
        }
    }

    /// The pending jobs whose `depends_on` are done, taken from the pending list.
    fn ready(&mut self) -> Vec<usize> {
        let (plan, done) = (self.plan, &self.done);
        let (ready, pending) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|job| {
                plan.dependencies(*job)
                    .iter()
                    .all(|any| any.iter().any(|d| done[*d]))
            });
        self.pending = pending;
        ready
    }

    /// Starts a job's run, counting it against its `max_run_count`.
    fn start(
        &mut self,
        index: usize,
        start: &impl Fn(&'a JobPlan, Arc<Value>) -> Running<'a>,
        tell: Tell<'_>,
    ) -> Result<Running<'a>, RunError> {
        let job = &self.plan.jobs[index];
        self.runs[index] += 1;
        if self.runs[index] > job.max_run_count {
            let err = RunError::Flow(format!(
                "Job '{}' has reached its max_run_count ({}).",
                job.id, job.max_run_count
            ));
            let said = Said {
                error: Some(&err),
                ..Said::default()
            };
            tell(job, JobStage::Failed, said);
            return Err(err);
        }
        // Its start is told by the job itself, with its input (see `run_job`).
        Ok(start(job, Arc::clone(&self.outputs)))
    }

    /// Keeps a job's output for `${jobs.<id>.output}` (none: not kept, a terminal's stream).
    fn record(&mut self, job: &JobPlan, output: Option<Value>) {
        if let Some(output) = output {
            if let Value::Object(outputs) = Arc::make_mut(&mut self.outputs) {
                outputs.insert(job.id.clone(), serde_json::json!({ "output": output }));
            }
        }
    }

    /// Takes a router's decision. A routing target not routed to yet is to start now. A
    /// target already done runs again with every done job that depends on it (the router too,
    /// if it is one of them), as their dependencies allow. The router is done (unless it runs
    /// again) and its output null.
    fn route(&mut self, router: usize, target: Option<&str>) -> Routed {
        let target = target.and_then(|t| self.plan.jobs.iter().position(|job| job.id == t));
        let mut rewound = vec![false; self.done.len()];
        if let Some(target) = target.filter(|t| self.done[*t]) {
            let mut candidates = self.done.clone();
            candidates[router] = true;
            self.mark_dependents(target, &candidates, &mut rewound);
            for (index, job) in self.plan.jobs.iter().enumerate() {
                if rewound[index] {
                    self.done[index] = false;
                    if let Value::Object(outputs) = Arc::make_mut(&mut self.outputs) {
                        outputs.remove(&job.id);
                    }
                    self.pending.push(index);
                }
            }
        }
        if !rewound[router] {
            self.record(&self.plan.jobs[router], Some(Value::Null));
            self.done[router] = true;
        }
        match target {
            Some(target) if std::mem::take(&mut self.waiting[target]) => Routed::Start(target),
            Some(target) if rewound.contains(&true) => Routed::Again(target),
            _ => Routed::Nowhere,
        }
    }

    /// Marks `root` and every job among `candidates` that depends on it, directly or not.
    fn mark_dependents(&self, root: usize, candidates: &[bool], marked: &mut [bool]) {
        let mut visit = vec![root];
        while let Some(index) = visit.pop() {
            if !candidates[index] || std::mem::replace(&mut marked[index], true) {
                continue;
            }
            for other in 0..self.plan.jobs.len() {
                if self
                    .plan
                    .dependencies(other)
                    .iter()
                    .flatten()
                    .any(|d| *d == index)
                {
                    visit.push(other);
                }
            }
        }
    }
}
