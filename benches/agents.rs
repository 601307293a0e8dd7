//! `make bench`, the agent's share: what an agent adds per iteration beyond its model's and its
//! tools' own work. An agent whose model (the provider mock in this process, answering at
//! once) calls three tools on each of 10 turns; beside it, in the same server, the same work
//! without an agent: 10 model calls in a chain and 30 runs of the tool workflow. The
//! difference, per iteration, is the agent's (messages kept and rendered into each request,
//! calls read, tools' schemas and results). Goal (issue 26): at most 1 ms per iteration.
//!
//! Usage: `cargo bench --bench agents -- [SERVER_BINARY]` (default
//! `target/release/model-compose`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use testkit::providers::Providers;

#[path = "support/mod.rs"]
mod support;
use support::{goal, measure, per_run, serve_ours, stop};

const ITERATIONS: usize = 10;
const TOOLS: usize = 3;
const GOAL_US: f64 = 1000.0;

/// A model call without the agent: what its first request holds, given in the run's input.
const ASKED: &str =
    "component: model, input: {messages: '${input.messages}', tools: '${input.tools}'}";

/// The agent, its model, its tool and the workflows that do the same work without it.
fn config(openai: &str) -> String {
    let chain: String = (0..ITERATIONS)
        .map(|i| match i {
            0 => format!("      - {{id: c0, {ASKED}}}\n"),
            i => format!("      - {{id: c{i}, {ASKED}, depends_on: [c{}]}}\n", i - 1),
        })
        .collect();
    format!(
        r#"controller:
  adapter:
    type: http-server
    port: 0
    base_path: /api
components:
  - id: helper
    type: agent
    model: {{component: model, input: {{messages: '${{messages}}', tools: '${{tools}}'}}}}
    tools: [note]
    max_iteration_count: {ITERATIONS}
    action: {{prompt: '${{input.question}}'}}
  - id: model
    type: http-client
    base_url: {openai}
    action:
      path: /chat/completions
      headers: {{Content-Type: application/json}}
      body:
        model: gpt-4o
        messages: {{'*': '${{input.messages}}', role: '${{item.role}}', content: '${{item.content[0].text}}'}}
        tools: {{'*': '${{input.tools}}', type: function, function: '${{item}}'}}
      output:
        role: assistant
        content:
          '*': ${{response.choices[0].message.tool_calls}}
          type: tool_call
          id: ${{item.id}}
          name: ${{item.function.name}}
          arguments: ${{item.function.arguments as json}}
  - id: noting
    type: workflow
    action: {{workflow: note}}
workflows:
  - id: agent
    job: {{component: helper}}
  - id: note
    private: true
    job: {{id: give, type: delay, output: 'noted ${{input.text | -}}'}}
  - id: without
    jobs:
{chain}      - id: tools
        type: for-each
        depends_on: [c{last}]
        input: ${{input.items}}
        batch_size: {TOOLS}
        do: {{component: noting}}
"#,
        last = ITERATIONS - 1
    )
}

#[tokio::main]
async fn main() {
    let providers = Providers::start();
    let (mut server, base, _dir) = serve_ours(&config(&providers.openai())).await;
    let pid = server.id();
    let call = serde_json::json!({"name": "note", "arguments": {"text": "x"}});
    let prompt = format!("ALWAYS {}", serde_json::json!(vec![call; TOOLS]));
    let question = serde_json::json!({ "question": prompt }).to_string();
    let asked = serde_json::json!({
        "items": vec![0; ITERATIONS * TOOLS],
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        "tools": [{"name": "note", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}],
    });
    let items = asked.to_string();
    measure(&base, pid, ("agent", &question), 1).await;
    let started = Instant::now();
    let agent = per_run(&base, pid, ("agent", &question), 5, 100).await;
    let without = per_run(&base, pid, ("without", &items), 5, 100).await;
    stop(&mut server);
    providers.take();

    let per_iteration = |run: f64| run / ITERATIONS as f64;
    let added = per_iteration(agent - without);
    println!(
        "agent: server CPU per iteration ({ITERATIONS} iterations of a model call and {TOOLS} \
         tool calls; medians of 5 turns, {:.0} s):",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  with the agent:                   {:8.1} µs per iteration",
        per_iteration(agent)
    );
    println!(
        "  the same calls and tools without: {:8.1} µs per iteration",
        per_iteration(without)
    );
    println!("  what the agent adds:              {added:8.1} µs per iteration");
    let ok = goal(
        added <= GOAL_US,
        format!("the agent adds {added:.1} µs per iteration (goal ≤ {GOAL_US} µs)"),
    );
    if !ok {
        std::process::exit(1);
    }
}
