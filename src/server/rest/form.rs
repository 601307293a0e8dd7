//! Run requests sent as forms (spec §5.4): `multipart/form-data` with files, and
//! `application/x-www-form-urlencoded`. Field names nest with brackets (`input[prompt]`,
//! `input[tags][]`); every value is text, except files, which become bytes (a data URI).

use axum::extract::Multipart;
use serde_json::{Map, Value};

use super::error::ApiError;
use compose::media::Blob;

/// How deep a field name may nest (`a[b][c]` is 3): enough for any form a person fills in,
/// and a bound on what a caller's name can make the server build.
pub const MAX_FIELD_DEPTH: usize = 32;

/// The fields of a multipart body, nested; files as data URIs with their name and type. Also
/// the names of the fields that were files, for the caller to check against the workflow.
pub async fn multipart(mut form: Multipart) -> Result<(Value, Vec<String>), ApiError> {
    let mut root = Map::new();
    let mut files = Vec::new();
    let invalid = |err: axum::extract::multipart::MultipartError| {
        ApiError::new(
            err.status(),
            format!("Invalid request body: {}", err.body_text()),
        )
    };
    while let Some(field) = form.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_string();
        // Refused before the value is read.
        let keys = keys(&name)?;
        let value = match field.file_name().map(str::to_string) {
            Some(file_name) => {
                files.push(name.clone());
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
        place(&mut root, &keys, value);
    }
    Ok((Value::Object(root), files))
}

/// The input variable a form field names (`input[image]` is `image`, `input[a][b][]` is
/// `a.b`); `None` for a field outside `input`.
pub fn input_variable(name: &str) -> Option<String> {
    let keys = keys(name).ok()?;
    let (first, rest) = keys.split_first()?;
    let rest: Vec<&str> = rest.iter().copied().filter(|k| !k.is_empty()).collect();
    (*first == "input" && !rest.is_empty()).then(|| rest.join("."))
}

/// The fields of a URL-encoded body, nested.
pub fn urlencoded(body: &[u8]) -> Result<Value, ApiError> {
    let mut root = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        place(&mut root, &keys(&name)?, Value::String(value.into_owned()));
    }
    Ok(Value::Object(root))
}

/// The keys a field name says: `a[b][c]` is `a`, `b`, `c`; a trailing `[]` (an empty last key)
/// collects repeated fields in a list. A name nested deeper than [`MAX_FIELD_DEPTH`] is a 400.
fn keys(name: &str) -> Result<Vec<&str>, ApiError> {
    let (head, rest) = name.split_once('[').unwrap_or((name, ""));
    let mut keys = vec![head];
    if !rest.is_empty() {
        for key in rest.split('[') {
            if keys.len() == MAX_FIELD_DEPTH {
                return Err(ApiError::bad_request(format!(
                    "The form field '{}' nests deeper than {MAX_FIELD_DEPTH} levels.",
                    abridged(name)
                )));
            }
            keys.push(key.trim_end_matches(']'));
        }
    }
    Ok(keys)
}

/// A field name short enough to quote in a message.
pub fn abridged(name: &str) -> String {
    const SHOWN: usize = 60;
    match name.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_string(),
    }
}

/// Puts `value` at the place `keys` name, walking down (not recursing: the depth is the
/// caller's) and making mappings on the way.
fn place(root: &mut Map<String, Value>, keys: &[&str], value: Value) {
    let [parents @ .., last] = keys else {
        return;
    };
    // `a[]`: the list is the parent's entry `a`, so the walk stops one key earlier.
    let (parents, last, list) = match (parents, *last) {
        ([parents @ .., list_key], "") => (parents, *list_key, true),
        _ => (parents, *last, false),
    };
    let mut map = root;
    for key in parents {
        let slot = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(inner) = slot else {
            return;
        };
        map = inner;
    }
    if !list {
        map.insert(last.to_string(), value);
        return;
    }
    let slot = map
        .entry(last.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    match slot {
        Value::Array(items) => items.push(value),
        other => *other = Value::Array(vec![value]),
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
            urlencoded(body).unwrap(),
            json!({
                "workflow_id": "w",
                "input": {"prompt": "hi there", "tags": ["a", "b"], "o": {"k": "1"}},
                "output_only": "true"
            })
        );
    }

    #[test]
    fn a_name_nests_at_most_max_depth_levels() {
        let at_limit = format!("input{}=v", "[a]".repeat(MAX_FIELD_DEPTH - 1));
        let mut expected = json!("v");
        for _ in 0..MAX_FIELD_DEPTH - 1 {
            expected = json!({ "a": expected });
        }
        assert_eq!(
            urlencoded(at_limit.as_bytes()).unwrap(),
            json!({ "input": expected })
        );
        let deep = format!("input{}=v", "[a]".repeat(3_000));
        let err = urlencoded(deep.as_bytes()).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            err.detail.starts_with("The form field 'input[a][a]")
                && err.detail.ends_with("nests deeper than 32 levels."),
            "{}",
            err.detail
        );
        assert!(err.detail.len() < 200, "{}", err.detail);
    }

    #[test]
    fn the_input_variable_a_field_names() {
        assert_eq!(input_variable("input[image]").as_deref(), Some("image"));
        assert_eq!(input_variable("input[pages][]").as_deref(), Some("pages"));
        assert_eq!(input_variable("input[a][b]").as_deref(), Some("a.b"));
        assert_eq!(input_variable("input"), None);
        assert_eq!(input_variable("file"), None);
    }

    #[test]
    fn a_list_inside_a_mapping_and_a_bare_list() {
        assert_eq!(
            urlencoded(b"a[]=1&a[]=2&b[c][]=x&d=1&d[e]=2").unwrap(),
            json!({"a": ["1", "2"], "b": {"c": ["x"]}, "d": {"e": "2"}})
        );
    }

    proptest::proptest! {
        /// Whatever names a caller makes up, deep or wide, with brackets anywhere: a nested
        /// value or a 400, never a panic and never more than 32 levels.
        #[test]
        fn any_field_names_give_a_value_or_a_400(
            names in proptest::collection::vec(
                (
                    "[a-z\\[\\]]{0,8}",
                    0usize..4000,
                    proptest::sample::select(vec!["[a]", "[]", "[", "]", "[[", "]]["]),
                ),
                1..20,
            )
        ) {
            let body: String = names
                .iter()
                .map(|(head, depth, step)| format!("{head}{}=v&", step.repeat(*depth)))
                .collect();
            match urlencoded(body.as_bytes()) {
                Ok(value) => proptest::prop_assert!(depth(&value) <= MAX_FIELD_DEPTH + 1),
                Err(err) => proptest::prop_assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST),
            }
        }
    }

    /// How deep a value nests (a string is 0 deep, `{"a": "v"}` 1).
    fn depth(value: &Value) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(value, 0)];
        while let Some((value, at)) = stack.pop() {
            deepest = deepest.max(at);
            match value {
                Value::Object(map) => stack.extend(map.values().map(|v| (v, at + 1))),
                Value::Array(items) => stack.extend(items.iter().map(|v| (v, at + 1))),
                _ => {}
            }
        }
        deepest
    }
}
