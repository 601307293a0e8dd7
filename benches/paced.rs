//! `make bench`, second part: production-shaped load. A mock upstream in its own process sends
//! each reply's tokens one by one, 50 ms apart (20 tokens/s, like a large hosted model), and
//! 100, 1,000 and 5,000 clients stream 200-token replies at once, first from the mock directly
//! (the floor), then through a relay that only copies bytes (what any proxy must spend: the
//! reference for CPU per token), then through the release server on the seed config.
//!
//! Each token carries the time the mock sent it (`@<µs since the epoch>`), so the client knows
//! each token's transit time. Reported per level: the server's CPU per token, its RSS per
//! active stream, the added inter-token delay (the gap the client saw minus the gap the mock
//! sent, through the server, p50/p99), time to the first token p50/p99 (the mock sends it 50 ms
//! after the request, as a model thinks), and errors. Each level gets a fresh relay and server,
//! so that its memory per stream is counted from idle, not from what an earlier level left; one
//! request left after its first bytes warms each up first, so that what a process sets up once
//! is not counted per stream.
//!
//! Providers answer over HTTPS and HTTP/2, which carries many streams on one connection: each
//! level is also run through a server whose upstream is the same mock over TLS and HTTP/2
//! (`https` rows; testkit's test CA, at most 256 streams per connection as a provider allows).
//!
//! Usage: `cargo bench --bench paced -- [SERVER_BINARY] [--levels 100,1000]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;

#[path = "support/mod.rs"]
mod support;
use support::{
    binary_from_args, cpu_time, goal, memory_mib, ms, percentile, start_server_on, Kind, Where,
    RUN_BODY,
};

const TOKENS: usize = 200;
const GAP: Duration = Duration::from_millis(50);
/// Clients start spread over this long, as real users do.
const RAMP: Duration = Duration::from_secs(2);
const OPENAI_BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0.7,"stream":true}"#;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// The mock's answer: a role chunk, `TOKENS` tokens `GAP` apart (each `@<µs sent>`), the
/// end chunk and `[DONE]`, as OpenAI streams them.
async fn paced_reply() -> Response {
    let body = async_stream::stream! {
        let chunk = |delta: &str| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{delta}}}]}}\n\n");
        yield Ok::<_, std::convert::Infallible>(chunk(r#"{"role":"assistant","content":""}"#));
        let mut next = tokio::time::Instant::now();
        for _ in 0..TOKENS {
            next += GAP;
            tokio::time::sleep_until(next).await;
            yield Ok(chunk(&format!("{{\"content\":\" @{}\"}}", now_micros())));
        }
        yield Ok("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".to_string());
        yield Ok("data: [DONE]\n\n".to_string());
    };
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `paced --mock`: serves the paced upstream and prints its port; `paced --mock --https`, the
/// same over TLS and HTTP/2 only (testkit's, on a runtime of two workers).
fn serve_mock(https: bool) {
    let app = Router::new().route("/v1/chat/completions", post(paced_reply));
    if https {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let url = testkit::serve_https_h2(app, 256);
        println!("{}", url.rsplit(':').next().unwrap_or_default());
        loop {
            std::thread::park();
        }
    }
    helper_runtime(1).block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        axum::serve(listener, app).await.unwrap();
    });
}

/// `paced --relay PORT`: copies the bytes of each connection to and from 127.0.0.1:PORT, and
/// nothing else. The least any proxy does per token (one wake, one read, one write), on the
/// same runtime as the server: what the server's CPU per token is measured against.
fn serve_relay(upstream: u16) {
    helper_runtime(2).block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut upstream) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
}

fn helper_runtime(workers: usize) -> tokio::runtime::Runtime {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A helper process (the mock or the relay), stopped when dropped (also when the benchmark
/// fails).
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this benchmark again with `args` (as the mock or the relay), in its own process;
/// returns it and the port it listens on.
fn start_helper(args: &[&str]) -> (Helper, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the helper's port");
    (Helper(child), port)
}

/// What one level measured on one path.
#[derive(Default)]
struct Level {
    streams: usize,
    ttfe: Vec<Duration>,
    /// Per token after the first of a stream: the gap seen minus the gap sent, in µs.
    added_gap: Vec<i64>,
    tokens: usize,
    errors: usize,
    cpu: Option<Duration>,
    /// The mock's CPU over the level: what sending each token (one timer wake, one write)
    /// costs a minimal Rust server on this machine, the reference for the server's figure.
    mock_cpu: Duration,
    /// Server RSS growth while every stream was open, in KiB per stream.
    rss_per_stream: Option<f64>,
}

/// The sent-at time of a token in an event's data (`… @1732712345123456 …`).
fn sent_at(data: &[u8]) -> Option<u64> {
    let at = data.iter().position(|&b| b == b'@')?;
    let digits = data[at + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    (digits > 0).then_some(digits)
}

/// `streams` clients at once, one reply each, against `url`.
async fn level(
    url: &str,
    body: &'static str,
    streams: usize,
    mock: u32,
    server: Option<u32>,
) -> Level {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    if server.is_some() {
        warm_up(&client, url, body).await;
    }
    let cpu_before = server.map(cpu_time);
    let mock_before = cpu_time(mock);
    let rss_before = server.map(|pid| memory_mib(pid, "VmRSS:"));
    let workers: Vec<_> = (0..streams)
        .map(|i| {
            let (client, url) = (client.clone(), url.to_string());
            let delay = RAMP.mul_f64(i as f64 / streams as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // A stream that has not ended well after the last token is counted as failed.
                let patience = GAP * TOKENS as u32 + Duration::from_secs(30);
                tokio::time::timeout(patience, one_stream(client, url, body))
                    .await
                    .unwrap_or(Err(()))
            })
        })
        .collect();
    // Every stream is open once the ramp is over and before the first one ends.
    let rss_open = match server {
        Some(pid) => {
            tokio::time::sleep(RAMP + GAP * (TOKENS as u32 / 4)).await;
            Some(memory_mib(pid, "VmRSS:"))
        }
        None => None,
    };
    let mut out = Level {
        streams,
        ..Level::default()
    };
    for worker in futures::future::join_all(workers).await {
        match worker.unwrap() {
            Ok((first, transit)) => {
                out.ttfe.push(first);
                out.tokens += transit.len();
                out.added_gap
                    .extend(transit.windows(2).map(|pair| pair[1] - pair[0]));
            }
            Err(()) => out.errors += 1,
        }
    }
    out.mock_cpu = cpu_time(mock).saturating_sub(mock_before);
    out.cpu = server
        .zip(cpu_before)
        .map(|(pid, before)| cpu_time(pid).saturating_sub(before));
    out.rss_per_stream = rss_open
        .zip(rss_before)
        .map(|(open, before)| (open - before).max(0.0) * 1024.0 / streams as f64);
    out
}

/// `streams` runs through a fresh server on the seed config pointed at `upstream` (served by
/// `mock`), stopped after.
async fn through_server(
    kind: Kind,
    binary: &Path,
    upstream: &str,
    place: Where<'_>,
    streams: usize,
    mock: &Helper,
) -> Level {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, api, _) = start_server_on(kind, binary, dir.path(), upstream, place).await;
    let run_url = format!("{api}/workflows/runs");
    let measured = level(&run_url, RUN_BODY, streams, mock.0.id(), Some(server.id())).await;
    support::stop(&mut server);
    measured
}

/// One request, left after its first bytes: what a process sets up once (its first upstream
/// connection and TLS session, the history's first writes) is then not counted per stream.
async fn warm_up(client: &reqwest::Client, url: &str, body: &'static str) {
    let sent = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await;
    if let Ok(response) = sent {
        let _ = response.bytes_stream().next().await;
    }
    // The server cancels the run and records it.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// One streamed reply: the time to its first token, and each token's transit time in µs.
async fn one_stream(
    client: reqwest::Client,
    url: String,
    body: &'static str,
) -> Result<(Duration, Vec<i64>), ()> {
    let begin = Instant::now();
    let response = match client
        .post(&url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(response) if response.status() == 200 => response,
        _ => return Err(()),
    };
    let mut stream = response.bytes_stream();
    let mut first = None;
    let mut transit: Vec<i64> = Vec::with_capacity(TOKENS);
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ())?;
        let received = now_micros() as i64;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            if let Some(sent) = sent_at(&pending[..end]) {
                // The first token (the role chunk before it carries none).
                first.get_or_insert_with(|| begin.elapsed());
                transit.push(received - sent as i64);
            }
            pending.drain(..end + 2);
        }
    }
    if transit.len() != TOKENS {
        return Err(());
    }
    Ok((first.unwrap_or_default(), transit))
}

fn micros_percentile(values: &[i64], p: f64) -> i64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default()
}

fn per_token(cpu: Duration, level: &Level) -> f64 {
    cpu.as_secs_f64() * 1e6 / level.tokens.max(1) as f64
}

fn row(path: &str, level: &Level) {
    let cpu = level
        .cpu
        .map_or("—".into(), |cpu| format!("{:.2}", per_token(cpu, level)));
    let rss = level
        .rss_per_stream
        .map_or("—".into(), |kib| format!("{kib:.1}"));
    println!(
        "{path:<7} {:>7} {:>9} {:>9} {:>9.2} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
        level.streams,
        level.tokens,
        cpu,
        per_token(level.mock_cpu, level),
        rss,
        micros_percentile(&level.added_gap, 0.5) as f64 / 1000.0,
        micros_percentile(&level.added_gap, 0.99) as f64 / 1000.0,
        ms(percentile(&level.ttfe, 0.5)),
        ms(percentile(&level.ttfe, 0.99)),
        level.errors,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--mock") {
        return serve_mock(args.iter().any(|a| a == "--https"));
    }
    if let Some(port) = args
        .iter()
        .position(|a| a == "--relay")
        .and_then(|i| args.get(i + 1)?.parse().ok())
    {
        return serve_relay(port);
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure(args));
}

async fn measure(args: Vec<String>) {
    let kind = Kind::from_args(&args);
    let binary = binary_from_args(&args);
    let levels: Vec<usize> = args
        .iter()
        .position(|a| a == "--levels")
        .and_then(|i| args.get(i + 1))
        .map(|l| l.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 5000]);

    let (mock, mock_port) = start_helper(&["--mock"]);
    let upstream = format!("http://127.0.0.1:{mock_port}/v1");
    let (tls_mock, tls_mock_port) = start_helper(&["--mock", "--https"]);
    let tls_upstream = format!("https://127.0.0.1:{tls_mock_port}/v1");
    let ca = testkit::test_ca();
    let floor_url = format!("{upstream}/chat/completions");
    let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft);

    let mut results = Vec::new();
    for &streams in &levels {
        // A fresh relay and server for each level: what one level leaves in a heap would
        // otherwise be counted, or reused, by the next one's memory per stream.
        let (relay, relay_port) = start_helper(&["--relay", &mock_port.to_string()]);
        let relay_url = format!("http://127.0.0.1:{relay_port}/v1/chat/completions");
        let floor = level(&floor_url, OPENAI_BODY, streams, mock.0.id(), None).await;
        let relayed = level(
            &relay_url,
            OPENAI_BODY,
            streams,
            mock.0.id(),
            Some(relay.0.id()),
        )
        .await;
        let through =
            through_server(kind, &binary, &upstream, Where::default(), streams, &mock).await;
        let trusting = Where {
            trusted: Some(&ca),
            ..Where::default()
        };
        let over_tls =
            through_server(kind, &binary, &tls_upstream, trusting, streams, &tls_mock).await;
        results.push([floor, relayed, through, over_tls]);
    }
    drop((mock, tls_mock));

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nmodel-compose paced benchmark: {TOKENS} tokens per reply, {} ms apart, clients started over {} s; {cpus} CPUs, open-file limit {files}",
        GAP.as_millis(),
        RAMP.as_secs()
    );
    println!(
        "server: {}, {}; the mock upstream in its own process (https: the server's upstream is the mock over TLS and HTTP/2)\n",
        kind.name(),
        binary.display()
    );
    println!(
        "{:<7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "path",
        "streams",
        "tokens",
        "CPU µs/t",
        "mock µs/t",
        "KiB/strm",
        "gap+ p50",
        "gap+ p99",
        "TTFT p50",
        "TTFT p99",
        "errors"
    );
    println!(
        "{:<7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "", "", "", "", "", "", "ms", "ms", "ms", "ms", ""
    );
    for [floor, relayed, through, over_tls] in &results {
        row("floor", floor);
        row("relay", relayed);
        row("server", through);
        row("https", over_tls);
    }

    println!("\ngoals:");
    let mut met = Vec::new();
    for [_, _, through, over_tls] in &results {
        for (upstream, level) in [("HTTP/1.1", through), ("HTTPS/2", over_tls)] {
            met.extend(goals(upstream, level));
        }
    }
    println!(
        "\n{} of {} goals met",
        met.iter().filter(|m| **m).count(),
        met.len()
    );
}

/// Issue 14's goals for one level through the server, its upstream spoken to over `upstream`.
fn goals(upstream: &str, through: &Level) -> Vec<bool> {
    let streams = through.streams;
    let cpu = per_token(through.cpu.unwrap_or_default(), through);
    let rss = through.rss_per_stream.unwrap_or_default();
    let mut met = vec![
        goal(
            cpu <= 5.0,
            format!("{streams} streams, {upstream}: CPU per token ≤ 5 µs ({cpu:.2} µs)"),
        ),
        goal(
            rss <= 32.0,
            format!("{streams} streams, {upstream}: RSS per active stream ≤ 32 KiB ({rss:.1} KiB)"),
        ),
    ];
    if streams == 1000 {
        let p99 = micros_percentile(&through.added_gap, 0.99) as f64 / 1000.0;
        met.push(goal(
            p99 <= 2.0,
            format!("1000 streams, {upstream}: added inter-token delay p99 ≤ 2 ms ({p99:.2} ms)"),
        ));
    }
    if streams == 5000 {
        met.push(goal(
            through.errors == 0,
            format!("5000 streams, {upstream}: no errors ({})", through.errors),
        ));
    }
    met
}
