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

/// Starts the server on the seed config (ports picked by the system); returns it, its API
/// base URL and the time until it reported its addresses and `/api/health` answered 200.
pub async fn start_server(binary: &Path, dir: &Path, upstream: &str) -> (Child, String, Duration) {
    std::fs::write(
        dir.join("model-compose.yml"),
        testkit::seed_on_any_port(upstream),
    )
    .unwrap();
    std::fs::write(dir.join(".env"), "OPENAI_API_KEY=sk-bench\n").unwrap();
    let started = Instant::now();
    // The caller stops and waits for the server; clippy cannot see past the return.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(binary)
        .arg("up")
        .current_dir(dir)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
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
    .expect("the server reported its API address");
    let health = format!("{base}/health");
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(&health).send().await {
            if response.status() == 200 {
                return (child, base, started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not become healthy");
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

pub fn goal(ok: bool, text: String) -> bool {
    println!("  {} {text}", if ok { "✓" } else { "✗" });
    ok
}
