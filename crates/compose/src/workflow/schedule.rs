//! The order jobs run in (spec §4.3, §13.2): a job starts as soon as its `depends_on` are
//! done; routing targets wait until a router (or a failed job's `on_error.to`) routes to them;
//! routing to a job already done runs it again with everything done after it ("rewind"),
//! within each job's `max_run_count`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::{Map, Value};

use super::stream::Produced;
use super::{JobPlan, JobStage, WorkflowPlan};
use crate::error::RunError;

/// What a job ends with.
pub(super) enum Step {
    /// Its output.
    Output(Produced),
    /// Where the run goes next (a router's decision, or `on_error.to`); none: nowhere.
    Route(Option<String>),
}

/// What a router's decision does.
enum Routed<'a> {
    /// Starts a routing target.
    Start(&'a JobPlan),
    /// Runs a done job again (with what depends on it).
    Again(&'a str),
    /// Nothing: no target, or one that runs (or ran) anyway.
    Nowhere,
}

/// A job's run, started: it gives its job back with how it ended.
type Running<'a> = Pin<Box<dyn Future<Output = (&'a JobPlan, Result<Step, RunError>)> + Send + 'a>>;

/// What a job tells those who watch the run.
pub(super) type Tell<'a> = &'a (dyn Fn(&JobPlan, JobStage, Option<&str>) + Send + Sync);

/// Where each job of one run is.
pub(super) struct Schedule<'a> {
    plan: &'a WorkflowPlan,
    /// Jobs to start once their `depends_on` are done, in config order.
    pending: Vec<&'a JobPlan>,
    /// Routing targets not routed to yet.
    waiting: HashSet<&'a str>,
    running: HashSet<&'a str>,
    done: HashSet<&'a str>,
    runs: HashMap<&'a str, u32>,
    /// Done jobs' outputs, as `${jobs}` reads them; shared with the jobs that run, copied only
    /// when one changes while a job still reads the last.
    outputs: Arc<Value>,
}

impl<'a> Schedule<'a> {
    pub fn new(plan: &'a WorkflowPlan) -> Self {
        let (waiting, pending): (Vec<&JobPlan>, Vec<&JobPlan>) = plan
            .jobs
            .iter()
            .partition(|job| plan.routing_targets.contains(&job.id));
        Self {
            plan,
            pending,
            waiting: waiting.into_iter().map(|job| job.id.as_str()).collect(),
            running: HashSet::new(),
            done: HashSet::new(),
            runs: HashMap::new(),
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
            self.running.remove(job.id.as_str());
            let step = match outcome {
                Ok(step) => step,
                Err(err) => {
                    tell(job, JobStage::Failed, None);
                    return Err(err);
                }
            };
            match step {
                Step::Output(produced) => {
                    tell(job, JobStage::Completed, None);
                    let kept = finish(job, produced)?;
                    self.record(job, kept);
                    self.done.insert(job.id.as_str());
                }
                Step::Route(target) => match self.route(job, target.as_deref()) {
                    Routed::Start(next) => {
                        tell(job, JobStage::Routed, Some(&next.id));
                        tracing::info!("Routing to job '{}' from job '{}'.", next.id, job.id);
                        running.push(self.start(next, &start, tell)?);
                    }
                    Routed::Again(next) => {
                        tell(job, JobStage::Routed, Some(next));
                        tracing::info!("Routing back to job '{next}' from job '{}'.", job.id);
                    }
                    Routed::Nowhere => {
                        tell(job, JobStage::Completed, None);
                        tracing::info!("Job '{}' completed without routing.", job.id);
                    }
                },
            }
        }
    }

    /// The pending jobs whose `depends_on` are done, taken from the pending list.
    fn ready(&mut self) -> Vec<&'a JobPlan> {
        let done = &self.done;
        let (ready, pending) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|job| {
                job.depends_on
                    .iter()
                    .all(|any| any.iter().any(|d| done.contains(d.as_str())))
            });
        self.pending = pending;
        ready
    }

    /// Starts a job's run, counting it against its `max_run_count`.
    fn start(
        &mut self,
        job: &'a JobPlan,
        start: &impl Fn(&'a JobPlan, Arc<Value>) -> Running<'a>,
        tell: Tell<'_>,
    ) -> Result<Running<'a>, RunError> {
        let runs = self.runs.entry(job.id.as_str()).or_default();
        *runs += 1;
        if *runs > job.max_run_count {
            tell(job, JobStage::Failed, None);
            return Err(RunError::Flow(format!(
                "Job '{}' has reached its max_run_count ({}).",
                job.id, job.max_run_count
            )));
        }
        self.running.insert(job.id.as_str());
        tell(job, JobStage::Started, None);
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
    fn route(&mut self, router: &'a JobPlan, target: Option<&str>) -> Routed<'a> {
        let plan = self.plan;
        let target = target.and_then(|t| plan.jobs.iter().find(|job| job.id == t));
        let target = target.map(|job| job.id.as_str());
        let mut rewound = HashSet::new();
        if let Some(target) = target.filter(|t| self.done.contains(t)) {
            let mut candidates = self.done.clone();
            candidates.insert(router.id.as_str());
            rewound = self.dependents(target, &candidates);
            for job in self
                .plan
                .jobs
                .iter()
                .filter(|j| rewound.contains(j.id.as_str()))
            {
                self.done.remove(job.id.as_str());
                if let Value::Object(outputs) = Arc::make_mut(&mut self.outputs) {
                    outputs.remove(&job.id);
                }
                self.pending.push(job);
            }
        }
        if !rewound.contains(router.id.as_str()) {
            self.record(router, Some(Value::Null));
            self.done.insert(router.id.as_str());
        }
        match target {
            Some(target) if self.waiting.remove(target) => plan
                .jobs
                .iter()
                .find(|job| job.id == target)
                .map_or(Routed::Nowhere, Routed::Start),
            Some(target) if !rewound.is_empty() => Routed::Again(target),
            _ => Routed::Nowhere,
        }
    }

    /// `root` and every job among `candidates` that depends on it, directly or not.
    fn dependents(&self, root: &str, candidates: &HashSet<&'a str>) -> HashSet<&'a str> {
        let mut found = HashSet::new();
        let mut visit = vec![root];
        while let Some(id) = visit.pop() {
            let Some(&id) = candidates.get(id) else {
                continue;
            };
            if !found.insert(id) {
                continue;
            }
            for job in &self.plan.jobs {
                if job.depends_on.iter().flatten().any(|d| d == id) {
                    visit.push(job.id.as_str());
                }
            }
        }
        found
    }
}
