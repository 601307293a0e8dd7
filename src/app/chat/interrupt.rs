//! A run waiting for a person (spec §14): one card per point, with its message, its metadata
//! as a small table, a field to answer (JSON or text), Continue and Cancel.

use super::*;
use compose::record::{Phase as PointPhase, Point};

#[component]
pub(super) fn InterruptCard(point: Point, reply: Reply, chat: Chat) -> impl IntoView {
    let answer = RwSignal::new(draft(point.metadata.as_ref()));
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let point_id = StoredValue::new(point.id.clone());
    let send = move || {
        let Some(task_id) = reply.task_id.get_untracked() else {
            return;
        };
        sending.set(true);
        error.set(None);
        let text = answer.get_untracked();
        spawn_local(async move {
            if let Err(err) = resume_run(task_id, point_id.get_value(), text).await {
                error.set(Some(err.to_string()));
            }
            sending.set(false);
        });
    };
    let when = match point.phase {
        PointPhase::Before => "before it runs",
        PointPhase::After => "after it ran",
    };
    let rows = metadata_rows(point.metadata.as_ref());
    view! {
        <section class="interrupt-card" role="group" aria-label=format!("Job {} waits for you", point.job_id)>
            <p class="interrupt-title">"Waiting for you: job "<code>{point.job_id.clone()}</code>" "{when}</p>
            {point.message.map(|message| view! { <p class="interrupt-message">{message}</p> })}
            {(!rows.is_empty()).then(|| view! {
                <table class="interrupt-metadata">
                    <tbody>
                        {rows.into_iter().map(|(key, value)| view! {
                            <tr><th scope="row">{key}</th><td>{value}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            <label class="visually-hidden" for=format!("answer-{}", point.id)>"Answer"</label>
            <textarea
                id=format!("answer-{}", point.id)
                class="interrupt-answer"
                rows="2"
                placeholder="Leave empty to go on as it is, or write an answer (JSON or text) to use instead"
                prop:value=move || answer.get()
                on:input=move |ev| answer.set(event_target_value(&ev))
            ></textarea>
            <div class="interrupt-actions">
                <button type="button" class="primary continue" disabled=move || sending.get() on:click=move |_| send()>
                    {move || if answer.with(|a| a.trim().is_empty()) { "Continue" } else { "Send answer" }}
                </button>
                <button type="button" class="cancel" disabled=move || sending.get() on:click=move |_| chat.stop()>"Cancel run"</button>
            </div>
            {move || error.get().map(|error| view! { <p class="error" role="alert">{error}</p> })}
        </section>
    }
}

/// The answer's first draft: for an agent waiting for the results of tools its caller runs,
/// a mapping of each call's id to its result, to fill in; else nothing.
fn draft(metadata: Option<&serde_json::Value>) -> String {
    let calls = metadata
        .filter(|m| m["kind"] == "tool_calls")
        .and_then(|m| m["tool_calls"].as_array());
    let Some(calls) = calls else {
        return String::new();
    };
    let results: serde_json::Map<String, serde_json::Value> = calls
        .iter()
        .filter_map(|call| call["id"].as_str())
        .map(|id| (id.to_string(), serde_json::Value::String(String::new())))
        .collect();
    serde_json::to_string_pretty(&results).unwrap_or_default()
}

/// Metadata as rows of a table: a mapping's keys and values (texts as they are, anything else
/// as compact JSON); anything but a mapping as one row.
fn metadata_rows(metadata: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match metadata {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Object(map)) => {
            map.iter().map(|(k, v)| (k.clone(), text(v))).collect()
        }
        Some(other) => vec![("value".into(), text(other))],
    }
}
