//! The server binary embeds the built site (WASM, JS, CSS, `public/`) from `target/site`.
//! Stop with a clear message when it has not been built, instead of an obscure macro error.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=target/site");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SSR").is_none() {
        return;
    }
    let site = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("target/site/pkg");
    if !site.is_dir() {
        eprintln!(
            "error: the web UI is not built ({} is missing).\n\
             The server embeds it: build with `make build` (or `make release`), which runs\n\
             `cargo leptos build --frontend-only` before the server.",
            site.display()
        );
        std::process::exit(1);
    }
}
