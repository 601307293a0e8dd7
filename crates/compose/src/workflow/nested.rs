//! The `workflow` component (spec §11): a job that runs another workflow of the config inside
//! the same run (same cancellation, same usage), private workflows included. Calls nest at
//! most [`MAX_DEPTH`] deep: a workflow that calls itself fails with a message instead of
//! running until memory runs out (a cycle visible in the config is refused when it loads).

use serde_json::Value;

use crate::binding::{Binding, BindingError, Expr};
use crate::config::{self, DEFAULT_REF};

/// How deep workflow calls may nest.
pub const MAX_DEPTH: usize = 16;

/// The stack a thread that runs workflows needs: [`MAX_DEPTH`] nested calls take about 50 KB
/// each in a release build and several times that in a debug one (2 MiB, Tokio's default,
/// is just short). The main thread's default; only what is used is memory.
pub const RUN_STACK: usize = 8 * 1024 * 1024;

/// A workflow component's action, compiled.
pub struct WorkflowCall {
    /// The called workflow's id (`__default__`: the default one).
    pub workflow: String,
    /// What the called workflow runs with; `None`: the job's input.
    pub input: Option<Binding>,
    /// `None` when absent or exactly `${output}`: the called workflow's output is the output.
    pub output: Option<Binding>,
}

impl WorkflowCall {
    pub fn compile(action: &config::Action) -> Result<Self, BindingError> {
        let compile = |value: &Option<Value>| value.as_ref().map(Binding::compile).transpose();
        Ok(Self {
            workflow: action
                .workflow
                .clone()
                .unwrap_or_else(|| DEFAULT_REF.to_string()),
            input: compile(&action.input)?.filter(|input| !input.is_exactly("input")),
            output: compile(&action.output)?.filter(|output| !output.is_exactly("output")),
        })
    }

    /// Its templates' expressions: what the job's input must hold.
    pub fn exprs(&self) -> Vec<&Expr> {
        self.output
            .iter()
            .chain(&self.input)
            .flat_map(Binding::exprs)
            .collect()
    }

    /// The output template, when the action maps the called workflow's output.
    pub fn output(&self) -> Option<&Binding> {
        self.output.as_ref()
    }
}
