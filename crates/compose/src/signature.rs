//! A workflow as a tool (an agent's tool, an MCP tool): the JSON schema of its parameters,
//! made from its inputs with their real types, descriptions, choices and defaults (not the
//! original's string-typed ones, OD15–OD17, OD30), and its input from a call's arguments.

use serde_json::{json, Map, Value};

use crate::schema::Variable;

/// What a workflow takes when called as a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// `{"type": "object", "properties": {…}, "required": […]}`.
    pub parameters: Value,
    takes: Takes,
}

/// How a tool's arguments become its workflow's input.
#[derive(Debug, Clone, PartialEq)]
enum Takes {
    /// By name (a dotted name is a path: `user.name` is `{"user": {"name": …}}`).
    Named(Vec<String>),
    /// The workflow reads its input whole (`${input}`): the argument `input` is that input.
    Whole,
}

impl Signature {
    /// One property per input variable, with its JSON type, description, choices and default;
    /// those without a default are required (D6).
    pub fn of(inputs: &[Variable]) -> Self {
        let whole = inputs.iter().any(|v| v.name.is_none());
        let mut properties = Map::new();
        let mut required = Vec::new();
        for variable in inputs {
            let name = variable.name.clone().unwrap_or_else(|| "input".into());
            let item = json_type(&variable.kind);
            let mut property = Map::new();
            if variable.is_list {
                property.insert("type".into(), "array".into());
                property.insert("items".into(), json!({ "type": item }));
            } else {
                property.insert("type".into(), item.into());
            }
            if let Some(description) = &variable.description {
                property.insert("description".into(), description.clone().into());
            }
            if let (Some(choices), "select") = (&variable.subtype, variable.kind.as_str()) {
                let choices: Vec<Value> = choices.split(',').map(|c| c.trim().into()).collect();
                property.insert("enum".into(), choices.into());
            }
            if let Some(default) = &variable.default {
                property.insert("default".into(), default.clone());
            }
            if variable.required {
                required.push(Value::from(name.clone()));
            }
            properties.insert(name, Value::Object(property));
        }
        let takes = match whole {
            true => Takes::Whole,
            false => Takes::Named(properties.keys().cloned().collect()),
        };
        let parameters = json!({"type": "object", "properties": properties, "required": required});
        Self { parameters, takes }
    }

    /// A tool whose parameters someone else described: it takes no named input.
    pub fn described(parameters: Value) -> Self {
        Self {
            parameters,
            takes: Takes::Named(Vec::new()),
        }
    }

    /// The workflow's input from a call's `arguments` to `tool`, or what is wrong with them
    /// (a sentence the caller, a model or a person, can act on).
    pub fn input(&self, tool: &str, arguments: &Value) -> Result<Value, String> {
        let Value::Object(arguments) = arguments else {
            return Err(format!(
                "tool '{tool}' takes its arguments as a mapping, got {arguments}"
            ));
        };
        let whole = ["input".to_string()];
        let names: &[String] = match &self.takes {
            Takes::Whole => &whole,
            Takes::Named(names) => names,
        };
        if let Some(unknown) = arguments.keys().find(|key| !names.contains(key)) {
            return Err(format!(
                "tool '{tool}' has no parameter '{unknown}' (it takes: {})",
                names.join(", ")
            ));
        }
        if let Takes::Whole = self.takes {
            return Ok(arguments.get("input").cloned().unwrap_or_default());
        }
        let mut input = Map::new();
        for (name, value) in arguments {
            insert_path(&mut input, name, value.clone());
        }
        Ok(Value::Object(input))
    }
}

/// Sets `path` (`a.b.c`) in `map`, making the mappings on the way.
fn insert_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        Some((first, rest)) => {
            let inner = map
                .entry(first.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !inner.is_object() {
                *inner = Value::Object(Map::new());
            }
            if let Value::Object(inner) = inner {
                insert_path(inner, rest, value);
            }
        }
        None => {
            map.insert(path.to_string(), value);
        }
    }
}

/// The JSON type of an input's declared type (§10.3).
fn json_type(kind: &str) -> &'static str {
    match kind {
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "list" => "array",
        "object" | "json" => "object",
        _ => "string",
    }
}
