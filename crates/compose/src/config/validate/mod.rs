//! Checks made when a config is loaded: every reference resolves, every action can be sent,
//! every `${...}` is well formed with a known type, and the jobs can run in some order. Each
//! problem names the key it is about, so that the loader can point at its line and column.

use std::collections::HashSet;

use serde_json::Value;

mod components;
mod jobs;

use super::model::{Component, JobKind, Workflow, DEFAULT_REF};
use super::Config;
use crate::binding::{self, Binding};
use crate::schema::Variable;
use components::check_component;
use jobs::check_job;

/// A problem, and where: the paths of the key it is about, in the spellings the file may use
/// (`workflows[0].jobs[1].component`, or `workflow.job.component`).
#[derive(Debug)]
pub struct Problem {
    pub at: Vec<String>,
    pub message: String,
}

/// A key by its place in lists that may be written singular (`component:`) or plural.
#[derive(Clone)]
struct At(Vec<String>);

impl At {
    fn root() -> Self {
        At(vec![String::new()])
    }

    /// Item `index` of a list written `plural:`, or `singular:` when it is the only one.
    fn item(&self, plural: &str, singular: &str, index: usize) -> Self {
        let mut paths = Vec::new();
        for base in &self.0 {
            paths.push(join(base, &format!("{plural}[{index}]")));
            if index == 0 {
                paths.push(join(base, singular));
            }
        }
        At(paths)
    }

    fn key(&self, key: &str) -> Self {
        At(self.0.iter().map(|base| join(base, key)).collect())
    }

    fn index(&self, index: usize) -> Self {
        At(self
            .0
            .iter()
            .map(|base| format!("{base}[{index}]"))
            .collect())
    }

    fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            at: self.0.clone(),
            message: message.into(),
        }
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// The first problem found.
pub fn check(config: &Config) -> Result<(), Problem> {
    let root = At::root();
    let mut seen = HashSet::new();
    for (i, component) in config.components.iter().enumerate() {
        let at = root.item("components", "component", i);
        if component.id() == DEFAULT_REF {
            return Err(at.key("id").problem("component id cannot be '__default__'"));
        }
        if !seen.insert(component.id()) {
            return Err(at
                .key("id")
                .problem(format!("duplicate component id '{}'", component.id())));
        }
        check_component(config, component, &at)?;
    }
    let mut seen = HashSet::new();
    for (i, workflow) in config.workflows.iter().enumerate() {
        let at = root.item("workflows", "workflow", i);
        if workflow.id == DEFAULT_REF {
            return Err(at.key("id").problem("workflow id cannot be '__default__'"));
        }
        if !seen.insert(workflow.id.as_str()) {
            return Err(at
                .key("id")
                .problem(format!("duplicate workflow id '{}'", workflow.id)));
        }
        check_workflow(config, workflow, &at)?;
    }
    check_calls(config, &root)
}

/// Workflows that run each other through `workflow` components must not form a cycle: such a
/// run would never end.
fn check_calls(config: &Config, root: &At) -> Result<(), Problem> {
    // Each workflow's calls: (job index, called workflow index).
    let calls: Vec<Vec<(usize, usize)>> = config
        .workflows
        .iter()
        .map(|workflow| {
            workflow
                .jobs
                .iter()
                .enumerate()
                .filter(|(_, job)| job.kind == JobKind::Component)
                .filter_map(|(k, job)| {
                    let target = job.target(&config.components, "").ok()?;
                    if !matches!(target.component, Component::Workflow(_)) {
                        return None;
                    }
                    let action = target.component.actions().get(target.action)?;
                    let id = action.workflow.as_deref();
                    let id = id.unwrap_or(DEFAULT_REF);
                    super::resolve_index(&config.workflows, id, |w| &w.id, |w| w.default)
                        .map(|called| (k, called))
                })
                .collect()
        })
        .collect();
    for start in 0..config.workflows.len() {
        // Depth-first from `start`, looking for a way back to it.
        let mut path = vec![start];
        let mut next = vec![(start, 0)];
        let mut seen = HashSet::new();
        while let Some((at, edge)) = next.pop() {
            let Some(&(job, called)) = calls[at].get(edge) else {
                path.pop();
                continue;
            };
            next.push((at, edge + 1));
            if called == start {
                let names: Vec<&str> = path
                    .iter()
                    .chain([&start])
                    .map(|w| config.workflows[*w].id.as_str())
                    .collect();
                let workflow = &config.workflows[at];
                let at = root
                    .item("workflows", "workflow", at)
                    .item("jobs", "job", job)
                    .key("component");
                return Err(at.problem(format!(
                    "workflow '{}' job '{}' makes workflows run each other without end: {}",
                    workflow.id,
                    workflow.jobs[job].id,
                    names.join(" → ")
                )));
            }
            if seen.insert(called) {
                path.push(called);
                next.push((called, 0));
            }
        }
    }
    Ok(())
}

fn check_workflow(config: &Config, workflow: &Workflow, at: &At) -> Result<(), Problem> {
    if workflow.jobs.is_empty() {
        return Err(at.problem(format!("workflow '{}' has no jobs", workflow.id)));
    }
    let mut ids = HashSet::new();
    for (k, job) in workflow.jobs.iter().enumerate() {
        if !ids.insert(job.id.as_str()) {
            return Err(at.item("jobs", "job", k).key("id").problem(format!(
                "workflow '{}': duplicate job id '{}'",
                workflow.id, job.id
            )));
        }
    }
    for (k, job) in workflow.jobs.iter().enumerate() {
        let job_at = at.item("jobs", "job", k);
        let named = job.label(&workflow.id);
        check_job(config, job, &named, &job_at, &ids)?;
        for (key, target) in job.routes_to() {
            if !ids.contains(target.as_str()) {
                return Err(job_at
                    .key(&key)
                    .problem(format!("{named} routes to unknown job '{target}'")));
            }
        }
        for (g, group) in job.depends_on.iter().enumerate() {
            let dep_at = job_at.key("depends_on").index(g);
            for dep in group {
                if dep == &job.id {
                    return Err(dep_at.problem(format!("{named} depends on itself")));
                }
                if !ids.contains(dep.as_str()) {
                    return Err(dep_at.problem(format!("{named} depends on unknown job '{dep}'")));
                }
            }
        }
    }
    if let Some(output) = &workflow.output {
        check_templates(output, &at.key("output"))?;
    }
    if has_cycle(workflow) {
        return Err(at.key("jobs").problem(format!(
            "workflow '{}': the jobs' depends_on form a cycle",
            workflow.id
        )));
    }
    Ok(())
}

/// Every string of `value` must be well-formed `${...}` text, each input variable's default
/// must fit its declared type, and every operator must be well formed.
fn check_templates(value: &Value, at: &At) -> Result<(), Problem> {
    match value {
        Value::String(text) => {
            binding::check(text).map_err(|message| at.problem(message))?;
            let template = Binding::compile(value).map_err(|err| at.problem(err.to_string()))?;
            for expr in template.exprs() {
                Variable::from_expr(expr).map_err(|message| at.problem(message))?;
            }
            Ok(())
        }
        Value::Object(map) => {
            map.iter()
                .try_for_each(|(key, value)| check_templates(value, &at.key(key)))?;
            // The mapping itself may be an operator (`*`, `?`, `+`, `|`, `...`).
            Binding::compile(value)
                .map(|_| ())
                .map_err(|err| at.problem(err.to_string()))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_templates(item, &at.index(i))),
        _ => Ok(()),
    }
}

/// Whether some jobs can never start because they wait on each other.
fn has_cycle(workflow: &Workflow) -> bool {
    let mut done: HashSet<&str> = HashSet::new();
    loop {
        let ready: Vec<&str> = workflow
            .jobs
            .iter()
            .filter(|job| !done.contains(job.id.as_str()))
            .filter(|job| {
                job.depends_on
                    .iter()
                    .all(|group| group.iter().any(|dep| done.contains(dep.as_str())))
            })
            .map(|job| job.id.as_str())
            .collect();
        if ready.is_empty() {
            return done.len()
                < workflow
                    .jobs
                    .iter()
                    .map(|j| j.id.as_str())
                    .collect::<HashSet<_>>()
                    .len();
        }
        done.extend(ready);
    }
}
