//! A place where a run waits for a person (spec §14.2), as the API, the history and the web
//! UI show it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One pause of a run: which job, before or after its work, and what the person is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// What an answer names it by (`POST /tasks/{id}/resume`).
    pub id: String,
    pub job_id: String,
    /// The job's run it pauses (the same for its `before` and `after`).
    pub run_id: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// Before a job's work (an answer replaces its input) or after (it replaces its result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// An answer as a person types it (on the terminal, in the web UI): nothing (or blanks) goes
/// on as it was (null), JSON is that value, anything else is that text.
pub fn answer_from_text(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::answer_from_text;
    use serde_json::json;

    #[test]
    fn an_answer_is_null_json_or_text() {
        assert_eq!(answer_from_text(""), json!(null));
        assert_eq!(answer_from_text("  \n"), json!(null));
        assert_eq!(
            answer_from_text(r#"{"command": "echo hi"}"#),
            json!({"command": "echo hi"})
        );
        assert_eq!(answer_from_text("42"), json!(42));
        assert_eq!(answer_from_text("edited output"), json!("edited output"));
    }
}
