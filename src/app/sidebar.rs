//! The conversations: most recent first, grouped by day, searchable, renameable, deletable
//! (after a confirmation), a page at a time; "New chat" on top. On a phone it is a drawer.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use super::sign_in::SignOut;
use crate::server_fns::{
    delete_conversation, list_conversations, rename_conversation, ConversationSummary,
    CONVERSATIONS_PAGE,
};

/// Milliseconds in a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The day a time falls on (UTC, so that the server's page and the browser's agree), as a
/// heading relative to `now`.
fn day_label(at: i64, now: i64) -> String {
    let (day, today) = (at.div_euclid(DAY_MS), now.div_euclid(DAY_MS));
    match today - day {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        2..=6 => "Previous 7 days".into(),
        7..=29 => "Previous 30 days".into(),
        _ => "Older".into(),
    }
}

/// Milliseconds since the epoch, on the client's clock once hydrated.
pub(crate) fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

#[component]
pub fn Sidebar(
    /// Bumped whenever the list may have changed.
    version: RwSignal<u32>,
    /// The conversation shown, if any.
    current: RwSignal<Option<String>>,
    /// Whether the drawer is open (on a phone).
    drawer: RwSignal<bool>,
) -> impl IntoView {
    let search = RwSignal::new(String::new());
    let first = Resource::new(
        move || (version.get(), search.get()),
        |(_, search)| list_conversations(Some(search), None),
    );
    let more = RwSignal::new(Vec::<ConversationSummary>::new());
    let exhausted = RwSignal::new(false);
    Effect::watch(
        move || (version.get(), search.get()),
        move |_, _, _| {
            more.set(Vec::new());
            exhausted.set(false);
        },
        false,
    );
    let show_more = move |before: String| {
        spawn_local(async move {
            let search = Some(search.get_untracked());
            if let Ok(page) = list_conversations(search, Some(before)).await {
                exhausted.set(page.len() < CONVERSATIONS_PAGE);
                more.update(|list| list.extend(page));
            }
        });
    };
    view! {
        <aside class="sidebar" aria-label="Conversations">
            <div class="sidebar-top">
                <A href="/" attr:class="new-chat" on:click=move |_| drawer.set(false)>"New chat"</A>
                <SignOut/>
            </div>
            <input type="search" class="search" placeholder="Search conversations" aria-label="Search conversations"
                prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev))/>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Ok(list) if list.is_empty() => {
                            let empty = if search.get_untracked().trim().is_empty() { "No conversations yet." } else { "Nothing matches." };
                            view! { <p class="muted">{empty}</p> }.into_any()
                        }
                        Ok(list) => {
                            let full = list.len() == CONVERSATIONS_PAGE;
                            let first_last = StoredValue::new(list.last().map(|c| c.id.clone()));
                            let last = move || more.with(|m| m.last().map(|c| c.id.clone())).or_else(|| first_last.get_value());
                            let all = Memo::new(move |_| {
                                let mut all = list.clone();
                                all.extend(more.get());
                                all
                            });
                            view! {
                                <Groups all current version drawer/>
                                <Show when=move || full && !exhausted.get()>
                                    <button type="button" class="show-more" on:click=move |_| {
                                        if let Some(before) = last() {
                                            show_more(before);
                                        }
                                    }>"Show more"</button>
                                </Show>
                            }.into_any()
                        }
                        Err(err) => view! { <p class="error">{err.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </aside>
        <div class="drawer-backdrop" on:click=move |_| drawer.set(false)></div>
    }
}

/// The list, under a heading per day.
#[component]
fn Groups(
    all: Memo<Vec<ConversationSummary>>,
    current: RwSignal<Option<String>>,
    version: RwSignal<u32>,
    drawer: RwSignal<bool>,
) -> impl IntoView {
    let groups = move || {
        let now = now_ms();
        let mut groups: Vec<(String, Vec<ConversationSummary>)> = Vec::new();
        for conversation in all.get() {
            let label = day_label(conversation.updated_at, now);
            match groups.last_mut().filter(|(l, _)| *l == label) {
                Some((_, items)) => items.push(conversation),
                None => groups.push((label, vec![conversation])),
            }
        }
        groups
    };
    view! {
        {move || groups().into_iter().map(|(label, items)| view! {
            <section class="day">
                <h2>{label}</h2>
                <ul class="conversations">
                    {items.into_iter().map(|conversation| view! { <Item conversation current version drawer/> }).collect_view()}
                </ul>
            </section>
        }).collect_view()}
    }
}

/// What an item is doing: shown, being renamed, or asking to confirm its deletion.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Shown,
    Renaming,
    Confirming,
}

#[component]
fn Item(
    conversation: ConversationSummary,
    current: RwSignal<Option<String>>,
    version: RwSignal<u32>,
    drawer: RwSignal<bool>,
) -> impl IntoView {
    let ConversationSummary { id, title, .. } = conversation;
    let mode = RwSignal::new(Mode::Shown);
    let draft = RwSignal::new(title.clone());
    let id = StoredValue::new(id);
    let is_current = move || current.with(|c| id.with_value(|id| c.as_deref() == Some(id)));
    let navigate = use_navigate();
    let rename = move || {
        let (id, title) = (id.get_value(), draft.get_untracked());
        mode.set(Mode::Shown);
        spawn_local(async move {
            if rename_conversation(id, title).await.is_ok() {
                version.update(|v| *v += 1);
            }
        });
    };
    let delete = move |_| {
        let id = id.get_value();
        let was_current = is_current();
        let navigate = navigate.clone();
        spawn_local(async move {
            if delete_conversation(id).await.is_ok() {
                version.update(|v| *v += 1);
                if was_current {
                    navigate("/", Default::default());
                }
            }
        });
    };
    view! {
        <li class="conversation" class:current=is_current>
            {move || match mode.get() {
                Mode::Renaming => view! {
                    <form class="rename" on:submit=move |ev| { ev.prevent_default(); rename(); }>
                        <input aria-label="New title" prop:value=move || draft.get()
                            on:input=move |ev| draft.set(event_target_value(&ev))
                            on:keydown=move |ev| if ev.key() == "Escape" { mode.set(Mode::Shown) }/>
                        <button type="submit">"Save"</button>
                    </form>
                }.into_any(),
                Mode::Confirming => view! {
                    <div class="confirm" role="alertdialog" aria-label="Delete this conversation?">
                        <span>"Delete this conversation?"</span>
                        <button type="button" class="danger" on:click=delete.clone()>"Delete"</button>
                        <button type="button" on:click=move |_| mode.set(Mode::Shown)>"Cancel"</button>
                    </div>
                }.into_any(),
                Mode::Shown => {
                    let href = format!("/c/{}", id.get_value());
                    view! {
                        <A href=href attr:class="conversation-link" on:click=move |_| drawer.set(false)>
                            {draft.get_untracked()}
                        </A>
                        <span class="conversation-tools">
                            <button type="button" class="icon" aria-label="Rename" title="Rename"
                                on:click=move |_| mode.set(Mode::Renaming)>"✎"</button>
                            <button type="button" class="icon" aria-label="Delete" title="Delete"
                                on:click=move |_| mode.set(Mode::Confirming)>"✕"</button>
                        </span>
                    }.into_any()
                }
            }}
        </li>
    }
}
