//! What a run produced, saying what it is: text (a stream, joined), a JSON value, or bytes.
//! Read back on another replica or from the history, it is the same output, not text to be
//! guessed back into a value.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run's output. In JSON (the history API, the web UI) it is two fields: `output_type`
/// (`text`, `json`, `bytes`) and `output` (the output as the task API shows it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "output_type", content = "output", rename_all = "lowercase")]
pub enum Output {
    /// A streamed output's text, joined.
    Text(String),
    /// A value (a string included, when a job's output is one).
    Json(Value),
    /// Bytes as a data URI: their media type and their content.
    Bytes(String),
}

impl Output {
    /// The output as the task API shows it: text and a data URI as strings, a value as itself.
    pub fn to_value(&self) -> Value {
        match self {
            Output::Text(text) | Output::Bytes(text) => Value::String(text.clone()),
            Output::Json(value) => value.clone(),
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Output::Text(text) | Output::Bytes(text) => Value::String(text),
            Output::Json(value) => value,
        }
    }

    /// The output as text to read: a string value as it is, other values as JSON.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Output::Text(text) | Output::Bytes(text) | Output::Json(Value::String(text)) => {
                Cow::Borrowed(text)
            }
            Output::Json(value) => Cow::Owned(value.to_string()),
        }
    }

    /// The name of its type, as the history stores it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Output::Text(_) => "text",
            Output::Json(_) => "json",
            Output::Bytes(_) => "bytes",
        }
    }

    /// As the history stores it: its type's name and text (a value as JSON).
    pub fn stored(&self) -> (&'static str, Cow<'_, str>) {
        let text = match self {
            Output::Json(value) => Cow::Owned(value.to_string()),
            Output::Text(text) | Output::Bytes(text) => Cow::Borrowed(text.as_str()),
        };
        (self.type_name(), text)
    }

    /// Read back from the history. A row written before outputs had types (`None`) reads as
    /// text; a value that no longer parses, too.
    pub fn from_stored(type_name: Option<&str>, text: String) -> Self {
        match type_name {
            Some("json") => match serde_json::from_str(&text) {
                Ok(value) => Output::Json(value),
                Err(_) => Output::Text(text),
            },
            Some("bytes") => Output::Bytes(text),
            _ => Output::Text(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_output_reads_back_as_it_was_written() {
        for output in [
            Output::Json(json!(42)),
            Output::Json(json!({"a": 1})),
            Output::Json(json!("plain")),
            Output::Text(r#"{"a":1}"#.into()),
            Output::Text("42".into()),
            Output::Bytes("data:image/png;base64,iVBORw==".into()),
        ] {
            let (type_name, text) = output.stored();
            let back = Output::from_stored(Some(type_name), text.into_owned());
            assert_eq!(back, output);
            let json = serde_json::to_value(&output).unwrap();
            assert_eq!(json["output_type"], type_name);
            assert_eq!(json["output"], output.to_value());
            assert_eq!(serde_json::from_value::<Output>(json).unwrap(), output);
        }
        assert_eq!(
            Output::from_stored(None, "42".into()),
            Output::Text("42".into())
        );
    }

    #[test]
    fn text_shows_a_string_value_as_it_is() {
        assert_eq!(Output::Json(json!("hi")).text(), "hi");
        assert_eq!(Output::Json(json!({"a": 1})).text(), r#"{"a":1}"#);
        assert_eq!(Output::Text("hi".into()).text(), "hi");
    }
}
