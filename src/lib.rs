//! model-compose: compose workflows of model APIs from a `model-compose.yml`, served as a
//! REST API with Server-Sent Events and a Leptos web UI, all from one binary.
//!
//! The crate is built twice by cargo-leptos: with `ssr` (the `model-compose` binary: CLI,
//! servers, history store, over the `compose` engine crate) and with `hydrate` (the WASM that
//! makes the UI interactive).

// Without `erase_components` (release builds), Leptos view types nest deeper than the default.
#![recursion_limit = "256"]

pub mod app;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod cluster;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod store;

/// Entry point of the WASM build: attaches the UI to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console help while developing; the release build leaves their
    // formatting out of the WASM (a panic there still stops with a stack trace).
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
