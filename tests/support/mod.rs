//! Shared by the integration tests: the real `model-compose` binary, run in a scratch
//! directory with an environment of the test's own (nothing of the developer's shell leaks in),
//! and `up` on ports the system picks. Mock upstreams come from `testkit`.
#![allow(dead_code, unused_imports)] // each test file uses its own part of this module

pub mod collector;
pub mod examples;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use testkit::{mock_upstream, seed_for, Workdir, TEST_KEY};

/// The binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_model-compose"))
}

/// `model-compose ARGS` in `dir`, with an empty environment: only what the test sets.
pub fn command(dir: &Workdir, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.args(args).current_dir(&dir.path).env_clear();
    command
}

/// `model-compose ARGS` run to completion in `dir`.
pub fn run(dir: &Workdir, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `POST /workflows/runs` with a JSON body.
pub async fn post(server: &Server, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/workflows/runs", server.api))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// `GET url`, its body as text.
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// `GET url`, its body as JSON (the test fails when it is not).
pub async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Calls one of the web UI's server functions (`/_ui/NAME`) with form arguments, as the
/// browser does.
pub async fn ui_call(server: &Server, name: &str, args: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/_ui/{name}", server.webui))
        .form(args)
        .send()
        .await
        .unwrap()
}

/// `up` with `config`, in a directory of its own whose `.env` gives the test key and
/// `DATABASE_URL=database`: one replica of those that share that database.
pub fn replica_on(database: &str, config: &str) -> (Workdir, Server) {
    let dir = Workdir::empty();
    dir.write(
        ".env",
        &format!("OPENAI_API_KEY={TEST_KEY}\nDATABASE_URL={database}\n"),
    );
    let server = Server::start_with(&dir, config);
    (dir, server)
}

/// Waits until `condition` holds, checking every few milliseconds; fails the test with
/// `what` once `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The addresses `up` reports once it is serving, read from its log: `(api, webui)`, as
/// `http://127.0.0.1:PORT/api` and `http://127.0.0.1:PORT` (the API empty when only MCP is
/// served).
pub fn served_addresses(log: &str) -> Option<(String, String)> {
    let find = |label: &str| {
        log.lines().find_map(|line| {
            line.split_once(label)
                .map(|(_, url)| url.trim().to_string())
        })
    };
    let api = find("API on ").or_else(|| find("MCP on ").map(|_| String::new()));
    log.contains("model-compose is ready")
        .then(|| Some((api?, find("web UI on ")?)))
        .flatten()
}

/// `model-compose up` running in a work directory; stopped with SIGTERM when dropped.
pub struct Server {
    pub api: String,
    pub webui: String,
    /// Where MCP is served over HTTP, when it is.
    pub mcp: Option<String>,
    pub child: std::process::Child,
}

impl Server {
    /// `up` on the seed config pointed at `base_url`.
    pub fn start(dir: &Workdir, base_url: &str) -> Self {
        Self::start_with(dir, &seed_for(base_url))
    }

    /// Writes `config` with its ports set to 0, starts `up` in `dir` (everything it logs, at
    /// the most detailed level, goes to `server.log`) and waits until it reports its addresses.
    pub fn start_with(dir: &Workdir, config: &str) -> Self {
        Self::start_as(dir, config, command(dir, &["up"]))
    }

    /// [`Server::start_with`], `up` given these arguments and environment variables.
    pub fn start_with_args(
        dir: &Workdir,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut up = command(dir, &[&["up"], args].concat());
        up.envs(env.iter().copied());
        Self::start_as(dir, config, up)
    }

    /// `up` with at most `files` open descriptors (its soft and hard limit).
    pub fn start_with_file_limit(dir: &Workdir, config: &str, files: u32) -> Self {
        let mut limited = Command::new("/bin/bash");
        limited
            .args(["-c", &format!("ulimit -n {files} && exec \"$0\" up")])
            .arg(binary())
            .current_dir(&dir.path)
            .env_clear();
        Self::start_as(dir, config, limited)
    }

    fn start_as(dir: &Workdir, config: &str, mut up: Command) -> Self {
        dir.write("model-compose.yml", &testkit::any_port(config));
        let log_path = dir.path.join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = up
            .env("MODEL_COMPOSE_LOG", "trace")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some((api, webui)) = served_addresses(&log) {
                let mcp = log.lines().find_map(|line| {
                    let (_, url) = line.split_once("MCP on http")?;
                    Some(format!("http{}", url.trim()))
                });
                return Self {
                    api,
                    webui,
                    mcp,
                    child,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("model-compose up exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "model-compose up did not report its addresses:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The API's `host:port`, for a raw connection or a proxy in front of it.
    pub fn api_address(&self) -> String {
        let rest = self.api.trim_start_matches("http://");
        rest.split('/').next().unwrap_or(rest).to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        let dir = format!("/proc/{}/fd", self.pid());
        std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("cannot read {dir}: {err}"))
            .count()
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.memory_kib("VmRSS:")
    }

    /// The most resident memory the server process has had, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory_kib("VmHWM:")
    }

    /// A figure of `/proc/PID/status`, in KiB; a test that cannot read it fails (a bound
    /// checked against 0 would hold by construction).
    fn memory_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {path}"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.terminate();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}
