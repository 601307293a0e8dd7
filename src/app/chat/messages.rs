//! A conversation's view: the list of turns that scrolls and follows the answer, the settings,
//! the log, and each turn with its answers.

use super::answer::AnswerView;
use super::composer::Composer;
use super::*;

/// A conversation's chat: the list, the composer, the settings and the log.
#[component]
pub(super) fn Conversation(
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
