//! Checks made when a config is loaded: every reference resolves and every action can be sent.

use std::collections::HashSet;

use super::model::{Component, HttpAction, Workflow, DEFAULT_REF};
use super::Config;

/// The first problem found, as a message naming where it is.
pub fn check(config: &Config) -> Result<(), String> {
    let mut seen = HashSet::new();
    for component in &config.components {
        if component.id() == DEFAULT_REF {
            return Err("component id cannot be '__default__'".into());
        }
        if !seen.insert(component.id()) {
            return Err(format!("duplicate component id '{}'", component.id()));
        }
        let Component::HttpClient(client) = component;
        for action in &client.actions {
            check_action(component.id(), client.base_url.is_some(), action)?;
        }
    }
    let mut seen = HashSet::new();
    for workflow in &config.workflows {
        if workflow.id == DEFAULT_REF {
            return Err("workflow id cannot be '__default__'".into());
        }
        if !seen.insert(workflow.id.as_str()) {
            return Err(format!("duplicate workflow id '{}'", workflow.id));
        }
        check_workflow(config, workflow)?;
    }
    Ok(())
}

fn check_action(component: &str, has_base_url: bool, action: &HttpAction) -> Result<(), String> {
    let at = format!("component '{component}' action '{}'", action.id);
    match (&action.endpoint, &action.path) {
        (Some(_), Some(_)) | (None, None) => Err(format!(
            "{at}: either 'endpoint' or 'path' must be set, but not both"
        )),
        (None, Some(_)) if !has_base_url => Err(format!(
            "{at} uses 'path' but 'base_url' is not set in the component"
        )),
        _ => Ok(()),
    }
}

fn check_workflow(config: &Config, workflow: &Workflow) -> Result<(), String> {
    if workflow.jobs.is_empty() {
        return Err(format!("workflow '{}' has no jobs", workflow.id));
    }
    let ids: HashSet<&str> = workflow.jobs.iter().map(|j| j.id.as_str()).collect();
    for job in &workflow.jobs {
        let at = job.label(&workflow.id);
        job.target(&config.components, &at)?;
        for group in &job.depends_on {
            for dep in group {
                if dep == &job.id {
                    return Err(format!("{at} depends on itself"));
                }
                if !ids.contains(dep.as_str()) {
                    return Err(format!("{at} depends on unknown job '{dep}'"));
                }
            }
        }
    }
    if has_cycle(workflow) {
        return Err(format!(
            "workflow '{}': the jobs' depends_on form a cycle",
            workflow.id
        ));
    }
    Ok(())
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
