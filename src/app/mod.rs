//! The Leptos UI, compiled into both builds: rendered by the server, hydrated in the browser.
//! It replaces the original's Gradio page: a chat for each workflow, kept as conversations
//! with their own addresses, the workflow's settings generated from its inferred schema, and
//! a live event log.

mod agent_steps;
mod chat;
mod form;
mod log;
mod rendered;
mod run_view;
mod sidebar;
mod sign_in;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use chat::ChatPage;
use run_view::RunPage;
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
                // Rendered whole on the server (conversations and answers included), so that
                // the first paint is complete without WASM. One page for a new chat and for a
                // conversation, so that a new chat that gets its address stays where it is.
                <ParentRoute path=path!("") view=ChatPage ssr=SsrMode::Async>
                    <Route path=path!("") view=|| ()/>
                    <Route path=path!("c/:id") view=|| ()/>
                </ParentRoute>
                <Route path=path!("runs/:id") view=RunPage/>
                <Route path=path!("sign-in") view=SignInPage/>
            </Routes>
        </Router>
    }
}
