//! Checks of the components: each action as its component's type reads it.

use serde_json::Value;

use super::{check_templates, At, Problem};
use crate::config::model::{resolve_index, Action, Agent, Component, DEFAULT_REF};
use crate::config::Config;

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
pub(super) fn check_component(
    config: &Config,
    component: &Component,
    at: &At,
) -> Result<(), Problem> {
    for (j, action) in component.actions().iter().enumerate() {
        let at = at.item("actions", "action", j);
        match component {
            Component::HttpClient(client) => {
                check_action(component.id(), client.base_url.is_some(), action, &at)?
            }
            Component::HttpServer(_) => {
                if action.endpoint.is_some() {
                    return Err(at.key("endpoint").problem(format!(
                        "component '{}' action '{}': an http-server's actions have a 'path' on \
                         its own server, not an 'endpoint'",
                        component.id(),
                        action.id
                    )));
                }
                check_action(component.id(), true, action, &at)?
            }
            Component::Shell(_) => check_command(component.id(), action, &at)?,
            Component::Workflow(_) => check_workflow_call(config, component.id(), action, &at)?,
            Component::Agent(_) => check_agent_action(component.id(), action, &at)?,
            Component::McpClient(_) => {
                for (field, value) in [("tool", &action.tool), ("arguments", &action.arguments)] {
                    if let Some(value) = value {
                        check_templates(value, &at.key(field))?;
                    }
                }
                if let Some(output) = &action.output {
                    check_templates(output, &at.key("output"))?;
                }
            }
        }
    }
    if let Component::HttpServer(server) = component {
        if server.manage.start.as_ref().is_none_or(|s| s.0.is_empty()) {
            return Err(at.problem(format!(
                "component '{}': an http-server needs the command that starts it: \
                 manage: {{start: [python, server.py]}}",
                component.id()
            )));
        }
    }
    if let Component::McpClient(client) = component {
        let named = format!("component '{}'", component.id());
        match (&client.url, &client.command) {
            (Some(_), Some(_)) => {
                return Err(at.problem(format!(
                    "{named}: an mcp-client speaks to a server at a 'url' or one it starts \
                     with 'command', not both"
                )))
            }
            (None, None) => {
                return Err(at.problem(format!(
                    "{named}: an mcp-client needs the server's 'url' (Streamable HTTP), or the \
                     'command' that starts it (stdio)"
                )))
            }
            (None, Some(argv)) if argv.is_empty() => {
                return Err(at
                    .key("command")
                    .problem(format!("{named}: a command needs at least its program")))
            }
            _ => {}
        }
    }
    if let Component::Agent(agent) = component {
        check_agent(config, agent, at)?;
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
    if crate::config::resolve(&config.workflows, id, |w| &w.id, |w| w.default).is_none() {
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

/// An agent's model is a component that answers (not itself an agent), its tools workflows of
/// the config or tools the caller runs, each name once.
fn check_agent(config: &Config, agent: &Agent, at: &At) -> Result<(), Problem> {
    let named = format!("agent '{}'", agent.id);
    let Some(model) = &agent.model else {
        return Err(at.problem(format!(
            "{named} needs 'model': the component that answers, e.g. model: {{component: llm}}"
        )));
    };
    let at_model = at.key("model");
    let found = resolve_index(&config.components, &model.component, Component::id, |c| {
        c.is_default()
    });
    let Some(component) = found.and_then(|index| config.components.get(index)) else {
        return Err(at_model.key("component").problem(format!(
            "{named}: model component '{}' not found",
            model.component
        )));
    };
    if matches!(component, Component::Agent(_)) {
        return Err(at_model.key("component").problem(format!(
            "{named}: its model '{}' is an agent; the model is the component that answers",
            component.id()
        )));
    }
    if resolve_index(component.actions(), &model.action, |a| &a.id, |a| a.default).is_none() {
        return Err(at_model.key("action").problem(format!(
            "{named}: model action '{}' not found in component '{}'",
            model.action,
            component.id()
        )));
    }
    for (field, value) in [("input", &model.input), ("output", &model.output)] {
        if let Some(value) = value {
            check_templates(value, &at_model.key(field))?;
        }
    }
    if let Some(instructions) = &agent.instructions {
        check_templates(instructions, &at.key("instructions"))?;
    }
    if agent.max_iteration_count == 0 {
        return Err(at
            .key("max_iteration_count")
            .problem(format!("{named}: max_iteration_count must be at least 1")));
    }
    let mut names: Vec<String> = Vec::new();
    for (index, tool) in agent.tools.iter().enumerate() {
        let at_tool = at.key("tools").index(index);
        let name = match tool {
            Value::String(id) => {
                let workflow = config.workflows.iter().find(|w| &w.id == id);
                let Some(workflow) = workflow else {
                    return Err(at_tool.problem(format!(
                        "{named}: tool '{id}' is no workflow of this config"
                    )));
                };
                workflow.name.clone().unwrap_or_else(|| id.clone())
            }
            Value::Object(fields) if fields.contains_key("mcp") => {
                let id = fields
                    .get("mcp")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let server = config.components.iter().find(|c| c.id() == id);
                if !matches!(server, Some(Component::McpClient(_))) {
                    return Err(at_tool.key("mcp").problem(format!(
                        "{named}: '{id}' is no mcp-client component of this config (the \
                         server whose tools the agent takes)"
                    )));
                }
                // Its tools' names are known once the server lists them.
                continue;
            }
            Value::Object(fields) => {
                let Some(name) = fields.get("name").and_then(Value::as_str) else {
                    return Err(at_tool.problem(format!(
                        "{named}: a tool the caller runs needs a 'name' (and a 'description', \
                         'parameters')"
                    )));
                };
                let parameters = fields.get("parameters");
                let typed = parameters
                    .and_then(|p| p.get("type"))
                    .and_then(Value::as_str);
                if parameters.is_some_and(|p| !p.is_null()) && typed != Some("object") {
                    return Err(at_tool.key("parameters").problem(format!(
                        "{named}: tool '{name}': parameters is a JSON schema of type object"
                    )));
                }
                name.to_string()
            }
            _ => {
                return Err(at_tool.problem(format!(
                    "{named}: a tool is a workflow's id, {{mcp: <mcp-client component>}}, or a \
                     mapping with a 'name'"
                )))
            }
        };
        if names.contains(&name) {
            return Err(at_tool.problem(format!(
                "{named}: two tools are named '{name}': the model could not tell them apart"
            )));
        }
        names.push(name);
    }
    Ok(())
}

/// An agent's action: its prompt and output templates, its limit, its streaming flag.
fn check_agent_action(component: &str, action: &Action, at: &At) -> Result<(), Problem> {
    let named = format!("component '{component}' action '{}'", action.id);
    let fields = [
        ("prompt", &action.prompt),
        ("messages", &action.messages),
        ("output", &action.output),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            check_templates(value, &at.key(field))?;
        }
    }
    match &action.max_iteration_count {
        Some(Value::Number(n)) if n.as_u64().is_none_or(|n| n == 0) => {
            return Err(at
                .key("max_iteration_count")
                .problem(format!("{named}: max_iteration_count must be at least 1")))
        }
        Some(value @ Value::String(_)) => check_templates(value, &at.key("max_iteration_count"))?,
        _ => {}
    }
    if action.streaming.as_ref().is_some_and(|s| !s.is_boolean()) {
        return Err(at.key("streaming").problem(format!(
            "{named}: streaming is true or false (a template is not read here)"
        )));
    }
    Ok(())
}
