//! The one gate every door (REST API, web UI, command line) goes through before a run: the
//! workflow is looked up, hidden if private and the caller is public, and the input is checked
//! against the workflow's schema. Only a [`RunRequest`] that passed it can be run.

use std::sync::Arc;

use serde_json::Value;

use super::plan::{Access, Engine, WorkflowPlan};
use crate::error::RunError;
use crate::schema;

/// A run that passed the gate: a workflow the caller may run, with an input that fits it.
pub struct RunRequest {
    workflow: Arc<WorkflowPlan>,
    input: Arc<Value>,
    /// Whether the input is a caller's (API, web UI), whose links and paths reach only what
    /// the fetch policy allows (D32), or the config owner's (the command line).
    from_caller: bool,
}

impl RunRequest {
    pub fn from_caller(&self) -> bool {
        self.from_caller
    }

    pub fn workflow(&self) -> &Arc<WorkflowPlan> {
        &self.workflow
    }

    pub fn input(&self) -> &Value {
        &self.input
    }

    /// The input, shared (a task keeps it for the history without a copy).
    pub fn shared_input(&self) -> Arc<Value> {
        Arc::clone(&self.input)
    }
}

impl Engine {
    /// Finds the workflow (`None`: the only one, or the one marked default) that `access` may
    /// run and checks `input` against its schema: an unknown workflow is
    /// [`RunError::WorkflowNotFound`], a wrong input a 400-class error naming the field (also
    /// a public caller's link or path that the fetch policy does not let callers reach).
    pub fn request(
        &self,
        workflow: Option<&str>,
        input: Value,
        access: Access,
    ) -> Result<RunRequest, RunError> {
        let workflow = self.workflow(workflow, access)?;
        let from_caller = access == Access::Public;
        let policy = from_caller.then(|| self.fetcher().policy().as_ref());
        schema::check_input(&workflow.input_schema, &input, policy)?;
        Ok(RunRequest {
            workflow,
            input: Arc::new(input),
            from_caller,
        })
    }
}
