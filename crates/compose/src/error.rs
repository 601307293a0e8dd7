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
    /// The run's output grew past `controller.max_output`.
    #[error("the output grew past {} (controller.max_output): the run was stopped", crate::config::Size(*.0))]
    OutputTooLarge(usize),
    /// The file of extra trusted certificates cannot be used (see `upstream::client`).
    #[error("SSL_CERT_FILE {path}: {reason}")]
    TrustedRoots { path: String, reason: String },
}

impl RunError {
    /// The HTTP status that fits: 400 for the caller's input, 502 for upstream trouble,
    /// 504 for a timeout, 404 for an unknown workflow, else 500.
    pub fn http_status(&self) -> u16 {
        match self {
            RunError::MissingInput(_)
            | RunError::InvalidInput { .. }
            | RunError::InputNotObject(_)
            | RunError::NotAllowed { .. } => 400,
            RunError::WorkflowNotFound(_) => 404,
            RunError::Upstream { .. }
            | RunError::Transport(_)
            | RunError::Unreachable { .. }
            | RunError::Stream(_)
            | RunError::Fetch { .. }
            | RunError::UnexpectedType { .. }
            | RunError::OutputTooLarge(_) => 502,
            RunError::Timeout(_) | RunError::Silent(_) => 504,
            RunError::Binding(_) | RunError::Unsupported(_) | RunError::TrustedRoots { .. } => 500,
        }
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

/// What a person can do about a run's error, from its message (so that it works for errors
/// recorded in the history too); `None` when there is nothing more to say than the message.
pub fn hint(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("can't reach the model server at ") {
        let (host, detail) = rest.split_once(": ").unwrap_or((rest, ""));
        if detail.contains("certificate") {
            return Some(format!(
                "The model server at {host} has a certificate this server does not trust. If \
                 your own CA signed it, name the CA's file in SSL_CERT_FILE."
            ));
        }
        return Some(format!(
            "Can't reach the model server at {host}. Is it running?"
        ));
    }
    if let Some(rest) = message.strip_prefix("upstream returned ") {
        let status: u16 = rest.split([':', ' ']).next()?.parse().ok()?;
        return Some(match status {
            401 | 403 => format!(
                "The model server refused the API key ({status}). Check the key in the .env file."
            ),
            404 => "The model server does not know this address or model (404).".into(),
            429 => "The model server is limiting requests (429). Wait a moment, then retry.".into(),
            500..=599 => format!("The model server failed ({status}). Retry in a moment."),
            _ => return None,
        });
    }
    if message.starts_with("upstream sent nothing for") {
        return Some("The model server stopped answering.".into());
    }
    if message.starts_with("upstream did not finish within") {
        return Some("The answer took longer than the workflow allows.".into());
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_what_people_can_act_on() {
        let unreachable = RunError::Unreachable {
            host: "127.0.0.1:9".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(
            hint(&unreachable.to_string()).as_deref(),
            Some("Can't reach the model server at 127.0.0.1:9. Is it running?")
        );
        let untrusted = RunError::Unreachable {
            host: "127.0.0.1:9".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(
            hint(&untrusted.to_string()).as_deref(),
            Some(
                "The model server at 127.0.0.1:9 has a certificate this server does not trust. \
                 If your own CA signed it, name the CA's file in SSL_CERT_FILE."
            )
        );
        let refused = RunError::Upstream {
            status: 401,
            message: "Incorrect API key".into(),
        };
        assert!(hint(&refused.to_string())
            .unwrap()
            .contains("API key (401)"));
        assert!(hint("upstream returned 503: busy")
            .unwrap()
            .contains("(503)"));
        assert_eq!(hint("input.prompt is required"), None);
    }
}
