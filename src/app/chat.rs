//! The chat: a page per conversation (`/c/{id}`, so that reload, back and forward and a shared
//! link reopen it), the messages in a list that alone scrolls and follows the answer as it
//! streams, and the composer pinned below it. Each answer can be copied, regenerated (its
//! versions kept), and its prompt edited and run again; Esc stops an answer.
//!
//! The answer streams as Server-Sent Events: its text as it comes, shown as plain text, and
//! each finished block (a paragraph, a list, a code block) rendered once on the server, which
//! then never changes, so that selection and links in earlier blocks survive.

use std::cell::RefCell;
use std::rc::Rc;

use futures::StreamExt;
use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::NavigateOptions;
use serde::de::DeserializeOwned;

use super::form::{Fields, Message, Settings};
use super::log::{self, EventLog, LogEntry, LogKind};
use super::sidebar::Sidebar;
use compose::record::title_of;

use crate::api::{
    cancel_run, chat, event, get_conversation, list_workflows, select_answer, ChatAnswer,
    ChatBlock, ChatConversation, ChatEnd, ChatFirstToken, ChatStart, WorkflowInfo,
};

/// The largest event the chat stream may carry (a rendered block).
const MAX_EVENT: usize = 16 * 1024 * 1024;

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

/// How often a streaming answer is redrawn: often enough to read as it comes, seldom enough
/// that painting stays a small part of the browser's time (tokens can come every millisecond).
const REDRAW: std::time::Duration = std::time::Duration::from_millis(50);

/// The events of a stream that came since the last redraw.
#[derive(Clone, Default)]
struct Pending(Rc<RefCell<Vec<compose::sse::Event>>>);

impl Pending {
    /// Keeps `event` for the next redraw; true when it is the first since the last one.
    fn push(&self, event: compose::sse::Event) -> bool {
        let mut events = self.0.borrow_mut();
        events.push(event);
        events.len() == 1
    }

    fn take(&self) -> Vec<compose::sse::Event> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
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
    fn of(status: &str) -> Self {
        match status {
            "completed" => Phase::Completed,
            "cancelled" => Phase::Stopped,
            "pending" | "processing" | "streaming" | "cancelling" => Phase::Streaming,
            _ => Phase::Failed,
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
        }
    }

    fn loaded(answer: ChatAnswer) -> Self {
        let ChatAnswer {
            answer,
            blocks,
            hint,
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
        reply.blocks.set(blocks);
        reply.text.set(answer.output.unwrap_or_default());
        reply.task_id.set(Some(answer.task_id));
        reply.usage.set(usage);
        let phase = match answer.status.as_str() {
            // A run still going elsewhere (or cut off by a restart) is not followed here.
            "deleted" => Phase::Failed,
            status => Phase::of(status),
        };
        reply.phase.set(if phase == Phase::Streaming {
            Phase::Stopped
        } else {
            phase
        });
        if answer.status == "deleted" {
            reply.error.set(Some((
                "This answer was deleted from the history.".into(),
                None,
            )));
        } else if let Some(error) = answer.error {
            reply.error.set(Some((error, hint)));
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

    /// The earlier turns, as messages, before `position` (all of them when none).
    fn context(&self, position: Option<usize>) -> Vec<Message> {
        self.turns.with_untracked(|turns| {
            let until = position.unwrap_or(turns.len()).min(turns.len());
            turns[..until]
                .iter()
                .filter_map(TurnState::reply)
                .flat_map(|reply| {
                    let answer = reply.text.get_untracked();
                    let question = Message {
                        role: "user",
                        content: reply.prompt.get_value(),
                    };
                    let answered = (!answer.is_empty()).then_some(Message {
                        role: "assistant",
                        content: answer,
                    });
                    std::iter::once(question).chain(answered)
                })
                .collect()
        })
    }

    /// Sends `prompt`: after the last turn, or as a new answer of the turn at `position`
    /// (the turns after it go: they followed from another answer).
    fn send(self, prompt: String, position: Option<usize>) {
        if self.busy() {
            return;
        }
        let fields = self.fields.get_value();
        let input = fields.input(&prompt, self.context(position));
        let reply = self
            .owner
            .with_value(|owner| owner.with(|| Reply::new(prompt.clone(), fields.summary())));
        match position {
            Some(at) => self.turns.update(|turns| {
                turns.truncate(at + 1);
                if let Some(turn) = turns.get(at) {
                    turn.replies.update(|replies| replies.push(reply));
                    turn.shown.set(turn.replies.with_untracked(Vec::len) - 1);
                }
            }),
            None => {
                self.settings_open.set(false);
                let turn = TurnState {
                    key: self.key(),
                    replies: RwSignal::new(vec![reply]),
                    shown: RwSignal::new(0),
                };
                self.turns.update(|turns| turns.push(turn));
            }
        }
        self.running.set(Some(reply));
        self.follow.set(true);
        self.scroll_to_end();
        self.status.set("Answering…".into());
        log::push(self.log, LogKind::Info, "Run started");
        let workflow_id = self.workflow.with_value(|w| w.id.clone());
        let conversation = self.conversation.get_untracked();
        let position = position.map(|p| p as u32);
        spawn_local(async move {
            match chat(
                workflow_id,
                input.to_string(),
                prompt,
                conversation,
                position,
            )
            .await
            {
                Ok(events) => {
                    let mut body = std::pin::pin!(events.into_inner());
                    let mut decoder = compose::sse::Decoder::new(MAX_EVENT);
                    let pending = Pending::default();
                    'read: while let Some(chunk) = body.next().await {
                        let Ok(bytes) = chunk else { break };
                        for event in decoder.feed(&bytes) {
                            let Ok(event) = event else { break 'read };
                            if pending.push(event) {
                                let pending = pending.clone();
                                set_timeout(move || self.apply_all(reply, &pending), REDRAW);
                            }
                        }
                    }
                    self.apply_all(reply, &pending);
                }
                Err(err) => self.failed(reply, err.to_string(), None),
            }
            if reply.phase.get_untracked() == Phase::Streaming {
                self.unreachable.set(true);
                self.failed(reply, "The connection to the server was lost.".into(), None);
            }
            self.running.set(None);
            self.sidebar_version.update(|v| *v += 1);
        });
    }

    /// Shows the events that came since the last redraw.
    fn apply_all(self, reply: Reply, pending: &Pending) {
        let events = pending.take();
        if events.is_empty() {
            return;
        }
        for event in events {
            self.apply(reply, event);
        }
        self.scroll_to_end();
    }

    fn apply(self, reply: Reply, event: compose::sse::Event) {
        fn data<T: DeserializeOwned>(event: &compose::sse::Event) -> Option<T> {
            serde_json::from_str(&event.data).ok()
        }
        self.unreachable.set(false);
        match event.name.as_deref() {
            Some(event::START) => {
                let Some(start) = data::<ChatStart>(&event) else {
                    return;
                };
                reply.task_id.set(Some(start.task_id));
                reply.version.set(start.version);
                if self.conversation.get_untracked().is_none() {
                    if let Some(id) = start.conversation_id {
                        let first = self.turns.with_untracked(|turns| {
                            turns
                                .first()
                                .and_then(TurnState::reply)
                                .map(|r| r.prompt.get_value())
                        });
                        self.title.set(first.as_deref().map(title_of));
                        self.conversation.set(Some(id.clone()));
                        self.sidebar_version.update(|v| *v += 1);
                        self.show_address.run(id);
                    }
                }
            }
            Some(event::FIRST_TOKEN) => {
                if let Some(first) = data::<ChatFirstToken>(&event) {
                    log::push(
                        self.log,
                        LogKind::Info,
                        format!("First token after {} ms", first.after_ms),
                    );
                }
            }
            Some(event::PIECE) => {
                let Some(piece) = data::<String>(&event) else {
                    return;
                };
                reply.open.update(|open| open.push_str(&piece));
                reply.text.update(|text| text.push_str(&piece));
            }
            Some(event::BLOCK) => {
                let Some(block) = data::<ChatBlock>(&event) else {
                    return;
                };
                reply.blocks.update(|blocks| blocks.push(block.html));
                reply.open.update(|open| {
                    let mut at = block.consumed.min(open.len());
                    while !open.is_char_boundary(at) {
                        at -= 1;
                    }
                    open.drain(..at);
                });
            }
            Some(event::END) => {
                let Some(end) = data::<ChatEnd>(&event) else {
                    return;
                };
                if !end.blocks.is_empty() {
                    reply.blocks.update(|blocks| blocks.extend(end.blocks));
                }
                reply.open.set(String::new());
                reply.usage.set(end.usage);
                let took = end
                    .duration_ms
                    .map(|ms| format!(" in {ms} ms"))
                    .unwrap_or_default();
                match Phase::of(&end.status) {
                    Phase::Completed => {
                        reply.phase.set(Phase::Completed);
                        self.status.set("Answer complete.".into());
                        log::push(self.log, LogKind::Success, format!("Completed{took}"));
                    }
                    Phase::Stopped => {
                        reply.phase.set(Phase::Stopped);
                        self.status.set("Stopped.".into());
                        let after = took.replace(" in ", " after ");
                        log::push(self.log, LogKind::Info, format!("Stopped{after}"));
                    }
                    _ => {
                        let error = end.error.unwrap_or_else(|| "the run failed".into());
                        self.failed(reply, error, end.hint);
                    }
                }
            }
            _ => {}
        }
    }

    fn failed(self, reply: Reply, error: String, hint: Option<String>) {
        let shown = unreachable_text(&error);
        if shown != error {
            self.unreachable.set(true);
        }
        let hint = hint.or_else(|| (shown != error).then_some(shown));
        self.status.set(format!(
            "Failed: {}",
            hint.clone().unwrap_or_else(|| error.clone())
        ));
        log::push(self.log, LogKind::Failure, format!("Failed: {error}"));
        reply.error.set(Some((error, hint)));
        reply.phase.set(Phase::Failed);
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

/// A conversation's chat: the list, the composer, the settings and the log.
#[component]
fn Conversation(
    workflows: Vec<WorkflowInfo>,
    loaded: Option<ChatConversation>,
    current: RwSignal<Option<String>>,
    sidebar_version: RwSignal<u32>,
    drawer: RwSignal<bool>,
) -> impl IntoView {
    let fixed = loaded.as_ref().map(|c| c.summary.workflow_id.clone());
    let selectable = fixed.is_none() && workflows.len() > 1;
    let chosen = fixed
        .as_deref()
        .and_then(|id| workflows.iter().position(|w| w.id == id));
    if fixed.is_some() && chosen.is_none() {
        return view! {
            <p class="muted notice">"The workflow of this conversation is no longer in the configuration."</p>
        }
        .into_any();
    }
    let selected = RwSignal::new(chosen.unwrap_or(0));
    let workflows = StoredValue::new(workflows);
    let title = loaded.as_ref().map(|c| c.summary.title.clone());
    let turns: Vec<TurnState> = loaded
        .map(|c| c.turns)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(key, turn)| {
            let shown = turn
                .versions
                .iter()
                .position(|a| a.answer.version == turn.current)
                .unwrap_or(turn.versions.len().saturating_sub(1));
            TurnState {
                key: key as u64,
                replies: RwSignal::new(turn.versions.into_iter().map(Reply::loaded).collect()),
                shown: RwSignal::new(shown),
            }
        })
        .collect();
    let next_key = turns.len() as u64;
    let turns = RwSignal::new(turns);
    let log = RwSignal::new(Vec::new());
    let status = RwSignal::new(String::new());
    let unreachable = RwSignal::new(false);
    let running = RwSignal::new(None);
    let follow = RwSignal::new(true);
    let list = NodeRef::<Div>::new();
    let owner = StoredValue::new(Owner::current().unwrap_or_default());
    let settings_open = RwSignal::new(turns.with_untracked(Vec::is_empty));
    let title = RwSignal::new(title);
    let navigate = use_navigate();
    let show_address = Callback::new(move |id: String| {
        let options = NavigateOptions {
            replace: true,
            scroll: false,
            ..Default::default()
        };
        navigate(&format!("/c/{id}"), options);
    });
    view! {
        {move || {
            let workflow = workflows.with_value(|all| all[selected.get().min(all.len() - 1)].clone());
            let chat = Chat {
                fields: StoredValue::new(Fields::new(&workflow)),
                workflow: StoredValue::new(workflow),
                turns,
                next_key: StoredValue::new(next_key),
                conversation: current,
                running,
                log,
                status,
                unreachable,
                sidebar_version,
                list,
                follow,
                show_address,
                settings_open,
                title,
                owner,
            };
            view! { <ChatBody chat selected workflows selectable drawer/> }
        }}
    }
    .into_any()
}

#[component]
fn ChatBody(
    chat: Chat,
    selected: RwSignal<usize>,
    workflows: StoredValue<Vec<WorkflowInfo>>,
    selectable: bool,
    drawer: RwSignal<bool>,
) -> impl IntoView {
    let workflow = chat.workflow.get_value();
    let fields = chat.fields.get_value();
    let label = workflow.label();
    let heading = move || chat.title.get().unwrap_or_else(|| label.clone());
    // Esc stops the answer being written.
    let esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" && chat.busy() {
            chat.stop();
        }
    });
    on_cleanup(move || esc.remove());
    // Following stops when the reader scrolls up, and starts again at the end. Text coming in
    // moves the end away without a scroll, so only the direction says who scrolled.
    let last_top = StoredValue::new(0);
    let on_scroll = move |_| {
        if let Some(list) = chat.list.get_untracked() {
            let top = list.scroll_top();
            let from_end = list.scroll_height() - top - list.client_height();
            if from_end < 48 {
                chat.follow.set(true);
            } else if top < last_top.get_value() {
                chat.follow.set(false);
            }
            last_top.set_value(top);
        }
    };
    // Scrolling up with the wheel means "stop following" at once, before the list has moved
    // (a redraw in between would otherwise take it back to the end).
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        if ev.delta_y() < 0.0 {
            chat.follow.set(false);
        }
    };
    let jump = move |_| {
        chat.follow.set(true);
        chat.scroll_to_end();
    };
    let alone = !fields.conversational;
    view! {
        <header class="chat-header">
            <button type="button" class="icon menu" aria-label="Conversations" on:click=move |_| drawer.update(|d| *d = !*d)>"☰"</button>
            <div class="chat-title">
                <h1>{heading}</h1>
                {workflow.description.clone().map(|d| view! { <p class="description">{d}</p> })}
            </div>
            <Show when=move || selectable && chat.turns.with(Vec::is_empty)>
                <div class="workflow-select">
                    <label for="workflow-select">"Workflow"</label>
                    <select id="workflow-select" on:change=move |ev| selected.set(event_target_value(&ev).parse().unwrap_or(0))>
                        {workflows.with_value(|all| all.iter().enumerate().map(|(i, w)| {
                            view! { <option value=i.to_string() selected=move || selected.get() == i>{w.short_label()}</option> }
                        }).collect_view())}
                    </select>
                </div>
            </Show>
        </header>
        <Show when=move || chat.unreachable.get()>
            <p class="banner" role="status">"The server can't be reached. What is shown here stays; try again once it is back."</p>
        </Show>
        <div class="messages" node_ref=chat.list on:scroll=on_scroll on:wheel=on_wheel aria-label="Conversation">
            <div class="column">
                <Show when=move || chat.turns.with(Vec::is_empty)>
                    <div class="empty-chat">
                        <p>"Send a message to start."</p>
                        {alone.then(|| view! {
                            <p class="muted note">"This workflow answers each message on its own: it does not take the conversation."</p>
                        })}
                    </div>
                </Show>
                <For each=move || chat.turns.get() key=|turn| turn.key let:turn>
                    <Turn chat turn/>
                </For>
            </div>
        </div>
        <Show when=move || !chat.follow.get() && chat.busy()>
            <button type="button" class="jump" on:click=jump>"↓ Jump to latest"</button>
        </Show>
        <p class="sr-status" aria-live="polite">{move || chat.status.get()}</p>
        <Composer chat/>
        <div class="panels column">
            <details class="settings-panel" open=move || chat.settings_open.get()
                on:toggle=move |ev| chat.settings_open.set(event_target::<leptos::web_sys::Element>(&ev).has_attribute("open"))>
                <summary>"Settings"</summary>
                <div class="settings">
                    <Settings fields=fields.clone()/>
                </div>
            </details>
            <EventLog entries=chat.log/>
        </div>
    }
}

/// The composer: grows with its text (to a limit), sends on Enter (Shift+Enter: a new line);
/// Send becomes Stop while an answer streams.
#[component]
fn Composer(chat: Chat) -> impl IntoView {
    let prompt = RwSignal::new(String::new());
    let takes_prompt = chat.fields.with_value(Fields::takes_prompt);
    let send = move || {
        let text = prompt.get_untracked();
        if takes_prompt && text.trim().is_empty() {
            return;
        }
        chat.send(text, None);
        prompt.set(String::new());
    };
    view! {
        <form class="composer column" on:submit=move |ev| { ev.prevent_default(); if chat.busy() { chat.stop() } else { send() } }>
            <label for="input-prompt" class="visually-hidden">"Prompt"</label>
            <textarea
                id="input-prompt"
                rows="1"
                placeholder="Message… (Enter sends, Shift+Enter adds a line)"
                prop:value=move || prompt.get()
                on:input=move |ev| prompt.set(event_target_value(&ev))
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        if !chat.busy() {
                            send();
                        }
                    }
                }
            ></textarea>
            {move || if chat.busy() {
                view! { <button type="button" class="stop" on:click=move |_| chat.stop()>"Stop"</button> }.into_any()
            } else {
                view! { <button type="submit" class="primary">"Send"</button> }.into_any()
            }}
        </form>
    }
}

/// A turn: the prompt (editable) and the answer shown, with its versions.
#[component]
fn Turn(chat: Chat, turn: TurnState) -> impl IntoView {
    let position = move || {
        chat.turns
            .with_untracked(|turns| turns.iter().position(|t| t.key == turn.key))
    };
    let reply = move || turn.replies.with(|all| all.get(turn.shown.get()).copied());
    let editing = RwSignal::new(None::<String>);
    let regenerate = move || {
        if let (Some(at), Some(reply)) = (position(), reply()) {
            chat.send(reply.prompt.get_value(), Some(at));
        }
    };
    let choose = move |index: usize| {
        turn.shown.set(index);
        let (conversation, at, version) = (
            chat.conversation.get_untracked(),
            position(),
            turn.replies
                .with_untracked(|all| all.get(index).and_then(|r| r.version.get_untracked())),
        );
        if let (Some(conversation), Some(at), Some(version)) = (conversation, at, version) {
            spawn_local(async move {
                let _ = select_answer(conversation, at as u32, version).await;
            });
        }
    };
    view! {
        {move || reply().map(|reply| {
            let prompt = reply.prompt.get_value();
            view! {
                <article class="message user">
                    {move || match editing.get() {
                        Some(_) => view! {
                            <form class="edit" on:submit=move |ev| {
                                ev.prevent_default();
                                if let (Some(text), Some(at)) = (editing.get_untracked(), position()) {
                                    editing.set(None);
                                    chat.send(text, Some(at));
                                }
                            }>
                                <textarea aria-label="Edit the prompt" prop:value=move || editing.get().unwrap_or_default()
                                    on:input=move |ev| editing.set(Some(event_target_value(&ev)))></textarea>
                                <div class="edit-actions">
                                    <button type="submit" class="primary" disabled=move || chat.busy()>"Send"</button>
                                    <button type="button" on:click=move |_| editing.set(None)>"Cancel"</button>
                                </div>
                            </form>
                        }.into_any(),
                        None => {
                            let text = prompt.clone();
                            view! {
                                <p class="prompt">{prompt.clone()}</p>
                                <div class="message-tools">
                                    <span class="message-meta">{reply.settings.get_value()}</span>
                                    <button type="button" class="link" disabled=move || chat.busy()
                                        on:click=move |_| editing.set(Some(text.clone()))>"Edit"</button>
                                </div>
                            }.into_any()
                        }
                    }}
                </article>
                <AnswerView reply turn choose regenerate chat/>
            }
        })}
    }
}

#[component]
fn AnswerView(
    reply: Reply,
    turn: TurnState,
    choose: impl Fn(usize) + Copy + Send + Sync + 'static,
    regenerate: impl Fn() + Copy + Send + Sync + 'static,
    chat: Chat,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        copy_to_clipboard(reply.text.get_untracked());
        copied.set(true);
        set_timeout(
            move || copied.set(false),
            std::time::Duration::from_millis(1500),
        );
    };
    let versions = move || turn.replies.with(Vec::len);
    view! {
        <article class="message assistant" data-state=move || reply.phase.get().name() on:click=super::rendered::on_click>
            <div class="markdown">
                <For each=move || reply.blocks.get().into_iter().enumerate() key=|(i, _)| *i let:block>
                    <div class="block" inner_html=block.1></div>
                </For>
                <Show when=move || !reply.open.with(String::is_empty)>
                    // An open code block is shown as code already, before it is highlighted.
                    <div class="open-block" class:open-code=move || reply.open.with(|text| opens_code(text))>
                        {move || reply.open.get()}
                    </div>
                </Show>
            </div>
            <Show when=move || reply.phase.get() == Phase::Streaming>
                <span class="typing" aria-hidden="true">"●"</span>
            </Show>
            {move || reply.error.get().map(|(error, hint)| {
                let detail = hint.is_some().then(|| error.clone());
                view! {
                    <div class="error" role="alert">
                        <p>{hint.unwrap_or(error)}</p>
                        {detail.map(|detail| view! {
                            <details class="error-detail"><summary>"Details"</summary><pre>{detail}</pre></details>
                        })}
                        <button type="button" disabled=move || chat.busy() on:click=move |_| regenerate()>"Retry"</button>
                    </div>
                }
            })}
            <Show when=move || reply.phase.get() == Phase::Stopped>
                <p class="message-meta">"Stopped."</p>
            </Show>
            <div class="message-tools">
                {move || reply.usage.get().map(|usage| view! {
                    <span class="message-meta usage" title="prompt + completion tokens, as the model server reported them">{usage}</span>
                })}
                <Show when=move || { versions() > 1 }>
                    <span class="versions">
                        <button type="button" class="icon" aria-label="Previous answer"
                            disabled=move || turn.shown.get() == 0 || chat.busy()
                            on:click=move |_| choose(turn.shown.get_untracked().saturating_sub(1))>"‹"</button>
                        <span class="version-count">{move || format!("{} / {}", turn.shown.get() + 1, versions())}</span>
                        <button type="button" class="icon" aria-label="Next answer"
                            disabled=move || turn.shown.get() + 1 >= versions() || chat.busy()
                            on:click=move |_| choose((turn.shown.get_untracked() + 1).min(versions() - 1))>"›"</button>
                    </span>
                </Show>
                <button type="button" class="copy" on:click=copy disabled=move || reply.text.with(String::is_empty)>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
                <button type="button" class="regenerate" disabled=move || chat.busy() on:click=move |_| regenerate()>"Regenerate"</button>
            </div>
        </article>
    }
}

/// Puts text on the clipboard (in the browser only).
pub(super) fn copy_to_clipboard(text: String) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().navigator().clipboard().write_text(&text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
