//! The chat: a page per conversation (`/c/{id}`, so that reload, back and forward and a shared
//! link reopen it), the messages in a list that alone scrolls and follows the answer as it
//! streams, and the composer pinned below it. Each answer can be copied, regenerated (its
//! versions kept), and its prompt edited and run again; Esc stops an answer.
//!
//! The answer streams as Server-Sent Events: its text as it comes, shown as plain text, and
//! each finished block (a paragraph, a list, a code block) rendered once on the server, which
//! then never changes, so that selection and links in earlier blocks survive.
//!
//! Here: the page and the state of a conversation's view; `streaming` runs an answer and
//! applies its events; `messages` lays out the turns; `composer` is where prompts are written;
//! `answer` shows one answer.

mod answer;
mod composer;
mod interrupt;
mod messages;
mod streaming;

use std::cell::RefCell;
use std::rc::Rc;

use futures::StreamExt;
use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::NavigateOptions;
use serde::de::DeserializeOwned;

use super::form::{Fields, Settings};
use super::log::{self, EventLog, LogEntry, LogKind};
use super::sidebar::Sidebar;
use compose::record::{title_of, Status};

use crate::server_fns::{
    cancel_run, chat, event, get_conversation, list_workflows, resume_run, select_answer,
    ChatAnswer, ChatBlock, ChatConversation, ChatEnd, ChatFirstToken, ChatStart, WorkflowInfo,
};

use messages::Conversation;

/// The page: the conversations beside the chat. A new chat that gets its id keeps its view;
/// another conversation (a link, back, forward) gets a view of its own.
#[component]
pub fn ChatPage() -> impl IntoView {
    let location = use_location();
    let route_id = Memo::new(move |_| {
        location
            .pathname
            .with(|path| path.strip_prefix("/c/").map(str::to_string))
            .filter(|id| !id.is_empty())
    });
    let current = RwSignal::new(route_id.get_untracked());
    let epoch = RwSignal::new(0u32);
    Effect::new(move |_| {
        let id = route_id.get();
        if current.get_untracked() != id {
            current.set(id);
            epoch.update(|e| *e += 1);
        }
    });
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let workflows = Resource::new(|| (), |_| list_workflows());
    let sidebar_version = RwSignal::new(0u32);
    let drawer = RwSignal::new(false);
    view! {
        <div class="app" class:drawer-open=move || drawer.get()>
            <Sidebar version=sidebar_version current drawer/>
            <main class="chat-main" data-hydrated=move || hydrated.get().then_some("true")>
                <Suspense fallback=|| view! { <p class="muted loading">"Loading…"</p> }>
                    {move || {
                        epoch.track();
                        let initial = current.get_untracked();
                        Suspend::new(async move {
                            match workflows.await {
                                Ok(list) if !list.is_empty() => view! {
                                    <ChatView workflows=list initial current sidebar_version drawer/>
                                }.into_any(),
                                Ok(_) => view! { <p class="muted">"This configuration has no workflows."</p> }.into_any(),
                                Err(err) => view! { <p class="error">{err.to_string()}</p> }.into_any(),
                            }
                        })
                    }}
                </Suspense>
            </main>
        </div>
    }
}

/// A conversation, loaded if it has an id.
#[component]
fn ChatView(
    workflows: Vec<WorkflowInfo>,
    initial: Option<String>,
    current: RwSignal<Option<String>>,
    sidebar_version: RwSignal<u32>,
    drawer: RwSignal<bool>,
) -> impl IntoView {
    let Some(id) = initial else {
        return view! { <Conversation workflows loaded=None current sidebar_version drawer/> }
            .into_any();
    };
    let conversation = Resource::new(move || id.clone(), get_conversation);
    view! {
        <Suspense fallback=|| view! { <p class="muted loading">"Loading the conversation…"</p> }>
            {move || {
                let workflows = workflows.clone();
                Suspend::new(async move {
                    match conversation.await {
                        Ok(Some(loaded)) => view! {
                            <Conversation workflows loaded=Some(loaded) current sidebar_version drawer/>
                        }.into_any(),
                        Ok(None) => view! {
                            <p class="muted notice">"This conversation does not exist (any more)."</p>
                        }.into_any(),
                        Err(err) => view! { <p class="error notice">{unreachable_text(&err.to_string())}</p> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
    .into_any()
}

/// Where an answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Streaming,
    Completed,
    Failed,
    Stopped,
}

impl Phase {
    fn of(status: Status) -> Self {
        match status {
            Status::Completed => Phase::Completed,
            Status::Cancelled => Phase::Stopped,
            Status::Pending | Status::Processing | Status::Interrupted | Status::Cancelling => {
                Phase::Streaming
            }
            Status::Failed => Phase::Failed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Streaming => "streaming",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
        }
    }
}

/// One answer: rendered blocks, the text of the block still open, and how it went.
#[derive(Clone, Copy)]
struct Reply {
    version: RwSignal<Option<u32>>,
    prompt: StoredValue<String>,
    settings: StoredValue<String>,
    blocks: RwSignal<Vec<String>>,
    open: RwSignal<String>,
    /// All the text, for Copy and as context for the next turns.
    text: RwSignal<String>,
    phase: RwSignal<Phase>,
    /// The error and what a person can do about it.
    error: RwSignal<Option<(String, Option<String>)>>,
    task_id: RwSignal<Option<String>>,
    /// The tokens the run used and how fast they came, once known.
    usage: RwSignal<Option<String>>,
    /// The points the run waits on, while it does.
    interrupt: RwSignal<Vec<compose::record::Point>>,
    /// An agent's steps (its messages), as they happen.
    steps: RwSignal<Vec<compose::record::JobEvent>>,
}

impl Reply {
    fn new(prompt: String, settings: String) -> Self {
        Self {
            version: RwSignal::new(None),
            prompt: StoredValue::new(prompt),
            settings: StoredValue::new(settings),
            blocks: RwSignal::new(Vec::new()),
            open: RwSignal::new(String::new()),
            text: RwSignal::new(String::new()),
            phase: RwSignal::new(Phase::Streaming),
            error: RwSignal::new(None),
            task_id: RwSignal::new(None),
            usage: RwSignal::new(None),
            interrupt: RwSignal::new(Vec::new()),
            steps: RwSignal::new(Vec::new()),
        }
    }

    fn loaded(answer: ChatAnswer) -> Self {
        let ChatAnswer {
            answer,
            blocks,
            usage,
        } = answer;
        let settings = answer
            .settings
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ");
        let reply = Self::new(answer.prompt, settings);
        reply.version.set(Some(answer.version));
        reply.steps.set(answer.steps);
        reply.blocks.set(blocks);
        reply.text.set(
            answer
                .output
                .map(|output| output.text().into_owned())
                .unwrap_or_default(),
        );
        reply.task_id.set(Some(answer.task_id));
        reply.usage.set(usage);
        let phase = match answer.status {
            Some(status) => Phase::of(status),
            // No longer in the history.
            None => Phase::Failed,
        };
        // A run still going elsewhere (or cut off by a restart) is not followed here.
        reply.phase.set(if phase == Phase::Streaming {
            Phase::Stopped
        } else {
            phase
        });
        if answer.status.is_none() {
            reply.error.set(Some((
                "This answer was deleted from the history.".into(),
                None,
            )));
        } else if let Some(failure) = answer.error {
            let hint = failure.hint();
            reply.error.set(Some((failure.message, hint)));
        }
        reply
    }
}

/// A turn: the answers to one prompt (more than one once regenerated or edited).
#[derive(Clone, Copy)]
struct TurnState {
    key: u64,
    replies: RwSignal<Vec<Reply>>,
    shown: RwSignal<usize>,
}

impl TurnState {
    fn reply(&self) -> Option<Reply> {
        self.replies
            .with_untracked(|all| all.get(self.shown.get_untracked()).copied())
    }
}

/// Everything the chat's parts share.
#[derive(Clone, Copy)]
struct Chat {
    workflow: StoredValue<WorkflowInfo>,
    fields: StoredValue<Fields>,
    turns: RwSignal<Vec<TurnState>>,
    next_key: StoredValue<u64>,
    conversation: RwSignal<Option<String>>,
    running: RwSignal<Option<Reply>>,
    log: RwSignal<Vec<LogEntry>>,
    /// A short status for screen readers, not the whole conversation.
    status: RwSignal<String>,
    unreachable: RwSignal<bool>,
    sidebar_version: RwSignal<u32>,
    list: NodeRef<Div>,
    /// Whether the list follows the answer (the reader has not scrolled up).
    follow: RwSignal<bool>,
    /// Puts a new conversation's address in the location bar (without reloading).
    show_address: Callback<String>,
    /// Whether the settings are unfolded: on a new chat, until its first message is sent.
    settings_open: RwSignal<bool>,
    /// The conversation's title: its first prompt's, until renamed.
    title: RwSignal<Option<String>>,
    /// The conversation's owner: new answers belong to it, not to the view that asked for
    /// them (a turn's view is redrawn, and its owner disposed, once it shows the new answer).
    owner: StoredValue<Owner>,
}

impl Chat {
    fn busy(&self) -> bool {
        self.running.with(Option::is_some)
    }

    fn key(&self) -> u64 {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        key
    }

    /// The earlier turns, as messages, before `position` (all of them when none): each
    /// prompt, then its answer; an agent's answer as the messages it added (its tool calls
    /// and their results, then its reply), so that a follow-up has them in view.
    fn context(&self, position: Option<usize>) -> Vec<serde_json::Value> {
        self.turns.with_untracked(|turns| {
            let until = position.unwrap_or(turns.len()).min(turns.len());
            let mut messages = Vec::new();
            for reply in turns[..until].iter().filter_map(TurnState::reply) {
                let prompt = reply.prompt.get_value();
                messages.push(serde_json::json!({"role": "user", "content": prompt}));
                let steps = reply.steps.get_untracked();
                if !steps.is_empty() {
                    let added = steps.into_iter().filter_map(|step| step.value).collect();
                    messages.extend(in_call_order(added));
                    continue;
                }
                let answer = reply.text.get_untracked();
                if !answer.is_empty() {
                    messages.push(serde_json::json!({"role": "assistant", "content": answer}));
                }
            }
            messages
        })
    }

    fn stop(self) {
        let task = self
            .running
            .get_untracked()
            .and_then(|reply| reply.task_id.get_untracked());
        if let Some(task_id) = task {
            spawn_local(async move {
                let _ = cancel_run(task_id).await;
            });
        }
    }

    /// Keeps the newest text in view, unless the reader scrolled up.
    fn scroll_to_end(self) {
        if !self.follow.get_untracked() {
            return;
        }
        let (list, follow) = (self.list, self.follow);
        request_animation_frame(move || {
            if !follow.get_untracked() {
                return;
            }
            if let Some(list) = list.get_untracked() {
                list.set_scroll_top(list.scroll_height());
            }
        });
    }
}

/// Whether the text starts a fenced code block.
fn opens_code(text: &str) -> bool {
    let text = text.trim_start_matches(' ');
    text.starts_with("```") || text.starts_with("~~~")
}

/// What the browser says when the server is gone, as a person would say it.
fn unreachable_text(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("failed to fetch")
        || lower.contains("networkerror")
        || lower.contains("load failed")
    {
        "The server can't be reached. What is shown here stays; try again once it is back.".into()
    } else {
        error.to_string()
    }
}
/// An agent's messages as its model had them: the results of one turn's calls, told as each
/// ended, back in the order of the calls.
fn in_call_order(mut messages: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let mut calls: Vec<String> = Vec::new();
    let mut start = 0;
    while start < messages.len() {
        if messages[start]["role"] != "tool" {
            let content = messages[start]["content"].as_array();
            calls = content
                .into_iter()
                .flatten()
                .filter(|block| block["type"] == "tool_call")
                .filter_map(|block| block["id"].as_str().map(str::to_string))
                .collect();
            start += 1;
            continue;
        }
        let end = messages[start..]
            .iter()
            .position(|message| message["role"] != "tool")
            .map_or(messages.len(), |length| start + length);
        let place = |message: &serde_json::Value| {
            let id = message["content"][0]["id"].as_str().unwrap_or_default();
            calls
                .iter()
                .position(|call| call == id)
                .unwrap_or(usize::MAX)
        };
        messages[start..end].sort_by_key(place);
        start = end;
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::in_call_order;
    use serde_json::json;

    #[test]
    fn results_told_as_they_ended_go_back_in_the_calls_order() {
        let result =
            |id: &str| json!({"role": "tool", "content": [{"type": "tool_result", "id": id}]});
        let call = |id: &str| json!({"type": "tool_call", "id": id});
        let asked = json!({"role": "assistant", "content": [call("slow"), call("fast")]});
        let answer = json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]});
        let told = vec![
            asked.clone(),
            result("fast"),
            result("slow"),
            answer.clone(),
        ];
        assert_eq!(
            in_call_order(told),
            [asked, result("slow"), result("fast"), answer]
        );
    }
}
