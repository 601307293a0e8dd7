//! The run history sidebar: summaries of past runs, newest first, a page at a time; a run is
//! read whole (input, output) only when it is opened, and can be deleted. It reloads when a
//! run ends.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::markdown;
use super::sign_in::SignOut;
use crate::api::{delete_run, get_run, list_runs, RunRecord, RunSummary, HISTORY_PAGE};

#[component]
pub fn History(version: RwSignal<u32>) -> impl IntoView {
    let first = Resource::new(move || version.get(), |_| list_runs(None));
    // Pages loaded with "Show more", after the first; gone when the history reloads.
    let more = RwSignal::new(Vec::<RunSummary>::new());
    let exhausted = RwSignal::new(false);
    Effect::watch(
        move || version.get(),
        move |_, _, _| {
            more.set(Vec::new());
            exhausted.set(false);
        },
        false,
    );
    let selected = RwSignal::new(None::<String>);
    let show_more = move |before: String| {
        spawn_local(async move {
            if let Ok(page) = list_runs(Some(before)).await {
                exhausted.set(page.len() < HISTORY_PAGE);
                more.update(|runs| runs.extend(page));
            }
        });
    };
    view! {
        <aside class="history" aria-label="Run history">
            <div class="history-top">
                <h2>"History"</h2>
                <SignOut/>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No runs yet."</p> }.into_any(),
                        Ok(list) => {
                            let full = list.len() == HISTORY_PAGE;
                            let first_last = StoredValue::new(list.last().map(|run| run.task_id.clone()));
                            let last = move || {
                                more.with(|m| m.last().map(|run| run.task_id.clone())).or_else(|| first_last.get_value())
                            };
                            view! {
                                <ul class="runs">
                                    {list.into_iter().map(|run| view! { <RunItem run selected/> }).collect_view()}
                                    <For each=move || more.get() key=|run| run.task_id.clone() let:run>
                                        <RunItem run selected/>
                                    </For>
                                </ul>
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
            {move || selected.get().map(|id| view! { <RunDetail id selected version/> })}
        </aside>
    }
}

fn duration(duration_ms: Option<i64>) -> String {
    duration_ms
        .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "…".into())
}

#[component]
fn RunItem(run: RunSummary, selected: RwSignal<Option<String>>) -> impl IntoView {
    let temperature = run
        .temperature()
        .map(|t| format!("t={t}"))
        .unwrap_or_default();
    let meta = [temperature, run.status.clone(), duration(run.duration_ms)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let id = run.task_id.clone();
    let is_selected = {
        let id = id.clone();
        move || selected.with(|s| s.as_deref() == Some(id.as_str()))
    };
    view! {
        <li class="run" data-status=run.status class:selected=is_selected>
            <button type="button" on:click=move |_| selected.set(Some(id.clone()))>
                <span class="run-title">{run.title}</span>
                <span class="run-meta">{meta}</span>
            </button>
        </li>
    }
}

/// The opened run, read whole from the history.
#[component]
fn RunDetail(
    id: String,
    selected: RwSignal<Option<String>>,
    version: RwSignal<u32>,
) -> impl IntoView {
    let record = Resource::new(move || id.clone(), get_run);
    view! {
        <section class="run-detail" aria-label="Selected run">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match record.await {
                        Ok(Some(run)) => view! { <RunFields run selected version/> }.into_any(),
                        Ok(None) => view! { <p class="muted">"This run is no longer in the history."</p> }.into_any(),
                        Err(err) => view! { <p class="error">{err.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn RunFields(
    run: RunRecord,
    selected: RwSignal<Option<String>>,
    version: RwSignal<u32>,
) -> impl IntoView {
    let output = run.output.clone().unwrap_or_default();
    let settings = serde_json::to_string_pretty(&run.input).unwrap_or_default();
    let id = run.task_id.clone();
    let delete = move |_| {
        let id = id.clone();
        spawn_local(async move {
            if delete_run(id).await.is_ok() {
                selected.set(None);
                version.update(|v| *v += 1);
            }
        });
    };
    view! {
        <header>
            <h3>{run.title()}</h3>
            <button type="button" class="close" aria-label="Close" on:click=move |_| selected.set(None)>"×"</button>
        </header>
        <p class="run-meta">{format!("{} · {}", run.status, duration(run.duration_ms))}</p>
        <h4>"Input"</h4>
        <pre class="settings-json">{settings}</pre>
        <h4>"Output"</h4>
        <div class="markdown" inner_html=markdown::render(&output)></div>
        {run.error.clone().map(|e| view! { <p class="error">{e}</p> })}
        <button type="button" class="delete" on:click=delete>"Delete"</button>
    }
}
