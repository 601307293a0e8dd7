//! Shared by the integration tests: a mock OpenAI-compatible upstream on 127.0.0.1, and
//! helpers to run the real `model-compose` binary in a scratch directory.
#![allow(dead_code)] // each test file uses its own part of this module

pub mod mock_upstream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The seed example's configuration, as shipped.
pub const SEED: &str =
    include_str!("../../examples/openai-chat-completions-stream/model-compose.yml");

/// The API key the tests put in `.env`.
pub const TEST_KEY: &str = "sk-test-0123456789abcdef";

/// A scratch directory holding a config, removed when dropped.
pub struct Workdir {
    pub path: PathBuf,
}

impl Workdir {
    /// A directory with the seed config pointed at `base_url` and a `.env` with the test key.
    pub fn seed(base_url: &str) -> Self {
        let dir = Self::empty();
        dir.write("model-compose.yml", &seed_for(base_url));
        dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
        dir
    }

    pub fn empty() -> Self {
        let path = std::env::temp_dir().join(format!("mc-it-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `model-compose ARGS` run to completion in this directory.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(&self.path)
            .env_remove("OPENAI_API_KEY");
        command
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_model-compose"))
}

/// The seed config with its OpenAI base URL replaced.
pub fn seed_for(base_url: &str) -> String {
    let seed = SEED.replace("https://api.openai.com/v1", base_url);
    assert_ne!(seed, SEED, "the seed's base_url moved");
    seed
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

/// A free TCP port on 127.0.0.1 (free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `model-compose up` running in a work directory; stopped with SIGTERM when dropped.
pub struct Server {
    pub api: String,
    pub webui: String,
    pub child: std::process::Child,
}

impl Server {
    /// Rewrites the seed's ports to free ones, starts `up` in `dir` and waits for health.
    pub fn start(dir: &Workdir, base_url: &str) -> Self {
        Self::start_with(dir, &seed_for(base_url))
    }

    pub fn start_with(dir: &Workdir, config: &str) -> Self {
        let (api_port, ui_port) = (free_port(), free_port());
        let config = config
            .replace("    port: 8080", &format!("    port: {api_port}"))
            .replace("    port: 8081", &format!("    port: {ui_port}"));
        dir.write("model-compose.yml", &config);
        // Everything the server logs, at the most detailed level, goes to server.log.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path.join("server.log"))
            .unwrap();
        let child = dir
            .command(&["up"])
            .env("MODEL_COMPOSE_LOG", "trace")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self {
            api: format!("http://127.0.0.1:{api_port}/api"),
            webui: format!("http://127.0.0.1:{ui_port}"),
            child,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let addr = self
            .api
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        while std::time::Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
                use std::io::{Read, Write};
                let request = "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("model-compose up did not become healthy on {}", self.api);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
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
