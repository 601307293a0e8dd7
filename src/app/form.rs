//! A workflow's inputs as form fields, generated from its inferred schema, whatever the
//! workflow: the prompt is what the composer writes (the conversation, for a workflow that
//! takes `messages`, else its first text input); the others are settings, each with a widget
//! fitting its type, remembered per workflow in the browser.

use leptos::prelude::*;
use serde_json::{Map, Value};

use crate::server_fns::{InputField, Range, Uploaded, WorkflowInfo};

/// The current value of one input.
#[derive(Clone, Copy)]
pub enum FieldValue {
    Text(RwSignal<String>),
    /// A number with known bounds: a slider.
    Bounded(RwSignal<f64>),
    Boolean(RwSignal<bool>),
    /// A file (an image, audio): sent to the server when chosen.
    File(RwSignal<FileState>),
}

/// Where a chosen file is (it moves only in the browser).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum FileState {
    Empty,
    Sending(String),
    Ready(Uploaded),
    Failed(String),
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
    pub workflow_id: String,
    /// Whether the composer's text joins the conversation in `messages` (D19).
    pub conversational: bool,
    /// The input the composer's text goes to, for a workflow that does not take `messages`.
    pub prompt: Option<String>,
    pub settings: Vec<Field>,
}

impl Field {
    fn new(spec: &InputField) -> Self {
        let text = |d: &Option<Value>| match d {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let value = match (spec.kind.as_str(), spec.range) {
            ("number", Some(range)) => FieldValue::Bounded(RwSignal::new(
                spec.default
                    .as_ref()
                    .and_then(Value::as_f64)
                    .unwrap_or((range.min + range.max) / 2.0),
            )),
            ("boolean", _) => FieldValue::Boolean(RwSignal::new(
                spec.default
                    .as_ref()
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )),
            ("image" | "audio" | "video" | "file", _) => {
                FieldValue::File(RwSignal::new(FileState::Empty))
            }
            ("select", _) if spec.default.is_none() => FieldValue::Text(RwSignal::new(
                options(spec).into_iter().next().unwrap_or_default(),
            )),
            _ => FieldValue::Text(RwSignal::new(text(&spec.default))),
        };
        Self {
            spec: spec.clone(),
            value,
        }
    }

    /// The value to send; empty text is null, so that the default applies.
    fn json(&self) -> Value {
        match self.value {
            FieldValue::Bounded(v) => Value::from(v.get_untracked()),
            FieldValue::Boolean(v) => Value::Bool(v.get_untracked()),
            FieldValue::File(v) => match v.get_untracked() {
                FileState::Ready(file) => Value::String(file.reference),
                _ => Value::Null,
            },
            FieldValue::Text(v) => {
                let text = v.get_untracked();
                let trimmed = text.trim();
                match self.spec.kind.as_str() {
                    _ if trimmed.is_empty() => Value::Null,
                    "integer" => trimmed
                        .parse::<i64>()
                        .map_or(Value::String(text), Value::from),
                    "number" => trimmed
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or(Value::String(text), Value::Number),
                    "list" | "object" | "json" => {
                        serde_json::from_str(trimmed).unwrap_or(Value::String(text))
                    }
                    _ => Value::String(text),
                }
            }
        }
    }

    /// Sets the value from what was remembered.
    fn restore(&self, value: &Value) {
        match (self.value, value) {
            (FieldValue::Bounded(v), Value::Number(n)) => {
                if let Some(n) = n.as_f64() {
                    v.set(n);
                }
            }
            (FieldValue::Boolean(v), Value::Bool(b)) => v.set(*b),
            (FieldValue::Text(v), Value::String(s)) => v.set(s.clone()),
            (FieldValue::Text(v), Value::Null) => v.set(String::new()),
            (FieldValue::Text(v), other) => v.set(other.to_string()),
            _ => {}
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

fn options(spec: &InputField) -> Vec<String> {
    spec.subtype
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

impl Fields {
    pub fn new(workflow: &WorkflowInfo) -> Self {
        let prompt = (!workflow.conversational)
            .then(|| {
                let text = workflow.inputs.iter().find(|f| f.kind == "text");
                text.or_else(|| workflow.inputs.iter().find(|f| f.kind == "string"))
                    .map(|f| f.name.clone())
            })
            .flatten();
        let settings = workflow
            .inputs
            .iter()
            .filter(|f| Some(&f.name) != prompt.as_ref())
            .filter(|f| !(workflow.conversational && f.name == "messages"))
            .map(Field::new)
            .collect();
        Self {
            workflow_id: workflow.id.clone(),
            conversational: workflow.conversational,
            prompt,
            settings,
        }
    }

    /// Whether the composer's text is required: a workflow with no text input has none.
    pub fn takes_prompt(&self) -> bool {
        self.conversational || self.prompt.is_some()
    }

    /// The run input: the settings by name, and the prompt (after the earlier turns, for a
    /// conversation).
    pub fn input(&self, prompt: &str, earlier: Vec<Value>) -> Value {
        let mut map: Map<String, Value> = self
            .settings
            .iter()
            .map(|f| (f.spec.name.clone(), f.json()))
            .collect();
        if self.conversational {
            let mut messages = earlier;
            messages.push(serde_json::json!({"role": "user", "content": prompt}));
            map.insert("messages".into(), Value::Array(messages));
        } else if let Some(name) = &self.prompt {
            map.insert(name.clone(), Value::String(prompt.to_string()));
        }
        Value::Object(map)
    }

    /// The settings in a short line: `temperature 0.7`.
    pub fn summary(&self) -> String {
        self.settings
            .iter()
            .filter_map(|f| {
                let name = &f.spec.name;
                match (f.value, f.json()) {
                    (FieldValue::File(v), _) => match v.get_untracked() {
                        FileState::Ready(file) => Some(format!("{name} {}", file.name)),
                        _ => None,
                    },
                    (_, Value::Null) => None,
                    (_, Value::String(s)) if s.chars().count() > 24 => Some(format!("{name} …")),
                    (_, Value::String(s)) => Some(format!("{name} {s}")),
                    (_, other) => Some(format!("{name} {other}")),
                }
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }

    fn storage_key(&self) -> String {
        format!("model-compose.settings.{}", self.workflow_id)
    }

    /// Remembers the settings in the browser, for the next visit.
    pub fn remember(&self) {
        // Files are not remembered: the server keeps them only a while.
        let values: Map<String, Value> = self
            .settings
            .iter()
            .filter(|f| !matches!(f.value, FieldValue::File(_)))
            .map(|f| (f.spec.name.clone(), f.json()))
            .collect();
        storage::set(&self.storage_key(), &Value::Object(values).to_string());
    }

    /// Restores what the browser remembered (after hydration, so that the first paint is
    /// the server's).
    pub fn recall(&self) {
        let Some(saved) = storage::get(&self.storage_key()) else {
            return;
        };
        let Ok(Value::Object(values)) = serde_json::from_str::<Value>(&saved) else {
            return;
        };
        for field in &self.settings {
            if let Some(value) = values.get(&field.spec.name) {
                field.restore(value);
            }
        }
    }
}

/// The browser's local storage (nothing on the server).
pub mod storage {
    pub fn get(key: &str) -> Option<String> {
        #[cfg(feature = "hydrate")]
        {
            let storage = leptos::prelude::window().local_storage().ok().flatten()?;
            storage.get_item(key).ok().flatten()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = key;
            None
        }
    }

    pub fn set(key: &str, value: &str) {
        #[cfg(feature = "hydrate")]
        if let Some(storage) = leptos::prelude::window().local_storage().ok().flatten() {
            let _ = storage.set_item(key, value);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (key, value);
    }
}

/// The widgets of the settings; any change is remembered.
#[component]
pub fn Settings(fields: Fields) -> impl IntoView {
    // The first run (after hydration) restores what was remembered; later ones, after a
    // change, remember.
    let restore = fields.clone();
    Effect::new(move |first: Option<()>| {
        if first.is_none() {
            restore.recall();
        } else {
            restore.remember();
        }
        for field in &restore.settings {
            match field.value {
                FieldValue::Text(v) => v.track(),
                FieldValue::Bounded(v) => v.track(),
                FieldValue::Boolean(v) => v.track(),
                FieldValue::File(v) => v.track(),
            }
        }
    });
    fields
        .settings
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
    let placeholder = field
        .spec
        .default
        .as_ref()
        .map(|d| match d {
            Value::String(s) => format!("default: {s}"),
            other => format!("default: {other}"),
        })
        .unwrap_or_default();
    let widget = match (field.value, field.spec.kind.as_str(), field.spec.range) {
        (FieldValue::Bounded(value), _, Some(range)) => {
            view! { <RangeControl id=id.clone() label=label.clone() value range/> }.into_any()
        }
        (FieldValue::Boolean(value), _, _) => view! {
            <label class="checkbox" for=id.clone()>
                <input id=id.clone() type="checkbox" prop:checked=move || value.get()
                    on:change=move |ev| value.set(event_target_checked(&ev))/>
                {label.clone()}
            </label>
        }
        .into_any(),
        (FieldValue::File(state), kind, _) => {
            view! { <FilePicker id=id.clone() label=label.clone() kind=kind.to_string() state/> }
                .into_any()
        }
        (FieldValue::Text(value), "select", _) => {
            let options = options(&field.spec);
            view! {
                <label for=id.clone()>{label.clone()}</label>
                <select id=id.clone() on:change=move |ev| value.set(event_target_value(&ev))>
                    {options.into_iter().map(|o| {
                        let (choice, label) = (o.clone(), o.clone());
                        let selected = move || value.with(|v| *v == choice);
                        view! { <option value=o selected=selected>{label}</option> }
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
        (FieldValue::Text(value), "text" | "list" | "object" | "json", _) => view! {
            <label for=id.clone()>{label.clone()}</label>
            <textarea id=id.clone() rows="3" placeholder=placeholder
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))>
                {value.get_untracked()}
            </textarea>
        }
        .into_any(),
        (FieldValue::Text(value), kind, _) => {
            let (input_type, step) = match kind {
                "integer" => ("number", "1"),
                "number" => ("number", "any"),
                _ => ("text", ""),
            };
            view! {
                <label for=id.clone()>{label.clone()}</label>
                <input id=id.clone() type=input_type step=step placeholder=placeholder
                    value=value.get_untracked()
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
            }
            .into_any()
        }
        (_, _, _) => ().into_any(),
    };
    view! { <div class="setting">{widget}{hint}</div> }
}

/// A file input that also takes a file dropped on it. The file goes to the server at once
/// (multipart, see [`crate::server_fns::upload`]); the run then names it.
#[component]
fn FilePicker(
    id: String,
    label: String,
    kind: String,
    state: RwSignal<FileState>,
) -> impl IntoView {
    let accept = match kind.as_str() {
        "image" => "image/*",
        "audio" => "audio/*",
        "video" => "video/*",
        _ => "",
    };
    let over = RwSignal::new(false);
    let shown = move || match state.get() {
        FileState::Empty => "Drop a file here, or choose one".to_string(),
        FileState::Sending(name) => format!("Sending {name}…"),
        FileState::Ready(file) => format!("{} · {}", file.name, size_text(file.size)),
        FileState::Failed(message) => message,
    };
    view! {
        <label for=id.clone()>{label}</label>
        <div
            class="drop"
            class:over=move || over.get()
            class:failed=move || matches!(state.get(), FileState::Failed(_))
            on:dragover=move |ev| {
                ev.prevent_default();
                over.set(true);
            }
            on:dragleave=move |_| over.set(false)
            on:drop=move |ev| {
                ev.prevent_default();
                over.set(false);
                upload::dropped(&ev, state);
            }
        >
            <input id=id type="file" accept=accept on:change=move |ev| upload::chosen(&ev, state)/>
            <span class="drop-text" role="status">{shown}</span>
            <Show when=move || matches!(state.get(), FileState::Ready(_))>
                <button type="button" class="clear" aria-label="Remove the file"
                    on:click=move |_| state.set(FileState::Empty)>"✕"</button>
            </Show>
        </div>
    }
}

/// `1.5 MiB`, `73 B`.
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Sending a chosen or dropped file (in the browser only).
mod upload {
    use super::FileState;
    use leptos::prelude::*;

    #[cfg(feature = "hydrate")]
    pub fn chosen(ev: &leptos::ev::Event, state: RwSignal<FileState>) {
        use wasm_bindgen::JsCast;
        let input = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
        if let Some(file) = input
            .as_ref()
            .and_then(|i| i.files())
            .and_then(|f| f.get(0))
        {
            send(file, state);
        }
        // The same file chosen again is a change too.
        if let Some(input) = input {
            input.set_value("");
        }
    }

    #[cfg(feature = "hydrate")]
    pub fn dropped(ev: &leptos::ev::DragEvent, state: RwSignal<FileState>) {
        let file = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0));
        if let Some(file) = file {
            send(file, state);
        }
    }

    #[cfg(feature = "hydrate")]
    fn send(file: web_sys::File, state: RwSignal<FileState>) {
        let name = file.name();
        if file.size() > crate::server_fns::MAX_UPLOAD as f64 {
            state.set(FileState::Failed(format!(
                "{name} is larger than {} MiB",
                crate::server_fns::MAX_UPLOAD / 1024 / 1024
            )));
            return;
        }
        let Ok(form) = web_sys::FormData::new() else {
            return;
        };
        if form
            .append_with_blob_and_filename("file", &file, &name)
            .is_err()
        {
            return;
        }
        state.set(FileState::Sending(name.clone()));
        leptos::task::spawn_local(async move {
            state.set(match crate::server_fns::upload(form.into()).await {
                Ok(uploaded) => FileState::Ready(uploaded),
                Err(err) => {
                    let text = err.to_string();
                    let reason = text
                        .strip_prefix("error running server function: ")
                        .unwrap_or(&text);
                    FileState::Failed(format!("{name}: {reason}"))
                }
            });
        });
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn chosen(_: &leptos::ev::Event, _: RwSignal<FileState>) {}

    #[cfg(not(feature = "hydrate"))]
    pub fn dropped(_: &leptos::ev::DragEvent, _: RwSignal<FileState>) {}
}

/// A slider with its value in an editable number field, kept in step; typed values are
/// clamped to the range and rounded to the step.
#[component]
fn RangeControl(id: String, label: String, value: RwSignal<f64>, range: Range) -> impl IntoView {
    let Range { min, max, step } = range;
    let set_from = move |text: String| {
        let next = match text.trim().parse::<f64>() {
            // Dividing by the step's reciprocal keeps 1.3 exact (multiplying gives 1.3000000000000003).
            Ok(parsed) if parsed.is_finite() => {
                ((parsed.clamp(min, max) - min) / step).round() / step.recip() + min
            }
            _ => value.get_untracked(),
        };
        value.set((next * 1e6).round() / 1e6);
    };
    let decimals = step.to_string().split('.').nth(1).map_or(0, str::len);
    let shown = move |v: f64| format!("{v:.decimals$}");
    view! {
        <div class="range">
            <label for=id.clone()>{label.clone()}</label>
            <input
                id=id
                type="range"
                min=min
                max=max
                step=step
                // The attribute is the server-rendered first paint; the property follows the signal.
                value=value.get_untracked().to_string()
                prop:value=move || value.get().to_string()
                on:input=move |ev| set_from(event_target_value(&ev))
            />
            <input
                class="range-value"
                type="number"
                aria-label=format!("{label} value")
                min=min
                max=max
                step=step
                value=shown(value.get_untracked())
                prop:value=move || shown(value.get())
                on:change=move |ev| set_from(event_target_value(&ev))
            />
        </div>
    }
}
