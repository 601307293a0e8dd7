//! `up` / `start`: serve until stopped; `up -d`: the same, detached; `down` / `stop`: ask a
//! server started in this directory to stop (the original's `.stop` file protocol).

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use crate::compose::config::Config;
use crate::server;

use super::{fail, EXIT_FAILURE};

/// The file whose appearance in the working directory stops a running server.
pub const STOP_FILE: &str = ".stop";
/// How often the working directory is checked for it.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Runs the servers in the foreground until SIGINT, SIGTERM or a `.stop` file.
pub fn run(config: Config) -> ExitCode {
    // A `.stop` left by a server that died would stop this one at once (the original's D12).
    let _ = std::fs::remove_file(STOP_FILE);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return fail(EXIT_FAILURE, &format!("cannot start the runtime: {err}")),
    };
    let stop = async {
        tokio::select! {
            () = server::shutdown_signal() => {},
            () = stop_file() => {},
        }
    };
    match runtime.block_on(server::serve(config, stop)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(EXIT_FAILURE, &err),
    }
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

/// `up -d`: starts this same command line without `-d` as a detached process, and returns.
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
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    match command.spawn() {
        Ok(child) => {
            println!("model-compose is running in the background (pid {}); stop it with `model-compose down`", child.id());
            ExitCode::SUCCESS
        }
        Err(err) => fail(
            EXIT_FAILURE,
            &format!("cannot start in the background: {err}"),
        ),
    }
}

/// `down` / `stop`: creates `.stop` for the server running in this directory.
pub fn request_stop() -> ExitCode {
    match std::fs::write(STOP_FILE, "") {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(EXIT_FAILURE, &format!("cannot write {STOP_FILE}: {err}")),
    }
}
