//! Input and output schemas inferred from a workflow's bindings (spec §4.5), and the input
//! check made before anything is sent upstream (D6): a typed input is converted with its
//! declared type, by the evaluator's own conversion, and a failure names the field; an input
//! used without a type accepts any JSON value (D21).

use serde::Serialize;
use serde_json::Value;

use super::binding::{convert, is_media, Binding, Conversion, Entry, Expr, Scope};
use super::error::RunError;
use super::fetch::Policy;
use super::media::Blob;

/// One input variable: what `${input.NAME as TYPE | DEFAULT}` expects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub is_list: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// D6: a variable without a default must be given.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The declared `as TYPE`, which given values are checked by.
    #[serde(skip)]
    pub conversion: Option<Conversion>,
}

impl Variable {
    /// The variable an `${input...}` expression declares; `None` for other sources.
    pub fn from_expr(expr: &Expr) -> Result<Option<Self>, String> {
        if expr.source != "input" {
            return Ok(None);
        }
        let conversion = expr.conversion.as_ref();
        let kind = conversion.map_or("string", |c| c.kind.as_str()).to_string();
        let is_list = conversion.is_some_and(|c| c.list);
        let default = match (&expr.default_text, conversion) {
            (Some(text), Some(conversion)) => {
                Some(typed_default(text, conversion).map_err(|err| {
                    format!(
                        "the default of input.{} is not {}: {err}",
                        expr.path_text.as_deref().unwrap_or(""),
                        crate::binding::with_article(&kind)
                    )
                })?)
            }
            (Some(text), None) => Some(Value::String(text.clone())),
            (None, _) => None,
        };
        Ok(Some(Self {
            name: expr.path_text.clone(),
            required: default.is_none(),
            kind,
            subtype: conversion.and_then(|c| c.subtype.clone()),
            format: conversion.and_then(|c| c.format.clone()),
            is_list,
            default,
            description: expr
                .annotations
                .iter()
                .find(|a| a.name == "description")
                .map(|a| a.text.clone()),
            conversion: conversion.cloned(),
        }))
    }

    /// Converts a given value with the declared type, as the run will; a failure is the
    /// caller's error, naming the field and what it must be. With a `policy` (the value is a
    /// caller's), a link or a path must be one callers may reach (D32).
    fn check(&self, name: &str, value: &Value, policy: Option<&Policy>) -> Result<(), RunError> {
        let Some(conversion) = &self.conversion else {
            return Ok(());
        };
        let invalid = || RunError::InvalidInput {
            field: name.to_string(),
            expected: expected(conversion),
            got: describe(value),
        };
        // A file input without a `;format` is bytes: an upload, or a data URI in JSON; with
        // one, text naming them (read when the value is used). Either way, each item of a list.
        let item_fits: Option<fn(&Value) -> bool> =
            match (is_media(&conversion.kind), &conversion.format) {
                (true, None) => Some(|v| v.as_str().and_then(Blob::from_data_uri).is_some()),
                (_, Some(_)) => Some(Value::is_string),
                (false, None) => None,
            };
        let fits = match item_fits {
            Some(item_fits) => match value {
                Value::Array(items) if conversion.list => items.iter().all(item_fits),
                other => !conversion.list && item_fits(other),
            },
            None => convert(value.clone(), conversion, &Scope::new(), false).is_ok(),
        };
        if !fits {
            return Err(invalid());
        }
        match (policy, conversion.format.as_deref()) {
            (Some(policy), Some(format @ ("url" | "path"))) => {
                let items = match value {
                    Value::Array(items) => items.as_slice(),
                    one => std::slice::from_ref(one),
                };
                for text in items.iter().filter_map(Value::as_str) {
                    reachable(policy, format, text).map_err(|reason| match reason {
                        Unreachable::Invalid => RunError::InvalidInput {
                            field: name.to_string(),
                            expected: "an http or https URL".into(),
                            got: describe(value),
                        },
                        Unreachable::Refused(reason) => RunError::NotAllowed {
                            what: format!("input.{name}"),
                            reason,
                        },
                    })?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Why a caller's link or path cannot be read.
enum Unreachable {
    /// Not a URL at all.
    Invalid,
    Refused(String),
}

/// Whether a caller's `;url` or `;path` text names what callers may reach.
fn reachable(policy: &Policy, format: &str, text: &str) -> Result<(), Unreachable> {
    if format == "path" {
        return policy
            .check_path(text)
            .map(drop)
            .map_err(Unreachable::Refused);
    }
    let url = reqwest::Url::parse(text).map_err(|_| Unreachable::Invalid)?;
    policy.check_url(&url).map_err(Unreachable::Refused)
}

/// What a conversion needs, for messages: `a number`, `one of a,b`, ...
fn expected(conversion: &Conversion) -> String {
    if conversion.list {
        return "a list".into();
    }
    match conversion.format.as_deref() {
        Some("path") => return "a file path (text)".into(),
        Some("url") => return "a URL (text)".into(),
        Some("base64") => return "base64 text".into(),
        Some("data-uri") => return "a data: URI (text)".into(),
        _ => {}
    }
    match (conversion.kind.as_str(), &conversion.subtype) {
        ("string" | "text" | "markdown" | "base64", _) => "text".into(),
        ("number", _) => "a number".into(),
        ("integer", _) => "an integer".into(),
        ("boolean", _) => "a boolean".into(),
        ("object", _) => "an object".into(),
        ("list", _) => "a list".into(),
        ("json", _) => "JSON".into(),
        ("select", Some(options)) => format!("one of {options}"),
        (kind, _) if is_media(kind) && conversion.format.is_none() => {
            format!("a file ({kind}): an upload in a multipart/form-data request, or a data: URI")
        }
        (kind, _) => format!("a {kind}"),
    }
}

/// `input.x` as written in errors: the value, shortened.
fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// A default converted by its declared type, as the original infers it: JSON for lists,
/// objects and `T[]`, the evaluator's conversion for numbers and booleans, text otherwise.
fn typed_default(text: &str, conversion: &Conversion) -> Result<Value, String> {
    if conversion.list || matches!(conversion.kind.as_str(), "list" | "object" | "json") {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    let value = Value::String(text.to_string());
    match conversion.kind.as_str() {
        "integer" | "number" | "boolean" => {
            convert(value, conversion, &Scope::new(), false).map_err(|e| e.to_string())
        }
        _ => Ok(value),
    }
}

/// Collects input variables from expressions in order: de-duplicated by name, and an unnamed
/// variable kept only when it comes first.
pub fn collect_inputs<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
) -> Result<Vec<Variable>, String> {
    let mut out: Vec<Variable> = Vec::new();
    for expr in exprs {
        let Some(variable) = Variable::from_expr(expr)? else {
            continue;
        };
        let duplicate = out.iter().any(|v| v.name == variable.name);
        let unnamed_late = variable.name.is_none() && !out.is_empty();
        if !duplicate && !unnamed_late {
            out.push(variable);
        }
    }
    Ok(out)
}

/// The output variables a template declares: one per expression, named by its place in a
/// mapping (`answer`, `a.b`), typed from its own `as`.
pub fn collect_outputs(binding: &Binding) -> Vec<Variable> {
    let mut out = Vec::new();
    walk_outputs(binding, None, &mut out);
    out
}

fn walk_outputs(binding: &Binding, name: Option<String>, out: &mut Vec<Variable>) {
    match binding {
        Binding::Literal(_) => {}
        Binding::Template(template) => {
            let expr = template.whole_expr();
            let conversion = expr.and_then(|e| e.conversion.as_ref());
            let default = expr.and_then(|e| {
                let text = e.default_text.as_ref()?;
                Some(match conversion {
                    Some(conversion) => typed_default(text, conversion)
                        .unwrap_or_else(|_| Value::String(text.clone())),
                    None => Value::String(text.clone()),
                })
            });
            let (kind, subtype) = match conversion {
                Some(c) if c.stream_encoding().is_some() => (
                    "stream".to_string(),
                    Some(
                        if c.kind == "sse-json" || c.subtype.as_deref() == Some("json") {
                            "json"
                        } else {
                            "text"
                        }
                        .to_string(),
                    ),
                ),
                Some(c) => (c.kind.clone(), c.subtype.clone()),
                None => ("string".to_string(), None),
            };
            out.push(Variable {
                name,
                kind,
                subtype,
                format: conversion.and_then(|c| c.format.clone()),
                is_list: conversion.is_some_and(|c| c.list),
                default,
                description: None,
                required: false,
                conversion: None,
            });
        }
        Binding::Map(entries) => {
            // Merged and chosen mappings have no names of their own to list.
            let fields = entries.iter().filter_map(|entry| match entry {
                Entry::Field(key, value) => Some((key, value)),
                Entry::Merge(_) | Entry::Choose(_) => None,
            });
            for (key, value) in fields {
                let path = match &name {
                    Some(prefix) => format!("{prefix}.{key}"),
                    None => key.clone(),
                };
                walk_outputs(value, Some(path), out);
            }
        }
        Binding::List(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{}[{i}]", name.as_deref().unwrap_or(""));
                walk_outputs(item, Some(path), out);
            }
        }
        // What an operator builds has no fixed shape to list.
        Binding::Operator(_) => {}
    }
}

/// Checks a run's input against the schema; returns the first problem.
/// Checks a run's input against the workflow's variables; `policy` when it is a caller's.
pub fn check_input(
    variables: &[Variable],
    input: &Value,
    policy: Option<&Policy>,
) -> Result<(), RunError> {
    let named = variables
        .iter()
        .filter_map(|v| v.name.as_ref().map(|n| (n, v)));
    let mut named = named.peekable();
    if named.peek().is_none() {
        return Ok(());
    }
    let Value::Object(map) = input else {
        if input.is_null() && variables.iter().all(|v| !v.required) {
            return Ok(());
        }
        return Err(match input {
            Value::Null => RunError::MissingInput(first_required(variables)),
            other => RunError::InputNotObject(describe(other)),
        });
    };
    for (name, variable) in named {
        // A dotted name (`user.email`) is checked at its top-level key only when flat.
        let value = map.get(name.as_str()).unwrap_or(&Value::Null);
        if value.is_null() {
            if variable.required && !name.contains(['.', '[']) {
                return Err(RunError::MissingInput(name.clone()));
            }
            continue;
        }
        variable.check(name, value, policy)?;
    }
    Ok(())
}

fn first_required(variables: &[Variable]) -> String {
    variables
        .iter()
        .find(|v| v.required)
        .and_then(|v| v.name.clone())
        .unwrap_or_default()
}
