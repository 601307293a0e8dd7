//! The server an `http-server` component manages (spec §17): its `install` and `build` run
//! before it starts, under `up` and under `run` alike (not OD24); then its `start` command,
//! in a process group of its own, until it listens on its port, within `start_timeout` (not
//! the original's endless wait), else a clear error with its last lines of output. Its output
//! is logged line by line with the component's id in front. When it dies it is started again
//! after a pause that doubles (1 s to 30 s), which `/health` reports; when the engine stops
//! it, its whole group goes, and `clean` runs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::config;

/// How many of the server's last output lines an error shows.
const TAIL: usize = 20;
/// How often the port is tried while the server starts.
const POLL: Duration = Duration::from_millis(100);
/// The first pause before a restart, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// A server that ran this long before it died is restarted after the first pause again.
const STEADY: Duration = Duration::from_secs(60);
/// How long the group has after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// One managed server.
pub struct ManagedServer {
    id: String,
    port: u16,
    manage: config::Manage,
    start_timeout: Duration,
    dir: PathBuf,
    /// Its last lines of output.
    tail: Arc<parking_lot::Mutex<VecDeque<String>>>,
    health: parking_lot::Mutex<Health>,
    stop: CancellationToken,
    /// The running server's process, while there is one.
    child: tokio::sync::Mutex<Option<Child>>,
}

/// What `/health` says of a managed server.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Health {
    pub id: String,
    /// `starting`, `running`, `restarting` or `stopped`.
    pub status: &'static str,
    /// How many times it was started again after it died.
    pub restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Why it last stopped, when it died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

impl ManagedServer {
    pub fn new(config: &config::HttpServer, dir: &Path) -> Arc<Self> {
        Arc::new(Self {
            id: config.id.clone(),
            port: config.port,
            manage: config.manage.clone(),
            start_timeout: config.start_timeout,
            dir: dir.to_path_buf(),
            tail: Arc::new(parking_lot::Mutex::new(VecDeque::with_capacity(TAIL))),
            health: parking_lot::Mutex::new(Health {
                id: config.id.clone(),
                status: "stopped",
                restarts: 0,
                pid: None,
                last_exit: None,
            }),
            stop: CancellationToken::new(),
            child: tokio::sync::Mutex::new(None),
        })
    }

    pub fn health(&self) -> Health {
        self.health.lock().clone()
    }

    /// Runs `install` and `build`, starts the server, waits until it listens, and keeps it
    /// running (restarted when it dies) until [`ManagedServer::stop`].
    pub async fn start(self: &Arc<Self>) -> Result<(), String> {
        for (step, script) in [
            ("install", &self.manage.install),
            ("build", &self.manage.build),
        ] {
            if let Some(script) = script {
                self.run_to_end(step, script).await?;
            }
        }
        self.launch().await?;
        let this = Arc::clone(self);
        tokio::spawn(async move { this.watch().await });
        Ok(())
    }

    /// Stops the server (its whole process group), then runs `clean`.
    pub async fn stop(&self) {
        self.stop.cancel();
        if let Some(child) = self.child.lock().await.take() {
            end_group(child).await;
        }
        self.health.lock().status = "stopped";
        if let Some(clean) = &self.manage.clean {
            if let Err(err) = self.run_to_end("clean", clean).await {
                tracing::warn!("{err}");
            }
        }
    }

    /// Starts `start` and waits until the port takes a connection.
    async fn launch(&self) -> Result<(), String> {
        let Some(start) = &self.manage.start else {
            return Err(format!("component '{}': no start command", self.id));
        };
        self.health.lock().status = "starting";
        let mut child = self.spawn(&start.0)?;
        let pid = child.id();
        let deadline = Instant::now() + self.start_timeout;
        loop {
            if tokio::net::TcpStream::connect(("localhost", self.port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "component '{}': its server exited ({status}) before it listened on port \
                     {}{}",
                    self.id,
                    self.port,
                    self.last_lines()
                ));
            }
            if Instant::now() >= deadline || self.stop.is_cancelled() {
                end_group(child).await;
                return Err(format!(
                    "component '{}': its server did not listen on port {} within {} s \
                     (start_timeout){}",
                    self.id,
                    self.port,
                    self.start_timeout.as_secs_f64(),
                    self.last_lines()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(component = %self.id, port = self.port, "managed server listening");
        {
            let mut health = self.health.lock();
            health.status = "running";
            health.pid = pid;
        }
        *self.child.lock().await = Some(child);
        Ok(())
    }

    /// Restarts the server each time it dies, after a pause that doubles while it keeps dying.
    async fn watch(self: Arc<Self>) {
        let mut pause = BACKOFF.0;
        loop {
            let started = Instant::now();
            let exited = {
                let mut child = self.child.lock().await;
                let Some(running) = child.as_mut() else {
                    return;
                };
                tokio::select! {
                    status = running.wait() => status,
                    () = self.stop.cancelled() => return,
                }
            };
            let said = match exited {
                Ok(status) => status.to_string(),
                Err(err) => err.to_string(),
            };
            if started.elapsed() >= STEADY {
                pause = BACKOFF.0;
            }
            tracing::warn!(
                component = %self.id,
                "managed server died ({said}): starting it again in {} s",
                pause.as_secs()
            );
            {
                let mut health = self.health.lock();
                health.status = "restarting";
                health.pid = None;
                health.last_exit = Some(said);
                health.restarts += 1;
            }
            loop {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = self.stop.cancelled() => return,
                }
                pause = (pause * 2).min(BACKOFF.1);
                match self.launch().await {
                    Ok(()) => break,
                    Err(err) => tracing::warn!("{err}"),
                }
            }
        }
    }

    /// Runs a setup or teardown command to its end; its failure is an error with its output.
    async fn run_to_end(&self, step: &str, script: &config::Script) -> Result<(), String> {
        let mut child = self.spawn(&script.0)?;
        let status = child
            .wait()
            .await
            .map_err(|err| format!("component '{}': {step}: {err}", self.id))?;
        // Its last lines are read out before they are shown.
        tokio::time::sleep(Duration::from_millis(20)).await;
        match status.success() {
            true => Ok(()),
            false => Err(format!(
                "component '{}': {step} `{}` failed ({status}){}",
                self.id,
                script.0.join(" "),
                self.last_lines()
            )),
        }
    }

    /// Starts `argv` in the config's directory, in a process group of its own, its output
    /// logged and kept.
    fn spawn(&self, argv: &[String]) -> Result<Child, String> {
        let Some((program, args)) = argv.split_first() else {
            return Err(format!("component '{}': an empty command", self.id));
        };
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                format!(
                    "component '{}': cannot start `{}`: {err}",
                    self.id,
                    argv.join(" ")
                )
            })?;
        self.tail.lock().clear();
        if let Some(out) = child.stdout.take() {
            self.relay(out);
        }
        if let Some(err) = child.stderr.take() {
            self.relay(err);
        }
        Ok(child)
    }

    /// Logs each line of `output` with the component's id, and keeps the last ones.
    fn relay(&self, output: impl AsyncRead + Unpin + Send + 'static) {
        let id = self.id.clone();
        let tail = Arc::clone(&self.tail);
        tokio::spawn(async move {
            let mut lines = BufReader::new(output).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!("[{id}] {line}");
                let mut tail = tail.lock();
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
    }

    /// The last lines of output, for an error.
    fn last_lines(&self) -> String {
        let tail = self.tail.lock();
        match tail.is_empty() {
            true => String::new(),
            false => format!(
                "; its last output:\n{}",
                tail.iter().cloned().collect::<Vec<_>>().join("\n")
            ),
        }
    }
}

/// SIGTERM to the group, SIGKILL after [`GRACE`].
async fn end_group(mut child: Child) {
    let pid = child.id().and_then(|pid| i32::try_from(pid).ok());
    if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_ok() {
            return;
        }
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}
