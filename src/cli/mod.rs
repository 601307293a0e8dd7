//! The command line: `model-compose [-f FILE]... COMMAND`, with the subcommands of the original
//! (up, down, start, stop, run, validate). Each command is a thin door into the engine.

mod ask;
mod run;
mod up;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use compose::config;

/// Exit status for usage and configuration errors (clap uses the same).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when a command started but failed.
pub const EXIT_FAILURE: u8 = 1;

/// The environment variables the commands read, for `--help`.
const ENVIRONMENT: &str = "Environment:
  SSL_CERT_FILE
          A PEM file of certificates to trust for HTTPS upstreams, besides the built-in roots
  MODEL_COMPOSE_LOG
          What to log, as a tracing filter (`debug`, `model_compose=trace`)
  MODEL_COMPOSE_LOG_FORMAT
          `text` (the default) or `json`";

#[derive(Debug, Parser)]
#[command(
    name = "model-compose",
    version,
    about = "Compose workflows of model APIs from a model-compose.yml and serve them",
    long_about = "Compose workflows of model APIs from a model-compose.yml: serve them as a REST API \
                  with Server-Sent Events and a web UI (`up`), or run one workflow from the \
                  command line (`run`).\n\nWithout -f, model-compose.yml (or model-compose.yaml) \
                  is read from the current directory.",
    after_long_help = ENVIRONMENT
)]
pub struct Cli {
    /// Configuration file; repeat to merge several, later files override earlier ones
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the API server and the web UI in the foreground (or detached with -d)
    Up(UpArgs),
    /// Ask a server started in this directory to stop, then tear down
    Down(EnvArgs),
    /// Start the servers in the foreground, skipping the set-up phase
    Start(EnvArgs),
    /// Ask a server started in this directory to stop
    Stop(EnvArgs),
    /// Run one workflow and print its output
    Run(RunArgs),
    /// Check the configuration and report what it defines
    Validate(ValidateArgs),
}

/// Environment options shared by every command.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Read variables from this file instead of ./.env (repeatable; later files win)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Set a variable, overriding .env and the environment (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Log more detail
    #[arg(short, long)]
    pub verbose: bool,
    /// How log lines are written: `text` for people, `json` (one object per line) for log
    /// collectors
    #[arg(
        long = "log-format",
        value_enum,
        value_name = "FORMAT",
        env = "MODEL_COMPOSE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl EnvArgs {
    fn sources(&self) -> config::Sources {
        config::Sources::of_this_process(self.env_files.clone(), self.env.clone())
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run in the background: returns once the server is ready (printing where it serves) or
    /// failed to start; stop it with `model-compose down` from the same directory
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub env: EnvArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow to run (default: the only workflow, or the one marked `default: true`)
    pub workflow: Option<String>,
    /// Input as JSON, or @FILE to read it from a file
    #[arg(short, long, value_name = "JSON")]
    pub input: Option<String>,
    /// Give the input NAME the bytes of a file (an image, audio); repeat for several
    #[arg(long = "file", value_name = "NAME=PATH")]
    pub files: Vec<String>,
    /// Write the final output to this file (bytes as they are: audio, images)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Go on at every interrupt without asking (as if Enter were pressed at each)
    #[arg(long)]
    pub auto_resume: bool,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// `validate`'s options.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Fail on keys nothing reads (by default they are warnings: a typo, or a block this
    /// implementation does not have)
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// Parses the command line, runs the command and maps the outcome to an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (verbose, format) = logging(&cli.command);
    init_tracing(verbose, format);
    match cli.command {
        Command::Up(args) if args.detach => up::detach(),
        Command::Up(UpArgs { env, .. }) | Command::Start(env) => {
            with_config(&cli.files, &env, up::run)
        }
        Command::Down(_) | Command::Stop(_) => up::request_stop(),
        Command::Run(args) => match config::load(&cli.files, &args.env.sources()) {
            Ok(config) => run::run(config, args),
            Err(err) => fail(EXIT_USAGE, &err),
        },
        Command::Validate(args) => validate::run(&cli.files, &args.env.sources(), args.strict),
    }
}

/// `-v` and `--log-format` of the command.
fn logging(command: &Command) -> (bool, LogFormat) {
    let env = match command {
        Command::Up(args) => &args.env,
        Command::Run(args) => &args.env,
        Command::Validate(args) => &args.env,
        Command::Down(args) | Command::Start(args) | Command::Stop(args) => args,
    };
    (env.verbose, env.log_format)
}

fn init_tracing(verbose: bool, format: LogFormat) {
    // The MCP SDK logs every session's start and end at INFO: details for `--verbose`.
    let default = if verbose {
        "info,model_compose=debug"
    } else {
        "info,rmcp=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODEL_COMPOSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A log nobody reads any more (`up -d` after its parent left) is no reason to stop.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// Loads the configuration, then runs `command` with it; configuration errors exit 2.
fn with_config(
    files: &[PathBuf],
    env: &EnvArgs,
    command: fn(config::Config) -> ExitCode,
) -> ExitCode {
    match config::load(files, &env.sources()) {
        Ok(config) => command(config),
        Err(err) => fail(EXIT_USAGE, &err),
    }
}

/// Prints `error: <message>` on stderr (if anyone still reads it) and returns `code`.
fn fail(code: u8, err: &dyn std::fmt::Display) -> ExitCode {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "error: {err}");
    ExitCode::from(code)
}

/// The runtime `up` and `run` run workflows on: its threads get the stack a run needs
/// ([`compose::workflow::RUN_STACK`]), whatever the build.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(compose::workflow::RUN_STACK)
        .build()
}
