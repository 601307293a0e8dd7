//! Workflows and jobs as written in `model-compose.yml` (components and actions: see
//! `component.rs`).
//!
//! Both the singular and the plural form of each list are accepted (`component` / `components`,
//! `action` / `actions`, `workflow` / `workflows`, `job` / `jobs`); the plural wins when both
//! are present, as in the original. Unknown keys are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::recovery::{OnError, Retry};
use super::routing::{Case, Condition, Route};

pub use super::component::*;

/// Default ids the original gives to unnamed items.
pub const DEFAULT_COMPONENT_ID: &str = "__component__";
pub const DEFAULT_ACTION_ID: &str = "__action__";
pub const DEFAULT_WORKFLOW_ID: &str = "__workflow__";
pub const DEFAULT_JOB_ID: &str = "__job__";
/// The reference meaning "the only one, or the one marked `default: true`".
pub const DEFAULT_REF: &str = "__default__";

/// A list written either as one item (`component:`) or as a list (`components:`).
pub fn one_or_many<T>(plural: Option<Vec<T>>, singular: Option<T>) -> Vec<T> {
    plural.unwrap_or_else(|| singular.into_iter().collect())
}

/// Finds `id` among `items`; `__default__` means the only item, else the one marked default.
pub fn resolve<'a, T>(
    items: &'a [T],
    id: &str,
    id_of: impl Fn(&T) -> &str,
    is_default: impl Fn(&T) -> bool,
) -> Option<&'a T> {
    resolve_index(items, id, id_of, is_default).and_then(|at| items.get(at))
}

/// Where [`resolve`] finds `id` among `items`.
pub fn resolve_index<T>(
    items: &[T],
    id: &str,
    id_of: impl Fn(&T) -> &str,
    is_default: impl Fn(&T) -> bool,
) -> Option<usize> {
    if id == DEFAULT_REF {
        match items {
            [_] => Some(0),
            _ => items.iter().position(is_default),
        }
    } else {
        items.iter().position(|item| id_of(item) == id)
    }
}

/// A workflow: jobs and how their outputs become the workflow's output.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RawWorkflow")]
pub struct Workflow {
    pub id: String,
    pub name: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub jobs: Vec<Job>,
    pub output: Option<Value>,
    pub default: bool,
    pub private: bool,
}

#[derive(Deserialize)]
struct RawWorkflow {
    #[serde(default = "workflow_id")]
    id: String,
    name: Option<String>,
    title: Option<String>,
    description: Option<String>,
    job: Option<Job>,
    jobs: Option<Vec<Job>>,
    output: Option<Value>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    private: bool,
}

impl From<RawWorkflow> for Workflow {
    fn from(raw: RawWorkflow) -> Self {
        Self {
            id: raw.id,
            name: raw.name,
            title: raw.title,
            description: raw.description,
            jobs: one_or_many(raw.jobs, raw.job),
            output: raw.output,
            default: raw.default,
            private: raw.private,
        }
    }
}

/// A job: runs one action of one component, or, by its `type`, does something else (wait).
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    #[serde(default = "job_id")]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: JobKind,
    /// The component it runs: a name (the default one when absent), or one written inline.
    #[serde(default)]
    pub component: ComponentRef,
    #[serde(default = "default_ref")]
    pub action: String,
    pub input: Option<Value>,
    pub output: Option<Value>,
    #[serde(default, deserialize_with = "depends_on")]
    pub depends_on: Vec<Vec<String>>,
    /// Run it again when it fails (spec §13.1).
    #[serde(default, deserialize_with = "super::recovery::retry")]
    pub retry: Option<Retry>,
    /// What it gives when every attempt failed, instead of failing the run.
    #[serde(default, deserialize_with = "super::recovery::on_error")]
    pub on_error: Option<OnError>,
    /// A `delay` job's way of waiting (`time-interval` when absent), or a `random-router`
    /// job's way of choosing (`uniform` when absent).
    pub mode: Option<Mode>,
    /// A `delay` job's wait (`time-interval`): a duration, or a template that renders one.
    pub duration: Option<Value>,
    /// A `delay` job's end (`specific-time`): a date and time (a template), read in `timezone`
    /// when it gives no offset or zone of its own.
    pub time: Option<Value>,
    pub timezone: Option<String>,
    /// A `filter` job's condition on each item (none: every item is kept).
    #[serde(rename = "where")]
    pub condition: Option<Value>,
    /// A `filter` job's output as a stream of kept items, a `for-each` job's as a stream of
    /// its results.
    pub streaming: Option<Value>,
    /// Inline Python run around the job, in the original: refused here (D26).
    pub hook: Option<Value>,
    /// Pauses for a person before and after the job's work (spec §14).
    pub interrupt: Option<super::Interrupts>,
    /// How many times the job may run in one run (reruns come with routing); at least 1.
    #[serde(default = "max_run_count")]
    pub max_run_count: u32,
    /// An `if` job's conditions, tried in order.
    pub conditions: Option<Vec<Condition>>,
    /// One condition's (or, on a `switch`, one case's) keys written on the job itself.
    pub operator: Option<String>,
    pub value: Option<Value>,
    pub if_true: Option<String>,
    pub if_false: Option<String>,
    pub then: Option<String>,
    /// Where an `if` or a `switch` routes when nothing matched.
    pub otherwise: Option<String>,
    /// A `switch` job's cases, tried in order.
    pub cases: Option<Vec<Case>>,
    /// A `random-router` job's routes.
    #[serde(default)]
    pub routings: Vec<Route>,
    /// A `random-router` job's sticky choice: the same rendered session takes the same route.
    pub session: Option<String>,
    /// The job a `for-each`, `loop` or `accumulate` job runs for each item or iteration.
    #[serde(rename = "do")]
    pub body: Option<Box<Job>>,
    /// The jobs a `pipeline` runs one after the other.
    pub steps: Option<Vec<Job>>,
    /// A `for-each` job's items run at once (default 1).
    pub batch_size: Option<usize>,
    /// How many chunks a `fan-out` branch may be ahead of the slowest other (default 32).
    pub buffer_size: Option<usize>,
    /// An `accumulate` job's first value (a template).
    pub accumulator: Option<Value>,
    /// A `loop` goes on while this holds, or until it does (a condition, as a filter's).
    #[serde(rename = "while")]
    pub while_holds: Option<Value>,
    pub until: Option<Value>,
    /// A `loop`'s most iterations (default 100).
    pub max_iteration_count: Option<u32>,
    /// What a sticky choice is salted with (`<workflow id>:<job id>` when absent).
    pub salt: Option<String>,
}

/// The original's limit on a job's runs per workflow run.
fn max_run_count() -> u32 {
    25
}

/// A job's `mode`: how a `delay` job waits, or how a `random-router` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Delay: for `duration`.
    TimeInterval,
    /// Delay: until `time` (in `timezone`).
    SpecificTime,
    /// Random router: every route alike.
    Uniform,
    /// Random router: routes by their `weight`.
    Weighted,
}

/// Why a job has no component or action to run, and which of its keys is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    /// `component` or `action`.
    pub key: &'static str,
    pub message: String,
}

/// A job's `component`: a component's id, or a component written in the job itself.
#[derive(Debug, Clone)]
pub enum ComponentRef {
    Named(String),
    Inline(Box<Component>),
}

impl Default for ComponentRef {
    fn default() -> Self {
        ComponentRef::Named(DEFAULT_REF.to_string())
    }
}

impl<'de> Deserialize<'de> for ComponentRef {
    /// An id, or a mapping read as a component where it is written (keeping errors' places).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = ComponentRef;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a component's id, or a component ({type, action, …})")
            }

            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<ComponentRef, E> {
                Ok(ComponentRef::Named(id.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ComponentRef, A::Error> {
                let component =
                    Component::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ComponentRef::Inline(Box::new(component)))
            }
        }
        deserializer.deserialize_any(Form)
    }
}

impl std::fmt::Display for ComponentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentRef::Named(id) => f.write_str(id),
            ComponentRef::Inline(component) => write!(f, "{} (inline)", component.id()),
        }
    }
}

/// What a component job runs: the component, the index of its action, and, for one of the
/// config's `components`, its index there (none: written in the job).
pub struct Target<'a> {
    pub component: &'a Component,
    pub action: usize,
    pub index: Option<usize>,
}

impl Job {
    /// The component and the action this job runs; else why there are none. `at` names the
    /// job in messages.
    pub fn target<'a>(
        &'a self,
        components: &'a [Component],
        at: &str,
    ) -> Result<Target<'a>, TargetError> {
        let component_error = |message| TargetError {
            key: "component",
            message,
        };
        let (component, index) = match &self.component {
            ComponentRef::Inline(component) => (&**component, None),
            ComponentRef::Named(name) => {
                let index = resolve_index(components, name, Component::id, Component::is_default)
                    .ok_or_else(|| component_error(match name.as_str() {
                        DEFAULT_REF if components.is_empty() => format!("{at}: there is no component to run"),
                        DEFAULT_REF => format!(
                            "{at}: uses the default component, but there are several and none has 'default: true'"
                        ),
                        id => format!("{at}: component '{id}' not found"),
                    }))?;
                let component = components.get(index).ok_or_else(|| {
                    component_error(format!("{at}: component '{name}' not found"))
                })?;
                (component, Some(index))
            }
        };
        let action = resolve_index(component.actions(), &self.action, |a| &a.id, |a| a.default)
            .ok_or_else(|| TargetError {
                key: "action",
                message: match self.action.as_str() {
                    DEFAULT_REF => format!(
                        "{at}: component '{}' has no single or default action",
                        component.id()
                    ),
                    id => format!(
                        "{at}: action '{id}' not found in component '{}'",
                        component.id()
                    ),
                },
            })?;
        Ok(Target {
            component,
            action,
            index,
        })
    }

    /// How messages name this job.
    pub fn label(&self, workflow: &str) -> String {
        format!("workflow '{workflow}' job '{}'", self.id)
    }
}

/// Job types (spec §13); those of the original not listed here are not in this
/// implementation yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Runs an action of a component.
    #[default]
    Component,
    /// Waits, then gives null (or its `output`).
    Delay,
    /// Keeps the items of its `input` that pass `where`.
    Filter,
    /// Routes by conditions on its input.
    If,
    /// Routes by its input's value.
    Switch,
    /// Routes at random, or by a session's sticky choice.
    RandomRouter,
    /// Runs its `do` job for each item of its input.
    ForEach,
    /// Runs its `do` job again and again, while or until a condition holds.
    Loop,
    /// Runs its `steps`, each on the last one's output.
    Pipeline,
    /// Folds its input's items through its `do` job.
    Accumulate,
    /// Hands its input's items to each of its named branches.
    FanOut,
}

impl JobKind {
    /// The type as the config writes it.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Component => "component",
            JobKind::Delay => "delay",
            JobKind::Filter => "filter",
            JobKind::If => "if",
            JobKind::Switch => "switch",
            JobKind::RandomRouter => "random-router",
            JobKind::ForEach => "for-each",
            JobKind::Loop => "loop",
            JobKind::Pipeline => "pipeline",
            JobKind::Accumulate => "accumulate",
            JobKind::FanOut => "fan-out",
        }
    }
}

pub(super) fn component_id() -> String {
    DEFAULT_COMPONENT_ID.to_string()
}

pub(super) fn action_id() -> String {
    DEFAULT_ACTION_ID.to_string()
}

fn workflow_id() -> String {
    DEFAULT_WORKFLOW_ID.to_string()
}

fn job_id() -> String {
    DEFAULT_JOB_ID.to_string()
}

pub(super) fn default_ref() -> String {
    DEFAULT_REF.to_string()
}

/// Header maps: values must be strings (numbers are written as they read).
pub(super) fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    let map = serde_json::Map::<String, Value>::deserialize(deserializer)?;
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "header {key:?} must be a string, got {other}"
            ))),
        })
        .collect()
}

/// `depends_on`: each entry is a job id, or a list of ids of which any one suffices.
fn depends_on<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        One(String),
        AnyOf(Vec<String>),
    }
    let entries = Vec::<Entry>::deserialize(deserializer)?;
    Ok(entries
        .into_iter()
        .map(|entry| match entry {
            Entry::One(id) => vec![id],
            Entry::AnyOf(ids) => ids,
        })
        .collect())
}
