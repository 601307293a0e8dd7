//! The input form, generated from a workflow's inferred schema: the first text input is the
//! chat prompt; the others are settings with a widget fitting their type.

use leptos::prelude::*;
use serde_json::{Map, Value};

use super::temperature::TemperatureControl;
use crate::api::InputField;

/// The current value of one input.
#[derive(Clone, Copy)]
pub enum FieldValue {
    Text(RwSignal<String>),
    Number(RwSignal<f64>),
    Boolean(RwSignal<bool>),
}

/// One input and its value.
#[derive(Clone)]
pub struct Field {
    pub spec: InputField,
    pub value: FieldValue,
}

/// Every input of a workflow.
#[derive(Clone)]
pub struct Fields {
    /// The chat prompt, when the workflow has a text input.
    pub prompt: Option<Field>,
    pub settings: Vec<Field>,
}

impl Field {
    fn new(spec: &InputField) -> Self {
        let default = spec.default.clone();
        let text = |d: Option<Value>| match d {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let value = match spec.kind.as_str() {
            "number" => FieldValue::Number(RwSignal::new(
                default.and_then(|d| d.as_f64()).unwrap_or(1.0),
            )),
            "boolean" => FieldValue::Boolean(RwSignal::new(
                default.and_then(|d| d.as_bool()).unwrap_or(false),
            )),
            "select" => {
                let first = spec
                    .subtype
                    .as_deref()
                    .and_then(|o| o.split(',').next())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                FieldValue::Text(RwSignal::new(
                    default.map(|d| text(Some(d))).unwrap_or(first),
                ))
            }
            _ => FieldValue::Text(RwSignal::new(text(default))),
        };
        Self {
            spec: spec.clone(),
            value,
        }
    }

    /// The value to send; empty text is null, so that the default applies.
    fn json(&self) -> Value {
        match self.value {
            FieldValue::Number(v) => Value::from(v.get_untracked()),
            FieldValue::Boolean(v) => Value::Bool(v.get_untracked()),
            FieldValue::Text(v) => {
                let text = v.get_untracked();
                match self.spec.kind.as_str() {
                    _ if text.is_empty() => Value::Null,
                    "integer" => text
                        .trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::String(text)),
                    _ => Value::String(text),
                }
            }
        }
    }

    /// The label: the name with a capital first letter.
    pub fn label(&self) -> String {
        let mut chars = self.spec.name.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }
}

impl Fields {
    pub fn new(inputs: &[InputField]) -> Self {
        let prompt_at = inputs
            .iter()
            .position(|f| f.kind == "text")
            .or_else(|| inputs.iter().position(|f| f.kind == "string"));
        let mut settings: Vec<Field> = inputs.iter().map(Field::new).collect();
        let prompt = prompt_at.map(|i| settings.remove(i));
        Self { prompt, settings }
    }

    /// The prompt's text signal, if there is a prompt.
    pub fn prompt_text(&self) -> Option<RwSignal<String>> {
        match self.prompt.as_ref()?.value {
            FieldValue::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The run input: every field by name.
    pub fn input(&self) -> Value {
        let map: Map<String, Value> = self
            .prompt
            .iter()
            .chain(&self.settings)
            .map(|f| (f.spec.name.clone(), f.json()))
            .collect();
        Value::Object(map)
    }

    /// The settings in a short line: `temperature 0.7`.
    pub fn summary(&self) -> String {
        self.settings
            .iter()
            .map(|f| match f.json() {
                Value::String(s) => format!("{} {s}", f.spec.name),
                Value::Null => format!("{} (default)", f.spec.name),
                other => format!("{} {other}", f.spec.name),
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The widgets of the settings.
#[component]
pub fn Settings(fields: Vec<Field>) -> impl IntoView {
    fields
        .into_iter()
        .map(|field| view! { <Setting field/> })
        .collect_view()
}

#[component]
fn Setting(field: Field) -> impl IntoView {
    let id = format!("input-{}", field.spec.name);
    let label = field.label();
    let hint = field
        .spec
        .description
        .clone()
        .map(|d| view! { <small class="hint">{d}</small> });
    let widget = match (field.value, field.spec.kind.as_str()) {
        (FieldValue::Number(value), _) => {
            view! { <TemperatureControl name=field.spec.name.clone() label=label.clone() value/> }
                .into_any()
        }
        (FieldValue::Boolean(value), _) => view! {
            <label class="checkbox" for=id.clone()>
                <input id=id.clone() type="checkbox" prop:checked=move || value.get()
                    on:change=move |ev| value.set(event_target_checked(&ev))/>
                {label.clone()}
            </label>
        }
        .into_any(),
        (FieldValue::Text(value), "select") => {
            let options: Vec<String> = field
                .spec
                .subtype
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|o| o.trim().to_string())
                .collect();
            view! {
                <label for=id.clone()>{label.clone()}</label>
                <select id=id.clone() on:change=move |ev| value.set(event_target_value(&ev))>
                    {options.into_iter().map(|o| {
                        let selected = value.get_untracked() == o;
                        view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
        (FieldValue::Text(value), kind) => {
            let input_type = if kind == "integer" { "number" } else { "text" };
            view! {
                <label for=id.clone()>{label.clone()}</label>
                <input id=id.clone() type=input_type step="1" value=value.get_untracked()
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
            }
            .into_any()
        }
    };
    view! { <div class="setting">{widget}{hint}</div> }
}
