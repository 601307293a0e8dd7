//! The run history sidebar: past runs from the history store, newest first; one can be
//! opened (prompt, settings, output) or deleted. It reloads when a run ends.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::markdown;
use super::sign_in::SignOut;
use crate::api::{delete_run, list_runs, RunRecord};

#[component]
pub fn History(version: RwSignal<u32>) -> impl IntoView {
    let runs = Resource::new(move || version.get(), |_| list_runs());
    let selected = RwSignal::new(None::<RunRecord>);
    view! {
        <aside class="history" aria-label="Run history">
            <div class="history-top">
                <h2>"History"</h2>
                <SignOut/>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match runs.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No runs yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="runs">
                                {list.into_iter().map(|run| view! { <RunItem run selected/> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(err) => view! { <p class="error">{err.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            {move || selected.get().map(|run| view! { <RunDetail run selected version/> })}
        </aside>
    }
}

fn duration(run: &RunRecord) -> String {
    run.duration_ms
        .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "…".into())
}

#[component]
fn RunItem(run: RunRecord, selected: RwSignal<Option<RunRecord>>) -> impl IntoView {
    let temperature = run
        .temperature()
        .map(|t| format!("t={t}"))
        .unwrap_or_default();
    let meta = [temperature, run.status.clone(), duration(&run)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let title = run.title();
    let id = run.task_id.clone();
    let is_selected = move || selected.with(|s| s.as_ref().is_some_and(|s| s.task_id == id));
    let status = run.status.clone();
    view! {
        <li class="run" data-status=status class:selected=is_selected>
            <button type="button" on:click=move |_| selected.set(Some(run.clone()))>
                <span class="run-title">{title}</span>
                <span class="run-meta">{meta}</span>
            </button>
        </li>
    }
}

#[component]
fn RunDetail(
    run: RunRecord,
    selected: RwSignal<Option<RunRecord>>,
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
        <section class="run-detail" aria-label="Selected run">
            <header>
                <h3>{run.title()}</h3>
                <button type="button" class="close" aria-label="Close" on:click=move |_| selected.set(None)>"×"</button>
            </header>
            <p class="run-meta">{format!("{} · {}", run.status, duration(&run))}</p>
            <h4>"Input"</h4>
            <pre class="settings-json">{settings}</pre>
            <h4>"Output"</h4>
            <div class="markdown" inner_html=markdown::render(&output)></div>
            {run.error.clone().map(|e| view! { <p class="error">{e}</p> })}
            <button type="button" class="delete" on:click=delete>"Delete"</button>
        </section>
    }
}
