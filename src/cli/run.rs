//! `model-compose run [WORKFLOW] --input JSON`: run one workflow and print its output.
//! A streamed output is printed inline as it arrives (D11).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde_json::Value;

use compose::component::Binary;
use compose::config::Config;
use compose::media::{guess_type, Blob};
use compose::metrics::Usage;
use compose::record::{Output, RunRecord, Status};
use compose::workflow::{Access, RunRequest, Watch};
use compose::{Engine, JobNews, RunError, RunOutput};

use super::ask::Terminal;
use super::{fail, RunArgs, EXIT_FAILURE, EXIT_USAGE};

/// Exit status after Ctrl-C, as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// Runs the workflow; exit 0 on success, 1 when the run fails, 2 for usage or config errors.
pub fn run(config: Config, args: RunArgs) -> ExitCode {
    let input = match read_input(args.input.as_deref(), &args.files) {
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
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(err) => return fail(EXIT_FAILURE, &format!("cannot start the runtime: {err}")),
    };
    let context = serde_json::json!({ "task_id": ulid::Ulid::new().to_string() });
    // The local servers of http-server components run for the run, as under `up` (not OD24).
    let outcome = runtime.block_on(async {
        if let Err(err) = engine.start_services().await {
            return Some(Err(Failure::Run(RunError::Flow(err))));
        }
        let outcome = tokio::select! {
            outcome = execute(&engine, &request, context, &args) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        };
        engine.stop_services().await;
        outcome
    });
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        // As in the task state: no secret substituted from the environment is ever printed.
        Some(Err(err)) => fail(
            EXIT_FAILURE,
            &compose::error::redact(&err.to_string(), engine.secrets()),
        ),
        None => fail(EXIT_INTERRUPTED, &"interrupted"),
    }
}

/// `--input`: JSON, or `@FILE` holding JSON; absent means `{}`. Each `--file NAME=PATH`
/// adds that file's bytes as the input `NAME`.
fn read_input(input: Option<&str>, files: &[String]) -> Result<Value, String> {
    let text = match input {
        None => "{}".to_string(),
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read --input file {path}: {err}"))?,
            None => arg.to_string(),
        },
    };
    let mut input: Value =
        serde_json::from_str(&text).map_err(|err| format!("--input is not valid JSON: {err}"))?;
    for file in files {
        let (name, path) = file
            .split_once('=')
            .ok_or_else(|| format!("--file {file}: write it NAME=PATH"))?;
        let bytes =
            std::fs::read(path).map_err(|err| format!("cannot read --file {path}: {err}"))?;
        let blob = Blob {
            media_type: guess_type(path),
            name: Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            bytes,
        };
        let Value::Object(fields) = &mut input else {
            return Err("--file needs --input to be a JSON object".into());
        };
        fields.insert(name.to_string(), Value::String(blob.to_data_uri()));
    }
    Ok(input)
}

/// Writes a binary output to `-o FILE`, or to standard output when that is not a terminal.
async fn write_bytes(mut binary: Binary, output_file: Option<&Path>) -> Result<(), Failure> {
    let mut sink: Box<dyn Write> = match output_file {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None if std::io::stdout().is_terminal() => {
            return Err(Failure::Terminal(binary.content_type));
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut written = 0;
    while let Some(chunk) = binary.chunks.next().await {
        let chunk = chunk?;
        sink.write_all(&chunk)?;
        written += chunk.len();
    }
    sink.flush()?;
    if let Some(path) = output_file {
        eprintln!(
            "wrote {written} bytes ({}) to {}",
            binary.content_type,
            path.display()
        );
    }
    Ok(())
}

/// Why printing the output failed: the run, or writing the result.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    #[error(
        "the output is binary ({0}): write it to a file with -o FILE, or redirect standard output"
    )]
    Terminal(String),
}

/// Runs the request and prints its output; a tracer (`tracer:`) gets the run as a trace, as
/// under `up`.
async fn execute(
    engine: &Engine,
    request: &RunRequest,
    context: Value,
    args: &RunArgs,
) -> Result<(), Failure> {
    let task_id = context["task_id"].as_str().unwrap_or_default().to_string();
    let spans = engine.traces().run(&task_id, &request.workflow().id, None);
    let usage = Arc::<Usage>::default();
    let (started_at, started) = (crate::store::now_ms(), Instant::now());
    let observer = |news: &JobNews<'_>| spans.job(news);
    let watch = Watch {
        observer: &observer,
        usage: Arc::clone(&usage),
        answerer: &Terminal {
            auto_resume: args.auto_resume,
        },
        traced: Some(&spans),
    };
    let printed = print(engine, request, context, watch, args.output.as_deref()).await;
    if spans.exporting() {
        let (output, error) = match &printed {
            Ok(output) => (output.clone(), None),
            Err(Failure::Run(err)) => (None, Some(err.failure(engine.secrets()))),
            Err(other) => (None, Some(RunError::Flow(other.to_string()).failure(&[]))),
        };
        let record = RunRecord {
            task_id,
            workflow_id: request.workflow().id.clone(),
            input: request.input().clone(),
            output,
            status: match error {
                None => Status::Completed,
                Some(_) => Status::Failed,
            },
            error,
            started_at,
            first_chunk_ms: None,
            duration_ms: i64::try_from(started.elapsed().as_millis()).ok(),
            request_id: None,
            trace_id: spans.trace_id(),
            usage: usage.count().reported(),
            uploads: Vec::new(),
            interrupt: Vec::new(),
            jobs: Vec::new(),
        };
        spans.end(&record, None);
    }
    printed.map(drop)
}

/// Runs the request with `watch` and prints its output as it comes (bytes to `output_file`);
/// gives what it printed (nothing for bytes).
async fn print(
    engine: &Engine,
    request: &RunRequest,
    context: Value,
    watch: Watch<'_>,
    output_file: Option<&Path>,
) -> Result<Option<Output>, Failure> {
    let output = engine.run_observed(request, context, watch).await?;
    let mut stdout = std::io::stdout().lock();
    let (text, output) = match output {
        RunOutput::Stream(mut pieces) => {
            let mut text = String::new();
            let mut outcome = Ok(());
            while let Some(piece) = pieces.next().await {
                match piece {
                    // The answer's text; an agent's other steps are not printed.
                    Ok(piece) => {
                        if let Some(piece) = piece.text() {
                            stdout.write_all(piece.as_bytes())?;
                            stdout.flush()?;
                            text.push_str(piece);
                        }
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
            (text.clone(), Output::Text(text))
        }
        RunOutput::Bytes(binary) => return write_bytes(binary, output_file).await.map(|()| None),
        RunOutput::Value(Value::Null) => (String::new(), Output::Json(Value::Null)),
        RunOutput::Value(value) => {
            let text = match &value {
                Value::String(text) => text.clone(),
                Value::Object(_) | Value::Array(_) => {
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                }
                other => other.to_string(),
            };
            writeln!(stdout, "{text}")?;
            (text, Output::Json(value))
        }
    };
    if let Some(path) = output_file {
        std::fs::write(path, text)?;
    }
    Ok(Some(output))
}
