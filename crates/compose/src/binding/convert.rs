//! Type conversions of `as TYPE` (spec §2.7), and how values are spelled as text.

use serde_json::{Map, Value};

use super::ast::{Conversion, Step};
use super::eval::{walk, Scope};
use super::BindingError;
use crate::media::{decode_base64, encode_base64, guess_type, Blob};

/// The stream encodings: `as stream` (= `stream/text`), `stream/json`, and the README's
/// `sse-text` / `sse-json` spellings of the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEncoding {
    Text,
    Json,
}

impl Conversion {
    /// The stream encoding this conversion asks for, if it is a stream type.
    pub fn stream_encoding(&self) -> Option<StreamEncoding> {
        match (self.kind.as_str(), self.subtype.as_deref()) {
            ("stream", None | Some("text")) | ("sse-text", None) => Some(StreamEncoding::Text),
            ("stream", Some("json")) | ("sse-json", None) => Some(StreamEncoding::Json),
            _ => None,
        }
    }
}

impl StreamEncoding {
    /// One chunk of a stream as text; `None` for chunks that are dropped (null and empty).
    pub fn encode(self, chunk: Value) -> Option<String> {
        let text = match (self, chunk) {
            (_, Value::Null) => return None,
            // A token is a string: it becomes the piece as it is, not a copy.
            (StreamEncoding::Text, Value::String(text)) => text,
            (StreamEncoding::Text, value) => to_text(&value),
            (StreamEncoding::Json, value) => python_json(&value),
        };
        (!text.is_empty()).then_some(text)
    }
}

/// The types `as TYPE` knows: the original's (its schema's list), and the README's
/// `sse-text` / `sse-json` spellings of streams.
pub const KNOWN_TYPES: [&str; 20] = [
    "string", "text", "integer", "number", "boolean", "list", "object", "json", "base64",
    "markdown", "image", "audio", "video", "file", "stream", "select", "any", "none", "sse-text",
    "sse-json",
];

pub fn is_known_type(kind: &str) -> bool {
    KNOWN_TYPES.contains(&kind)
}

/// Applies `as TYPE...` to a non-null value, reading a `;FORMAT` as `scope` says; a caller's
/// value (`caller`) names only links and files the fetch policy lets callers reach.
pub fn convert(
    value: Value,
    conversion: &Conversion,
    scope: &Scope,
    caller: bool,
) -> Result<Value, BindingError> {
    if conversion.stream_encoding().is_some() {
        // A plain value as a stream is a one-chunk stream; the stream layer encodes chunks.
        return Ok(value);
    }
    if conversion.list {
        return match value {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Null => Ok(Value::Null),
                    item => convert_one(item, conversion, scope, caller),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Err(BindingError::new(format!(
                "`{}[]` requires a list, got {}",
                conversion.kind,
                type_name(&other)
            ))),
        };
    }
    convert_one(value, conversion, scope, caller)
}

/// The media types: their values are bytes (a data URI).
pub fn is_media(kind: &str) -> bool {
    matches!(kind, "image" | "audio" | "video" | "file")
}

fn convert_one(
    value: Value,
    conversion: &Conversion,
    scope: &Scope,
    caller: bool,
) -> Result<Value, BindingError> {
    // Bytes: what a `;format` names, or a data URI.
    let (value, blob) = match &conversion.format {
        Some(format) => match read_format(value, format, conversion, scope, caller)? {
            Read::Bytes(blob) => (None, Some(blob)),
            Read::AsItIs(value) => return Ok(value),
        },
        None => match &value {
            Value::String(text) if text.starts_with("data:") => {
                let blob = Blob::from_data_uri(text);
                (Some(value), blob)
            }
            _ => (Some(value), None),
        },
    };
    if let Some(blob) = blob {
        let kind = conversion.kind.as_str();
        if kind == "base64" {
            return Ok(Value::String(encode_base64(&blob.bytes)));
        }
        // Bytes read as text, JSON or a number are their UTF-8 text.
        if !is_media(kind) && kind != "select" && is_known_type(kind) {
            let text = Value::String(String::from_utf8_lossy(&blob.bytes).into_owned());
            return convert_one(
                text,
                &Conversion {
                    format: None,
                    ..conversion.clone()
                },
                scope,
                caller,
            );
        }
        return Ok(value.unwrap_or_else(|| Value::String(blob.to_data_uri())));
    }
    let value = value.unwrap_or_default();
    Ok(match conversion.kind.as_str() {
        "string" | "text" | "markdown" => Value::String(to_text(&value)),
        "number" => Value::from(to_number(&value)?),
        "integer" => Value::from(to_integer(&value)?),
        // As the original: true when spelled `true` or `1`, false for anything else.
        "boolean" => Value::Bool(read_bool(&value, BoolWords::Strict) == Some(true)),
        "json" => parse_json(value)?,
        "object" => match parse_json(value)? {
            Value::Object(map) => match &conversion.subtype {
                Some(fields) => project(&map, fields),
                None => Value::Object(map),
            },
            other => {
                return Err(BindingError::new(format!(
                    "`object` requires a mapping, got {}",
                    type_name(&other)
                )))
            }
        },
        "list" => match parse_json(value)? {
            list @ Value::Array(_) => list,
            other => {
                return Err(BindingError::new(format!(
                    "`list` requires a list, got {}",
                    type_name(&other)
                )))
            }
        },
        "base64" => Value::String(encode_base64(to_text(&value).as_bytes())),
        // `select/a,b,c`: one of the options (a UI type; without options, any value).
        "select" => match &conversion.subtype {
            Some(options) if !options.split(',').any(|o| o.trim() == to_text(&value)) => {
                return Err(BindingError::new(format!(
                    "{} is not one of {options}",
                    preview(&to_text(&value))
                )))
            }
            _ => value,
        },
        // UI-only and media types, and unknown ones, leave the value as it is.
        _ => value,
    })
}

/// What a `;FORMAT` made of a string.
enum Read {
    /// The bytes it names, for the type to read.
    Bytes(Blob),
    /// The conversion's result already: null while a `;url` body is still to be fetched.
    AsItIs(Value),
}

/// `;FORMAT` (spec §2.7): the text names bytes: a file (`path`), a body to fetch (`url`),
/// `base64` or a `data-uri`, read wherever the template renders (a terminal job's output too,
/// as the original 0.4.120 does: its pass-through for those is never reached). A media type
/// with a subtype (`image/png`) says what the bytes are.
fn read_format(
    value: Value,
    format: &str,
    conversion: &Conversion,
    scope: &Scope,
    caller: bool,
) -> Result<Read, BindingError> {
    let Value::String(text) = value else {
        return Err(BindingError::new(format!(
            "`{format}` format requires a string value, got {}",
            type_name(&value)
        )));
    };
    let mut blob = match format {
        "path" => {
            let path = if caller {
                let policy = scope.fetched.map(|fetched| fetched.policy());
                policy
                    .ok_or_else(|| BindingError::refused("callers may not name files here"))?
                    .check_path(&text)
                    .map_err(BindingError::refused)?
            } else {
                expand_home(&text)
            };
            let bytes = std::fs::read(&path).map_err(|err| {
                BindingError::new(format!("cannot read {}: {err}", path.display()))
            })?;
            Blob {
                media_type: guess_type(&text),
                name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                bytes,
            }
        }
        "base64" => Blob {
            media_type: "application/octet-stream".into(),
            name: None,
            bytes: decode_base64(&text)
                .map_err(|err| BindingError::new(format!("invalid base64 ({err})")))?,
        },
        "data-uri" => read_data_uri(&text)?,
        "url" => match scope
            .fetched
            .map(|fetched| fetched.get_or_want(&text, caller))
        {
            Some(Some(blob)) => blob,
            Some(None) => return Ok(Read::AsItIs(Value::Null)),
            None => return Err(BindingError::new("the `;url` format cannot fetch here")),
        },
        other => {
            return Err(BindingError::new(format!(
                "unknown format `;{other}`: use path, url, base64 or data-uri"
            )))
        }
    };
    if let (true, Some(subtype)) = (is_media(&conversion.kind), &conversion.subtype) {
        blob.media_type = format!("{}/{subtype}", conversion.kind);
    }
    Ok(Read::Bytes(blob))
}

/// Any data URI's bytes: base64 or percent-encoded.
fn read_data_uri(text: &str) -> Result<Blob, BindingError> {
    if let Some(blob) = Blob::from_data_uri(text) {
        return Ok(blob);
    }
    let invalid = || BindingError::new(format!("not a data URI: {}", preview(text)));
    let (header, payload) = text
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .ok_or_else(invalid)?;
    let media_type = header.split(';').next().filter(|t| !t.is_empty());
    Ok(Blob {
        media_type: media_type.unwrap_or("text/plain").to_string(),
        name: None,
        bytes: percent_encoding::percent_decode_str(payload).collect(),
    })
}

/// `~/x` as the home directory's `x`.
fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => std::path::PathBuf::from(path),
    }
}

/// Which spellings [`read_bool`] accepts besides JSON booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolWords {
    /// `true`/`false` and `1`/`0`: the `as boolean` conversion of the original.
    Strict,
    /// Also `yes`/`no`, `on`/`off`, `y`/`n`, `t`/`f`: flags in requests, as FastAPI reads them.
    Lenient,
}

/// A value read as a boolean, the one way booleans are read: a JSON boolean, the numbers 1 and
/// 0, or (in any case) the words `words` allows; `None` for anything else.
pub fn read_bool(value: &Value, words: BoolWords) -> Option<bool> {
    let word = match value {
        Value::Bool(b) => return Some(*b),
        Value::Number(n) => {
            return match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            }
        }
        Value::String(text) => text.to_ascii_lowercase(),
        _ => return None,
    };
    match (word.as_str(), words) {
        ("true" | "1", _) => Some(true),
        ("false" | "0", _) => Some(false),
        ("yes" | "on" | "y" | "t", BoolWords::Lenient) => Some(true),
        ("no" | "off" | "n" | "f", BoolWords::Lenient) => Some(false),
        _ => None,
    }
}

/// `object/a,b.c`: a new mapping from comma-separated paths, keyed by each path's last name.
fn project(map: &Map<String, Value>, fields: &str) -> Value {
    let source = Value::Object(map.clone());
    let mut out = Map::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let steps = super::parser::path_steps(field);
        let key = match steps.last() {
            Some(Step::Key(key)) => key.clone(),
            _ => field.to_string(),
        };
        out.insert(key, walk(&source, &steps).into_owned());
    }
    Value::Object(out)
}

fn parse_json(value: Value) -> Result<Value, BindingError> {
    match value {
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|err| BindingError::new(format!("invalid JSON ({err}): {}", preview(&text)))),
        other => Ok(other),
    }
}

fn to_number(value: &Value) -> Result<f64, BindingError> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| cannot(value, "a number")),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        // JSON has no infinity or NaN, so those are refused too.
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| cannot(value, "a number")),
        _ => Err(cannot(value, "a number")),
    }
}

fn to_integer(value: &Value) -> Result<i64, BindingError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .ok_or_else(|| cannot(value, "an integer")),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| cannot(value, "an integer")),
        _ => Err(cannot(value, "an integer")),
    }
}

fn cannot(value: &Value, what: &str) -> BindingError {
    BindingError::new(format!(
        "cannot convert {} to {what}",
        preview(&interpolate_text(value))
    ))
}

fn preview(text: &str) -> String {
    let short: String = text.chars().take(60).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("{:?}", format!("{short}{ellipsis}"))
}

/// A JSON type's name, for error messages.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// A value's type with its article, for messages: "an integer", "a list".
pub fn a_type(value: &Value) -> String {
    with_article(type_name(value))
}

/// A type's name with its article: "an integer", "a string".
pub fn with_article(name: &str) -> String {
    match name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => format!("an {name}"),
        false => format!("a {name}"),
    }
}

/// A value as text inside a larger string (D10): strings as they are, null as nothing,
/// everything else in its JSON spelling (`true`, `10.0`, compact objects).
pub fn interpolate_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A scalar as text (JSON spelling), and mappings or lists as the original's JSON text.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) => python_json(value),
        other => interpolate_text(other),
    }
}

/// JSON as Python's `json.dumps(ensure_ascii=False)` writes it: `", "` and `": "` separators
/// (serde_json's escapes are Python's: `\"`, `\\`, `\n`… and `\u00XX` for other controls).
pub fn python_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonSpacing);
    // A `Value` always serializes, and into a vector nothing fails.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact output with Python's separators.
struct PythonSpacing;

impl serde_json::ser::Formatter for PythonSpacing {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separate(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separate(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `", "` before each item of a list or mapping but the first.
fn separate<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    match first {
        true => Ok(()),
        false => writer.write_all(b", "),
    }
}
