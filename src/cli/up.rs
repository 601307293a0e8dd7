//! `up` / `start`: serve until stopped; `up -d`: the same, detached; `down` / `stop`: ask a
//! server started in this directory to stop (the original's `.stop` file protocol).
//!
//! Once every port is bound, `up` prints where it serves on stdout (the ports the system
//! picked, for `port: 0`) and then the [`READY`] line; logs go to stderr. `up -d` relays those
//! lines from its background child, so that it returns only once the server is serving, or
//! with the reason it could not start.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use compose::config::Config;

use crate::server::{self, Listening};

use super::{fail, EXIT_FAILURE, EXIT_USAGE};

/// The line `up` prints once it serves.
pub const READY: &str = "model-compose is ready";

/// The file whose appearance in the working directory stops a running server.
pub const STOP_FILE: &str = ".stop";
/// How often the working directory is checked for it.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Runs the servers in the foreground until SIGINT, SIGTERM or a `.stop` file.
pub fn run(config: Config) -> ExitCode {
    for unread in &config.unread {
        tracing::warn!("{unread}");
    }
    // A `.stop` left by a server that died would stop this one at once (the original's D12).
    let _ = std::fs::remove_file(STOP_FILE);
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(err) => return fail(EXIT_FAILURE, &format!("cannot start the runtime: {err}")),
    };
    let stop = async {
        tokio::select! {
            () = server::shutdown_signal() => {},
            () = stop_file() => {},
        }
    };
    match runtime.block_on(server::serve(config, stop, announce)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ server::ServeError::Config(_)) => fail(EXIT_USAGE, &err),
        Err(err) => fail(EXIT_FAILURE, &err),
    }
}

/// Prints where the servers listen, then [`READY`]; on stderr when MCP speaks on stdout. A
/// closed stdout is no reason to stop.
fn announce(listening: &Listening) {
    let mut lines = String::new();
    if let Some(api) = &listening.api {
        lines.push_str(&format!("API on {api}\n"));
    }
    if let Some(webui) = &listening.webui {
        lines.push_str(&format!("web UI on {webui}\n"));
    }
    if let Some(mcp) = &listening.mcp {
        lines.push_str(&format!("MCP on {mcp}\n"));
    }
    if listening.stdio {
        lines.push_str("MCP on stdio\n");
    }
    lines.push_str(&format!(
        "{READY} (Ctrl-C, or `model-compose down` in this directory, stops it)\n"
    ));
    let _ = match listening.stdio {
        true => std::io::stderr().lock().write_all(lines.as_bytes()),
        false => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(lines.as_bytes())
                .and_then(|()| stdout.flush())
        }
    };
}

/// Resolves when `.stop` appears in the working directory, and removes it.
async fn stop_file() {
    loop {
        if Path::new(STOP_FILE).exists() {
            let _ = std::fs::remove_file(STOP_FILE);
            return;
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// `up -d`: starts this same command line without `-d` as a background process, relays what
/// it prints until it is ready, and returns. A child that ends before that was unable to start:
/// its errors are shown and the exit status is 1.
pub fn detach() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "-d" && arg != "--detach")
        .collect();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return fail(EXIT_FAILURE, &format!("cannot find this program: {err}")),
    };
    let mut command = std::process::Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return fail(
                EXIT_FAILURE,
                &format!("cannot start in the background: {err}"),
            )
        }
    };
    // The child's log is read on the side, so that it never blocks on a full pipe.
    let errors = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });
    let mut out = std::io::stdout().lock();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(READY) {
                let _ = writeln!(
                    out,
                    "{READY} in the background (pid {}); `model-compose down` in this directory stops it",
                    child.id()
                );
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = child.wait();
    let log = errors.and_then(|e| e.join().ok()).unwrap_or_default();
    let _ = std::io::stderr().write_all(log.as_bytes());
    fail(EXIT_FAILURE, &"the server did not start")
}

/// `down` / `stop`: creates `.stop` for the server running in this directory.
pub fn request_stop() -> ExitCode {
    match std::fs::write(STOP_FILE, "") {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(EXIT_FAILURE, &format!("cannot write {STOP_FILE}: {err}")),
    }
}
