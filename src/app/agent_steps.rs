//! An agent's steps, in the run view and live in the chat: each message its job added (spec
//! §10.2), in order, as people read a tool-using model's work: the calls it made with their
//! arguments (a call still running marked so), each result (an error in red), its answer.
//! Long values are folded.

use leptos::either::Either;
use leptos::prelude::*;

use crate::app::sidebar::now_ms;

use compose::record::{JobEvent, JobStage};

/// One thing an agent did.
struct Step {
    /// `call`, `result`, `error` or `answer`.
    kind: &'static str,
    /// What it was about: a tool's name.
    about: String,
    /// The call's id (a call's, or the call a result answers).
    id: String,
    /// The arguments, the result or the text.
    body: String,
    /// Seconds since the run started.
    at: f64,
}

/// The steps of job `id`, from its `message` events.
fn steps(events: &[JobEvent], id: &str) -> Vec<Step> {
    steps_of(events.iter().filter(|e| e.job_id == id))
}

/// The steps `message` events tell.
fn steps_of<'e>(events: impl Iterator<Item = &'e JobEvent>) -> Vec<Step> {
    let mut steps = Vec::new();
    // A result is shown under its call's tool name.
    let mut names: Vec<(String, String)> = Vec::new();
    let messages = events.filter(|e| e.event == JobStage::Message);
    for event in messages {
        let Some(message) = &event.value else {
            continue;
        };
        let blocks = message["content"].as_array().cloned().unwrap_or_default();
        for block in blocks {
            let text = |key: &str| block[key].as_str().unwrap_or_default().to_string();
            let called = |id: String| {
                let name = names.iter().find(|(called, _)| *called == id);
                name.map_or(id.clone(), |(_, name)| name.clone())
            };
            let (kind, about, body) = match block["type"].as_str() {
                Some("tool_call") => {
                    names.push((text("id"), text("name")));
                    let arguments = serde_json::to_string_pretty(&block["arguments"]);
                    ("call", text("name"), arguments.unwrap_or_default())
                }
                Some("tool_result") if block["is_error"] == true => {
                    ("error", called(text("id")), text("content"))
                }
                Some("tool_result") => ("result", called(text("id")), text("content")),
                Some("text") => ("answer", String::new(), text("text")),
                _ => continue,
            };
            steps.push(Step {
                kind,
                about,
                id: text("id"),
                body,
                at: event.elapsed,
            });
        }
    }
    steps
}

/// The steps of agent job `id`, if it took any.
#[component]
pub fn AgentSteps(id: String, events: Vec<JobEvent>) -> impl IntoView {
    let steps = steps(&events, &id);
    (!steps.is_empty()).then(|| {
        view! {
            <h3>"Steps"</h3>
            <ol class="agent-steps">{steps.into_iter().map(|step| step_view(step, None)).collect_view()}</ol>
        }
    })
}

/// An answer's steps as they come (its final text is the answer itself, not a step, and so is
/// any text already in the answer's `text`, as a streaming agent's is): a call whose result
/// has not come while the run `going` is shown running.
#[component]
pub fn LiveSteps(
    steps: RwSignal<Vec<JobEvent>>,
    going: Signal<bool>,
    text: RwSignal<String>,
) -> impl IntoView {
    // When each call was first seen running, and a clock that ticks while the answer goes
    // on: a running call shows how long it has been running.
    let seen = StoredValue::new(Vec::<(String, i64)>::new());
    let now = RwSignal::new(now_ms());
    Effect::new(move |_| {
        now.track();
        if going.get() {
            set_timeout(move || now.set(now_ms()), TICK);
        }
    });
    move || {
        // The text as it is when the steps change, not at each piece of it (that would draw
        // the steps again, folding what a reader opened).
        let shown = steps.with(|events| text.with_untracked(|text| beside(events, text)));
        let answered: Vec<String> = shown
            .iter()
            .filter(|step| step.kind != "call")
            .map(|step| step.id.clone())
            .collect();
        let going = going.get();
        (!shown.is_empty()).then(|| {
            let views = shown.into_iter().map(|step| {
                let running = going && step.kind == "call" && !answered.contains(&step.id);
                let clock = running.then(|| (started(seen, &step.id), now));
                step_view(step, clock)
            });
            view! { <ol class="agent-steps live" aria-label="The agent's steps">{views.collect_view()}</ol> }
        })
    }
}

/// How often a running call's time is shown anew.
const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// The steps shown beside an answer's `text`: all but its final text, and but any text the
/// answer already has.
fn beside(events: &[JobEvent], text: &str) -> Vec<Step> {
    let mut shown = steps_of(events.iter());
    if shown.last().is_some_and(|step| step.kind == "answer") {
        shown.pop();
    }
    shown.retain(|step| step.kind != "answer" || !text.contains(step.body.as_str()));
    shown
}

/// When call `id` was first seen running (now, if it was not before).
fn started(seen: StoredValue<Vec<(String, i64)>>, id: &str) -> i64 {
    let known = seen.with_value(|seen| seen.iter().find(|(call, _)| call == id).map(|(_, at)| *at));
    known.unwrap_or_else(|| {
        let at = now_ms();
        seen.update_value(|seen| seen.push((id.to_string(), at)));
        at
    })
}

/// One step, folded (but an answer); while its call has no result, `running` gives when it
/// started and the clock that shows for how long.
fn step_view(step: Step, running: Option<(i64, RwSignal<i64>)>) -> impl IntoView {
    let when = match running {
        Some((since, now)) => Either::Left(move || {
            let seconds = (now.get() - since).max(0) as f64 / 1000.0;
            format!(" · running {seconds:.1} s")
        }),
        None => Either::Right(format!(" · {:.2} s", step.at)),
    };
    let running = running.is_some();
    let title = match step.kind {
        "call" => format!("Calls {}", step.about),
        "result" => format!("Result of {}", step.about),
        "error" => format!("Error from {}", step.about),
        _ => "Answers".to_string(),
    };
    view! {
        <li class=format!("step {}", step.kind) class:running=running>
            <details open=step.kind == "answer">
                <summary>
                    {title}
                    {running.then(|| view! { <span class="spinner" aria-label="running"></span> })}
                    <span class="muted">{when}</span>
                </summary>
                <pre>{step.body}</pre>
            </details>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::borrow::Cow;

    fn message(value: Value, elapsed: f64) -> JobEvent {
        JobEvent {
            job_id: "ask".into(),
            job_type: Cow::Borrowed("component"),
            event: JobStage::Message,
            next_job_id: None,
            elapsed,
            iteration: None,
            value: Some(value),
        }
    }

    #[test]
    fn text_the_answer_has_is_no_step_beside_it() {
        let events = [
            message(
                json!({"role": "assistant", "content": [{"type": "text", "text": "Let me see."},
                {"type": "tool_call", "id": "c1", "name": "calculate", "arguments": {}}]}),
                0.1,
            ),
            message(
                json!({"role": "tool", "content": [{"type": "tool_result", "id": "c1", "content": "4"}]}),
                0.2,
            ),
            message(
                json!({"role": "assistant", "content": [{"type": "text", "text": "It is 4."}]}),
                0.3,
            ),
        ];
        let kinds =
            |text: &str| -> Vec<&str> { beside(&events, text).iter().map(|s| s.kind).collect() };
        // A streaming agent's answer has all its text: only the call and its result are steps.
        assert_eq!(kinds("Let me see.\n\nIt is 4."), ["call", "result"]);
        // A whole answer is its last text: the text before the call is a step.
        assert_eq!(kinds("It is 4."), ["answer", "call", "result"]);
    }

    #[test]
    fn calls_results_errors_and_the_answer_in_order() {
        let events = [
            message(
                json!({"role": "assistant", "content": [
                {"type": "tool_call", "id": "c1", "name": "calculate", "arguments": {"expression": "2^10"}},
                {"type": "tool_call", "id": "c2", "name": "nope", "arguments": {}}]}),
                0.5,
            ),
            message(
                json!({"role": "tool", "content": [{"type": "tool_result", "id": "c1", "content": "1024"}]}),
                0.6,
            ),
            message(
                json!({"role": "tool", "content": [{"type": "tool_result", "id": "c2",
                "content": "Error: Unknown tool 'nope'", "is_error": true}]}),
                0.6,
            ),
            message(
                json!({"role": "assistant", "content": [{"type": "text", "text": "1024."}]}),
                0.9,
            ),
        ];
        let seen: Vec<(&str, String, String)> = steps(&events, "ask")
            .into_iter()
            .map(|s| (s.kind, s.about, s.body))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "call",
                    "calculate".into(),
                    "{\n  \"expression\": \"2^10\"\n}".into()
                ),
                ("call", "nope".into(), "{}".into()),
                ("result", "calculate".into(), "1024".into()),
                ("error", "nope".into(), "Error: Unknown tool 'nope'".into()),
                ("answer", String::new(), "1024.".into()),
            ]
        );
    }
}
