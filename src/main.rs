//! The `model-compose` binary: parses the command line and hands off to [`model_compose::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    model_compose::cli::main()
}
