//! `model-compose.yml`: discovery, loading and the typed configuration.
//!
//! Files are found as the original finds them (`-f FILE`..., else `model-compose.yml` then
//! `model-compose.yaml` in the working directory); several files are deep-merged left to right.

mod controller;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use controller::{Controller, WebUi, WebUiDriver};

/// File names looked up in the working directory when no `-f` is given.
pub const DEFAULT_FILES: [&str; 2] = ["model-compose.yml", "model-compose.yaml"];

/// A loaded configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {
    /// Servers: the API adapter and the web UI.
    #[serde(default)]
    pub controller: Controller,
}

/// Why a configuration could not be loaded; the message names the file and, where the
/// YAML parser gives one, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("model-compose.yml or model-compose.yaml not found in {0}")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}{location}: {message}")]
    Invalid {
        path: PathBuf,
        /// `:line:column`, or empty when the parser gives no position.
        location: String,
        message: String,
    },
}

/// Finds and loads the configuration: the given files, or the default file in the
/// working directory.
pub fn load(files: &[PathBuf]) -> Result<Config, ConfigError> {
    let files = if files.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        vec![discover(&cwd)?]
    } else {
        files.to_vec()
    };
    let mut merged: Option<serde_yaml::Value> = None;
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        if files.len() == 1 {
            // One file: deserialize straight from the text so type errors keep their position.
            return serde_yaml::from_str::<Option<Config>>(&text)
                .map(Option::unwrap_or_default)
                .map_err(|err| invalid(path, &err));
        }
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|err| invalid(path, &err))?;
        merged = Some(match merged {
            Some(base) => deep_merge(base, value),
            None => value,
        });
    }
    let value = merged.unwrap_or(serde_yaml::Value::Null);
    if value.is_null() {
        return Ok(Config::default());
    }
    serde_yaml::from_value(value).map_err(|err| invalid(&joined(&files), &err))
}

/// The default configuration file in `dir`.
pub fn discover(dir: &Path) -> Result<PathBuf, ConfigError> {
    DEFAULT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ConfigError::NotFound(dir.to_path_buf()))
}

fn invalid(path: &Path, err: &serde_yaml::Error) -> ConfigError {
    let location = err
        .location()
        .map(|at| format!(":{}:{}", at.line(), at.column()))
        .unwrap_or_default();
    let mut message = err.to_string();
    if !location.is_empty() {
        message = without_position(&message);
    }
    ConfigError::Invalid {
        path: path.to_path_buf(),
        location,
        message,
    }
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

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mc-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn webui_defaults_to_gradio_on_8081() {
        let dir = temp_dir("defaults");
        let path = write(&dir, "a.yml", "controller:\n  webui: {}\n");
        let webui = load(&[path]).unwrap().controller.webui.unwrap();
        assert_eq!(webui.driver, WebUiDriver::Gradio);
        assert_eq!((webui.host.as_str(), webui.port), ("127.0.0.1", 8081));
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let dir = temp_dir("empty");
        let path = write(&dir, "a.yml", "");
        assert!(load(&[path]).unwrap().controller.webui.is_none());
    }

    #[test]
    fn malformed_yaml_names_file_line_and_column() {
        let dir = temp_dir("malformed");
        let path = write(
            &dir,
            "bad.yml",
            "controller:\n  webui:\n    port: 8081\n   host: x\n",
        );
        let err = load(std::slice::from_ref(&path)).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:4:", path.display())), "{err}");
        assert!(!err.contains("at line 4 column 4"), "{err}");
    }

    #[test]
    fn wrong_type_names_position() {
        let dir = temp_dir("wrongtype");
        let path = write(&dir, "bad.yml", "controller:\n  webui:\n    port: high\n");
        let err = load(&[path]).unwrap_err().to_string();
        assert!(
            err.contains(":3:11: controller.webui.port: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn port_zero_is_rejected() {
        let dir = temp_dir("portzero");
        let path = write(&dir, "bad.yml", "controller:\n  webui:\n    port: 0\n");
        let err = load(&[path]).unwrap_err().to_string();
        assert!(err.contains("port must be between 1 and 65535"), "{err}");
    }

    #[test]
    fn later_files_override_earlier_ones() {
        let dir = temp_dir("merge");
        let a = write(
            &dir,
            "a.yml",
            "controller:\n  webui:\n    port: 9000\n    host: 0.0.0.0\n",
        );
        let b = write(&dir, "b.yml", "controller:\n  webui:\n    port: 9001\n");
        let webui = load(&[a, b]).unwrap().controller.webui.unwrap();
        assert_eq!((webui.host.as_str(), webui.port), ("0.0.0.0", 9001));
    }

    #[test]
    fn discovery_prefers_yml_and_reports_the_directory() {
        let dir = temp_dir("discover");
        assert!(matches!(discover(&dir), Err(ConfigError::NotFound(_))));
        write(&dir, "model-compose.yaml", "");
        assert!(discover(&dir).unwrap().ends_with("model-compose.yaml"));
        write(&dir, "model-compose.yml", "");
        assert!(discover(&dir).unwrap().ends_with("model-compose.yml"));
    }
}
