//! The web UI's router: the Leptos app rendered on the server, plus the embedded site, its
//! server functions answering only its own pages, and sign-in when there are access keys.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::context::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::ServiceBuilder;

use crate::app::{shell, App};
use compose::task::TaskRegistry;

use super::access::{self, AccessKeys};
use super::uploads::Uploads;
use super::{assets, guard, remote};

/// What the UI's components learn on the server: whether signing in is in use.
#[derive(Debug, Clone, Copy)]
pub struct SignInRequired(pub bool);

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
/// through the context), with the site's files as the fallback. Calls from other sites' pages
/// are refused; with access keys, everything but the sign-in page needs a session.
pub fn router(tasks: Arc<TaskRegistry>, keys: Option<Arc<AccessKeys>>) -> Router {
    let options = options();
    let routes = generate_route_list(App);
    let sign_in = SignInRequired(keys.is_some());
    let uploads = Arc::new(Uploads::default());
    let media = Router::new()
        .route(remote::ROUTE, get(remote::serve))
        .with_state(Arc::clone(&tasks));
    let router = Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || {
                provide_context(Arc::clone(&tasks));
                provide_context(Arc::clone(&uploads));
                provide_context(sign_in);
            },
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(assets::serve)
        .with_state(options)
        .merge(media);
    let (router, session) = match keys {
        Some(keys) => (
            router.merge(
                Router::new()
                    .route("/_auth/sign-in", post(access::sign_in))
                    .route("/_auth/sign-out", post(access::sign_out))
                    .with_state(Arc::clone(&keys)),
            ),
            Some(middleware::from_fn_with_state(
                keys,
                access::require_session,
            )),
        ),
        None => (router, None),
    };
    // Only what changes something needs its own pages behind it: the server functions (all
    // POST) and the sign-in forms; pages and files may be linked from anywhere. One layer of
    // them all (each `Router::layer` is a box every request clones).
    let router = router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(guard::same_origin_only_for_calls))
            .layer(DefaultBodyLimit::max(super::rest::MAX_REQUEST_BODY))
            .option_layer(session),
    );
    guard::page_headers(router)
}
