//! The chat view: each run is a prompt bubble and an answer that streams in, rendered as
//! Markdown, with Stop, Copy and Retry; the composer sends on Enter (Shift+Enter: new line).

use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use super::form::{Fields, Settings};
use super::log::{self, EventLog, LogEntry, LogKind};
use super::markdown;
use crate::api::{cancel_run, run_workflow, RunMessage, WorkflowInfo};

/// Where an answer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerState {
    Streaming,
    Completed,
    Failed(String),
    Stopped,
}

/// One prompt and its answer.
#[derive(Clone)]
struct Exchange {
    id: usize,
    prompt: String,
    settings: String,
    input: Value,
    answer: RwSignal<String>,
    state: RwSignal<AnswerState>,
    task_id: RwSignal<Option<String>>,
}

/// What the chat needs to start runs.
#[derive(Clone, Copy)]
struct Runner {
    workflow_id: StoredValue<String>,
    exchanges: RwSignal<Vec<Exchange>>,
    log: RwSignal<Vec<LogEntry>>,
    history_version: RwSignal<u32>,
}

impl Runner {
    fn busy(&self) -> bool {
        self.exchanges
            .with(|all| all.iter().any(|e| e.state.get() == AnswerState::Streaming))
    }

    /// Adds the exchange and streams its answer in.
    fn start(self, prompt: String, settings: String, input: Value) {
        let exchange = Exchange {
            id: self.exchanges.with_untracked(|all| all.len()),
            prompt,
            settings,
            input,
            answer: RwSignal::new(String::new()),
            state: RwSignal::new(AnswerState::Streaming),
            task_id: RwSignal::new(None),
        };
        self.exchanges.update(|all| all.push(exchange.clone()));
        spawn_local(self.stream(exchange));
    }

    async fn stream(self, exchange: Exchange) {
        log::push(self.log, LogKind::Info, "Run started");
        let workflow_id = self.workflow_id.get_value();
        match run_workflow(workflow_id, exchange.input.to_string()).await {
            Err(err) => self.ended(&exchange, "failed", Some(err.to_string()), None, None),
            Ok(stream) => {
                let mut stream = Box::pin(stream.into_inner());
                let mut buffer = String::new();
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(text) => buffer.push_str(&text),
                        Err(err) => {
                            self.ended(&exchange, "failed", Some(err.to_string()), None, None);
                            break;
                        }
                    }
                    while let Some(end) = buffer.find('\n') {
                        let line: String = buffer.drain(..=end).collect();
                        if let Ok(message) = serde_json::from_str::<RunMessage>(&line) {
                            self.apply(&exchange, message);
                        }
                    }
                }
            }
        }
        if exchange.state.get_untracked() == AnswerState::Streaming {
            let lost = "the connection to the server was lost".to_string();
            self.ended(&exchange, "failed", Some(lost), None, None);
        }
        self.history_version.update(|v| *v += 1);
    }

    fn apply(&self, exchange: &Exchange, message: RunMessage) {
        match message {
            RunMessage::Started { task_id } => exchange.task_id.set(Some(task_id)),
            RunMessage::FirstToken { after_ms } => {
                log::push(
                    self.log,
                    LogKind::Info,
                    format!("First token after {after_ms} ms"),
                );
            }
            RunMessage::Piece { text } => exchange.answer.update(|answer| answer.push_str(&text)),
            RunMessage::Ended {
                status,
                error,
                output,
                duration_ms,
            } => self.ended(exchange, &status, error, output, duration_ms),
        }
    }

    fn ended(
        &self,
        exchange: &Exchange,
        status: &str,
        error: Option<String>,
        output: Option<Value>,
        duration_ms: Option<i64>,
    ) {
        if let Some(output) = output {
            let text = match output {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => format!(
                    "```json\n{}\n```",
                    serde_json::to_string_pretty(&other).unwrap_or_default()
                ),
            };
            exchange.answer.set(text);
        }
        let took = duration_ms
            .map(|ms| format!(" in {ms} ms"))
            .unwrap_or_default();
        let (state, kind, line) = match status {
            "completed" => (
                AnswerState::Completed,
                LogKind::Success,
                format!("Completed{took}"),
            ),
            "cancelled" => (
                AnswerState::Stopped,
                LogKind::Info,
                format!("Stopped{}", took.replace(" in ", " after ")),
            ),
            _ => {
                let message = error.unwrap_or_else(|| "the run failed".into());
                (
                    AnswerState::Failed(message.clone()),
                    LogKind::Failure,
                    format!("Failed: {message}"),
                )
            }
        };
        exchange.state.set(state);
        log::push(self.log, kind, line);
    }
}

/// The chat for one workflow.
#[component]
pub fn Chat(workflow: WorkflowInfo, history_version: RwSignal<u32>) -> impl IntoView {
    let fields = Fields::new(&workflow.inputs);
    let runner = Runner {
        workflow_id: StoredValue::new(workflow.id.clone()),
        exchanges: RwSignal::new(Vec::new()),
        log: RwSignal::new(Vec::new()),
        history_version,
    };
    let prompt = fields.prompt_text();
    let prompt_label = fields
        .prompt
        .as_ref()
        .map(|f| f.label())
        .unwrap_or_default();
    let prompt_required = fields.prompt.as_ref().is_some_and(|f| f.spec.required);
    let stored_fields = StoredValue::new(fields.clone());
    let send = move || {
        if runner.busy() {
            return;
        }
        let fields = stored_fields.get_value();
        let text = prompt.map(|p| p.get_untracked()).unwrap_or_default();
        if prompt.is_some() && text.trim().is_empty() {
            return;
        }
        runner.start(text, fields.summary(), fields.input());
        if let Some(prompt) = prompt {
            prompt.set(String::new());
        }
    };
    let stop = move || {
        let running = runner.exchanges.with_untracked(|all| {
            all.iter()
                .rev()
                .find(|e| e.state.get_untracked() == AnswerState::Streaming)
                .cloned()
        });
        if let Some(task_id) = running.and_then(|e| e.task_id.get_untracked()) {
            spawn_local(async move {
                let _ = cancel_run(task_id).await;
            });
        }
    };
    view! {
        <div class="chat">
            <section class="messages" aria-label="Conversation" aria-live="polite">
                <Show when=move || runner.exchanges.with(Vec::is_empty)>
                    <p class="muted empty-chat">"Write a prompt below and press Enter or “Run Workflow”."</p>
                </Show>
                <For each=move || runner.exchanges.get() key=|e| e.id let:exchange>
                    <ExchangeView exchange runner/>
                </For>
            </section>
            <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
                {prompt.map(|prompt| view! {
                    <label for="input-prompt" class="prompt-label">{prompt_label.clone()}</label>
                    <textarea
                        id="input-prompt"
                        rows="3"
                        required=prompt_required
                        placeholder="Ask anything… (Enter sends, Shift+Enter adds a line)"
                        prop:value=move || prompt.get()
                        on:input=move |ev| prompt.set(event_target_value(&ev))
                        on:keydown=move |ev| {
                            if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                                ev.prevent_default();
                                send();
                            }
                        }
                    ></textarea>
                })}
                <div class="settings">
                    <Settings fields=fields.settings.clone()/>
                </div>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || runner.busy()>"Run Workflow"</button>
                    <button type="button" class="stop" disabled=move || !runner.busy() on:click=move |_| stop()>"Stop"</button>
                </div>
            </form>
            <EventLog entries=runner.log/>
        </div>
    }
}

#[component]
fn ExchangeView(exchange: Exchange, runner: Runner) -> impl IntoView {
    let Exchange {
        prompt,
        settings,
        input,
        answer,
        state,
        ..
    } = exchange;
    let retry = {
        let (prompt, settings) = (prompt.clone(), settings.clone());
        move |_| {
            if !runner.busy() {
                runner.start(prompt.clone(), settings.clone(), input.clone());
            }
        }
    };
    let copy = move |_| copy_to_clipboard(answer.get_untracked());
    let state_name = move || match state.get() {
        AnswerState::Streaming => "streaming",
        AnswerState::Completed => "completed",
        AnswerState::Failed(_) => "failed",
        AnswerState::Stopped => "stopped",
    };
    view! {
        <article class="message user">
            <p class="prompt">{prompt}</p>
            <p class="message-meta">{settings}</p>
        </article>
        <article class="message assistant" data-state=state_name>
            <div class="markdown" inner_html=move || markdown::render(&answer.get())></div>
            <Show when=move || state.get() == AnswerState::Streaming>
                <span class="typing" aria-label="Generating">"●"</span>
            </Show>
            {move || match state.get() {
                AnswerState::Failed(message) => view! {
                    <div class="error" role="alert">
                        <p>{message}</p>
                        <button type="button" on:click=retry.clone()>"Retry"</button>
                    </div>
                }.into_any(),
                AnswerState::Stopped => view! { <p class="message-meta">"Stopped."</p> }.into_any(),
                _ => ().into_any(),
            }}
            <div class="message-tools">
                <button type="button" class="copy" on:click=copy disabled=move || answer.with(String::is_empty)>"Copy"</button>
            </div>
        </article>
    }
}

/// Puts text on the clipboard (in the browser only).
fn copy_to_clipboard(text: String) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().navigator().clipboard().write_text(&text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
