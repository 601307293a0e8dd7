//! The environment a config is loaded with, and `${env.X}` substitution in the raw text
//! (spec §1.2): `.env` (or `--env-file`s), overridden by the process environment, overridden by
//! `-e KEY=VALUE`. Substitution happens before YAML parsing, as in the original.
//!
//! Nothing here reads the process itself: the working directory and the environment are
//! passed in ([`Sources`]), so that a test, or a program embedding the engine, decides them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Variables visible to `${env.X}`.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

/// What a configuration is read with besides its files: the working directory and where the
/// variables come from, lowest precedence first.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Where the default config file and `./.env` are looked up.
    pub cwd: PathBuf,
    /// `--env-file` files; when empty, `cwd/.env` is read if it exists.
    pub env_files: Vec<PathBuf>,
    /// The process environment.
    pub process: Vec<(String, String)>,
    /// `-e KEY=VALUE` entries.
    pub overrides: Vec<String>,
}

impl Sources {
    /// This process's working directory and environment, with the command line's env files
    /// and overrides.
    pub fn of_this_process(env_files: Vec<PathBuf>, overrides: Vec<String>) -> Self {
        Self {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            env_files,
            process: std::env::vars().collect(),
            overrides,
        }
    }

    /// A directory and exactly these variables: nothing read from the process.
    pub fn isolated(cwd: &Path, vars: &[(&str, &str)]) -> Self {
        Self {
            cwd: cwd.to_path_buf(),
            process: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Self::default()
        }
    }
}

impl Env {
    /// Reads the files, the process environment and the overrides.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut vars = HashMap::new();
        let default_file = sources.cwd.join(".env");
        let files: Vec<PathBuf> = if sources.env_files.is_empty() {
            [default_file].into_iter().filter(|f| f.is_file()).collect()
        } else {
            sources.env_files.clone()
        };
        for file in files {
            let entries = dotenvy::from_path_iter(&file).map_err(|err| ConfigError::Env {
                path: file.clone(),
                message: err.to_string(),
            })?;
            for entry in entries {
                let (key, value) = entry.map_err(|err| ConfigError::Env {
                    path: file.clone(),
                    message: err.to_string(),
                })?;
                vars.insert(key, value);
            }
        }
        vars.extend(sources.process.iter().cloned());
        for entry in &sources.overrides {
            let (key, value) = entry.split_once('=').ok_or_else(|| {
                ConfigError::Usage(format!("invalid env entry {entry:?}: expected KEY=VALUE"))
            })?;
            vars.insert(key.to_string(), value.to_string());
        }
        Ok(Self { vars })
    }

    #[cfg(test)]
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: vars.into_iter().collect(),
        }
    }

    /// The value of a variable, if it is set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// Why a text could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvError {
    /// A `${env.NAME}` that has no value and no default.
    Missing {
        name: String,
        /// Byte offset of the `${` in the text.
        offset: usize,
    },
    /// `${env.` that is not `${env.NAME}` or `${env.NAME | default}`.
    Malformed { offset: usize },
}

/// A text with its `${env...}` references replaced, and how to find the original places.
#[derive(Debug, Clone, Default)]
pub struct Substituted {
    pub text: String,
    /// The values substituted (to keep out of logs and responses).
    pub used: Vec<String>,
    /// Each replacement: where it is in `text`, its length there, where the reference was in
    /// the original and its length there.
    spans: Vec<[usize; 4]>,
}

impl Substituted {
    /// The byte offset in the original text of `offset` in the substituted one: inside a
    /// substituted value, the reference it replaced.
    pub fn original_offset(&self, offset: usize) -> usize {
        match self.spans.iter().rev().find(|span| span[0] <= offset) {
            None => offset,
            Some(&[at, len, original, _]) if offset < at + len => original,
            Some(&[at, len, original, original_len]) => {
                offset - (at + len) + original + original_len
            }
        }
    }
}

/// Replaces every `${env.NAME}` and `${env.NAME | default}` in `text`.
pub fn substitute(text: &str, env: &Env) -> Result<Substituted, EnvError> {
    let mut out = Substituted {
        text: String::with_capacity(text.len()),
        ..Substituted::default()
    };
    let mut rest_start = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("${") {
        let start = search + found;
        match env_ref(&text[start..]) {
            Some((name, default, len)) => {
                let value = match (env.get(name), default) {
                    (Some(value), _) => {
                        out.used.push(value.to_string());
                        value
                    }
                    (None, Some(default)) => default,
                    (None, None) => {
                        return Err(EnvError::Missing {
                            name: name.to_string(),
                            offset: start,
                        })
                    }
                };
                out.text.push_str(&text[rest_start..start]);
                out.spans.push([out.text.len(), value.len(), start, len]);
                out.text.push_str(value);
                rest_start = start + len;
                search = rest_start;
            }
            None if text[start + 2..].trim_start().starts_with("env.") => {
                return Err(EnvError::Malformed { offset: start })
            }
            None => search = start + 2,
        }
    }
    out.text.push_str(&text[rest_start..]);
    Ok(out)
}

/// Parses `${ env.NAME [as TYPE] [| default] }` at the start of `text`: name, default, length.
/// The type (the original's casts to `integer`, `number`, `boolean` or `string`) changes
/// nothing here: the value is substituted as text, and YAML reads it as what it spells.
fn env_ref(text: &str) -> Option<(&str, Option<&str>, usize)> {
    let body_start = 2 + leading_ws(&text[2..]);
    let after_env = text[body_start..].strip_prefix("env.")?;
    let name_len = after_env
        .find(|c: char| c.is_whitespace() || c == '|' || c == '}')
        .unwrap_or(after_env.len());
    if name_len == 0 {
        return None;
    }
    let name = &after_env[..name_len];
    let mut pos = text.len() - after_env.len() + name_len;
    pos += leading_ws(&text[pos..]);
    if let Some(cast) = text[pos..].strip_prefix("as") {
        let ws = leading_ws(cast);
        let kind = cast[ws..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(cast.len() - ws);
        if ws == 0 || kind == 0 {
            return None;
        }
        pos += 2 + ws + kind;
        pos += leading_ws(&text[pos..]);
    }
    let mut default = None;
    if text[pos..].starts_with('|') {
        pos += 1;
        let close = text[pos..].find('}')?;
        default = Some(text[pos..pos + close].trim());
        pos += close;
    }
    text[pos..]
        .starts_with('}')
        .then_some((name, default, pos + 1))
}

fn leading_ws(text: &str) -> usize {
    text.len() - text.trim_start().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_vars([
            ("KEY".to_string(), "sk-test".to_string()),
            ("EMPTY".to_string(), String::new()),
        ])
    }

    #[test]
    fn substitutes_values_and_defaults() {
        let cases = [
            ("Bearer ${env.KEY}", "Bearer sk-test"),
            ("${ env.KEY }", "sk-test"),
            ("${env.EMPTY | d}", ""),
            ("${env.NOPE | fallback}", "fallback"),
            ("${env.NOPE|a b c}", "a b c"),
            ("${env.NOPE | \"quoted\"}", "\"quoted\""),
            ("${input.x | ${env.NOPE | deep}}", "${input.x | deep}"),
            ("${env.KEY as string}", "sk-test"),
            ("${ env.KEY as integer | 3 }", "sk-test"),
            ("${input.prompt}", "${input.prompt}"),
            ("no refs", "no refs"),
            ("${env.KEY}${env.KEY}", "sk-testsk-test"),
        ];
        for (text, want) in cases {
            assert_eq!(substitute(text, &env()).unwrap().text, want, "{text}");
        }
    }

    #[test]
    fn reports_the_missing_variable_and_where() {
        let err = substitute("a: 1\nb: ${env.MISSING}\n", &env()).unwrap_err();
        assert_eq!(
            err,
            EnvError::Missing {
                name: "MISSING".into(),
                offset: 8
            }
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        for (text, offset) in [("a: ${env.}", 3), ("x ${env.X", 2), ("${ env.A B}", 0)] {
            assert_eq!(
                substitute(text, &env()).unwrap_err(),
                EnvError::Malformed { offset },
                "{text}"
            );
        }
    }

    #[test]
    fn remembers_the_substituted_secrets_and_where_they_came_from() {
        let done = substitute("Bearer ${env.KEY} ${env.NOPE | x}!", &env()).unwrap();
        assert_eq!(done.used, ["sk-test"]);
        assert_eq!(done.text, "Bearer sk-test x!");
        // "x" stands where `${env.NOPE | x}` started; "!" after it.
        assert_eq!(done.original_offset(7), 7);
        assert_eq!(done.original_offset(10), 7);
        assert_eq!(done.original_offset(15), 18);
        assert_eq!(done.original_offset(16), 33);
    }
}
