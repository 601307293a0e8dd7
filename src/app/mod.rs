//! The Leptos UI, compiled into both builds: rendered by the server, hydrated in the browser.
//! It replaces the original's Gradio page: a chat per workflow, its settings generated from the
//! inferred schema, a live event log, and the run history.

mod chat;
mod form;
mod history;
mod log;
mod markdown;
mod sign_in;
mod temperature;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, StaticSegment};

use crate::api::{list_workflows, WorkflowInfo};
use chat::Chat;
use history::History;
use sign_in::SignInPage;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/model-compose.css"/>
        <Title text="model-compose"/>
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                // Rendered whole on the server (workflows and history included), so that the
                // first paint is complete without WASM.
                <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async/>
                <Route path=StaticSegment("sign-in") view=SignInPage/>
            </Routes>
        </Router>
    }
}

/// The workspace: history on the side, the selected workflow's chat in the middle. It marks
/// itself `data-hydrated` once the WASM has taken over, so that tests can tell a live page
/// from server-rendered HTML.
#[component]
fn HomePage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let workflows = Resource::new(|| (), |_| list_workflows());
    let history_version = RwSignal::new(0u32);
    view! {
        <div class="layout">
            <History version=history_version/>
            <main class="workspace" data-hydrated=move || hydrated.get().then_some("true")>
                <Suspense fallback=|| view! { <p class="muted">"Loading workflows…"</p> }>
                    {move || Suspend::new(async move {
                        match workflows.await {
                            Ok(list) if !list.is_empty() => view! { <Workspace workflows=list history_version/> }.into_any(),
                            Ok(_) => view! { <p class="muted">"This configuration has no workflows."</p> }.into_any(),
                            Err(err) => view! { <p class="error">{err.to_string()}</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </main>
        </div>
    }
}

/// The workflow heading, a selector when there are several, and the chat.
#[component]
fn Workspace(workflows: Vec<WorkflowInfo>, history_version: RwSignal<u32>) -> impl IntoView {
    let selected = RwSignal::new(0usize);
    let workflows = StoredValue::new(workflows);
    let current =
        move || workflows.with_value(|all| all[selected.get().min(all.len() - 1)].clone());
    let several = workflows.with_value(|all| all.len() > 1);
    view! {
        <header class="workflow-header">
            <div>
                <h1>{move || current().label()}</h1>
                {move || current().description.map(|d| view! { <p class="description">{d}</p> })}
            </div>
            <Show when=move || several>
                <div class="workflow-select">
                    <label for="workflow-select">"Workflow"</label>
                    <select id="workflow-select" on:change=move |ev| selected.set(event_target_value(&ev).parse().unwrap_or(0))>
                        {workflows.with_value(|all| all.iter().enumerate().map(|(i, w)| {
                            view! { <option value=i.to_string()>{w.short_label()}</option> }
                        }).collect_view())}
                    </select>
                </div>
            </Show>
        </header>
        {move || view! { <Chat workflow=current() history_version/> }}
    }
}
