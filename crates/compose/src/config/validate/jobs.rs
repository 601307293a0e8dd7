//! Checks of the jobs: each type's fields, its templates, and the jobs inside it.

use std::collections::HashSet;

use serde_json::Value;

use super::components::check_component;
use super::{check_templates, At, Problem};
use crate::config::model::{ComponentRef, Job, JobKind, Mode};
use crate::config::Config;

/// What every type of job may declare: no inline Python, pauses with well-formed templates,
/// at least one run.
fn check_common(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    if job.hook.is_some() {
        return Err(at.key("hook").problem(format!(
            "{named}: hook runs inline Python, which this implementation does not run; do the \
             work in a component (an http-client to a service of yours) instead"
        )));
    }
    if let Some(interrupt) = &job.interrupt {
        let at = at.key("interrupt");
        let pauses = [("before", &interrupt.before), ("after", &interrupt.after)];
        for (phase, pause) in pauses {
            let Some(pause) = pause else { continue };
            let at = at.key(phase);
            if let Some(condition) = &pause.condition {
                let at = at.key("condition");
                check_operator(condition.operator.as_deref(), named, &at)?;
                check_templates(&condition.input, &at.key("input"))?;
                check_templates(&condition.value, &at.key("value"))?;
            }
            if let Some(message) = &pause.message {
                check_templates(&Value::String(message.clone()), &at.key("message"))?;
            }
            if let Some(metadata) = &pause.metadata {
                check_templates(metadata, &at.key("metadata"))?;
            }
        }
    }
    if job.max_run_count == 0 {
        return Err(at
            .key("max_run_count")
            .problem(format!("{named}: max_run_count must be at least 1")));
    }
    Ok(())
}

/// A comparison's `operator` (at `at`), when written, is one there is.
fn check_operator(operator: Option<&str>, named: &str, at: &At) -> Result<(), Problem> {
    match operator {
        Some(operator) if crate::binding::operators::Comparison::parse(operator).is_none() => {
            Err(at.key("operator").problem(format!(
                "{named}: unknown operator '{operator}' (one of {})",
                crate::binding::operators::COMPARISONS
            )))
        }
        _ => Ok(()),
    }
}

/// A `delay` job waits for a `duration`, or until a `time` (in a `timezone` there is).
fn check_delay(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    match job.mode {
        None | Some(Mode::TimeInterval) => {}
        Some(Mode::SpecificTime) => {
            let Some(time) = &job.time else {
                return Err(at.problem(format!(
                    "{named}: a delay until a time (mode: specific-time) needs 'time' \
                     (2026-12-24T18:00:00, with an offset or not)"
                )));
            };
            check_templates(time, &at.key("time"))?;
            if let Some(zone) = job.timezone.as_deref().filter(|z| !z.contains("${")) {
                crate::config::time_zone(zone)
                    .map_err(|err| at.key("timezone").problem(format!("{named}: {err}")))?;
            }
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
    check_streaming(job, named, at)?;
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
                check_operator(condition.operator.as_deref(), named, &at)?;
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

/// One job, of a workflow or inside another (`do`, `steps`): its type's fields, its templates,
/// and the jobs inside it.
pub(super) fn check_job(
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

/// A `filter`'s or a `for-each`'s `streaming` is a boolean (OD29: the original reads a
/// rendered "false" as true).
fn check_streaming(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    if job.streaming.as_ref().is_some_and(|s| !s.is_boolean()) {
        return Err(at.key("streaming").problem(format!(
            "{named}: a {}'s streaming is true or false (a template is not read here)",
            job.kind.name()
        )));
    }
    Ok(())
}

/// A `fan-out` job hands its `input`'s items to branches named in its `output`.
fn check_fan_out(job: &Job, named: &str, at: &At) -> Result<(), Problem> {
    if job.input.is_none() {
        return Err(at.problem(format!("{named}: a fan-out job needs 'input' (its items)")));
    }
    if job.buffer_size == Some(0) {
        return Err(at
            .key("buffer_size")
            .problem(format!("{named}: buffer_size must be at least 1")));
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
    check_streaming(job, named, at)?;
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
