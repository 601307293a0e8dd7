//! The web UI's router: the Leptos app rendered on the server, plus the embedded site.

use std::sync::Arc;

use axum::Router;
use leptos::config::LeptosOptions;
use leptos::context::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::app::{shell, App};
use compose::task::TaskRegistry;

use super::assets;

/// Leptos settings for the embedded site; they match `[package.metadata.leptos]`.
fn options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("model-compose")
        .site_pkg_dir("pkg")
        .env(if cfg!(debug_assertions) {
            leptos::config::Env::DEV
        } else {
            leptos::config::Env::PROD
        })
        .build()
}

/// The UI: server-rendered pages and the server functions (which reach the task registry
/// through the context), with the site's files as the fallback.
pub fn router(tasks: Arc<TaskRegistry>) -> Router {
    let options = options();
    let routes = generate_route_list(App);
    Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || provide_context(Arc::clone(&tasks)),
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(assets::serve)
        .with_state(options)
}
