//! Run requests sent as forms (spec §5.4): `multipart/form-data` with files, and
//! `application/x-www-form-urlencoded`. Field names nest with brackets (`input[prompt]`,
//! `input[tags][]`); every value is text, except files, which become bytes (a data URI).

use axum::extract::Multipart;
use serde_json::{Map, Value};

use super::error::ApiError;
use compose::media::Blob;

/// The fields of a multipart body, nested; files as data URIs with their name and type.
pub async fn multipart(mut form: Multipart) -> Result<Value, ApiError> {
    let mut root = Map::new();
    let invalid = |err: axum::extract::multipart::MultipartError| {
        ApiError::new(
            err.status(),
            format!("Invalid request body: {}", err.body_text()),
        )
    };
    while let Some(field) = form.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_string();
        let value = match field.file_name().map(str::to_string) {
            Some(file_name) => {
                let media_type = field
                    .content_type()
                    .map(str::to_string)
                    .unwrap_or_else(|| compose::media::guess_type(&file_name));
                let bytes = field.bytes().await.map_err(invalid)?;
                Value::String(
                    Blob {
                        media_type,
                        name: Some(file_name).filter(|n| !n.is_empty()),
                        bytes: bytes.to_vec(),
                    }
                    .to_data_uri(),
                )
            }
            None => Value::String(field.text().await.map_err(invalid)?),
        };
        insert(&mut root, &name, value);
    }
    Ok(Value::Object(root))
}

/// The fields of a URL-encoded body, nested.
pub fn urlencoded(body: &[u8]) -> Value {
    let mut root = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        insert(&mut root, &name, Value::String(value.into_owned()));
    }
    Value::Object(root)
}

/// Puts `value` at the place `name` names: `a[b][c]` is `a.b.c`; a trailing `[]` collects
/// repeated fields in a list.
fn insert(root: &mut Map<String, Value>, name: &str, value: Value) {
    let (head, rest) = name.split_once('[').unwrap_or((name, ""));
    let mut keys: Vec<&str> = vec![head];
    keys.extend(rest.split('[').map(|k| k.trim_end_matches(']')));
    let rest = if rest.is_empty() { &[][..] } else { &keys[1..] };
    let keys = [&keys[..1], rest].concat();
    place(root, &keys, value);
}

fn place(map: &mut Map<String, Value>, keys: &[&str], value: Value) {
    let [key, rest @ ..] = keys else {
        return;
    };
    match rest {
        [] => {
            map.insert(key.to_string(), value);
        }
        [""] => {
            let slot = map
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            match slot {
                Value::Array(items) => items.push(value),
                other => *other = Value::Array(vec![value]),
            }
        }
        _ => {
            let slot = map
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                place(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bracket_names_nest() {
        let body = b"workflow_id=w&input[prompt]=hi+there&input[tags][]=a&input[tags][]=b&input[o][k]=1&output_only=true";
        assert_eq!(
            urlencoded(body),
            json!({
                "workflow_id": "w",
                "input": {"prompt": "hi there", "tags": ["a", "b"], "o": {"k": "1"}},
                "output_only": "true"
            })
        );
    }
}
