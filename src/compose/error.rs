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
    #[error("{0}")]
    Binding(#[from] BindingError),
    #[error("{0}")]
    Unsupported(String),
}

impl RunError {
    /// The HTTP status of the upstream, for errors that carry one.
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            RunError::Upstream { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the caller's input was at fault (a 400 rather than a 502).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            RunError::MissingInput(_) | RunError::InvalidInput { .. } | RunError::InputNotObject(_)
        )
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
