//! The live event log: what happened to each run, compactly, folded away until opened.

use leptos::prelude::*;

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub id: usize,
    pub kind: LogKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Info,
    Success,
    Failure,
}

impl LogKind {
    fn class(self) -> &'static str {
        match self {
            LogKind::Info => "log-info",
            LogKind::Success => "log-success",
            LogKind::Failure => "log-failure",
        }
    }
}

/// Appends to a log kept in a signal.
pub fn push(log: RwSignal<Vec<LogEntry>>, kind: LogKind, text: impl Into<String>) {
    log.update(|entries| {
        let id = entries.last().map_or(0, |e| e.id + 1);
        entries.push(LogEntry {
            id,
            kind,
            text: text.into(),
        });
    });
}

#[component]
pub fn EventLog(entries: RwSignal<Vec<LogEntry>>) -> impl IntoView {
    view! {
        <details class="event-log" aria-label="Event log">
            <summary>"Log " <span class="muted">{move || entries.with(Vec::len)}</span></summary>
            <Show when=move || !entries.with(Vec::is_empty) fallback=|| view! { <p class="muted">"No runs yet."</p> }>
                <ol>
                    <For each=move || entries.get() key=|entry| entry.id let:entry>
                        <li class=entry.kind.class()>{entry.text}</li>
                    </For>
                </ol>
            </Show>
        </details>
    }
}
