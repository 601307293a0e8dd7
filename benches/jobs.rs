//! `make bench`, the workflow engine's share: what scheduling adds per job. Workflows of
//! 1,000 jobs on one server: chains (each job depending on the last) and a `for-each` over
//! 1,000 items (`batch_size: 50`), once with jobs that do nothing but give a value (what the
//! engine itself costs) and once with jobs that call an instant mock upstream in this process
//! (for scale: a call's own cost). Each figure is marginal: a run of one job is measured too,
//! and its CPU taken off, so a run's own cost (the request, the history) is not counted per
//! job. The goal (issue 25): the engine adds at most 20 µs of server CPU per job.
//!
//! Usage: `cargo bench --bench jobs -- [SERVER_BINARY]` (default `target/release/model-compose`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use testkit::mock_upstream::{Behavior, MockUpstream};

#[path = "support/mod.rs"]
mod support;
use support::{goal, measure, per_run, serve_ours, stop};

const JOBS: usize = 1000;
const GOAL_US: f64 = 20.0;

/// The config: one http-client, a private workflow of one trivial job, and the measured ones.
fn config(upstream: &str) -> String {
    let chain = |trivial: bool| {
        let mut jobs = String::new();
        for i in 0..JOBS {
            let depends = match i {
                0 => String::new(),
                _ => format!(", depends_on: [j{}]", i - 1),
            };
            let work = if trivial {
                ", type: delay, output: ok"
            } else {
                ", component: model"
            };
            jobs.push_str(&format!("      - {{id: j{i}{work}{depends}}}\n"));
        }
        jobs
    };
    let (trivial, calls) = (chain(true), chain(false));
    format!(
        r#"controller:
  adapter:
    type: http-server
    port: 0
    base_path: /api
components:
  - id: model
    type: http-client
    default: true
    base_url: {upstream}
    action:
      path: /chat/completions
      body: {{n: '${{input.n | 0}}'}}
      output: ${{response.text}}
  - id: nothing
    type: workflow
    action: {{workflow: leaf}}
workflows:
  - id: one
    job: {{id: give, type: delay, output: ok}}
  - id: leaf
    private: true
    job: {{id: give, type: delay, output: ok}}
  - id: chain
    jobs:
{trivial}  - id: fan
    job:
      id: each
      type: for-each
      input: ${{input.items}}
      batch_size: 50
      do: {{component: nothing}}
  - id: one-call
    job: {{id: call, component: model}}
  - id: call-chain
    jobs:
{calls}  - id: call-fan
    job:
      id: each
      type: for-each
      input: ${{input.items}}
      batch_size: 50
      do: {{component: model, input: {{n: '${{item}}'}}}}
"#
    )
}

#[tokio::main]
async fn main() {
    let mock = MockUpstream::start(Behavior::body("application/json", r#"{"text": "ok"}"#));
    let (mut server, base, _dir) = serve_ours(&config(&mock.base_url)).await;
    let pid = server.id();
    let items: Vec<usize> = (0..JOBS).collect();
    let items = format!(r#"{{"items":{}}}"#, serde_json::to_string(&items).unwrap());
    // Warm up: connections, allocator.
    measure(&base, pid, ("call-chain", "{}"), 1).await;
    let started = Instant::now();
    let one = per_run(&base, pid, ("one", "{}"), 5, 200).await;
    let chain = per_run(&base, pid, ("chain", "{}"), 5, 3).await;
    let fan = per_run(&base, pid, ("fan", &items), 5, 3).await;
    let one_call = per_run(&base, pid, ("one-call", "{}"), 5, 200).await;
    let call_chain = per_run(&base, pid, ("call-chain", "{}"), 5, 3).await;
    let call_fan = per_run(&base, pid, ("call-fan", &items), 5, 3).await;
    stop(&mut server);

    let marginal = |run: f64, single: f64| (run - single) / (JOBS - 1) as f64;
    let (chain, fan) = (marginal(chain, one), marginal(fan, one));
    let (call_chain, call_fan) = (marginal(call_chain, one_call), marginal(call_fan, one_call));
    println!(
        "workflow engine: server CPU per job of a {JOBS}-job run, less a one-job run's (medians \
         of 5 turns, {:.0} s):",
        started.elapsed().as_secs_f64()
    );
    println!("  a run of one job:                 {one:8.1} µs per run (the run's own cost)");
    println!("  chain of jobs that give a value:  {chain:8.1} µs per job");
    println!("  for-each, a nested workflow each: {fan:8.1} µs per item (batch_size 50)");
    println!("  chain of upstream calls:          {call_chain:8.1} µs per job (for scale)");
    println!("  for-each of upstream calls:       {call_fan:8.1} µs per item (batch_size 50)");
    let ok = [
        goal(
            chain <= GOAL_US,
            format!("the engine adds {chain:.1} µs per chained job (goal ≤ {GOAL_US} µs)"),
        ),
        goal(
            fan <= GOAL_US,
            format!("the engine adds {fan:.1} µs per for-each item (goal ≤ {GOAL_US} µs)"),
        ),
    ];
    if ok.contains(&false) {
        std::process::exit(1);
    }
}
