//! What the benchmarks share: starting the release server on a config, reading a process's
//! CPU time and memory from `/proc`, percentiles, and printing goals.
#![allow(dead_code)] // each benchmark uses its own part

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// User + system CPU time of a process.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10) // CLK_TCK is 100 on Linux
}

/// Context switches of every thread of a process so far (voluntary, involuntary), from
/// `/proc/<pid>/task/*/status`; threads that ended are no longer counted.
pub fn context_switches(pid: u32) -> (u64, u64) {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    threads
        .flatten()
        .fold((0, 0), |(voluntary, involuntary), thread| {
            let status = std::fs::read_to_string(thread.path().join("status")).unwrap_or_default();
            let count = |field: &str| -> u64 {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            (
                voluntary + count("voluntary_ctxt_switches:"),
                involuntary + count("nonvoluntary_ctxt_switches:"),
            )
        })
}

/// `VmRSS` or `VmHWM` (peak) of a process, in MiB.
pub fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// A run of the seed workflow, its output alone: the original (0.4.120) streams only with
/// `output_only` (D1); this implementation streams the same bytes either way.
pub const RUN_BODY: &str = r#"{"input":{"prompt":"Explain machine learning in simple terms","temperature":0.7},"output_only":true}"#;

/// Which server a benchmark drives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This implementation: ports picked by the system, reported on stdout.
    Ours,
    /// The original (Python): a fixed free port, no web UI (it would install Gradio), ready
    /// once `/api/health` answers.
    Original,
}

impl Kind {
    /// `--original` among the arguments.
    pub fn from_args(args: &[String]) -> Self {
        if args.iter().any(|a| a == "--original") {
            Kind::Original
        } else {
            Kind::Ours
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "model-compose (Rust)",
            Kind::Original => "model-compose 0.4.120 (Python, the original)",
        }
    }
}

/// The server binary named among the arguments (the first that is not an option or a
/// list), made absolute.
pub fn binary_from_args(args: &[String]) -> std::path::PathBuf {
    let binary = args
        .iter()
        .find(|a| !a.starts_with("--") && !a.contains(','))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target/release/model-compose"));
    binary.canonicalize().unwrap_or_else(|_| {
        panic!(
            "no server binary at {} (run `make release`)",
            binary.display()
        )
    })
}

/// Starts the server on the seed config; returns it, its API base URL and the time until
/// `/api/health` answered 200.
pub async fn start_server(
    kind: Kind,
    binary: &Path,
    dir: &Path,
    upstream: &str,
) -> (Child, String, Duration) {
    start_server_on(kind, binary, dir, upstream, Where::default()).await
}

/// Where a server runs: pinned to one CPU (`taskset`), or a replica keeping its history in a
/// PostgreSQL database; and the CA it trusts besides the built-in roots (`SSL_CERT_FILE`),
/// for an upstream over HTTPS.
#[derive(Default)]
pub struct Where<'a> {
    pub cpu: Option<usize>,
    pub database: Option<&'a str>,
    pub trusted: Option<&'a Path>,
}

/// [`start_server`], as `place` says.
pub async fn start_server_on(
    kind: Kind,
    binary: &Path,
    dir: &Path,
    upstream: &str,
    place: Where<'_>,
) -> (Child, String, Duration) {
    let Where {
        cpu,
        database,
        trusted,
    } = place;
    let seed = testkit::seed_for(upstream);
    let seed = match database {
        Some(url) => seed.replace(
            "controller:\n",
            &format!("controller:\n  history:\n    url: {url}\n"),
        ),
        None => seed,
    };
    let config = match kind {
        Kind::Ours => testkit::any_port(&seed),
        Kind::Original => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            seed.replace("  webui:\n    driver: gradio\n    port: 8081\n", "")
                .replace("    port: 8080", &format!("    port: {port}"))
        }
    };
    launch(kind, binary, dir, &config, (cpu, trusted)).await
}

/// This build's server (the binary the benchmark's arguments name) on `config`, in a directory
/// of its own that lasts as long as the `TempDir` given back: the process and its API base.
pub async fn serve_ours(config: &str) -> (Child, String, tempfile::TempDir) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let binary = binary_from_args(&args);
    let dir = tempfile::tempdir().unwrap();
    let (server, base, _) = launch(Kind::Ours, &binary, dir.path(), config, (None, None)).await;
    (server, base, dir)
}

/// Writes `config` (and an `.env` with a key) into `dir` and starts `up` there, pinned to a
/// CPU and trusting a CA if given; returns it, its API base URL and the time until
/// `/api/health` answered 200.
pub async fn launch(
    kind: Kind,
    binary: &Path,
    dir: &Path,
    config: &str,
    (cpu, trusted): (Option<usize>, Option<&Path>),
) -> (Child, String, Duration) {
    std::fs::write(dir.join("model-compose.yml"), config).unwrap();
    std::fs::write(dir.join(".env"), "OPENAI_API_KEY=sk-bench\n").unwrap();
    let started = Instant::now();
    let mut command = match cpu {
        Some(cpu) => {
            let mut taskset = Command::new("/usr/bin/taskset");
            taskset.args(["-c", &cpu.to_string()]).arg(binary);
            taskset
        }
        None => Command::new(binary),
    };
    command
        .arg("up")
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", "/usr/bin:/bin");
    if let Some(ca) = trusted {
        command.env("SSL_CERT_FILE", ca);
    }
    // The caller stops and waits for the server; clippy cannot see past the return.
    #[allow(clippy::zombie_processes)]
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let base = match kind {
        Kind::Ours => tokio::task::spawn_blocking(move || {
            let mut api = None;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("API on ") {
                    api = Some(url.to_string());
                }
                if line.starts_with("model-compose is ready") {
                    break;
                }
            }
            api
        })
        .await
        .unwrap()
        .expect("the server reported its API address"),
        Kind::Original => {
            // Keep reading what it prints, so that it never blocks on a full pipe.
            std::thread::spawn(move || for _ in std::io::BufReader::new(stdout).lines() {});
            let config = std::fs::read_to_string(dir.join("model-compose.yml")).unwrap();
            let port = config
                .lines()
                .find_map(|l| l.trim().strip_prefix("port: "))
                .unwrap()
                .to_string();
            format!("http://127.0.0.1:{port}/api")
        }
    };
    let health = format!("{base}/health");
    let client = reqwest::Client::new();
    let patience = match kind {
        Kind::Ours => Duration::from_secs(10),
        Kind::Original => Duration::from_secs(120),
    };
    loop {
        if let Ok(response) = client.get(&health).send().await {
            if response.status() == 200 {
                return (child, base, started.elapsed());
            }
        }
        if started.elapsed() > patience {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not become healthy");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Asks the server to stop (SIGTERM) and waits for it; past 15 s (the original waits for its
/// streams), kills it.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Pins every thread of this process to one CPU (`taskset -a -p`).
pub fn pin_self(cpu: usize) {
    let status = Command::new("/usr/bin/taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "cannot pin the benchmark to CPU {cpu} (taskset, from util-linux)"
    );
}

pub fn goal(ok: bool, text: String) -> bool {
    println!("  {} {text}", if ok { "✓" } else { "✗" });
    ok
}

/// Runs `workflow` with `input` `times` times, one after the other; the server's CPU and the
/// wall time they took.
pub async fn measure(
    base: &str,
    pid: u32,
    (workflow, input): (&str, &str),
    times: usize,
) -> (Duration, Duration) {
    let body = format!(r#"{{"workflow_id":"{workflow}","input":{input},"output_only":true}}"#);
    measure_post(pid, (&format!("{base}/workflows/runs"), &body), times).await
}

/// POSTs the JSON `body` to `url` `times` times, one after the other, each read to its end;
/// the server's CPU and the wall time they took.
pub async fn measure_post(
    pid: u32,
    (url, body): (&str, &str),
    times: usize,
) -> (Duration, Duration) {
    let client = reqwest::Client::new();
    let (cpu, started) = (cpu_time(pid), Instant::now());
    for _ in 0..times {
        let response = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{url}: {text}");
    }
    (cpu_time(pid) - cpu, started.elapsed())
}

/// Server CPU per run of `workflow`, the median of `turns` turns of `runs` runs.
pub async fn per_run(base: &str, pid: u32, run: (&str, &str), turns: usize, runs: usize) -> f64 {
    let (workflow, input) = run;
    let body = format!(r#"{{"workflow_id":"{workflow}","input":{input},"output_only":true}}"#);
    per_request(pid, (&format!("{base}/workflows/runs"), &body), turns, runs).await
}

/// Server CPU per POST of `body` to `url`, the median of `turns` turns of `runs` requests.
pub async fn per_request(pid: u32, post: (&str, &str), turns: usize, runs: usize) -> f64 {
    let mut each = Vec::with_capacity(turns);
    for _ in 0..turns {
        let (cpu, _) = measure_post(pid, post, runs).await;
        each.push(cpu.as_secs_f64() * 1e6 / runs as f64);
    }
    each.sort_by(f64::total_cmp);
    each[turns / 2]
}
