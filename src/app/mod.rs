//! The Leptos UI, compiled into both builds: rendered by the server, hydrated in the browser.

mod temperature;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::StaticSegment;

use temperature::TemperatureControl;

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

/// The root component: one page for now, the chat workspace.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/model-compose.css"/>
        <Title text="model-compose"/>
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                <Route path=StaticSegment("") view=HomePage/>
            </Routes>
        </Router>
    }
}

/// The main page. It marks itself `data-hydrated` once the WASM has taken over, so that
/// tests (and styles) can tell a live page from server-rendered HTML.
#[component]
fn HomePage() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let temperature = RwSignal::new(0.7);
    view! {
        <main class="page" data-hydrated=move || hydrated.get().then_some("true")>
            <header class="page-header">
                <h1>"model-compose"</h1>
                <p class="tagline">"Compose model APIs into workflows; run them here, over HTTP or from the command line."</p>
            </header>
            <section class="panel">
                <TemperatureControl value=temperature/>
            </section>
        </main>
    }
}
