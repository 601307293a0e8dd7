//! Why a run failed, as every layer keeps and shows it: a kind to act on, the HTTP status that
//! fits, a message for people and the kind's particulars. The web UI's hints follow from the
//! kind, never from the wording of the message.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kind of failure it was: what a client or the web UI may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The caller's input is missing a value or has one of the wrong type.
    Input,
    /// A caller's value names a link or a file callers may not reach (D32).
    NotAllowed,
    /// No such workflow, or one callers may not run. Detail: `workflow`.
    WorkflowNotFound,
    /// The server is stopping and starts no run.
    ShuttingDown,
    /// The upstream answered with an error status. Detail: `status`, `host`.
    UpstreamStatus,
    /// The upstream answered with content nothing here can read. Detail: `status`.
    UnexpectedContent,
    /// Nothing answered at the upstream's address. Detail: `host`.
    Unreachable,
    /// The upstream's certificate is not trusted. Detail: `host`.
    UntrustedCertificate,
    /// The request could not be sent or its answer not read.
    Transport,
    /// The answer's stream broke after it started.
    Stream,
    /// The upstream did not finish in the time the workflow allows.
    Timeout,
    /// The upstream sent nothing for the action's `read_timeout`.
    Silent,
    /// A `;url` body could not be fetched.
    Fetch,
    /// The output grew past `controller.max_output`.
    OutputTooLarge,
    /// A `shell` command could not start, timed out, or wrote more than allowed.
    Command,
    /// The configuration cannot do what the run needs (a binding, a feature, a certificate
    /// file).
    Config,
    /// Cancelled, by a request or because its client left.
    Cancelled,
    /// The server running it stopped before it ended.
    Interrupted,
    /// Recorded before failures had kinds.
    Unknown,
}

impl FailureKind {
    /// The HTTP status that fits a failure of this kind when nothing more is known.
    pub fn http_status(self) -> u16 {
        match self {
            FailureKind::Input | FailureKind::NotAllowed => 400,
            FailureKind::WorkflowNotFound => 404,
            FailureKind::Cancelled => 409,
            FailureKind::ShuttingDown => 503,
            FailureKind::UpstreamStatus
            | FailureKind::UnexpectedContent
            | FailureKind::Unreachable
            | FailureKind::UntrustedCertificate
            | FailureKind::Transport
            | FailureKind::Stream
            | FailureKind::Fetch
            | FailureKind::OutputTooLarge
            | FailureKind::Command => 502,
            FailureKind::Timeout | FailureKind::Silent => 504,
            FailureKind::Config | FailureKind::Interrupted | FailureKind::Unknown => 500,
        }
    }
}

/// A run's failure, as recorded and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// What an API answer about it says (a `502` for upstream trouble, a `504` for a timeout).
    pub http_status: u16,
    /// For people; never a secret (the engine redacts before it records).
    pub message: String,
    /// The kind's particulars (an upstream's `status`, a `host`, a `workflow`), as an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl Failure {
    /// A failure of `kind` with its usual HTTP status.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            http_status: kind.http_status(),
            message: message.into(),
            detail: None,
        }
    }

    /// With the kind's particulars.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// A failure recorded as text alone, before failures had kinds.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Unknown, message)
    }

    /// A text particular of the detail.
    pub fn detail_text(&self, name: &str) -> Option<&str> {
        self.detail.as_ref()?.get(name)?.as_str()
    }

    /// A number particular of the detail.
    pub fn detail_number(&self, name: &str) -> Option<u64> {
        self.detail.as_ref()?.get(name)?.as_u64()
    }

    /// The same failure with a message cut to `chars` characters (`…` marks the cut), for a
    /// list that stays small.
    pub fn shortened(&self, chars: usize) -> Self {
        let mut short: String = self.message.chars().take(chars).collect();
        if short.len() < self.message.len() {
            short.push('…');
        }
        Self {
            message: short,
            ..self.clone()
        }
    }

    /// What a person can do about it; `None` when the message says all there is.
    pub fn hint(&self) -> Option<String> {
        let host = self.detail_text("host").unwrap_or("its address");
        Some(match self.kind {
            FailureKind::UntrustedCertificate => format!(
                "The model server at {host} has a certificate this server does not trust. If \
                 your own CA signed it, name the CA's file in SSL_CERT_FILE."
            ),
            FailureKind::Unreachable => {
                format!("Can't reach the model server at {host}. Is it running?")
            }
            FailureKind::UpstreamStatus => match self.detail_number("status")? {
                status @ (401 | 403) => format!(
                    "The model server refused the API key ({status}). Check the key in the .env \
                     file."
                ),
                404 => "The model server does not know this address or model (404).".into(),
                429 => {
                    "The model server is limiting requests (429). Wait a moment, then retry.".into()
                }
                status @ 500..=599 => {
                    format!("The model server failed ({status}). Retry in a moment.")
                }
                _ => return None,
            },
            FailureKind::Silent => "The model server stopped answering.".into(),
            FailureKind::Timeout => "The answer took longer than the workflow allows.".into(),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_serializes_as_kind_status_message_and_detail() {
        let failure = Failure::new(FailureKind::UpstreamStatus, "upstream returned 401: no")
            .with_detail(json!({"status": 401, "host": "api.example:443"}));
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(
            json,
            json!({"kind": "upstream_status", "http_status": 502,
                   "message": "upstream returned 401: no",
                   "detail": {"status": 401, "host": "api.example:443"}})
        );
        assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), failure);
    }

    #[test]
    fn hints_follow_the_kind_and_its_detail_not_the_wording() {
        let upstream = |status: u64| {
            Failure::new(FailureKind::UpstreamStatus, "reworded at will")
                .with_detail(json!({"status": status}))
        };
        assert!(upstream(401)
            .hint()
            .unwrap()
            .contains("refused the API key (401)"));
        assert!(upstream(503).hint().unwrap().contains("failed (503)"));
        assert_eq!(upstream(418).hint(), None);
        // An unreadable answer with a 500 is not the model server failing.
        let unreadable = Failure::new(FailureKind::UnexpectedContent, "upstream returned 500 …")
            .with_detail(json!({"status": 500}));
        assert_eq!(unreadable.hint(), None);
        let host = json!({"host": "127.0.0.1:9"});
        let refused = Failure::new(FailureKind::Unreachable, "x").with_detail(host.clone());
        assert_eq!(
            refused.hint().as_deref(),
            Some("Can't reach the model server at 127.0.0.1:9. Is it running?")
        );
        let untrusted = Failure::new(FailureKind::UntrustedCertificate, "x").with_detail(host);
        assert!(untrusted.hint().unwrap().contains("SSL_CERT_FILE"));
        assert_eq!(
            Failure::new(FailureKind::Input, "input.prompt is required").hint(),
            None
        );
        assert_eq!(
            Failure::unknown("upstream returned 401: old row").hint(),
            None
        );
    }

    #[test]
    fn a_shortened_failure_keeps_its_kind() {
        let failure = Failure::new(FailureKind::Stream, "é".repeat(10));
        let short = failure.shortened(4);
        assert_eq!(short.message, "éééé…");
        assert_eq!((short.kind, short.http_status), (FailureKind::Stream, 502));
        assert_eq!(failure.shortened(10), failure);
    }
}
