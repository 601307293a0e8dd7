//! The engine built from a config: components with their connection pools, and workflows
//! with their templates compiled and their schemas inferred.

use std::sync::Arc;

use crate::compose::binding::{Binding, Expr};
use crate::compose::component::{Action, HttpClient};
use crate::compose::config::{self, resolve, Component, Config, DEFAULT_REF};
use crate::compose::error::RunError;
use crate::compose::schema::{self, Variable};

/// Everything needed to run the config's workflows.
pub struct Engine {
    workflows: Vec<Arc<WorkflowPlan>>,
    secrets: Arc<[String]>,
}

/// A workflow ready to run.
pub struct WorkflowPlan {
    pub id: String,
    pub name: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub default: bool,
    /// Hidden from listings and not runnable over the API.
    pub private: bool,
    pub jobs: Vec<JobPlan>,
    pub output: Option<Binding>,
    pub input_schema: Vec<Variable>,
    pub output_schema: Vec<Variable>,
}

/// A job bound to its component and action.
pub struct JobPlan {
    pub id: String,
    pub component: Arc<HttpClient>,
    pub action: Arc<Action>,
    /// `None` when absent or exactly `${input}`: the workflow input is passed as it is.
    pub input: Option<Binding>,
    /// `None` when absent or exactly `${output}`: the component output is the job output.
    pub output: Option<Binding>,
    pub depends_on: Vec<Vec<String>>,
}

impl Engine {
    /// Builds the engine; fails with a message when a schema cannot be inferred.
    pub fn new(config: &Config) -> Result<Self, String> {
        let secrets: Arc<[String]> = config.secrets.clone().into();
        let components: Vec<Arc<HttpClient>> = config
            .components
            .iter()
            .map(|component| {
                let Component::HttpClient(client) = component;
                HttpClient::new(client, Arc::clone(&secrets)).map(Arc::new)
            })
            .collect::<Result<_, _>>()
            .map_err(|err| err.to_string())?;
        let workflows = config
            .workflows
            .iter()
            .map(|workflow| WorkflowPlan::new(workflow, &components).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self { workflows, secrets })
    }

    /// Every workflow, in config order.
    pub fn workflows(&self) -> &[Arc<WorkflowPlan>] {
        &self.workflows
    }

    /// The workflow with this id; none means the only one, or the one marked default.
    pub fn workflow(&self, id: Option<&str>) -> Result<Arc<WorkflowPlan>, RunError> {
        let id = id.unwrap_or(DEFAULT_REF);
        resolve(&self.workflows, id, |w| &w.id, |w| w.default)
            .cloned()
            .ok_or_else(|| RunError::WorkflowNotFound(id.to_string()))
    }

    /// Values that must never be shown (the environment's substitutions).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

impl WorkflowPlan {
    fn new(workflow: &config::Workflow, components: &[Arc<HttpClient>]) -> Result<Self, String> {
        let jobs = workflow
            .jobs
            .iter()
            .map(|job| JobPlan::new(job, components))
            .collect::<Result<Vec<_>, _>>()?;
        let output = workflow.output.as_ref().map(Binding::compile);
        let at = |err: String| format!("workflow '{}': {err}", workflow.id);
        let input_schema =
            schema::collect_inputs(input_exprs(&jobs, output.as_ref())).map_err(at)?;
        let mut plan = Self {
            id: workflow.id.clone(),
            name: workflow.name.clone(),
            title: workflow.title.clone(),
            description: workflow.description.clone(),
            default: workflow.default,
            private: workflow.private,
            jobs,
            output,
            input_schema,
            output_schema: Vec::new(),
        };
        plan.output_schema = plan.infer_outputs();
        Ok(plan)
    }

    /// Whether no other job depends on `job`.
    pub fn is_terminal(&self, job: &str) -> bool {
        !self
            .jobs
            .iter()
            .any(|j| j.depends_on.iter().flatten().any(|d| d == job))
    }

    fn infer_outputs(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        if let Some(output) = &self.output {
            out = schema::collect_outputs(output);
        } else {
            for job in self.jobs.iter().filter(|j| self.is_terminal(&j.id)) {
                match (&job.output, job.action.output()) {
                    (Some(output), _) => out.extend(schema::collect_outputs(output)),
                    (None, Some(output)) => out.extend(schema::collect_outputs(output)),
                    (None, None) => {}
                }
            }
        }
        if out.is_empty() {
            out.push(Variable {
                name: None,
                kind: "any".into(),
                subtype: None,
                format: None,
                is_list: false,
                default: None,
                description: None,
                required: false,
            });
        }
        out
    }
}

/// Where input variables are declared: the action of a job that passes the workflow input
/// through, else the job's own templates; then the workflow output.
fn input_exprs<'a>(jobs: &'a [JobPlan], output: Option<&'a Binding>) -> Vec<&'a Expr> {
    let mut exprs = Vec::new();
    for job in jobs {
        match &job.input {
            None => exprs.extend(job.action.exprs()),
            Some(input) => {
                exprs.extend(input.exprs());
                if let Some(output) = &job.output {
                    exprs.extend(output.exprs());
                }
            }
        }
    }
    if let Some(output) = output {
        exprs.extend(output.exprs());
    }
    exprs
}

impl JobPlan {
    fn new(job: &config::Job, components: &[Arc<HttpClient>]) -> Result<Self, String> {
        let component = resolve(components, &job.component, |c| &c.id, |c| c.default)
            .ok_or_else(|| format!("job '{}': component '{}' not found", job.id, job.component))?;
        let action = resolve(&component.actions, &job.action, |a| &a.id, |a| a.default)
            .ok_or_else(|| format!("job '{}': action '{}' not found", job.id, job.action))?;
        Ok(Self {
            id: job.id.clone(),
            component: Arc::clone(component),
            action: Arc::clone(action),
            input: job
                .input
                .as_ref()
                .map(Binding::compile)
                .filter(|b| !is_bare(b, "input")),
            output: job
                .output
                .as_ref()
                .map(Binding::compile)
                .filter(|b| !is_bare(b, "output")),
            depends_on: job.depends_on.clone(),
        })
    }
}

/// Whether a template is exactly `${source}`.
fn is_bare(binding: &Binding, source: &str) -> bool {
    binding
        .as_template()
        .and_then(|t| t.whole_expr())
        .is_some_and(|e| {
            e.source == source && e.path.is_empty() && e.conversion.is_none() && e.default.is_none()
        })
}
