//! The server binary embeds the built site (WASM, JS, CSS, `public/`): the debug site for
//! builds with debug assertions, the release site otherwise (`target/site/{debug,release}`,
//! written by `make build` / `make release`). Stop with a clear message when it has not been
//! built, instead of an obscure macro error.
//!
//! Only the server's build watches the site, and only the site of its own kind: building the
//! WASM, or the other kind of site, never makes the server compile again.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SSR").is_none() {
        return;
    }
    let kind = if std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some() {
        "debug"
    } else {
        "release"
    };
    let site = format!("target/site/{kind}");
    println!("cargo::rerun-if-changed={site}");
    let root = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let pkg = Path::new(&root).join(&site).join("pkg");
    if !pkg.is_dir() {
        let target = if kind == "debug" { "build" } else { "release" };
        eprintln!(
            "error: the web UI is not built ({} is missing).\n\
             The server embeds it: build with `make {target}`, which builds the site\n\
             (`cargo leptos build --frontend-only`) before the server.",
            pkg.display()
        );
        std::process::exit(1);
    }
}
