//! `make bench`, the doors' share: what the OpenAI-compatible endpoint adds to a run beside the
//! REST API. One server runs the conversation example (its model the provider mock in this
//! process, streaming its answer at once) through `POST /api/workflows/runs` and through `POST
//! /v1/chat/completions`, whole and streamed; the difference in server CPU per run is the
//! endpoint's (its request read, the run's pieces made into `chat.completion` chunks). Goal
//! (issue 27): at most 1 ms per request.
//!
//! Usage: `cargo bench --bench doors -- [SERVER_BINARY]` (default
//! `target/release/model-compose`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use testkit::providers::Providers;

#[path = "support/mod.rs"]
mod support;
use support::{goal, per_request, per_run, serve_ours, stop};

const GOAL_US: f64 = 1000.0;
const TURNS: usize = 5;
const RUNS: usize = 100;

#[tokio::main]
async fn main() {
    let providers = Providers::start();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/openai-chat-conversation/model-compose.yml"
    );
    let config = providers
        .point(&std::fs::read_to_string(path).unwrap())
        .replace("port: 8080", "port: 0")
        .replace("port: 8081", "port: 0");
    let (mut server, base, _dir) = serve_ours(&config).await;
    let pid = server.id();
    let root = base.trim_end_matches("/api").to_string();
    let messages = r#"[{"role": "user", "content": "Hi there"}]"#;
    let input = format!(r#"{{"messages": {messages}}}"#);
    let completions = format!("{root}/v1/chat/completions");
    let whole = format!(r#"{{"model": "__workflow__", "messages": {messages}}}"#);
    let streamed =
        format!(r#"{{"model": "__workflow__", "stream": true, "messages": {messages}}}"#);
    per_run(&base, pid, ("__workflow__", &input), 1, 10).await;
    let started = Instant::now();
    let rest = per_run(&base, pid, ("__workflow__", &input), TURNS, RUNS).await;
    let openai_whole = per_request(pid, (&completions, &whole), TURNS, RUNS).await;
    let openai_streamed = per_request(pid, (&completions, &streamed), TURNS, RUNS).await;
    stop(&mut server);
    providers.take();

    println!(
        "doors: server CPU per run of the conversation example (medians of {TURNS} turns of \
         {RUNS} runs, {:.0} s):",
        started.elapsed().as_secs_f64()
    );
    println!("  REST API, streamed:                  {rest:8.1} µs per run");
    println!("  /v1/chat/completions, whole:         {openai_whole:8.1} µs per run");
    println!("  /v1/chat/completions, stream: true:  {openai_streamed:8.1} µs per run");
    let added = openai_whole.max(openai_streamed) - rest;
    let ok = goal(
        added <= GOAL_US,
        format!(
            "the OpenAI-compatible endpoint adds {added:.1} µs per request (goal ≤ {GOAL_US} µs)"
        ),
    );
    if !ok {
        std::process::exit(1);
    }
}
