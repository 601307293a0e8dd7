//! The `shell` component (spec §12, D27): runs a program with its arguments, never through a
//! shell unless the config itself says `sh -c`. `${...}` is rendered inside each argument, and
//! a value never becomes more than one argument. The command gets the config's environment
//! (`env`, `${env.X}`) and `PATH`, `HOME`, `LANG`, nothing else of the server's: an API key
//! reaches no tool by accident. stdin is empty unless the action gives one; stdout and stderr
//! are capped; a timeout or a cancelled run kills the command's whole process group.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::Output;
use crate::binding::{interpolate_text, Binding, BindingError, Expr, Owner, Scope};
use crate::config;
use crate::error::RunError;
use crate::fetch::Fetcher;

/// What stdout or stderr may hold unless the action says otherwise.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// The server's variables a command gets (D27).
const PASSED_ON: [&str; 3] = ["PATH", "HOME", "LANG"];

/// A shell component: its environment and where relative working directories start.
pub struct Shell {
    env: Vec<(String, Binding)>,
    base_dir: PathBuf,
    pub actions: Vec<Arc<Command>>,
}

/// A shell action, its templates compiled.
pub struct Command {
    /// One argv, or a batch of them.
    argvs: Vec<Vec<Binding>>,
    batch: bool,
    batch_size: usize,
    working_dir: Option<Binding>,
    env: Vec<(String, Binding)>,
    stdin: Option<Binding>,
    timeout: Option<Duration>,
    max_output: usize,
    /// `None` when absent or exactly `${result}`: the result is the output.
    output: Option<Binding>,
}

fn compile_env(env: &Map<String, Value>) -> Result<Vec<(String, Binding)>, BindingError> {
    env.iter()
        .map(|(key, value)| Ok((key.clone(), Binding::compile(value)?)))
        .collect()
}

impl Command {
    fn compile(action: &config::Action) -> Result<Self, BindingError> {
        let argv = |items: &[Value]| items.iter().map(Binding::compile).collect();
        let (argvs, batch) = match &action.command {
            Some(Value::Array(items)) if items.iter().all(Value::is_array) && !items.is_empty() => {
                let argvs = items
                    .iter()
                    .filter_map(Value::as_array)
                    .map(|items| argv(items))
                    .collect::<Result<_, _>>()?;
                (argvs, true)
            }
            Some(Value::Array(items)) => (vec![argv(items)?], false),
            _ => (Vec::new(), false),
        };
        let text = |text: &Option<String>| {
            text.as_ref()
                .map(|t| Binding::compile(&Value::String(t.clone())))
                .transpose()
        };
        Ok(Self {
            argvs,
            batch,
            batch_size: action.batch_size.unwrap_or(1).max(1),
            working_dir: text(&action.working_dir)?,
            env: compile_env(&action.env)?,
            stdin: action.stdin.as_ref().map(Binding::compile).transpose()?,
            timeout: action.timeout.map(|t| t.0),
            max_output: action.max_output_size.map_or(MAX_OUTPUT, |s| s.0),
            output: action
                .output
                .as_ref()
                .map(Binding::compile)
                .transpose()?
                .filter(|output| !output.is_exactly("result")),
        })
    }

    /// Every expression, in order: the output's, then the command's, then the rest.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        out.extend(self.output.iter().flat_map(Binding::exprs));
        out.extend(self.argvs.iter().flatten().flat_map(Binding::exprs));
        for binding in self.working_dir.iter().chain(&self.stdin) {
            out.extend(binding.exprs());
        }
        out.extend(self.env.iter().flat_map(|(_, b)| b.exprs()));
        out
    }

    /// The output template, when the action maps its result.
    pub fn output(&self) -> Option<&Binding> {
        self.output.as_ref()
    }

    /// Whether an argument is built from the job's input (a caller's, through the API).
    pub fn reads_input(&self) -> bool {
        self.argvs.iter().flatten().any(|arg| arg.reads(&["input"]))
    }
}

impl Shell {
    /// Compiles a configured shell component; relative directories start at `dir` (the
    /// config's) unless it names a `base_dir`.
    pub fn new(config: &config::Shell, dir: &Path) -> Result<Self, BindingError> {
        Ok(Self {
            env: compile_env(&config.env)?,
            base_dir: match &config.base_dir {
                Some(base) => dir.join(expand_home(base)),
                None => dir.to_path_buf(),
            },
            actions: config
                .actions
                .iter()
                .map(|a| Command::compile(a).map(Arc::new))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Runs the action's command (or batch) for this job input, and maps the result through
    /// the action's `output`.
    pub async fn call(
        &self,
        command: &Command,
        (input, owner): (Value, Owner<'_>),
        context: &Value,
        fetcher: &Fetcher,
    ) -> Result<Output, RunError> {
        let scope = Scope::new()
            .with_owned("input", &input, owner)
            .with("context", context);
        let run = Prepared::new(self, command, fetcher, &scope).await?;
        let mut argvs = Vec::with_capacity(command.argvs.len());
        for argv in &command.argvs {
            argvs.push(render_argv(argv, fetcher, &scope).await?);
        }
        let result = if command.batch {
            // `batch_size` at a time, results in the commands' order.
            let mut results = Vec::with_capacity(argvs.len());
            for batch in argvs.chunks(command.batch_size) {
                let mut running = Vec::with_capacity(batch.len());
                for argv in batch {
                    running.push(run.run(argv));
                }
                results.extend(futures::future::try_join_all(running).await?);
            }
            Value::Array(results)
        } else {
            match argvs.first() {
                Some(argv) => run.run(argv).await?,
                None => Value::Null,
            }
        };
        Ok(Output::Value(match &command.output {
            Some(output) => {
                let scope = scope.with("result", &result);
                fetcher.render(output, scope).await?
            }
            None => result,
        }))
    }
}

/// What every command of one call shares: where it runs, its environment, its stdin.
struct Prepared<'a> {
    dir: PathBuf,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    command: &'a Command,
}

impl<'a> Prepared<'a> {
    async fn new(
        shell: &Shell,
        command: &'a Command,
        fetcher: &Fetcher,
        scope: &Scope<'_>,
    ) -> Result<Self, RunError> {
        let dir = match &command.working_dir {
            Some(dir) => {
                let dir = fetcher.render(dir, scope.clone()).await?;
                shell.base_dir.join(expand_home(&interpolate_text(&dir)))
            }
            None => shell.base_dir.clone(),
        };
        let mut env: Vec<(String, String)> = PASSED_ON
            .iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
            .collect();
        for (name, value) in shell.env.iter().chain(&command.env) {
            let value = interpolate_text(&fetcher.render(value, scope.clone()).await?);
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value));
        }
        let stdin = match &command.stdin {
            Some(stdin) => {
                Some(interpolate_text(&fetcher.render(stdin, scope.clone()).await?).into_bytes())
            }
            None => None,
        };
        Ok(Self {
            dir,
            env,
            stdin,
            command,
        })
    }

    /// Runs one argv to its end: `{stdout, stderr, exit_code}`. A non-zero exit is not an
    /// error (as the original); a signal's is its number, negated (as Python reports it).
    async fn run(&self, argv: &[String]) -> Result<Value, RunError> {
        let shown = argv.join(" ");
        let failed = |reason: String| RunError::Command {
            command: shown.clone(),
            reason,
        };
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| failed("the command is empty".into()))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(match self.stdin {
                Some(_) => Stdio::piped(),
                None => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| failed(spawn_error(&err, &self.dir)))?;
        // Until the command has exited, dropping this (a cancelled run) kills its group.
        let mut group = Group(child.id());
        let stdin = child.stdin.take();
        let feed = async {
            if let (Some(mut pipe), Some(bytes)) = (stdin, &self.stdin) {
                // A command that does not read its input closes the pipe: not an error.
                let _ = pipe.write_all(bytes).await;
            }
        };
        let max = self.command.max_output;
        let out = read_capped(child.stdout.take(), max, "stdout");
        let err = read_capped(child.stderr.take(), max, "stderr");
        let finished = async {
            let ((), out, err) = tokio::join!(feed, out, err);
            let status = child.wait().await.map_err(|e| failed(e.to_string()))?;
            Ok::<_, RunError>((out.map_err(failed)?, err.map_err(failed)?, status))
        };
        let (out, err, status) = match self.command.timeout {
            Some(limit) => match tokio::time::timeout(limit, finished).await {
                Ok(finished) => finished?,
                Err(_) => return Err(failed(format!("timed out after {} s", limit.as_secs_f64()))),
            },
            None => finished.await?,
        };
        group.0 = None;
        let exit_code = status.code().or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            status.signal().map(|signal| -signal)
        });
        Ok(json!({
            "stdout": text(out, "stdout").map_err(failed)?,
            "stderr": text(err, "stderr").map_err(failed)?,
            "exit_code": exit_code,
        }))
    }
}

/// A command's process group, killed when dropped (unless the command has exited).
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.and_then(|id| i32::try_from(id).ok());
        if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
            // Gone already: nothing to kill.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Reads a pipe to its end, failing past `max` bytes.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    max: usize,
    name: &str,
) -> Result<Vec<u8>, String> {
    let Some(pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    pipe.take(limit)
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| format!("reading its {name}: {err}"))?;
    if bytes.len() > max {
        return Err(format!(
            "its {name} passed {} (max_output_size)",
            config::Size(max)
        ));
    }
    Ok(bytes)
}

/// Output as the original gives it: UTF-8 text, spaces and newlines around it removed.
fn text(bytes: Vec<u8>, name: &str) -> Result<String, String> {
    String::from_utf8(bytes)
        .map(|text| text.trim().to_string())
        .map_err(|err| format!("its {name} is not UTF-8 text: {err}"))
}

/// Each argument rendered: a value inside a text is interpolated; a whole value that is a
/// text, a number or a boolean is that text; anything else (null, a list, a mapping) cannot
/// be one argument.
async fn render_argv(
    argv: &[Binding],
    fetcher: &Fetcher,
    scope: &Scope<'_>,
) -> Result<Vec<String>, RunError> {
    let mut rendered = Vec::with_capacity(argv.len());
    for (i, arg) in argv.iter().enumerate() {
        rendered.push(match fetcher.render(arg, scope.clone()).await? {
            Value::String(text) => text,
            value @ (Value::Number(_) | Value::Bool(_)) => value.to_string(),
            other => {
                return Err(RunError::Binding(BindingError::new(format!(
                    "command[{i}] renders to {}, not a text: one argument is one value",
                    crate::binding::a_type(&other)
                ))))
            }
        });
    }
    Ok(rendered)
}

fn spawn_error(err: &std::io::Error, dir: &Path) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound if !dir.is_dir() => {
            format!("its working directory {} does not exist", dir.display())
        }
        std::io::ErrorKind::NotFound => "no such program (is it on the PATH?)".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string(),
    }
}

/// `~` and `~/…` as the home directory.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}
