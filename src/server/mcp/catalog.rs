//! The tools an MCP client sees (spec §15.3): one per public workflow, named by its `name`
//! (else its id), described by its description (else its title), with the JSON schema of its
//! inputs (real types, descriptions, defaults, `required`: not OD15–OD17); and
//! `resume_workflow` when a run may wait for a person.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use serde_json::{json, Value};

use compose::signature::Signature;
use compose::{Engine, WorkflowPlan};

/// The tool that answers a run's interrupt points (§15.5).
pub const RESUME: &str = "resume_workflow";

/// What a workflow that may pause adds to its description (as the original words it).
const MAY_PAUSE: &str = "This workflow may pause at a Human-in-the-Loop interrupt point; when \
     it does, the response is a status object with a task_id/job_id that can be passed to \
     `resume_workflow` after collecting the required answer.";

/// The public workflows as tools, `resume_workflow` last when any of them may pause.
pub fn tools(engine: &Engine) -> Vec<Tool> {
    let mut tools: Vec<Tool> = engine.public_workflows().map(|w| tool(w)).collect();
    if engine.public_workflows().any(|w| w.may_pause()) {
        tools.push(resume_tool());
    }
    tools
}

/// The name a workflow has as a tool.
pub fn name(workflow: &WorkflowPlan) -> &str {
    workflow.name.as_deref().unwrap_or(&workflow.id)
}

/// The public workflow a tool's name calls.
pub fn find(engine: &Engine, tool: &str) -> Option<Arc<WorkflowPlan>> {
    engine.public_workflows().find(|w| name(w) == tool).cloned()
}

/// The workflow a run of the registry ran (a task knows its workflow's id).
pub fn by_id(engine: &Engine, id: &str) -> Option<Arc<WorkflowPlan>> {
    engine.public_workflows().find(|w| w.id == id).cloned()
}

fn tool(workflow: &WorkflowPlan) -> Tool {
    let about = workflow.description.as_ref().or(workflow.title.as_ref());
    let description = match (about, workflow.may_pause()) {
        (Some(about), true) => Some(format!("{about}\n\n{MAY_PAUSE}")),
        (None, true) => Some(MAY_PAUSE.to_string()),
        (about, false) => about.cloned(),
    };
    let schema = Signature::of(&workflow.input_schema).parameters;
    let mut tool = Tool::new_with_raw(
        name(workflow).to_string(),
        description.map(Into::into),
        Arc::new(object(schema)),
    );
    tool.title = workflow.title.clone();
    tool
}

fn resume_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "task_id": {"type": "string", "description": "The task_id of the interrupted run"},
            "answer": {
                "type": "object",
                "description": "Each interrupt point's id mapped to its answer (null: go on as \
                                it was); a JSON text of that mapping works too",
                "additionalProperties": true,
            },
        },
        "required": ["task_id", "answer"],
    });
    let mut tool = Tool::new_with_raw(
        RESUME,
        Some(
            "Resume a workflow run that paused at a Human-in-the-Loop interrupt point, with \
             the answer to each of its points; answers as the run's tool call would."
                .into(),
        ),
        Arc::new(object(schema)),
    );
    tool.title = Some("Resume an interrupted workflow".into());
    tool
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}
