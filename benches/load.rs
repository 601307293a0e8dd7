//! `make bench`: how much the server adds to the upstream's own speed, measured side by side
//! in one run. A mock OpenAI-compatible upstream (500 tokens per reply, no delay) runs in this
//! process; the load client streams from it directly (the floor), then through the release
//! server on the seed config. Loopback only, bounded in runs and time.
//!
//! Usage: `cargo bench --bench load -- [SERVER_BINARY]` (default `target/release/model-compose`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use futures::StreamExt;
use testkit::mock_upstream::{Behavior, MockUpstream};

#[path = "support/mod.rs"]
mod support;
use support::{
    binary_from_args, cpu_time, goal, memory_mib, ms, percentile, start_server, start_server_on,
    Kind, Where, RUN_BODY,
};

const TOKENS: usize = 500;
const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// What one batch of runs measured.
struct Batch {
    streams: usize,
    /// Runs that ended within the batch's wall time.
    runs: usize,
    ttfe: Vec<Duration>,
    total: Vec<Duration>,
    wall: Duration,
    cpu: Option<Duration>,
}

impl Batch {
    fn tokens(&self) -> usize {
        self.runs * TOKENS
    }

    fn tokens_per_s(&self) -> f64 {
        self.tokens() as f64 / self.wall.as_secs_f64()
    }
}

/// How many times floor and server each run in the isolated comparison.
const ISOLATED_TURNS: usize = 3;

/// Turns of one batch as one: tokens/s and CPU of the median turn, times of all turns pooled.
fn median_batch(mut batches: Vec<Batch>) -> Batch {
    batches.sort_by(|a, b| a.tokens_per_s().total_cmp(&b.tokens_per_s()));
    let mut median = batches.swap_remove(batches.len() / 2);
    for other in batches {
        median.ttfe.extend(other.ttfe);
        median.total.extend(other.total);
    }
    median
}

/// Pinned to `cpu`.
fn on_cpu(cpu: usize) -> Where<'static> {
    Where {
        cpu: Some(cpu),
        ..Where::default()
    }
}

/// `streams` clients, each running `runs_each` streams back to back, against `urls` (client
/// `i` against `urls[i % len]`: round-robin over replicas).
async fn batch(
    urls: &[&str],
    body: &'static str,
    streams: usize,
    runs_each: usize,
    expect_events: usize,
    cpu_of: Option<u32>,
) -> Batch {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .build()
        .unwrap();
    let cpu_before = cpu_of.map(cpu_time);
    let started = Instant::now();
    let workers = (0..streams).map(|i| {
        let (client, url) = (client.clone(), urls[i % urls.len()].to_string());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..runs_each {
                if started.elapsed() > PHASE_LIMIT {
                    break;
                }
                let begin = Instant::now();
                let response = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{url}");
                let mut stream = response.bytes_stream();
                let mut first = None;
                let mut events = 0;
                // The last bytes of the previous chunk, for a `data:` split between chunks.
                let mut tail: Vec<u8> = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.unwrap();
                    first.get_or_insert_with(|| begin.elapsed());
                    tail.extend_from_slice(&chunk);
                    events += tail.windows(5).filter(|w| w == b"data:").count();
                    tail.drain(..tail.len().saturating_sub(4));
                }
                assert_eq!(events, expect_events, "events from {url}");
                samples.push((first.unwrap_or_default(), begin.elapsed()));
            }
            samples
        })
    });
    let mut ttfe = Vec::new();
    let mut total = Vec::new();
    for worker in futures::future::join_all(workers).await {
        for (first, all) in worker.unwrap() {
            ttfe.push(first);
            total.push(all);
        }
    }
    let wall = started.elapsed();
    let cpu = cpu_of
        .zip(cpu_before)
        .map(|(pid, before)| cpu_time(pid).saturating_sub(before));
    Batch {
        streams,
        runs: total.len(),
        ttfe,
        total,
        wall,
        cpu,
    }
}

fn gzip_size(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

fn row(name: &str, batch: &Batch) {
    let cpu = batch.cpu.map_or("—".into(), |cpu| {
        format!("{:.2}", cpu.as_secs_f64() * 1e6 / batch.tokens() as f64)
    });
    println!(
        "{name:<8} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>12.0} {:>12}",
        batch.streams,
        batch.runs,
        ms(percentile(&batch.ttfe, 0.5)),
        ms(percentile(&batch.ttfe, 0.99)),
        ms(percentile(&batch.total, 0.5)),
        ms(percentile(&batch.total, 0.99)),
        batch.tokens_per_s(),
        cpu
    );
}

/// 50 streams through one replica on a PostgreSQL history, then through two, round-robin.
async fn replicas(binary: &std::path::Path, upstream: &str) -> (Batch, Batch) {
    let postgres = testkit::postgres::Postgres::start();
    let database = postgres.database();
    let place = || Where {
        database: Some(&database),
        ..Where::default()
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, api_a, _) =
        start_server_on(Kind::Ours, binary, dir_a.path(), upstream, place()).await;
    let url_a = format!("{api_a}/workflows/runs");
    batch(&[&url_a], RUN_BODY, 4, 2, TOKENS, None).await;
    let one = batch(&[&url_a], RUN_BODY, 50, 4, TOKENS, None).await;
    let (mut b, api_b, _) =
        start_server_on(Kind::Ours, binary, dir_b.path(), upstream, place()).await;
    let url_b = format!("{api_b}/workflows/runs");
    batch(&[&url_a, &url_b], RUN_BODY, 4, 2, TOKENS, None).await;
    let two = batch(&[&url_a, &url_b], RUN_BODY, 50, 4, TOKENS, None).await;
    support::stop(&mut a);
    support::stop(&mut b);
    (one, two)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kind = Kind::from_args(&args);
    let binary = binary_from_args(&args);
    let tokens: Vec<String> = (0..TOKENS).map(|i| format!(" tok{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mock = MockUpstream::start(Behavior::tokens(&tokens));
    let openai_body: &'static str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0.7,"stream":true}"#;
    let floor_url = format!("{}/chat/completions", mock.base_url);

    let dir = tempfile::tempdir().unwrap();
    let (mut child, api, healthy) = start_server(kind, &binary, dir.path(), &mock.base_url).await;
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = memory_mib(pid, "VmRSS:");
    let run_url = format!("{api}/workflows/runs");

    // Warm up both paths, then measure; the mock's events are the tokens plus 4 others.
    batch(&[&floor_url], openai_body, 4, 2, TOKENS + 4, None).await;
    batch(&[&run_url], RUN_BODY, 4, 2, TOKENS, Some(pid)).await;
    let floor1 = batch(&[&floor_url], openai_body, 1, 30, TOKENS + 4, None).await;
    let server1 = batch(&[&run_url], RUN_BODY, 1, 30, TOKENS, Some(pid)).await;
    let floor50 = batch(&[&floor_url], openai_body, 50, 4, TOKENS + 4, None).await;
    let server50 = batch(&[&run_url], RUN_BODY, 50, 4, TOKENS, Some(pid)).await;
    let peak = memory_mib(pid, "VmHWM:");
    support::stop(&mut child);

    // Replicas: one, then two round-robin, on a PostgreSQL history (a server of our own),
    // on both CPUs (before this process pins itself below).
    let replicas = match kind {
        Kind::Ours => Some(replicas(&binary, &mock.base_url).await),
        Kind::Original => None,
    };

    // Isolated: the client and the mock (this process) on CPU 1, the floor measured there
    // alone; a fresh server pinned to CPU 0. One batch of 50 streams lasts well under a
    // second, so floor and server take turns, three times each, and the median of each is
    // what counts.
    let isolated = if cpus >= 2 {
        support::pin_self(1);
        let dir = tempfile::tempdir().unwrap();
        let (mut pinned, api, _) =
            start_server_on(kind, &binary, dir.path(), &mock.base_url, on_cpu(0)).await;
        let url = format!("{api}/workflows/runs");
        batch(&[&url], RUN_BODY, 4, 2, TOKENS, Some(pinned.id())).await;
        let (mut floors, mut servers) = (Vec::new(), Vec::new());
        for _ in 0..ISOLATED_TURNS {
            floors.push(batch(&[&floor_url], openai_body, 50, 8, TOKENS + 4, None).await);
            servers.push(batch(&[&url], RUN_BODY, 50, 8, TOKENS, Some(pinned.id())).await);
        }
        support::stop(&mut pinned);
        Some((median_batch(floors), median_batch(servers)))
    } else {
        None
    };

    println!("\nmodel-compose load benchmark: {TOKENS} tokens per reply, mock upstream without delay, {cpus} CPUs");
    println!("server: {}, {}\n", kind.name(), binary.display());
    println!(
        "{:<8} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "path",
        "streams",
        "runs",
        "TTFE p50",
        "TTFE p99",
        "total p50",
        "total p99",
        "tokens/s",
        "CPU µs/tok"
    );
    println!(
        "{:<8} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "", "", "", "ms", "ms", "ms", "ms", "", ""
    );
    for (name, batch) in [
        ("floor", &floor1),
        ("server", &server1),
        ("floor", &floor50),
        ("server", &server50),
    ] {
        row(name, batch);
    }
    if let Some((floor, server)) = &isolated {
        println!("isolated: the server alone on CPU 0, the client and the mock on CPU 1 (median of {ISOLATED_TURNS} turns each)");
        row("floor", floor);
        row("server", server);
    }
    if let Some((one, two)) = &replicas {
        println!("replicas sharing a PostgreSQL history (both CPUs, round-robin):");
        row("1 repl.", one);
        row("2 repl.", two);
    }
    let ratio = |s: &Batch, f: &Batch| s.tokens_per_s() / f.tokens_per_s();
    println!("\nratios server/floor:");
    for (streams, s, f) in [(1, &server1, &floor1), (50, &server50, &floor50)] {
        println!(
            "  {streams:>2} streams: tokens/s {:.2}×, total p50 {:.2}×, TTFE p99 +{} ms",
            ratio(s, f),
            percentile(&s.total, 0.5).as_secs_f64() / percentile(&f.total, 0.5).as_secs_f64(),
            ms(percentile(&s.ttfe, 0.99).saturating_sub(percentile(&f.ttfe, 0.99)))
        );
    }
    let wasm = std::fs::read("target/site/release/pkg/model-compose.wasm").unwrap_or_default();
    let css = std::fs::read("target/site/release/pkg/model-compose.css").unwrap_or_default();
    println!(
        "\nserver: healthy {} ms after start; RSS idle {idle:.1} MiB, peak {peak:.1} MiB",
        ms(healthy)
    );
    println!(
        "site:   WASM {:.1} KiB ({:.1} KiB gzip), CSS {:.1} KiB ({:.1} KiB gzip)",
        wasm.len() as f64 / 1024.0,
        gzip_size(&wasm) as f64 / 1024.0,
        css.len() as f64 / 1024.0,
        gzip_size(&css) as f64 / 1024.0
    );

    println!("\ngoals:");
    let added_ttfe =
        percentile(&server50.ttfe, 0.99).saturating_sub(percentile(&floor50.ttfe, 0.99));
    let met = [
        goal(
            ratio(&server50, &floor50) >= 0.9,
            format!(
                "tokens/s at 50 streams ≥ 0.9 × floor ({:.2}×)",
                ratio(&server50, &floor50)
            ),
        ),
        goal(
            added_ttfe <= Duration::from_millis(5),
            format!(
                "added TTFE p99 at 50 streams ≤ 5 ms ({} ms)",
                ms(added_ttfe)
            ),
        ),
        isolated.as_ref().is_some_and(|(floor, server)| {
            goal(
                ratio(server, floor) >= 0.9,
                format!(
                    "isolated: tokens/s at 50 streams ≥ 0.9 × floor ({:.2}×)",
                    ratio(server, floor)
                ),
            )
        }),
        isolated.as_ref().is_some_and(|(floor, server)| {
            let added =
                percentile(&server.ttfe, 0.99).saturating_sub(percentile(&floor.ttfe, 0.99));
            goal(
                added <= Duration::from_millis(2),
                format!(
                    "isolated: added TTFE p99 at 50 streams ≤ 2 ms ({} ms)",
                    ms(added)
                ),
            )
        }),
        goal(idle <= 20.0, format!("RSS idle ≤ 20 MiB ({idle:.1} MiB)")),
        goal(
            peak <= 40.0,
            format!("RSS peak at 50 streams ≤ 40 MiB ({peak:.1} MiB)"),
        ),
        goal(
            healthy <= Duration::from_millis(100),
            format!("healthy ≤ 100 ms after start ({} ms)", ms(healthy)),
        ),
        goal(
            gzip_size(&wasm) <= 404 * 1024,
            format!(
                "WASM no larger than before the chat (404 KiB gzip) ({:.1} KiB)",
                gzip_size(&wasm) as f64 / 1024.0
            ),
        ),
        goal(
            gzip_size(&wasm) <= 250 * 1024,
            format!(
                "WASM ≤ 250 KiB gzip ({:.1} KiB)",
                gzip_size(&wasm) as f64 / 1024.0
            ),
        ),
    ];
    println!(
        "\n{} of {} goals met",
        met.iter().filter(|m| **m).count(),
        met.len()
    );
}
