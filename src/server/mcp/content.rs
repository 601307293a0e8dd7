//! A settled run as an MCP tool result (spec §15.4): its output as content blocks, by the
//! declared type of each output variable (text, image, audio, embedded resources); an
//! interrupted run as the status object `resume_workflow` continues from; a failed one as an
//! error result (`isError`, which the original left false), its message redacted as
//! everywhere.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::{json, Value};

use compose::media::Blob;
use compose::record::{Status, TaskView};
use compose::schema::Variable;

/// The result of a call whose run is `view`, a run of a workflow whose outputs are `schema`.
pub fn of_run(view: &TaskView, schema: &[Variable]) -> CallToolResult {
    match view.status {
        Status::Completed => CallToolResult::success(output_blocks(view, schema)),
        Status::Interrupted => CallToolResult::success(vec![ContentBlock::text(
            json!({"status": "interrupted", "task_id": view.task_id, "interrupt": view.interrupt})
                .to_string(),
        )]),
        status => {
            let error = view
                .error
                .as_ref()
                .map_or_else(|| format!("the run ended {status}"), |f| f.message.clone());
            CallToolResult::error(vec![ContentBlock::text(
                json!({"status": status, "task_id": view.task_id, "error": error}).to_string(),
            )])
        }
    }
}

/// A call that could not start a run, told as an error result the client (a model) can read.
pub fn refusal(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// One block per output variable, in the schema's order; one for the whole output when it
/// is one unnamed variable (or has no schema); none when the output is empty (`null`, `""`,
/// `0`, `false`, `{}`, `[]`), as the original answers.
fn output_blocks(view: &TaskView, schema: &[Variable]) -> Vec<ContentBlock> {
    let output = view.output.as_ref().unwrap_or(&Value::Null);
    if is_empty(output) {
        return Vec::new();
    }
    let uri =
        |name: Option<&str>| format!("resource://{}/{}", view.task_id, name.unwrap_or("output"));
    match schema {
        [] => vec![block(output, None, &uri(None))],
        [whole] if whole.name.is_none() => vec![block(output, Some(whole), &uri(None))],
        named => named
            .iter()
            .filter_map(|variable| {
                let name = variable.name.as_deref()?;
                let value = lookup(output, name)?;
                Some(block(value, Some(variable), &uri(Some(name))))
            })
            .collect(),
    }
}

/// Python's falsy values, which the original answers with no block.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

/// The value at a dotted output name (`a.b`).
fn lookup<'v>(output: &'v Value, name: &str) -> Option<&'v Value> {
    name.split('.')
        .try_fold(output, |value, key| value.get(key))
}

/// One value as a block: media (a data URI, or base64 declared as media) as image, audio or
/// an embedded resource; text as it is; anything else as JSON text.
fn block(value: &Value, variable: Option<&Variable>, uri: &str) -> ContentBlock {
    let Value::String(text) = value else {
        return ContentBlock::text(value.to_string());
    };
    if let Some(blob) = Blob::from_data_uri(text) {
        let data = compose::media::encode_base64(&blob.bytes);
        return media(data, blob.media_type, uri);
    }
    let declared = variable.filter(|v| v.format.as_deref().is_none_or(|f| f == "base64"));
    let media_type = declared.and_then(|v| {
        let subtype = v.subtype.as_deref();
        Some(match v.kind.as_str() {
            "image" => format!("image/{}", subtype.unwrap_or("png")),
            "audio" => format!("audio/{}", subtype.unwrap_or("wav")),
            "video" => format!("video/{}", subtype.unwrap_or("mp4")),
            "file" => "application/octet-stream".to_string(),
            _ => return None,
        })
    });
    match media_type {
        Some(media_type) => media(text.clone(), media_type, uri),
        None => ContentBlock::text(text.clone()),
    }
}

/// Base64 `data` of `media_type`: an image or audio block, else an embedded resource.
fn media(data: String, media_type: String, uri: &str) -> ContentBlock {
    match media_type.split('/').next() {
        Some("image") => ContentBlock::image(data, media_type),
        Some("audio") => ContentBlock::audio(data, media_type),
        _ => ContentBlock::resource(ResourceContents::blob(data, uri).with_mime_type(media_type)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variable(name: Option<&str>, kind: &str, subtype: Option<&str>) -> Variable {
        Variable {
            name: name.map(str::to_string),
            kind: kind.to_string(),
            subtype: subtype.map(str::to_string),
            format: None,
            is_list: false,
            default: None,
            description: None,
            required: false,
            conversion: None,
        }
    }

    fn completed(output: Value) -> TaskView {
        TaskView {
            task_id: "T1".into(),
            status: Status::Completed,
            workflow_id: "w".into(),
            interrupt: Vec::new(),
            output: Some(output),
            error: None,
            trace_id: None,
        }
    }

    fn blocks(output: Value, schema: &[Variable]) -> Value {
        serde_json::to_value(of_run(&completed(output), schema)).unwrap()["content"].clone()
    }

    #[test]
    fn outputs_become_blocks_by_their_declared_types() {
        let schema = [
            variable(Some("text"), "string", None),
            variable(Some("voice"), "audio", Some("mpeg")),
            variable(Some("clip"), "video", None),
            variable(Some("meta.size"), "integer", None),
            variable(Some("group"), "object", None),
        ];
        let output = json!({"text": "hi", "voice": "SUQz", "clip": "AAAA",
                            "meta": {"size": 3}, "group": {"a": [1, null]}});
        assert_eq!(
            blocks(output, &schema),
            json!([
                {"type": "text", "text": "hi"},
                {"type": "audio", "data": "SUQz", "mimeType": "audio/mpeg"},
                {"type": "resource", "resource": {"uri": "resource://T1/clip",
                    "mimeType": "video/mp4", "blob": "AAAA"}},
                {"type": "text", "text": "3"},
                {"type": "text", "text": "{\"a\":[1,null]}"},
            ])
        );
    }

    #[test]
    fn a_whole_output_is_one_block_and_an_empty_one_none() {
        let whole = [variable(None, "image", Some("jpeg"))];
        assert_eq!(
            blocks(json!("/9j/"), &whole),
            json!([{"type": "image", "data": "/9j/", "mimeType": "image/jpeg"}])
        );
        // Bytes an upstream sent come as a data URI: their own type says what they are.
        assert_eq!(
            blocks(json!("data:audio/wav;base64,UklG"), &[]),
            json!([{"type": "audio", "data": "UklG", "mimeType": "audio/wav"}])
        );
        for empty in [
            json!(null),
            json!(""),
            json!(0),
            json!({}),
            json!([]),
            json!(false),
        ] {
            assert_eq!(blocks(empty, &[]), json!([]));
        }
    }

    #[test]
    fn a_failed_run_is_an_error_result() {
        let view = TaskView {
            status: Status::Failed,
            output: None,
            error: Some(compose::record::Failure::unknown("upstream returned 401")),
            ..completed(Value::Null)
        };
        let result = serde_json::to_value(of_run(&view, &[])).unwrap();
        assert_eq!(result["isError"], true);
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            text,
            json!({"status": "failed", "task_id": "T1", "error": "upstream returned 401"})
        );
    }
}
