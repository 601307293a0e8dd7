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
//! Beside CPU per token, each process's context switches per token (its threads' voluntary and
//! involuntary ones, from `/proc/<pid>/task/*/status`): a thread that parks and is woken costs
//! more than most code on the token path.
//!
//! With `--original BINARY` the original (0.4.120) streams the same levels (up to 1,000) in the
//! same run (`orig` rows). Last, the fixed cost of a run: 200 streams of 5 and of 400 tokens,
//! 20 ms apart, through the server; the difference gives the cost per token and, taken off,
//! what a run costs besides its tokens (accept, parse, history, upstream request).
//!
//! Usage: `cargo bench --bench paced -- [SERVER_BINARY] [--levels 100,1000] [--original BINARY]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;

#[path = "support/mod.rs"]
mod support;
use support::{
    context_switches, cpu_time, goal, memory_mib, ms, percentile, start_server_on, Kind, Where,
    RUN_BODY,
};

/// The reply of every level: 200 tokens 50 ms apart.
const PACED: Reply = Reply {
    tokens: 200,
    gap: Duration::from_millis(50),
};
/// The fixed cost of a run: this many streams at once, of replies of 5 and 400 tokens, 20 ms
/// apart (as a new user tried it).
const PER_RUN_STREAMS: usize = 200;
const SHORT: Reply = Reply {
    tokens: 5,
    gap: Duration::from_millis(20),
};
const LONG: Reply = Reply {
    tokens: 400,
    gap: Duration::from_millis(20),
};
/// Clients start spread over this long, as real users do.
const RAMP: Duration = Duration::from_secs(2);
const OPENAI_BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0.7,"stream":true}"#;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// How the mock answers: so many tokens, so far apart.
#[derive(Clone, Copy)]
struct Reply {
    tokens: usize,
    gap: Duration,
}

impl Reply {
    /// The upstream base URL (the seed's `base_url`) at which the mock on `origin` answers so.
    fn base_url(self, origin: &str) -> String {
        format!("{origin}/paced/{}/{}/v1", self.tokens, self.gap.as_millis())
    }

    /// How long a stream may take before it is counted as failed: well after its last token.
    fn patience(self) -> Duration {
        self.gap * self.tokens as u32 + Duration::from_secs(30)
    }
}

/// The mock's answer: a role chunk, `tokens` tokens `gap_ms` apart (each `@<µs sent>`), the
/// end chunk and `[DONE]`, as OpenAI streams them.
async fn paced_reply(
    axum::extract::Path((tokens, gap_ms)): axum::extract::Path<(usize, u64)>,
) -> Response {
    let gap = Duration::from_millis(gap_ms);
    let body = async_stream::stream! {
        let chunk = |delta: &str| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{delta}}}]}}\n\n");
        yield Ok::<_, std::convert::Infallible>(chunk(r#"{"role":"assistant","content":""}"#));
        let mut next = tokio::time::Instant::now();
        for _ in 0..tokens {
            next += gap;
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
    // Also a collector that takes any trace export (`benches/configs/seed-traced.yml`).
    let app = Router::new()
        .route(
            "/paced/{tokens}/{gap_ms}/v1/chat/completions",
            post(paced_reply),
        )
        .route("/paced/{tokens}/{gap_ms}/v1/traces", post(|| async {}));
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
    /// The process's context switches over the level (voluntary, involuntary).
    switches: Option<(u64, u64)>,
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

/// `streams` clients at once, one reply (as `reply` says) each, against `url`.
async fn level(
    (url, body): (&str, &'static str),
    reply: Reply,
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
    let switches_before = server.map(context_switches);
    let mock_before = cpu_time(mock);
    let rss_before = server.map(|pid| memory_mib(pid, "VmRSS:"));
    // Tokens received by every stream, those that then failed too: what the process sent.
    let received = std::sync::Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..streams)
        .map(|i| {
            let (client, url) = (client.clone(), url.to_string());
            let received = std::sync::Arc::clone(&received);
            let delay = RAMP.mul_f64(i as f64 / streams as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let stream = one_stream(client, (url, body), reply, &received);
                tokio::time::timeout(reply.patience(), stream)
                    .await
                    .unwrap_or(Err(()))
            })
        })
        .collect();
    // Every stream is open once the ramp is over and before the first one ends.
    let rss_open = match server {
        Some(pid) => {
            tokio::time::sleep(RAMP + reply.gap * (reply.tokens as u32 / 4)).await;
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
                out.added_gap
                    .extend(transit.windows(2).map(|pair| pair[1] - pair[0]));
            }
            Err(()) => out.errors += 1,
        }
    }
    out.tokens = received.load(Ordering::Relaxed);
    out.mock_cpu = cpu_time(mock).saturating_sub(mock_before);
    out.cpu = server
        .zip(cpu_before)
        .map(|(pid, before)| cpu_time(pid).saturating_sub(before));
    out.switches = server.zip(switches_before).map(|(pid, (v0, n0))| {
        let (v, n) = context_switches(pid);
        (v.saturating_sub(v0), n.saturating_sub(n0))
    });
    out.rss_per_stream = rss_open
        .zip(rss_before)
        .map(|(open, before)| (open - before).max(0.0) * 1024.0 / streams as f64);
    out
}

/// `streams` runs through a fresh server (`kind`, `binary`) on the seed config pointed at the
/// mock on `origin` (the process `mock`), answering as `reply` says; stopped after.
async fn through_server(
    (kind, binary): (Kind, &Path),
    (origin, mock): (&str, &Helper),
    place: Where<'_>,
    reply: Reply,
    streams: usize,
) -> Level {
    let dir = tempfile::tempdir().unwrap();
    let upstream = reply.base_url(origin);
    let (mut server, api, _) = start_server_on(kind, binary, dir.path(), &upstream, place).await;
    let run_url = format!("{api}/workflows/runs");
    let measured = level(
        (&run_url, RUN_BODY),
        reply,
        streams,
        mock.0.id(),
        Some(server.id()),
    )
    .await;
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
    (url, body): (String, &'static str),
    reply: Reply,
    received: &AtomicUsize,
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
    let mut transit: Vec<i64> = Vec::with_capacity(reply.tokens);
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ())?;
        let at = now_micros() as i64;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            if let Some(sent) = sent_at(&pending[..end]) {
                // The first token (the role chunk before it carries none).
                first.get_or_insert_with(|| begin.elapsed());
                transit.push(at - sent as i64);
                received.fetch_add(1, Ordering::Relaxed);
            }
            pending.drain(..end + 2);
        }
    }
    if transit.len() != reply.tokens {
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

/// The process's CPU per token over a level, in µs (0 where it was not measured).
fn cpu_per_token(level: &Level) -> f64 {
    per_token(level.cpu.unwrap_or_default(), level)
}

/// Context switches per token over a level: voluntary (a thread parked, then woken) and
/// involuntary (a thread preempted).
fn switches_per_token(level: &Level) -> Option<(f64, f64)> {
    let tokens = level.tokens.max(1) as f64;
    level
        .switches
        .map(|(voluntary, involuntary)| (voluntary as f64 / tokens, involuntary as f64 / tokens))
}

fn row(path: &str, level: &Level) {
    let cpu = level
        .cpu
        .map_or("—".into(), |cpu| format!("{:.2}", per_token(cpu, level)));
    let (voluntary, involuntary) = switches_per_token(level)
        .map_or(("—".into(), "—".into()), |(v, n)| {
            (format!("{v:.3}"), format!("{n:.3}"))
        });
    let rss = level
        .rss_per_stream
        .map_or("—".into(), |kib| format!("{kib:.1}"));
    println!(
        "{path:<7} {:>7} {:>9} {:>9} {:>9.2} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        level.streams,
        level.tokens,
        cpu,
        per_token(level.mock_cpu, level),
        voluntary,
        involuntary,
        rss,
        micros_percentile(&level.added_gap, 0.5) as f64 / 1000.0,
        micros_percentile(&level.added_gap, 0.99) as f64 / 1000.0,
        ms(percentile(&level.ttfe, 0.5)),
        ms(percentile(&level.ttfe, 0.99)),
        level.errors,
    );
}

/// What one level measured on each path.
struct Paths {
    /// The mock alone.
    floor: Level,
    /// Through the byte relay: the reference for CPU per token.
    relay: Level,
    /// Through the server, its upstream over HTTP/1.1 and over HTTPS/2.
    server: Level,
    https: Level,
    /// Through the original, where it was measured.
    original: Option<Level>,
}

/// The fixed cost of a run: the same streams with short and with long replies.
struct PerRun {
    short: Level,
    long: Level,
}

impl PerRun {
    /// The server's CPU per token and per run besides its tokens, in µs, from the two.
    fn costs(&self) -> (f64, f64) {
        let per_stream = |level: &Level| {
            level.cpu.unwrap_or_default().as_secs_f64() * 1e6 / level.streams.max(1) as f64
        };
        let (short, long) = (per_stream(&self.short), per_stream(&self.long));
        let per_token = (long - short) / (LONG.tokens - SHORT.tokens) as f64;
        (per_token, short - per_token * SHORT.tokens as f64)
    }
}

/// What the benchmark was asked to measure.
struct Args {
    binary: std::path::PathBuf,
    levels: Vec<usize>,
    original: Option<std::path::PathBuf>,
}

impl Args {
    /// `[SERVER_BINARY] [--levels 100,1000] [--original BINARY]`; other options (cargo's
    /// `--bench`) are passed over.
    fn parse(args: &[String]) -> Self {
        let absolute = |path: &str| {
            Path::new(path).canonicalize().unwrap_or_else(|_| {
                panic!("no server binary at {path} (run `make release`, or `make bench-original` for the original)")
            })
        };
        let mut parsed = Args {
            binary: std::path::PathBuf::from("target/release/model-compose"),
            levels: vec![100, 1000, 5000],
            original: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--levels" => {
                    let list = args.next().map(String::as_str).unwrap_or_default();
                    parsed.levels = list.split(',').filter_map(|n| n.parse().ok()).collect();
                }
                "--original" => parsed.original = args.next().map(|path| absolute(path)),
                option if option.starts_with("--") => {}
                binary => parsed.binary = std::path::PathBuf::from(binary),
            }
        }
        parsed.binary = absolute(&parsed.binary.to_string_lossy());
        parsed
    }
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
        .block_on(measure(Args::parse(&args)));
}

/// The original streams levels up to this many (past it, it fails most streams).
const ORIGINAL_UP_TO: usize = 1000;

async fn measure(args: Args) {
    let (mock, mock_port) = start_helper(&["--mock"]);
    let origin = format!("http://127.0.0.1:{mock_port}");
    let (tls_mock, tls_mock_port) = start_helper(&["--mock", "--https"]);
    let tls_origin = format!("https://127.0.0.1:{tls_mock_port}");
    let ca = testkit::test_ca();
    let trusting = || Where {
        trusted: Some(&ca),
        ..Where::default()
    };
    let ours = (Kind::Ours, args.binary.as_path());
    let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft);

    let mut results = Vec::new();
    for &streams in &args.levels {
        // A fresh relay and server for each level: what one level leaves in a heap would
        // otherwise be counted, or reused, by the next one's memory per stream.
        let (relay, relay_port) = start_helper(&["--relay", &mock_port.to_string()]);
        let direct = format!("{}/chat/completions", PACED.base_url(&origin));
        let relayed = format!(
            "{}/chat/completions",
            PACED.base_url(&format!("http://127.0.0.1:{relay_port}"))
        );
        let mock_pid = mock.0.id();
        let floor = level((&direct, OPENAI_BODY), PACED, streams, mock_pid, None).await;
        let relay = level(
            (&relayed, OPENAI_BODY),
            PACED,
            streams,
            mock_pid,
            Some(relay.0.id()),
        )
        .await;
        let plain = (origin.as_str(), &mock);
        let server = through_server(ours, plain, Where::default(), PACED, streams).await;
        let https =
            through_server(ours, (&tls_origin, &tls_mock), trusting(), PACED, streams).await;
        let original = match &args.original {
            Some(binary) if streams <= ORIGINAL_UP_TO => {
                let theirs = (Kind::Original, binary.as_path());
                Some(through_server(theirs, plain, Where::default(), PACED, streams).await)
            }
            _ => None,
        };
        results.push(Paths {
            floor,
            relay,
            server,
            https,
            original,
        });
    }
    let plain = (origin.as_str(), &mock);
    let per_run = PerRun {
        short: through_server(ours, plain, Where::default(), SHORT, PER_RUN_STREAMS).await,
        long: through_server(ours, plain, Where::default(), LONG, PER_RUN_STREAMS).await,
    };
    drop((mock, tls_mock));

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nmodel-compose paced benchmark: {} tokens per reply, {} ms apart, clients started over {} s; {cpus} CPUs, open-file limit {files}",
        PACED.tokens,
        PACED.gap.as_millis(),
        RAMP.as_secs()
    );
    println!(
        "server: {}{}; the mock upstream in its own process (https: the server's upstream is the mock over TLS and HTTP/2; orig: {})\n",
        args.binary.display(),
        args.original.as_ref().map_or(String::new(), |o| format!(", original: {}", o.display())),
        Kind::Original.name(),
    );
    println!(
        "{:<7} {:>7} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "path",
        "streams",
        "tokens",
        "CPU µs/t",
        "mock µs/t",
        "vcs/t",
        "ics/t",
        "KiB/strm",
        "gap+ p50",
        "gap+ p99",
        "TTFT p50",
        "TTFT p99",
        "errors"
    );
    println!(
        "{:<7} {:>7} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "", "", "", "", "", "", "", "", "ms", "ms", "ms", "ms", ""
    );
    for paths in &results {
        row("floor", &paths.floor);
        row("relay", &paths.relay);
        row("server", &paths.server);
        row("https", &paths.https);
        if let Some(original) = &paths.original {
            row("orig", original);
        }
    }
    let (run_token, run_fixed) = per_run.costs();
    println!(
        "\nper run: {PER_RUN_STREAMS} streams of {} and of {} tokens {} ms apart through the server:",
        SHORT.tokens,
        LONG.tokens,
        LONG.gap.as_millis()
    );
    row("short", &per_run.short);
    row("long", &per_run.long);
    println!("  {run_token:.2} µs per token, {run_fixed:.0} µs per run besides its tokens");

    println!("\ngoals (issue 28):");
    let mut met = Vec::new();
    for paths in &results {
        met.extend(goals(paths));
    }
    met.push(goal(
        run_fixed <= 500.0,
        format!("a run's cost besides its tokens ≤ 0.5 ms ({run_fixed:.0} µs)"),
    ));
    println!(
        "\n{} of {} goals met",
        met.iter().filter(|m| **m).count(),
        met.len()
    );
}

/// The goals for one level: CPU per token against the relay's and the original's, memory per
/// stream, wake-ups per token, delay and errors.
fn goals(paths: &Paths) -> Vec<bool> {
    let streams = paths.server.streams;
    let relay = cpu_per_token(&paths.relay);
    let bound = if streams >= 5000 { 1.2 } else { 1.5 };
    let mut met = Vec::new();
    for (upstream, level, kib) in [
        ("HTTP/1.1", &paths.server, 36.0),
        ("HTTPS/2", &paths.https, 32.0),
    ] {
        let cpu = cpu_per_token(level);
        met.push(goal(
            cpu <= bound * relay,
            format!(
                "{streams} streams, {upstream}: CPU per token ≤ {bound}× the relay's ({cpu:.2} µs against {relay:.2}: {:.2}×)",
                cpu / relay.max(f64::EPSILON)
            ),
        ));
        let rss = level.rss_per_stream.unwrap_or_default();
        met.push(goal(
            rss <= kib,
            format!(
                "{streams} streams, {upstream}: RSS per active stream ≤ {kib} KiB ({rss:.1} KiB)"
            ),
        ));
        if streams == 1000 {
            let (voluntary, _) = switches_per_token(level).unwrap_or_default();
            met.push(goal(
                voluntary <= 0.15,
                format!("1000 streams, {upstream}: voluntary context switches ≤ 0.15 per token ({voluntary:.3})"),
            ));
            let p99 = micros_percentile(&level.added_gap, 0.99) as f64 / 1000.0;
            met.push(goal(
                p99 <= 2.0,
                format!(
                    "1000 streams, {upstream}: added inter-token delay p99 ≤ 2 ms ({p99:.2} ms)"
                ),
            ));
        }
        if streams == 5000 {
            met.push(goal(
                level.errors == 0,
                format!(
                    "{streams} streams, {upstream}: no errors ({})",
                    level.errors
                ),
            ));
        }
    }
    println!(
        "    ({streams} streams: TLS and HTTP/2 to the upstream cost {:.2} µs per token more than HTTP/1.1)",
        cpu_per_token(&paths.https) - cpu_per_token(&paths.server)
    );
    match &paths.original {
        Some(original) => {
            let (ours, theirs) = (cpu_per_token(&paths.server), cpu_per_token(original));
            met.push(goal(
                theirs >= 5.0 * ours,
                format!(
                    "{streams} streams: CPU per token ≥ 5× less than the original's ({ours:.2} µs against {theirs:.2}: {:.1}×)",
                    theirs / ours.max(f64::EPSILON)
                ),
            ));
        }
        None if streams <= ORIGINAL_UP_TO => {
            println!(
                "    ({streams} streams: the original not measured; `make bench-original` does)"
            )
        }
        None => {}
    }
    met
}
