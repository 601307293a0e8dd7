//! `model-compose validate`: load the config, build the engine, report what it defines.

use std::process::ExitCode;

use crate::compose::config::{self, EnvSources};
use crate::compose::Engine;

use super::EXIT_FAILURE;

/// Prints `✅ Configuration is valid (...)` and exits 0, or the problem and exits 1.
pub fn run(files: &[std::path::PathBuf], env: &EnvSources) -> ExitCode {
    let checked = config::load(files, env)
        .map_err(|err| err.to_string())
        .and_then(|config| Engine::new(&config).map(|_| config));
    match checked {
        Ok(config) => {
            let controller = config
                .controller
                .adapters
                .first()
                .map_or("none", |adapter| adapter.kind.as_str());
            println!(
                "✅ Configuration is valid (controller: {controller}, {} component(s), {} workflow(s))",
                config.components.len(),
                config.workflows.len()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("❌ Configuration has errors:\n  - {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
