//! Why a run failed. Every message is for people: no traceback, and no secret (the values
//! substituted from the environment are redacted before a message leaves the engine).

use std::time::Duration;

use serde_json::json;

use super::binding::BindingError;
use crate::record::{Failure, FailureKind};

/// A run's failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("workflow not found: {0}")]
    WorkflowNotFound(String),
    #[error("input.{0} is required")]
    MissingInput(String),
    #[error("input.{field} must be {expected}, got {got}")]
    InvalidInput {
        field: String,
        expected: String,
        got: String,
    },
    #[error("input must be a JSON object, got {0}")]
    InputNotObject(String),
    /// The upstream answered with an error status before sending anything useful.
    #[error("upstream returned {status}: {message}")]
    Upstream { status: u16, message: String },
    /// The request could not be sent or its response could not be read.
    #[error("upstream request failed: {0}")]
    Transport(String),
    /// Nothing answered at the upstream's address (refused, unreachable, no such host).
    #[error("can't reach the model server at {host}: {detail}")]
    Unreachable { host: String, detail: String },
    /// The response stream broke after it started.
    #[error("upstream stream failed: {0}")]
    Stream(String),
    #[error("upstream did not finish within {}", seconds(*.0))]
    Timeout(Duration),
    /// The upstream sent nothing for the action's `read_timeout` (D18).
    #[error("upstream sent nothing for {}", seconds(*.0))]
    Silent(Duration),
    /// The upstream answered with a type of content nothing here can read.
    #[error("upstream returned {status} with content type {content_type:?}, not JSON, an event stream or text")]
    UnexpectedType { status: u16, content_type: String },
    /// A `;url` body could not be read.
    #[error("cannot fetch {url} (`;url`): {reason}")]
    Fetch { url: String, reason: String },
    /// A caller's value names a link or a file callers may not reach (D32).
    #[error("{what}: {reason}")]
    NotAllowed { what: String, reason: String },
    #[error("{0}")]
    Binding(BindingError),
    #[error("{0}")]
    Unsupported(String),
    /// A `shell` command could not start, timed out, or wrote more than allowed.
    #[error("command `{command}`: {reason}")]
    Command { command: String, reason: String },
    /// The workflow's jobs cannot go on: none can run, one ran too often, a router has no
    /// route (spec §13.2).
    #[error("{0}")]
    Flow(String),
    /// The run's output grew past `controller.max_output`.
    #[error("the output grew past {} (controller.max_output): the run was stopped", crate::config::Size(*.0))]
    OutputTooLarge(usize),
    /// The file of extra trusted certificates cannot be used (see `upstream::Trust`).
    #[error("SSL_CERT_FILE {path}: {reason}")]
    TrustedRoots { path: String, reason: String },
}

impl RunError {
    /// The failure as recorded and shown: its kind, the HTTP status that fits (400 for the
    /// caller's input, 404 for an unknown workflow, 502 for upstream trouble, 504 for a
    /// timeout, else 500), the message with every secret in `secrets` redacted, and the
    /// kind's particulars.
    pub fn failure(&self, secrets: &[String]) -> Failure {
        let (kind, detail) = match self {
            RunError::MissingInput(_)
            | RunError::InvalidInput { .. }
            | RunError::InputNotObject(_) => (FailureKind::Input, None),
            RunError::NotAllowed { .. } => (FailureKind::NotAllowed, None),
            RunError::WorkflowNotFound(workflow) => (
                FailureKind::WorkflowNotFound,
                Some(json!({ "workflow": workflow })),
            ),
            RunError::Upstream { status, .. } => (
                FailureKind::UpstreamStatus,
                Some(json!({ "status": status })),
            ),
            RunError::UnexpectedType { status, .. } => (
                FailureKind::UnexpectedContent,
                Some(json!({ "status": status })),
            ),
            RunError::Unreachable { host, detail } => {
                let kind = if detail.contains("certificate") {
                    FailureKind::UntrustedCertificate
                } else {
                    FailureKind::Unreachable
                };
                (kind, Some(json!({ "host": redact(host, secrets) })))
            }
            RunError::Transport(_) => (FailureKind::Transport, None),
            RunError::Stream(_) => (FailureKind::Stream, None),
            RunError::Timeout(_) => (FailureKind::Timeout, None),
            RunError::Silent(_) => (FailureKind::Silent, None),
            RunError::Fetch { .. } => (FailureKind::Fetch, None),
            RunError::OutputTooLarge(_) => (FailureKind::OutputTooLarge, None),
            RunError::Command { .. } => (FailureKind::Command, None),
            RunError::Binding(_)
            | RunError::Unsupported(_)
            | RunError::Flow(_)
            | RunError::TrustedRoots { .. } => (FailureKind::Config, None),
        };
        let failure = Failure::new(kind, redact(&self.to_string(), secrets));
        match detail {
            Some(detail) => failure.with_detail(detail),
            None => failure,
        }
    }

    /// The HTTP status that fits (see [`RunError::failure`]).
    pub fn http_status(&self) -> u16 {
        self.failure(&[]).http_status
    }
}

impl From<BindingError> for RunError {
    fn from(err: BindingError) -> Self {
        match err.refusal() {
            Some((what, reason)) => RunError::NotAllowed {
                what: what.to_string(),
                reason: reason.to_string(),
            },
            None => RunError::Binding(err),
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// Replaces every secret in `text` with `[redacted]`: as written, base64-encoded (in either
/// alphabet, padded or not) and URL-encoded; and, for secrets that look like credentials (no
/// space, not a URL, [`COPY`] characters or more), any copy of [`COPY`] or more of their
/// characters, of those encodings too (a key cut short in a message, or inside a longer
/// base64 text such as HTTP Basic credentials).
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| secret.len() >= 4)
        .fold(text.to_string(), |text, secret| {
            let whole = encodings(secret)
                .iter()
                .fold(text, |text, form| text.replace(form.as_str(), "[redacted]"));
            if !is_credential(secret) {
                return whole;
            }
            copy_forms(secret)
                .iter()
                .fold(whole, |text, form| redact_copies(&text, form))
        })
}

/// The secrets and what [`redact`] looks for, worked out once: every form of each secret
/// whole, and each [`COPY`]-byte window of a credential's copy forms, so that telling whether
/// a text holds a secret costs a few searches and a lookup per byte, not the forms' making.
pub struct Redactor {
    secrets: std::sync::Arc<[String]>,
    whole: Vec<String>,
    copies: std::collections::HashSet<[u8; COPY]>,
}

impl Redactor {
    pub fn new(secrets: std::sync::Arc<[String]>) -> Self {
        let kept = secrets.iter().filter(|secret| secret.len() >= 4);
        let whole = kept.clone().flat_map(|secret| encodings(secret)).collect();
        let copies = kept
            .filter(|secret| is_credential(secret))
            .flat_map(|secret| copy_forms(secret))
            .flat_map(|form| {
                let windows: Vec<[u8; COPY]> = form
                    .as_bytes()
                    .windows(COPY)
                    .filter_map(|window| window.try_into().ok())
                    .collect();
                windows
            })
            .collect();
        Self {
            secrets,
            whole,
            copies,
        }
    }

    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// Whether `text` holds a secret, whole or a copy of part of one.
    pub fn touches(&self, text: &str) -> bool {
        self.whole.iter().any(|form| text.contains(form.as_str()))
            || text.as_bytes().windows(COPY).any(|window| {
                <[u8; COPY]>::try_from(window).is_ok_and(|w| self.copies.contains(&w))
            })
    }

    /// `text` redacted as [`redact`] does, when it holds a secret.
    pub fn text(&self, text: &str) -> Option<String> {
        self.touches(text).then(|| redact(text, &self.secrets))
    }

    /// `value` with every text in it redacted; `None` when nothing in it needed it (the value
    /// is then shown as it is, without a copy).
    pub fn value(&self, value: &serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match value {
            Value::String(text) => self.text(text).map(Value::String),
            Value::Array(items) => {
                let changed: Vec<Option<Value>> =
                    items.iter().map(|item| self.value(item)).collect();
                changed.iter().any(Option::is_some).then(|| {
                    let kept = items.iter().zip(changed);
                    Value::Array(
                        kept.map(|(item, new)| new.unwrap_or_else(|| item.clone()))
                            .collect(),
                    )
                })
            }
            Value::Object(map) => {
                let changed: Vec<Option<Value>> =
                    map.values().map(|item| self.value(item)).collect();
                changed.iter().any(Option::is_some).then(|| {
                    let kept = map.iter().zip(changed);
                    Value::Object(
                        kept.map(|((key, item), new)| {
                            (key.clone(), new.unwrap_or_else(|| item.clone()))
                        })
                        .collect(),
                    )
                })
            }
            _ => None,
        }
    }
}

/// The shortest copy of part of a credential that counts as a copy of it.
pub const COPY: usize = 12;

/// A value that looks like a key or a token, whose fragments are secret too (unlike a URL or
/// a sentence from the environment, whose fragments are ordinary text).
fn is_credential(secret: &str) -> bool {
    secret.len() >= COPY
        && secret.is_ascii()
        && !secret.contains(char::is_whitespace)
        && !secret.contains("://")
}

/// The secret as written, in base64 and URL-encoded.
fn encodings(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut forms = vec![secret.to_string()];
    for engine in [&STANDARD, &URL_SAFE] {
        forms.push(engine.encode(secret));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    );
    forms.push(form_encoded(secret));
    forms.sort();
    forms.dedup();
    // Longest first, so that a form is not cut by another it contains.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms
}

/// `application/x-www-form-urlencoded`: spaces as `+`, the rest percent-encoded.
fn form_encoded(secret: &str) -> String {
    secret
        .split(' ')
        .map(|part| {
            percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// What a copy of part of a credential may be cut from: the credential, its URL-encoded
/// form, and its base64 at each of the three offsets it may have inside a longer text (the
/// characters that depend on what comes before or after dropped).
fn copy_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut forms = vec![secret.to_string(), form_encoded(secret)];
    for shift in 0..3usize {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(secret.as_bytes());
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            // The first characters encode the made-up prefix too; the last may lack bytes
            // the real text has after the secret.
            let start = (shift * 4).div_ceil(3);
            let end = encoded.len().saturating_sub(3);
            if end > start + COPY {
                forms.push(encoded[start..end].to_string());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `text` with every run of [`COPY`] or more characters that appears in `form` redacted.
fn redact_copies(text: &str, form: &str) -> String {
    let (bytes, form) = (text.as_bytes(), form.as_bytes());
    let inside = |part: &[u8]| form.windows(part.len()).any(|window| window == part);
    // Where a copy may start: where one of the form's windows of [`COPY`] bytes occurs (found
    // with memchr's searcher, so that a long text costs a few fast scans, not a scan of the
    // form at each of its bytes).
    let mut starts: Vec<usize> = form
        .windows(COPY)
        .flat_map(|window| memchr::memmem::find_iter(bytes, window))
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for at in starts {
        if at < copied {
            continue;
        }
        let mut end = at + COPY;
        while end < bytes.len() && inside(&bytes[at..=end]) {
            end += 1;
        }
        // A copy is ASCII (the credential is), so `at` and `end` are character boundaries.
        out.push_str(&text[copied..at]);
        out.push_str("[redacted]");
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redactor_finds_what_redact_hides_and_leaves_the_rest_alone() {
        let secrets: std::sync::Arc<[String]> = vec![
            "sk-test-0123456789abcdef".to_string(),
            "hunter2 pw".to_string(),
        ]
        .into();
        let redactor = Redactor::new(std::sync::Arc::clone(&secrets));
        let value = serde_json::json!({
            "a": "key sk-test-0123456789abcdef here",
            "b": ["cut sk-test-01234567", "c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVm"],
            "c": "pw hunter2 pw!",
            "d": 42,
            "e": "nothing to see"
        });
        let shown = redactor.value(&value).unwrap();
        for field in ["a", "c"] {
            assert_eq!(
                shown[field],
                serde_json::json!(redact(value[field].as_str().unwrap(), &secrets))
            );
            assert!(
                shown[field].as_str().unwrap().contains("[redacted]"),
                "{shown}"
            );
        }
        assert!(!shown.to_string().contains("0123456789"), "{shown}");
        assert_eq!((&shown["d"], &shown["e"]), (&value["d"], &value["e"]));
        assert_eq!(
            redactor.value(&serde_json::json!({"x": "plain", "y": [1, "ok"]})),
            None
        );
        assert!(!redactor.touches("hunter2"));
    }

    #[test]
    fn each_error_is_a_failure_of_its_kind_with_what_its_hint_needs() {
        let unreachable = RunError::Unreachable {
            host: "127.0.0.1:9".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(
            unreachable.failure(&[]).hint().as_deref(),
            Some("Can't reach the model server at 127.0.0.1:9. Is it running?")
        );
        let untrusted = RunError::Unreachable {
            host: "127.0.0.1:9".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(
            untrusted.failure(&[]).kind,
            FailureKind::UntrustedCertificate
        );
        let refused = RunError::Upstream {
            status: 401,
            message: "Incorrect API key sk-secret-key".into(),
        };
        let failure = refused.failure(&["sk-secret-key".into()]);
        assert_eq!(failure.kind, FailureKind::UpstreamStatus);
        assert_eq!(failure.http_status, 502);
        assert_eq!(
            failure.message,
            "upstream returned 401: Incorrect API key [redacted]"
        );
        assert!(failure.hint().unwrap().contains("API key (401)"));
        let unreadable = RunError::UnexpectedType {
            status: 500,
            content_type: "image/gif".into(),
        };
        assert_eq!(unreadable.failure(&[]).hint(), None);
        let slow = RunError::Timeout(Duration::from_secs(2)).failure(&[]);
        assert_eq!((slow.kind, slow.http_status), (FailureKind::Timeout, 504));
        let missing = RunError::MissingInput("prompt".into()).failure(&[]);
        assert_eq!((missing.http_status, missing.hint()), (400, None));
    }

    #[test]
    fn a_secret_is_redacted_in_every_form_and_any_copy_of_12_characters() {
        use base64::Engine;
        let key = "sk-test-0123456789abcdef".to_string();
        let secrets = [key.clone(), "https://api.example.com/v1".to_string()];
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{key}"));
        for (leak, shown) in [
            (format!("key {key}!"), "key [redacted]!".to_string()),
            (
                format!("cut: {}…", &key[..14]),
                "cut: [redacted]…".to_string(),
            ),
            (
                format!("end: …{}", &key[9..]),
                "end: …[redacted]".to_string(),
            ),
            (
                format!(
                    "b64 {}",
                    base64::engine::general_purpose::STANDARD.encode(&key)
                ),
                "b64 [redacted]".to_string(),
            ),
            (
                format!(
                    "url {}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key)
                ),
                "url [redacted]".to_string(),
            ),
            (
                format!("q=a%20{}", key.replace('-', "%2D")),
                "q=a%20[redacted]".to_string(),
            ),
            // Basic credentials: the key's base64 at another offset, inside a longer text.
            (format!("Authorization: Basic {basic}"), String::new()),
            // Fragments of what is not a credential stay (only the whole is redacted).
            (
                "GET https://api.example.com/v2".to_string(),
                "GET https://api.example.com/v2".to_string(),
            ),
            (
                "at https://api.example.com/v1/x".to_string(),
                "at [redacted]/x".to_string(),
            ),
            (
                "sk-test-0123 is short".to_string(),
                "[redacted] is short".to_string(),
            ),
            (
                "sk-test-012 is shorter".to_string(),
                "sk-test-012 is shorter".to_string(),
            ),
        ] {
            let redacted = redact(&leak, &secrets);
            if shown.is_empty() {
                assert!(!redacted.contains(&basic[8..]), "{leak} → {redacted}");
                assert!(redacted.contains("[redacted]"), "{leak} → {redacted}");
            } else {
                assert_eq!(redacted, shown, "{leak}");
            }
        }
        // Text around a copy is kept whole, in any script.
        assert_eq!(
            redact(&format!("세계 {key} 끝"), &secrets),
            "세계 [redacted] 끝"
        );
    }
}
