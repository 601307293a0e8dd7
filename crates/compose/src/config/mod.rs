//! `model-compose.yml`: discovery, loading and the typed configuration.
//!
//! Files are found as the original finds them (`-f FILE`..., else `model-compose.yml` then
//! `model-compose.yaml` in the working directory); several files are deep-merged left to right.

mod component;
mod controller;
mod duration;
mod env;
mod exposure;
mod interrupt;
mod locate;
mod mcp;
mod model;
mod recovery;
mod routing;
mod size;
mod tracer;
mod unread;
mod validate;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use controller::{
    Adapter, AdapterKind, Controller, History, KeepAlive, Limits, Origins, Retention, WebSocket,
    WebUi, WebUiDriver,
};
pub use duration::{time_zone, Duration};
pub use env::{Env, Sources};
pub use exposure::{Allowed, FetchSettings, FileSettings, SessionSettings};
pub use interrupt::{Interrupts, Pause, PauseCondition};
pub use locate::Place;
pub use mcp::McpTransport;
pub use recovery::{Backoff, OnError, Retry};
pub use routing::{Case, Condition, Route};
pub use size::Size;
pub use tracer::{Capture, OtlpProtocol, TraceExporter, Tracer};
pub use unread::Unread;

use crate::error::redact;
use locate::Positions;
pub use model::*;

/// File names looked up in the working directory when no `-f` is given.
pub const DEFAULT_FILES: [&str; 2] = ["model-compose.yml", "model-compose.yaml"];

/// A loaded, checked configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Servers: the API adapter and the web UI.
    pub controller: Controller,
    pub components: Vec<Component>,
    pub workflows: Vec<Workflow>,
    /// The file(s) it came from, for messages.
    pub source: PathBuf,
    /// The directory of the (first) config file: relative paths start here.
    pub dir: PathBuf,
    /// Values substituted from the environment: never to be shown in logs or responses.
    pub secrets: Vec<String>,
    /// A PEM file of certificates to trust beside the built-in roots: `SSL_CERT_FILE` of the
    /// environment the config was loaded with (see [`Sources`]), as written there.
    pub trusted_roots: Option<PathBuf>,
    /// The keys nothing reads, in the order they were found: told as warnings (errors for
    /// `validate --strict`).
    pub unread: Vec<Unread>,
    /// `tracer:` / `tracers:`: where runs are exported as traces.
    pub tracers: Vec<Tracer>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    controller: Controller,
    component: Option<Component>,
    components: Option<Vec<Component>>,
    workflow: Option<Workflow>,
    workflows: Option<Vec<Workflow>>,
    tracer: Option<Tracer>,
    tracers: Option<Vec<Tracer>>,
}

/// Why a configuration could not be loaded; the message names the file and, where there is
/// one, the line and column. No message shows a value taken from the environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("model-compose.yml or model-compose.yaml not found in {0}")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Env { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    /// The file reads, but what it says does not hold together (a missing reference, a cycle).
    #[error("{path}{}: {message}", location.map(|p| p.to_string()).unwrap_or_default())]
    Semantic {
        path: PathBuf,
        location: Option<Place>,
        message: String,
    },
    #[error("{path}{}: {message}", location.map(|p| p.to_string()).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        location: Option<Place>,
        message: String,
    },
}

/// One file as it was read, and after `${env...}` substitution.
struct Source {
    path: PathBuf,
    original: String,
    substituted: env::Substituted,
    /// Where its keys are, read once when a message first needs a place.
    positions: std::cell::OnceCell<Positions>,
}

impl Source {
    /// Where the keys of the original text are.
    fn positions(&self) -> &Positions {
        self.positions.get_or_init(|| Positions::of(&self.original))
    }

    /// The place in the original text of a byte offset in the substituted one.
    fn place(&self, offset: usize) -> Place {
        Place::at(&self.original, self.substituted.original_offset(offset))
    }
}

/// Finds and loads the configuration: the given files, or the default file in the working
/// directory, with the environment `sources` describes.
pub fn load(files: &[PathBuf], sources: &Sources) -> Result<Config, ConfigError> {
    let files = if files.is_empty() {
        vec![discover(&sources.cwd)?]
    } else {
        files.to_vec()
    };
    let env = Env::load(sources)?;
    let mut read = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        // Editors that write a byte-order mark mean nothing by it.
        let original = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
        let substituted = env::substitute(&original, &env).map_err(|err| {
            let (offset, message) = match err {
                env::EnvError::Missing { name, offset } => (
                    offset,
                    format!(
                        "environment variable '{name}' is not set and no default value provided"
                    ),
                ),
                env::EnvError::Malformed { offset } => (
                    offset,
                    "a reference to the environment is written ${env.NAME} or \
                     ${env.NAME | default}"
                        .to_string(),
                ),
            };
            ConfigError::Invalid {
                path: path.clone(),
                location: Some(Place::at(&original, offset)),
                message,
            }
        })?;
        read.push(Source {
            path: path.clone(),
            original,
            substituted,
            positions: std::cell::OnceCell::new(),
        });
    }
    let mut secrets: Vec<String> = read
        .iter()
        .flat_map(|source| source.substituted.used.iter().cloned())
        .collect();
    let (raw, unread) = parse(&read).map_err(|err| err.redacted(&secrets))?;
    // Access keys written in the file itself are as secret as those from the environment.
    secrets.extend(raw.controller.access_keys.iter().cloned());
    secrets.retain(|s| !s.is_empty());
    let unread = unread
        .into_iter()
        .map(|path| {
            let path = redact(&path, &secrets);
            let at = locate(&read, std::slice::from_ref(&path));
            Unread::new(path, at)
        })
        .collect();
    let config = Config {
        controller: raw.controller,
        components: one_or_many(raw.components, raw.component),
        workflows: one_or_many(raw.workflows, raw.workflow),
        tracers: one_or_many(raw.tracers, raw.tracer),
        source: joined(&files),
        // `-f model-compose.yml` is in the working directory, whose name is `.`, not ``.
        dir: files[0]
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        secrets,
        trusted_roots: env
            .get("SSL_CERT_FILE")
            .filter(|path| !path.is_empty())
            .map(PathBuf::from),
        unread,
    };
    validate::check(&config).map_err(|problem| {
        let (path, location) = locate(&read, &problem.at);
        ConfigError::Semantic {
            path,
            location,
            message: redact(&problem.message, &config.secrets),
        }
    })?;
    Ok(config)
}

impl ConfigError {
    /// The same error with every secret in its message replaced.
    fn redacted(self, secrets: &[String]) -> Self {
        match self {
            ConfigError::Invalid {
                path,
                location,
                message,
            } => ConfigError::Invalid {
                path,
                location,
                message: redact(&message, secrets),
            },
            other => other,
        }
    }
}

/// The file and place of the first of `paths` (alternative spellings of one key) that a file
/// has; the last file wins, as it does when files are merged.
fn locate(read: &[Source], paths: &[String]) -> (PathBuf, Option<Place>) {
    read.iter()
        .rev()
        .find_map(|source| {
            source
                .positions()
                .find(paths)
                .map(|place| (source.path.clone(), Some(place)))
        })
        .unwrap_or_else(|| {
            let files: Vec<PathBuf> = read.iter().map(|s| s.path.clone()).collect();
            (joined(&files), None)
        })
}

/// Parses one file straight from its text (so type errors keep their position), or
/// several files deep-merged left to right; with the paths of the keys nothing read.
fn parse(read: &[Source]) -> Result<(RawConfig, Vec<String>), ConfigError> {
    let mut unread = Vec::new();
    let mut skipped = |path: serde_ignored::Path<'_>| unread.push(unread::path_of(&path));
    if let [source] = read {
        let yaml = serde_yaml::Deserializer::from_str(&source.substituted.text);
        let yaml = serde_ignored::Deserializer::new(yaml, &mut skipped);
        let raw = serde_path_to_error::deserialize::<_, Option<RawConfig>>(yaml)
            .map(Option::unwrap_or_default)
            .map_err(|err| {
                let path = err.path().to_string();
                invalid_text(source, err.into_inner(), Some(&path))
            })?;
        return Ok((raw, unread));
    }
    let mut merged = serde_yaml::Value::Null;
    for source in read {
        let value: serde_yaml::Value = serde_yaml::from_str(&source.substituted.text)
            .map_err(|err| invalid_text(source, err, None))?;
        merged = if merged.is_null() {
            value
        } else {
            deep_merge(merged, value)
        };
    }
    if merged.is_null() {
        return Ok((RawConfig::default(), unread));
    }
    let files: Vec<PathBuf> = read.iter().map(|s| s.path.clone()).collect();
    let raw =
        serde_ignored::deserialize(merged, &mut skipped).map_err(|err| ConfigError::Invalid {
            path: joined(&files),
            location: None,
            message: err.to_string(),
        })?;
    Ok((raw, unread))
}

/// A YAML error at its place in the original text. serde_yaml places a value of the wrong type
/// well, but a value refused by a check of ours at the start of the mapping around it: then
/// the key at `path` (where the error was found) is the better place. Some syntax errors come
/// without a place when the text is read into the typed config; reading it as plain YAML may
/// tell where. A text that falls apart into several documents is reported where the second
/// one starts.
fn invalid_text(source: &Source, err: serde_yaml::Error, path: Option<&str>) -> ConfigError {
    let text = &source.substituted.text;
    let at = |err: &serde_yaml::Error| err.location().map(|at| source.place(at.index()));
    let invalid = |location, message: String| ConfigError::Invalid {
        path: source.path.clone(),
        location,
        message,
    };
    if let Some(place) = at(&err) {
        let key = path.and_then(|path| source.positions().find(&[path]));
        let place = key.filter(|key| *key >= place).unwrap_or(place);
        return invalid(Some(place), without_position(&err.to_string()));
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Err(located) if located.location().is_some() => {
            invalid(at(&located), without_position(&located.to_string()))
        }
        Err(_) if err.to_string().contains("more than one document") => {
            let second = Positions::of(text)
                .second_document(text)
                .map(|place| source.place(place.offset_in(text)));
            invalid(
                second,
                "a second YAML document starts here (a `---` line, a line indented less \
                 than the first one, or text after a closed `{}` or `[]`)"
                    .into(),
            )
        }
        _ => invalid(None, err.to_string()),
    }
}

/// The default configuration file in `dir`.
pub fn discover(dir: &Path) -> Result<PathBuf, ConfigError> {
    DEFAULT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ConfigError::NotFound(dir.to_path_buf()))
}

/// serde_yaml writes " at line L column C" into its messages; the position is already in front.
fn without_position(message: &str) -> String {
    let Some(at) = message.find(" at line ") else {
        return message.to_string();
    };
    let rest = &message[at..];
    let end = rest
        .find("column ")
        .map(|c| c + "column ".len())
        .map(|c| c + rest[c..].bytes().take_while(u8::is_ascii_digit).count())
        .unwrap_or(0);
    format!("{}{}", &message[..at], &rest[end..])
}

/// Merges `over` into `base`: mappings merge key by key, anything else is replaced.
fn deep_merge(base: serde_yaml::Value, over: serde_yaml::Value) -> serde_yaml::Value {
    use serde_yaml::Value;
    match (base, over) {
        (Value::Mapping(mut base), Value::Mapping(over)) => {
            for (key, value) in over {
                let merged = match base.remove(&key) {
                    Some(old) => deep_merge(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Mapping(base)
        }
        (_, over) => over,
    }
}

/// Several paths shown as one (`a.yml + b.yml`), for errors found after merging.
fn joined(files: &[PathBuf]) -> PathBuf {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    PathBuf::from(names.join(" + "))
}

#[cfg(test)]
mod tests {
    use super::*;

    use testkit::Workdir;

    /// The error of loading `yaml` (as `a.yml` in a fresh directory) and the file's path.
    fn error_of(yaml: &str) -> (Workdir, PathBuf, String) {
        let dir = Workdir::empty();
        let path = dir.write("a.yml", yaml);
        let err = load_with(&dir, std::slice::from_ref(&path), &[])
            .unwrap_err()
            .to_string();
        (dir, path, err)
    }

    /// Loads in `dir` with exactly the variables `vars`: nothing from the process.
    fn load_with(
        dir: &Workdir,
        files: &[PathBuf],
        vars: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        super::load(files, &Sources::isolated(&dir.path, vars))
    }

    fn load(dir: &Workdir, files: &[PathBuf]) -> Result<Config, ConfigError> {
        load_with(dir, files, &[])
    }

    #[test]
    fn webui_defaults_to_gradio_on_8081() {
        let dir = Workdir::empty();
        let path = dir.write("a.yml", "controller:\n  webui: {}\n");
        let webui = load(&dir, &[path]).unwrap().controller.webui.unwrap();
        assert_eq!(webui.driver, WebUiDriver::Gradio);
        assert_eq!((webui.host.as_str(), webui.port), ("127.0.0.1", 8081));
    }

    #[test]
    fn mcp_is_served_beside_the_api_or_by_its_own_adapter() {
        let dir = Workdir::empty();
        let controller = |yaml: &str| {
            let path = dir.write("a.yml", yaml);
            load(&dir, &[path]).map(|config| config.controller)
        };
        assert_eq!(controller("controller: {}\n").unwrap().mcp, None);
        assert_eq!(
            controller("controller: {mcp: true}\n")
                .unwrap()
                .mcp
                .as_deref(),
            Some("/mcp")
        );
        assert_eq!(
            controller("controller: {mcp: {path: /tools/}}\n")
                .unwrap()
                .mcp
                .as_deref(),
            Some("/tools")
        );
        let adapter = controller("controller:\n  adapter: {type: mcp-server, transport: stdio}\n")
            .unwrap()
            .adapters
            .remove(0);
        assert_eq!(adapter.kind, AdapterKind::McpServer);
        assert_eq!(adapter.transport, McpTransport::Stdio);
        for (yaml, said) in [
            ("controller: {mcp: {path: tools}}\n", "mcp.path must start with /"),
            ("controller:\n  adapter: {type: grpc}\n", "unknown variant `grpc`"),
            (
                "controller:\n  adapter: {type: mcp-server, transport: sse}\n",
                "unknown variant `sse`",
            ),
            (
                "controller:\n  adapter: {type: mcp-server, disable_dns_rebinding_protection: true, \
                 allowed_hosts: [x]}\n",
                "takes no allowed_hosts or allowed_origins",
            ),
        ] {
            let err = controller(yaml).unwrap_err().to_string();
            assert!(err.contains(said), "{yaml}: {err}");
        }
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let dir = Workdir::empty();
        let path = dir.write("a.yml", "");
        assert!(load(&dir, &[path]).unwrap().controller.webui.is_none());
    }

    #[test]
    fn malformed_yaml_names_file_line_and_column() {
        let (_dir, path, err) = error_of("controller:\n  webui:\n    port: 8081\n   host: x\n");
        assert!(err.starts_with(&format!("{}:4:", path.display())), "{err}");
        assert!(!err.contains("at line 4 column 4"), "{err}");
    }

    #[test]
    fn a_second_document_is_located() {
        let (_dir, path, err) = error_of("  controller:\ncontroller:");
        assert!(
            err.starts_with(&format!("{}:2:1: a second YAML document", path.display())),
            "{err}"
        );
        let (_dir, path, err) = error_of("{}[");
        assert!(
            err.starts_with(&format!("{}:1:3: a second YAML document", path.display())),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_position() {
        let (_dir, _, err) = error_of("controller:\n  webui:\n    port: high\n");
        assert!(
            err.contains(":3:11: controller.webui.port: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn ports_beyond_65535_are_rejected_and_0_means_any() {
        let (_dir, _, err) = error_of("controller:\n  webui:\n    port: 65536\n");
        assert!(
            err.contains("port must be between 1 and 65535 (or 0 for any free port), got 65536"),
            "{err}"
        );
        let dir = Workdir::empty();
        let path = dir.write("a.yml", "controller:\n  webui:\n    port: 0\n");
        assert_eq!(
            load(&dir, &[path]).unwrap().controller.webui.unwrap().port,
            0
        );
    }

    #[test]
    fn later_files_override_earlier_ones() {
        let dir = Workdir::empty();
        let a = dir.write(
            "a.yml",
            "controller:\n  webui:\n    port: 9000\n    host: 0.0.0.0\n",
        );
        let b = dir.write("b.yml", "controller:\n  webui:\n    port: 9001\n");
        let webui = load(&dir, &[a, b]).unwrap().controller.webui.unwrap();
        assert_eq!((webui.host.as_str(), webui.port), ("0.0.0.0", 9001));
    }

    #[test]
    fn discovery_prefers_yml_and_reports_the_directory() {
        let dir = Workdir::empty();
        assert!(matches!(discover(&dir.path), Err(ConfigError::NotFound(_))));
        dir.write("model-compose.yaml", "");
        assert!(discover(&dir.path).unwrap().ends_with("model-compose.yaml"));
        dir.write("model-compose.yml", "");
        assert!(discover(&dir.path).unwrap().ends_with("model-compose.yml"));
    }

    use testkit::SEED;

    #[test]
    fn the_seed_loads_with_its_default_ids() {
        let dir = Workdir::empty();
        let path = dir.write("model-compose.yml", SEED);
        let config = load_with(&dir, &[path], &[("OPENAI_API_KEY", "sk-seed-test")]).unwrap();
        let [Component::HttpClient(client)] = config.components.as_slice() else {
            panic!("one component expected")
        };
        assert_eq!(client.id, DEFAULT_COMPONENT_ID);
        assert_eq!(
            client.base_url.as_deref(),
            Some("https://api.openai.com/v1")
        );
        let action = &client.actions[0];
        assert_eq!(action.id, DEFAULT_ACTION_ID);
        assert_eq!(action.path.as_deref(), Some("/chat/completions"));
        assert_eq!(action.stream_format, Some(StreamFormat::Json));
        assert_eq!(action.headers["Authorization"], "Bearer sk-seed-test");
        let workflow = &config.workflows[0];
        assert_eq!(workflow.id, DEFAULT_WORKFLOW_ID);
        assert_eq!(workflow.title.as_deref(), Some("Chat with OpenAI GPT-4o"));
        assert_eq!(workflow.jobs[0].id, DEFAULT_JOB_ID);
        assert_eq!(workflow.jobs[0].component.to_string(), DEFAULT_REF);
        assert_eq!(config.secrets, ["sk-seed-test"]);
        assert_eq!(config.controller.webui.unwrap().port, 8081);
    }

    #[test]
    fn overrides_beat_the_env_file() {
        let dir = Workdir::empty();
        let path = dir.write("model-compose.yml", SEED);
        let env_file = dir.write("vars.env", "OPENAI_API_KEY=from-file");
        let sources = Sources {
            env_files: vec![env_file],
            overrides: vec!["OPENAI_API_KEY=from-flag".into()],
            ..Sources::isolated(&dir.path, &[("OPENAI_API_KEY", "from-process")])
        };
        let config = super::load(&[path], &sources).unwrap();
        assert_eq!(config.secrets, ["from-flag"]);
    }

    #[test]
    fn the_trusted_roots_come_from_the_sources_not_the_process() {
        let dir = Workdir::empty();
        let path = dir.write("model-compose.yml", SEED);
        let key = ("OPENAI_API_KEY", "k");
        let config = load_with(&dir, std::slice::from_ref(&path), &[key]).unwrap();
        assert_eq!(config.trusted_roots, None);
        let given = [key, ("SSL_CERT_FILE", "certs/ca.pem")];
        let config = load_with(&dir, std::slice::from_ref(&path), &given).unwrap();
        assert_eq!(config.trusted_roots, Some(PathBuf::from("certs/ca.pem")));
        let empty = [key, ("SSL_CERT_FILE", "")];
        let config = load_with(&dir, std::slice::from_ref(&path), &empty).unwrap();
        assert_eq!(config.trusted_roots, None);
    }

    #[test]
    fn a_missing_env_variable_names_file_line_and_column() {
        let dir = Workdir::empty();
        let path = dir.write("model-compose.yml", SEED);
        let err = load_with(&dir, std::slice::from_ref(&path), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:24:29: environment variable 'OPENAI_API_KEY' is not set and no default value provided",
                path.display()
            )
        );
    }

    #[test]
    fn an_unknown_component_type_is_named() {
        let (_dir, _, err) = error_of("component:\n  type: model\n");
        assert!(
            err.contains(":2:9: component.type: unknown variant `model`, expected one of `http-client`, `shell`, `workflow`"),
            "{err}"
        );
    }

    #[test]
    fn a_job_naming_a_missing_component_is_named() {
        let yaml =
            "components:\n  - id: a\n    type: http-client\n    action: {endpoint: http://x}\n\
                    workflow:\n  job:\n    component: b\n";
        let (_dir, path, err) = error_of(yaml);
        assert_eq!(
            err,
            format!(
                "{}:7:5: workflow '__workflow__' job '__job__': component 'b' not found",
                path.display()
            )
        );
    }

    #[test]
    fn plural_forms_win_over_singular_ones() {
        let dir = Workdir::empty();
        let yaml = "component: {type: http-client, id: single, action: {endpoint: http://x}}\n\
                    components:\n  - {type: http-client, id: many, actions: [{endpoint: http://y, id: a}, {endpoint: http://z, id: b, default: true}]}\n\
                    workflows:\n  - id: w\n    jobs:\n      - {id: j1}\n      - {id: j2, depends_on: [j1]}\n";
        let path = dir.write("a.yml", yaml);
        let config = load(&dir, &[path]).unwrap();
        assert_eq!(config.components.len(), 1);
        assert_eq!(config.components[0].id(), "many");
        assert_eq!(
            config.workflows[0].jobs[1].depends_on,
            vec![vec!["j1".to_string()]]
        );
    }

    #[test]
    fn an_action_needs_exactly_one_of_endpoint_and_path() {
        let (_dir, _, err) = error_of("component: {type: http-client, action: {path: /x}}\n");
        assert!(
            err.ends_with("uses 'path' but 'base_url' is not set in the component"),
            "{err}"
        );
    }

    #[test]
    fn dependency_cycles_are_refused() {
        let yaml = "component: {type: http-client, action: {endpoint: http://x}}\n\
                    workflow:\n  jobs:\n    - {id: a, depends_on: [b]}\n    - {id: b, depends_on: [a]}\n";
        let (_dir, _, err) = error_of(yaml);
        assert!(err.ends_with("the jobs' depends_on form a cycle"), "{err}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// YAML-ish text: config keys, indentation, flow syntax and `${env...}`.
        fn config_text() -> impl Strategy<Value = String> {
            let pieces = prop::sample::select(vec![
                "controller:",
                "webui:",
                "port: ",
                "8081",
                "component:",
                "type: http-client",
                "workflow:",
                "job:",
                "components:",
                "- ",
                "  ",
                "\n",
                ": ",
                "[",
                "]",
                "{",
                "}",
                ",",
                "\"",
                "'",
                "#",
                "${env.X}",
                "${env.Y | d}",
                "action:",
                "endpoint: http://x",
                "path: /p",
                "base_url: http://b",
                "id: a",
                "depends_on: [a]",
                "0",
                "-1",
            ]);
            prop::collection::vec(pieces, 0..50).prop_map(|parts| parts.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn loading_never_panics_and_syntax_errors_have_a_position(text in config_text()) {
                let dir = Workdir::empty();
                let path = dir.write("model-compose.yml", &text);
                let sources = Sources::isolated(&dir.path, &[("X", "1")]);
                if let Err(err) = super::super::load(&[path], &sources) {
                    let syntax = serde_yaml::from_str::<serde_yaml::Value>(&text.replace("${env.X}", "1")).is_err();
                    if syntax && !text.contains("${env.Y") {
                        let message = err.to_string();
                        let position = message.split(": ").next().unwrap_or("");
                        prop_assert!(
                            position.rsplit(':').take(2).all(|n| n.parse::<usize>().is_ok()),
                            "no line:column in {}", message
                        );
                    }
                }
            }
        }
    }
}
