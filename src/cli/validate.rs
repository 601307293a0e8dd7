//! `model-compose validate`: load the config, build the engine, report what it defines and
//! the keys nothing reads (warnings; errors with `--strict`).

use std::process::ExitCode;

use compose::config::{self, ConfigError, Sources};
use compose::Engine;

use super::EXIT_USAGE;

/// Prints `✅ Configuration is valid (...)` and exits 0, or the problem and exits 2; keys
/// nothing reads are warnings on stderr, or (`strict`) the problem.
pub fn run(files: &[std::path::PathBuf], env: &Sources, strict: bool) -> ExitCode {
    let config = match config::load(files, env) {
        Ok(config) => config,
        Err(err @ ConfigError::Semantic { .. }) => return semantic(&err.to_string()),
        Err(err) => {
            eprintln!("❌ {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(message) = Engine::new(&config) {
        return semantic(&message);
    }
    if strict && !config.unread.is_empty() {
        eprintln!("❌ Configuration has keys nothing reads (--strict):");
        for unread in &config.unread {
            eprintln!("  - {unread}");
        }
        return ExitCode::from(EXIT_USAGE);
    }
    for unread in &config.unread {
        eprintln!("⚠️  {unread}");
    }
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

/// The original's report of a config that reads but does not hold together.
fn semantic(message: &str) -> ExitCode {
    eprintln!("❌ Configuration has semantic errors:\n  - {message}");
    ExitCode::from(EXIT_USAGE)
}
