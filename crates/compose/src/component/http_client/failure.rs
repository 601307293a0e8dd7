//! What an http-client says when its upstream fails: the upstream's own message, the causes of
//! a transport error, an answer too large.

use serde_json::Value;

use crate::error::RunError;

/// The most of an error body kept for the message.
const ERROR_BODY_LIMIT: usize = 2000;

/// The error for an answer past the action's `max_body_size`.
pub(super) fn too_large(max: usize) -> RunError {
    RunError::Transport(format!(
        "the upstream's answer is larger than {} (the action's max_body_size)",
        crate::config::Size(max)
    ))
}

/// The innermost cause of an error: for a failed connection, what the system said
/// (`Connection refused (os error 111)`).
pub(super) fn cause(err: &dyn std::error::Error) -> String {
    let mut innermost = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        innermost = next.to_string();
        source = next.source();
    }
    innermost
}

/// An error and its causes, one sentence: reqwest's own message alone says little.
pub(super) fn describe(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The upstream's own error message: OpenAI's `error.message`, or another usual field,
/// or the body itself, shortened.
pub(super) fn upstream_message(body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        let candidates = [
            json.pointer("/error/message"),
            json.get("error"),
            json.get("message"),
            json.get("detail"),
        ];
        if let Some(Value::String(message)) =
            candidates.into_iter().flatten().find(|v| v.is_string())
        {
            return message.clone();
        }
    }
    let body = body.trim();
    if body.is_empty() {
        return "(empty response body)".into();
    }
    let mut short: String = body.chars().take(ERROR_BODY_LIMIT).collect();
    if short.len() < body.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_the_upstreams_own() {
        assert_eq!(
            upstream_message(
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#
            ),
            "Incorrect API key provided"
        );
        assert_eq!(upstream_message(r#"{"error":"overloaded"}"#), "overloaded");
        assert_eq!(upstream_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(upstream_message("  Bad Gateway \n"), "Bad Gateway");
        assert_eq!(upstream_message(""), "(empty response body)");
        assert_eq!(
            upstream_message(&"x".repeat(3000)).chars().count(),
            ERROR_BODY_LIMIT + 1
        );
    }
}
