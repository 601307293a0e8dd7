//! `model-compose run [WORKFLOW] --input JSON`: run one workflow and print its output.
//! A streamed output is printed inline as it arrives (D11).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use futures::StreamExt;
use serde_json::Value;

use compose::config::Config;
use compose::workflow::{Access, RunRequest};
use compose::{Engine, RunError, RunOutput};

use super::{fail, RunArgs, EXIT_FAILURE, EXIT_USAGE};

/// Exit status after Ctrl-C, as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// Runs the workflow; exit 0 on success, 1 when the run fails, 2 for usage or config errors.
pub fn run(config: Config, args: RunArgs) -> ExitCode {
    let input = match read_input(args.input.as_deref()) {
        Ok(input) => input,
        Err(message) => return fail(EXIT_USAGE, &message),
    };
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(message) => return fail(EXIT_USAGE, &message),
    };
    let request = match engine.request(args.workflow.as_deref(), input, Access::All) {
        Ok(request) => request,
        Err(err @ RunError::WorkflowNotFound(_)) => {
            let known: Vec<&str> = engine.workflows().iter().map(|w| w.id.as_str()).collect();
            return fail(
                EXIT_USAGE,
                &format!("{err} (workflows: {})", known.join(", ")),
            );
        }
        Err(err) => return fail(EXIT_FAILURE, &err),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return fail(EXIT_FAILURE, &format!("cannot start the runtime: {err}")),
    };
    let context = serde_json::json!({ "task_id": ulid::Ulid::new().to_string() });
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = execute(&engine, &request, context, args.output.as_deref()) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(err)) => fail(EXIT_FAILURE, &err),
        None => fail(EXIT_INTERRUPTED, &"interrupted"),
    }
}

/// `--input`: JSON, or `@FILE` holding JSON; absent means `{}`.
fn read_input(input: Option<&str>) -> Result<Value, String> {
    let text = match input {
        None => return Ok(Value::Object(Default::default())),
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read --input file {path}: {err}"))?,
            None => arg.to_string(),
        },
    };
    serde_json::from_str(&text).map_err(|err| format!("--input is not valid JSON: {err}"))
}

/// Why printing the output failed: the run, or writing the result.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

async fn execute(
    engine: &Engine,
    request: &RunRequest,
    context: Value,
    output_file: Option<&Path>,
) -> Result<(), Failure> {
    let output = engine.run(request, context).await?;
    let mut stdout = std::io::stdout().lock();
    let text = match output {
        RunOutput::Stream(mut pieces) => {
            let mut text = String::new();
            let mut outcome = Ok(());
            while let Some(piece) = pieces.next().await {
                match piece {
                    Ok(piece) => {
                        stdout.write_all(piece.as_bytes())?;
                        stdout.flush()?;
                        text.push_str(&piece);
                    }
                    Err(err) => {
                        outcome = Err(err);
                        break;
                    }
                }
            }
            if !text.is_empty() {
                stdout.write_all(b"\n")?;
            }
            outcome?;
            text
        }
        RunOutput::Value(Value::Null) => String::new(),
        RunOutput::Value(value) => {
            let text = match &value {
                Value::String(text) => text.clone(),
                Value::Object(_) | Value::Array(_) => {
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                }
                other => other.to_string(),
            };
            writeln!(stdout, "{text}")?;
            text
        }
    };
    if let Some(path) = output_file {
        std::fs::write(path, text)?;
    }
    Ok(())
}
