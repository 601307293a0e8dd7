//! The routers' fields as written (spec §13.3–§13.5): an `if` job's conditions, a `switch`
//! job's cases and a `random-router` job's routes, each also in the short form the original
//! accepts (one condition's or one case's keys written on the job itself).

use serde::Deserialize;
use serde_json::Value;

use super::model::{Job, JobKind};

/// One condition of an `if` job: the job's input compared with `value` (a template) by
/// `operator` (`eq` when absent); where it routes when it holds, or when it does not.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Condition {
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Value,
    pub if_true: Option<String>,
    pub if_false: Option<String>,
}

/// One case of a `switch` job: the job's input equal to `value` (a text template) routes to
/// `then`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Case {
    pub value: Value,
    pub then: String,
}

/// One route of a `random-router` job, with its weight (`weighted` mode).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Route {
    pub to: String,
    pub weight: Option<f64>,
}

impl Job {
    /// An `if` job's conditions, the short form (keys on the job) read as one.
    pub fn if_conditions(&self) -> Vec<Condition> {
        if let Some(conditions) = &self.conditions {
            return conditions.clone();
        }
        let short = self.operator.is_some()
            || self.value.is_some()
            || self.if_true.is_some()
            || self.if_false.is_some();
        if !short {
            return Vec::new();
        }
        vec![Condition {
            operator: self.operator.clone(),
            value: self.value.clone().unwrap_or_default(),
            if_true: self.if_true.clone(),
            if_false: self.if_false.clone(),
        }]
    }

    /// A `switch` job's cases, the short form (`value` and `then` on the job) read as one.
    pub fn switch_cases(&self) -> Vec<Case> {
        match (&self.cases, &self.value, &self.then) {
            (Some(cases), _, _) => cases.clone(),
            (None, Some(value), Some(then)) => vec![Case {
                value: value.clone(),
                then: then.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// The jobs this job may route to, with the key that names each: the routers' targets and
    /// `on_error.to`. Routing targets wait to be routed to (spec §13.2).
    pub fn routes_to(&self) -> Vec<(String, String)> {
        let mut targets = Vec::new();
        match self.kind {
            JobKind::If => {
                let short = self.conditions.is_none();
                for (i, condition) in self.if_conditions().into_iter().enumerate() {
                    let key = |field: &str| match short {
                        true => field.to_string(),
                        false => format!("conditions[{i}].{field}"),
                    };
                    if let Some(to) = condition.if_true {
                        targets.push((key("if_true"), to));
                    }
                    if let Some(to) = condition.if_false {
                        targets.push((key("if_false"), to));
                    }
                }
            }
            JobKind::Switch => {
                let short = self.cases.is_none();
                for (i, case) in self.switch_cases().into_iter().enumerate() {
                    let key = if short {
                        "then".to_string()
                    } else {
                        format!("cases[{i}].then")
                    };
                    targets.push((key, case.then));
                }
            }
            JobKind::RandomRouter => {
                for (i, route) in self.routings.iter().enumerate() {
                    targets.push((format!("routings[{i}].to"), route.to.clone()));
                }
            }
            _ => {}
        }
        if matches!(self.kind, JobKind::If | JobKind::Switch) {
            if let Some(to) = &self.otherwise {
                targets.push(("otherwise".to_string(), to.clone()));
            }
        }
        if let Some(to) = self.on_error.as_ref().and_then(|e| e.to.as_ref()) {
            targets.push(("on_error.to".to_string(), to.clone()));
        }
        targets
    }
}
