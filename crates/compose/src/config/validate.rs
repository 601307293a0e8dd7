//! Checks made when a config is loaded: every reference resolves, every action can be sent,
//! every `${...}` is well formed with a known type, and the jobs can run in some order. Each
//! problem names the key it is about, so that the loader can point at its line and column.

use std::collections::HashSet;

use serde_json::Value;

use super::model::{Action, Component, ComponentRef, Job, JobKind, Mode, Workflow, DEFAULT_REF};
use super::Config;
use crate::binding::{self, Binding};
use crate::schema::Variable;

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

fn check_action(
    component: &str,
    has_base_url: bool,
    action: &Action,
    at: &At,
) -> Result<(), Problem> {
    let named = format!("component '{component}' action '{}'", action.id);
    match (&action.endpoint, &action.path) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(at.problem(format!(
                "{named}: either 'endpoint' or 'path' must be set, but not both"
            )))
        }
        (None, Some(_)) if !has_base_url => {
            return Err(at.key("path").problem(format!(
                "{named} uses 'path' but 'base_url' is not set in the component"
            )))
        }
        _ => {}
    }
    for (field, value) in [("headers", &action.headers), ("params", &action.params)] {
        if !matches!(value, Value::Null | Value::Object(_)) {
            return Err(at.key(field).problem(format!(
                "{named}: '{field}' must be a mapping of names to values"
            )));
        }
    }
    let texts = [("endpoint", &action.endpoint), ("path", &action.path)];
    for (field, text) in texts {
        if let Some(text) = text {
            check_templates(&Value::String(text.clone()), &at.key(field))?;
        }
    }
    for (field, value) in [
        ("headers", &action.headers),
        ("params", &action.params),
        ("body", &action.body),
    ] {
        check_templates(value, &at.key(field))?;
    }
    if let Some(output) = &action.output {
        check_templates(output, &at.key("output"))?;
    }
    Ok(())
}

/// A component's actions, as its type reads them, and its own templates.
fn check_component(config: &Config, component: &Component, at: &At) -> Result<(), Problem> {
    for (j, action) in component.actions().iter().enumerate() {
        let at = at.item("actions", "action", j);
        match component {
            Component::HttpClient(client) => {
                check_action(component.id(), client.base_url.is_some(), action, &at)?
            }
            Component::Shell(_) => check_command(component.id(), action, &at)?,
            Component::Workflow(_) => check_workflow_call(config, component.id(), action, &at)?,
        }
    }
    if let Component::Shell(shell) = component {
        for (key, value) in &shell.env {
            check_templates(value, &at.key("env").key(key))?;
        }
    }
    Ok(())
}

/// A shell action runs one argv, or a batch of them; each argument a text (or a number).
fn check_command(component: &str, action: &Action, at: &At) -> Result<(), Problem> {
    let named = format!("component '{component}' action '{}'", action.id);
    let Some(command) = &action.command else {
        return Err(at.problem(format!(
            "{named}: a shell action needs 'command', a list such as [echo, '${{input.text}}']"
        )));
    };
    let at_command = at.key("command");
    let argvs: Vec<(At, &Vec<Value>)> = match command {
        Value::Array(items) if items.iter().all(Value::is_array) && !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, argv)| argv.as_array().map(|argv| (at_command.index(i), argv)))
            .collect(),
        Value::Array(argv) => vec![(at_command.clone(), argv)],
        _ => {
            return Err(at_command.problem(format!(
                "{named}: 'command' is a list (the program, then each argument), not one \
                 string: no shell reads it (write [sh, -c, '...'] for one)"
            )))
        }
    };
    for (at, argv) in argvs {
        if argv.is_empty() {
            return Err(at.problem(format!("{named}: a command needs at least its program")));
        }
        for (i, arg) in argv.iter().enumerate() {
            match arg {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    check_templates(arg, &at.index(i))?
                }
                other => {
                    return Err(at.index(i).problem(format!(
                        "{named}: each part of a command is a text, got {other}"
                    )))
                }
            }
        }
    }
    if action
        .streaming
        .as_ref()
        .is_some_and(|s| s != &Value::Bool(false))
    {
        return Err(at.key("streaming").problem(format!(
            "{named}: a command's output as a stream of lines is not in this implementation yet"
        )));
    }
    if action.batch_size == Some(0) {
        return Err(at
            .key("batch_size")
            .problem(format!("{named}: batch_size must be at least 1")));
    }
    if let Some(dir) = &action.working_dir {
        check_templates(&Value::String(dir.clone()), &at.key("working_dir"))?;
    }
    for (key, value) in &action.env {
        check_templates(value, &at.key("env").key(key))?;
    }
    for (field, value) in [("stdin", &action.stdin), ("output", &action.output)] {
        if let Some(value) = value {
            check_templates(value, &at.key(field))?;
        }
    }
    Ok(())
}

/// A workflow action names a workflow of the config (any, private ones too).
fn check_workflow_call(
    config: &Config,
    component: &str,
    action: &Action,
    at: &At,
) -> Result<(), Problem> {
    let named = format!("component '{component}' action '{}'", action.id);
    let id = action.workflow.as_deref().unwrap_or(DEFAULT_REF);
    if super::resolve(&config.workflows, id, |w| &w.id, |w| w.default).is_none() {
        let at = match action.workflow {
            Some(_) => at.key("workflow"),
            None => at.clone(),
        };
        return Err(at.problem(match id {
            DEFAULT_REF => format!(
                "{named}: runs the default workflow, but there are several and none has \
                 'default: true' (name one with 'workflow')"
            ),
            id => format!("{named}: workflow '{id}' not found"),
        }));
    }
    for (field, value) in [("input", &action.input), ("output", &action.output)] {
        if let Some(value) = value {
            check_templates(value, &at.key(field))?;
        }
    }
    Ok(())
}

/// What every type of job may declare: no inline Python, no pause for a person (yet), at
/// least one run.
fn check_common(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    if job.hook.is_some() {
        return Err(at.key("hook").problem(format!(
            "{named}: hook runs inline Python, which this implementation does not run; do the \
             work in a component (an http-client to a service of yours) instead"
        )));
    }
    if job.interrupt.is_some() {
        return Err(at.key("interrupt").problem(format!(
            "{named}: interrupt (pausing the run for a person) is not in this implementation yet"
        )));
    }
    if job.max_run_count == 0 {
        return Err(at
            .key("max_run_count")
            .problem(format!("{named}: max_run_count must be at least 1")));
    }
    Ok(())
}

/// A `delay` job waits for a `duration`; waiting until a time of day is not here yet.
fn check_delay(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    match job.mode {
        None | Some(Mode::TimeInterval) => {}
        Some(Mode::SpecificTime) => {
            return Err(at.key("mode").problem(format!(
                "{named}: a delay until a time (mode: specific-time) is not in this \
                 implementation yet; use mode: time-interval with a duration"
            )))
        }
        Some(_) => {
            return Err(at.key("mode").problem(format!(
                "{named}: a delay's mode is time-interval or specific-time"
            )))
        }
    }
    match &job.duration {
        Some(duration) => check_templates(duration, &at.key("duration")),
        None => Ok(()),
    }
}

/// A `filter` job filters its `input`, item by item, with a well-formed `where`.
fn check_filter(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    if job.input.is_none() {
        return Err(at.problem(format!(
            "{named}: a filter job needs 'input' (what to filter)"
        )));
    }
    if job
        .streaming
        .as_ref()
        .is_some_and(|s| s != &Value::Bool(false))
    {
        return Err(at.key("streaming").problem(format!(
            "{named}: a filter's streaming output is not in this implementation yet"
        )));
    }
    match &job.condition {
        Some(condition) => {
            crate::binding::operators::Filter::compile(condition)
                .map_err(|err| at.key("where").problem(format!("{named}: {err}")))?;
            check_templates(condition, &at.key("where"))
        }
        None => Ok(()),
    }
}

/// A router's conditions, cases or routes are well formed (its targets are checked with the
/// workflow's jobs).
fn check_router(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    match job.kind {
        JobKind::If => {
            let short = job.conditions.is_none();
            for (i, condition) in job.if_conditions().iter().enumerate() {
                let at = if short {
                    at.clone()
                } else {
                    at.key("conditions").index(i)
                };
                if let Some(operator) = &condition.operator {
                    if crate::binding::operators::Comparison::parse(operator).is_none() {
                        return Err(at.key("operator").problem(format!(
                            "{named}: unknown operator '{operator}' (one of {})",
                            crate::binding::operators::COMPARISONS
                        )));
                    }
                }
                check_templates(&condition.value, &at.key("value"))?;
            }
        }
        JobKind::Switch => {
            let short = job.cases.is_none();
            for (i, case) in job.switch_cases().iter().enumerate() {
                let at = if short {
                    at.key("value")
                } else {
                    at.key("cases").index(i).key("value")
                };
                if !case.value.is_string() {
                    return Err(at.problem(format!(
                        "{named}: a case's value is a text (write it in quotes), got {}",
                        case.value
                    )));
                }
                check_templates(&case.value, &at)?;
            }
        }
        JobKind::RandomRouter => {
            if job
                .mode
                .is_some_and(|mode| !matches!(mode, Mode::Uniform | Mode::Weighted))
            {
                return Err(at.key("mode").problem(format!(
                    "{named}: a random-router's mode is uniform or weighted"
                )));
            }
            if job.routings.is_empty() {
                return Err(at.problem(format!(
                    "{named}: a random-router needs 'routings' (a list of {{to, weight}})"
                )));
            }
            for (field, text) in [("session", &job.session), ("salt", &job.salt)] {
                if let Some(text) = text {
                    check_templates(&Value::String(text.clone()), &at.key(field))?;
                }
            }
        }
        _ => {}
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

/// One job, of a workflow or inside another (`do`, `steps`): its type's fields, its templates,
/// and the jobs inside it.
fn check_job(
    config: &Config,
    job: &Job,
    named: &str,
    job_at: &At,
    ids: &HashSet<&str>,
) -> Result<(), Problem> {
    check_common(job, named, job_at)?;
    match job.kind {
        JobKind::Component => {
            if let ComponentRef::Inline(component) = &job.component {
                check_component(config, component, &job_at.key("component"))?;
            }
            job.target(&config.components, named)
                .map_err(|err| Problem {
                    // A job may name neither: then the message is about the job itself.
                    at: [job_at.key(err.key).0, job_at.0.clone()].concat(),
                    message: err.message,
                })?;
        }
        JobKind::Delay => check_delay(job, named, job_at)?,
        JobKind::Filter => check_filter(job, named, job_at)?,
        JobKind::If | JobKind::Switch | JobKind::RandomRouter => check_router(job, named, job_at)?,
        JobKind::ForEach | JobKind::Loop | JobKind::Pipeline | JobKind::Accumulate => {
            check_composite(config, job, named, job_at, ids)?
        }
        JobKind::FanOut => check_fan_out(job, named, job_at)?,
    }
    for (field, value) in [("input", &job.input), ("output", &job.output)] {
        if let Some(value) = value {
            check_templates(value, &job_at.key(field))?;
        }
    }
    if let Some(on_error) = &job.on_error {
        if let Some(output) = &on_error.output {
            check_templates(output, &job_at.key("on_error").key("output"))?;
        }
    }
    Ok(())
}

/// A `fan-out` job hands its `input`'s items to branches named in its `output`.
fn check_fan_out(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    if job.input.is_none() {
        return Err(at.problem(format!("{named}: a fan-out job needs 'input' (its items)")));
    }
    let names: Vec<&str> = match &job.output {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let listed = job
        .output
        .as_ref()
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if names.is_empty() || names.len() != listed {
        return Err(at.key("output").problem(format!(
            "{named}: a fan-out job's 'output' is the list of its branches' names"
        )));
    }
    let unique: HashSet<&str> = names.iter().copied().collect();
    if unique.len() != names.len() {
        return Err(at.key("output").problem(format!(
            "{named}: a fan-out job's branches need different names"
        )));
    }
    Ok(())
}

/// A job that runs jobs inside it: what it needs, and each inner job (of the types allowed
/// inside, without `depends_on` or `on_error.to`).
fn check_composite(
    config: &Config,
    job: &Job,
    named: &str,
    at: &At,
    ids: &HashSet<&str>,
) -> Result<(), Problem> {
    let needs = |what: &str| at.problem(format!("{named}: a {} job needs {what}", job.kind.name()));
    let inner: Vec<(At, &Job)> = match job.kind {
        JobKind::Pipeline => match &job.steps {
            Some(steps) if !steps.is_empty() => steps
                .iter()
                .enumerate()
                .map(|(k, step)| (at.key("steps").index(k), step))
                .collect(),
            _ => return Err(needs("'steps' (a list of jobs)")),
        },
        _ => match &job.body {
            Some(body) => vec![(at.key("do"), &**body)],
            None => return Err(needs("'do' (the job it runs)")),
        },
    };
    if matches!(job.kind, JobKind::ForEach | JobKind::Accumulate) && job.input.is_none() {
        return Err(needs("'input' (its items)"));
    }
    if job.kind == JobKind::Loop {
        let condition = match (&job.while_holds, &job.until) {
            (Some(c), None) => ("while", c),
            (None, Some(c)) => ("until", c),
            _ => return Err(needs("one of 'while' and 'until'")),
        };
        crate::binding::operators::Filter::compile(condition.1)
            .map_err(|err| at.key(condition.0).problem(format!("{named}: {err}")))?;
        check_templates(condition.1, &at.key(condition.0))?;
    }
    if job.batch_size == Some(0) || job.max_iteration_count == Some(0) {
        let key = if job.batch_size == Some(0) {
            "batch_size"
        } else {
            "max_iteration_count"
        };
        return Err(at
            .key(key)
            .problem(format!("{named}: {key} must be at least 1")));
    }
    if let Some(accumulator) = &job.accumulator {
        check_templates(accumulator, &at.key("accumulator"))?;
    }
    for (at, inner) in inner {
        let inner_named = format!("{named} (inside)");
        if !matches!(
            inner.kind,
            JobKind::Component
                | JobKind::ForEach
                | JobKind::Loop
                | JobKind::Pipeline
                | JobKind::Accumulate
        ) {
            return Err(at.key("type").problem(format!(
                "{inner_named}: a job inside another is a component, for-each, loop, pipeline \
                 or accumulate job, not {}",
                inner.kind.name()
            )));
        }
        if !inner.depends_on.is_empty() {
            return Err(at.key("depends_on").problem(format!(
                "{inner_named}: a job inside another cannot declare 'depends_on'"
            )));
        }
        if inner.on_error.as_ref().is_some_and(|e| e.to.is_some()) {
            return Err(at.key("on_error").key("to").problem(format!(
                "{inner_named}: a job inside another cannot route (on_error.to)"
            )));
        }
        check_job(config, inner, &inner_named, &at, ids)?;
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
