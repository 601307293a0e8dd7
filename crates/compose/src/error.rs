//! Why a run failed. Every message is for people: no traceback, and no secret (the values
//! substituted from the environment are redacted before a message leaves the engine).

use std::time::Duration;

use super::binding::BindingError;

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
    #[error("{0}")]
    Binding(#[from] BindingError),
    #[error("{0}")]
    Unsupported(String),
}

impl RunError {
    /// The HTTP status that fits: 400 for the caller's input, 502 for upstream trouble,
    /// 504 for a timeout, 404 for an unknown workflow, else 500.
    pub fn http_status(&self) -> u16 {
        match self {
            RunError::MissingInput(_)
            | RunError::InvalidInput { .. }
            | RunError::InputNotObject(_) => 400,
            RunError::WorkflowNotFound(_) => 404,
            RunError::Upstream { .. }
            | RunError::Transport(_)
            | RunError::Stream(_)
            | RunError::UnexpectedType { .. } => 502,
            RunError::Timeout(_) | RunError::Silent(_) => 504,
            RunError::Binding(_) | RunError::Unsupported(_) => 500,
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// Replaces every secret in `text` with `[redacted]`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| secret.len() >= 4)
        .fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "[redacted]")
        })
}
