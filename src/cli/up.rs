//! `model-compose up` / `start`: serve the web UI (and, later, the API) until stopped.

use std::process::ExitCode;

use crate::compose::config::Config;
use crate::server;

use super::{fail, EXIT_FAILURE};

/// Runs the servers in the foreground until SIGINT or SIGTERM.
pub fn run(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return fail(EXIT_FAILURE, &format!("cannot start the runtime: {err}")),
    };
    match runtime.block_on(server::serve(config, server::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(EXIT_FAILURE, &err),
    }
}
