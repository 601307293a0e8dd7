//! Signing in and out, when the server asks for access keys (D17). Plain forms posted to the
//! server, so that they work before (and without) the WASM.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::server_fns::sign_in_required;

/// The page a browser without a session is sent to.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let failed = move || query.with(|q| q.get("failed").is_some());
    // After too many wrong keys, the server asks for a pause before the next attempt.
    let wait = move || query.with(|q| q.get("wait").and_then(|w| w.parse::<u64>().ok()));
    view! {
        <main class="sign-in">
            <form method="post" action="/_auth/sign-in" class="sign-in-form">
                <h1>"model-compose"</h1>
                <p class="muted">"This server asks for an access key."</p>
                <label for="access-key">"Access key"</label>
                <input id="access-key" name="key" type="password" autocomplete="current-password" required autofocus/>
                {move || failed().then(|| view! { <p class="error" role="alert">"That key is not right."</p> })}
                {move || wait().map(|seconds| view! {
                    <p class="error" role="alert">
                        {format!("Too many wrong keys: wait {seconds} s, then try again.")}
                    </p>
                })}
                <button type="submit">"Sign in"</button>
            </form>
        </main>
    }
}

/// A sign-out button, shown only when signing in is in use.
#[component]
pub fn SignOut() -> impl IntoView {
    let required = Resource::new(|| (), |_| sign_in_required());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                required.await.unwrap_or(false).then(|| view! {
                    <form method="post" action="/_auth/sign-out" class="sign-out">
                        <button type="submit" class="link">"Sign out"</button>
                    </form>
                })
            })}
        </Suspense>
    }
}
