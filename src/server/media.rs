//! Outputs the web UI shows as media, rendered on the server like Markdown: an audio player,
//! an image, a gallery for a list of images, a video, or a download link for a file; the
//! other fields of the output beside them as text. What a variable is comes from the
//! workflow's output schema (`as audio`, `as image[];url`, `as image/png;base64`).

use serde_json::Value;

use super::markdown;
use compose::binding::is_media;
use compose::schema::Variable;

/// The output as HTML blocks, when its schema has a media variable; `None` otherwise (the
/// output is then shown as Markdown).
pub fn blocks(output: &Value, schema: &[Variable]) -> Option<Vec<String>> {
    if !schema.iter().any(|v| is_media(&v.kind)) {
        return None;
    }
    let mut out = Vec::new();
    for variable in schema {
        let value = match &variable.name {
            Some(name) => lookup(output, name),
            None => Some(output),
        };
        let Some(value) = value.filter(|v| !v.is_null()) else {
            continue;
        };
        let label = variable.name.as_deref().map(escape).unwrap_or_default();
        let body = if is_media(&variable.kind) {
            match value {
                Value::Array(items) if variable.is_list => {
                    let items: Vec<String> =
                        items.iter().filter_map(|v| element(variable, v)).collect();
                    format!("<div class=\"gallery\">{}</div>", items.concat())
                }
                single => element(variable, single).unwrap_or_default(),
            }
        } else {
            markdown::render(&match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
        };
        out.push(if label.is_empty() {
            format!("<figure class=\"output\">{body}</figure>")
        } else {
            format!("<figure class=\"output\"><figcaption>{label}</figcaption>{body}</figure>")
        });
    }
    Some(out)
}

/// One media element for one value: bytes (a data URI), a URL, or base64 text.
fn element(variable: &Variable, value: &Value) -> Option<String> {
    let text = value.as_str()?;
    let source = source(variable, text)?;
    let src = escape(&source);
    Some(match variable.kind.as_str() {
        "audio" => format!("<audio controls preload=\"metadata\" src=\"{src}\"></audio>"),
        "video" => format!("<video controls preload=\"metadata\" src=\"{src}\"></video>"),
        "image" => format!(
            "<a href=\"{src}\" target=\"_blank\" rel=\"noopener noreferrer\"><img alt=\"{}\" src=\"{src}\"></a>",
            escape(variable.name.as_deref().unwrap_or("image"))
        ),
        _ => format!("<a class=\"file\" download href=\"{src}\">Download</a>"),
    })
}

/// Where the browser finds the media: data URIs as they are, http(s) URLs of images, audio and
/// video through the server (the page loads media from its own origin only), base64 text as a data URI of the declared
/// type. Anything else (a `javascript:` URL) is not shown.
fn source(variable: &Variable, text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with("data:") {
        return Some(text.to_string());
    }
    if text.starts_with("https://") || text.starts_with("http://") {
        // A file to download is a link, which loads nothing by itself.
        return Some(if variable.kind == "file" {
            text.to_string()
        } else {
            super::remote::through_server(text)
        });
    }
    if variable.format.as_deref() != Some("base64") {
        return None;
    }
    let subtype = match (variable.kind.as_str(), variable.subtype.as_deref()) {
        ("audio", Some("mp3") | None) => "mpeg",
        ("image", None) => "png",
        ("video", None) => "mp4",
        (_, None) => "octet-stream",
        (_, Some(subtype)) => subtype,
    };
    let kind = if variable.kind == "file" {
        "application"
    } else {
        &variable.kind
    };
    Some(format!("data:{kind}/{subtype};base64,{text}"))
}

/// `a.b` and `a[0]` in an output, as the schema names them.
fn lookup<'v>(output: &'v Value, name: &str) -> Option<&'v Value> {
    let mut value = output;
    for part in name.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !key.is_empty() {
            value = value.get(key)?;
        }
        if let Some(index) = index {
            value = value.get(index)?;
        }
    }
    Some(value)
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    let _ = pulldown_cmark_escape::escape_html(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variable(
        name: Option<&str>,
        kind: &str,
        subtype: Option<&str>,
        format: Option<&str>,
        list: bool,
    ) -> Variable {
        Variable {
            name: name.map(str::to_string),
            kind: kind.into(),
            subtype: subtype.map(str::to_string),
            format: format.map(str::to_string),
            is_list: list,
            default: None,
            description: None,
            required: false,
            conversion: None,
        }
    }

    #[test]
    fn media_outputs_become_players_images_and_galleries() {
        let audio = [variable(None, "audio", None, None, false)];
        assert_eq!(
            blocks(&json!("data:audio/mpeg;base64,SUQz"), &audio).unwrap(),
            ["<figure class=\"output\"><audio controls preload=\"metadata\" src=\"data:audio/mpeg;base64,SUQz\"></audio></figure>"]
        );
        let quote = [
            variable(Some("quote"), "text", None, None, false),
            variable(Some("speech"), "audio", Some("mp3"), Some("base64"), false),
        ];
        let html = blocks(&json!({"quote": "Be <brave>", "speech": "SUQz"}), &quote).unwrap();
        assert_eq!(html.len(), 2);
        assert!(
            html[0].contains("<figcaption>quote</figcaption><p>Be &lt;brave&gt;</p>"),
            "{}",
            html[0]
        );
        assert!(
            html[1].contains("src=\"data:audio/mpeg;base64,SUQz\""),
            "{}",
            html[1]
        );
        let gallery = [variable(Some("sketches"), "image", None, Some("url"), true)];
        let html = blocks(&json!({"sketches": ["https://x.test/1.png", "javascript:alert(1)", "http://x.test/2.png?a=1&b=\"2\""]}), &gallery).unwrap();
        assert_eq!(html[0].matches("<img ").count(), 2, "{}", html[0]);
        assert!(html[0].contains("<div class=\"gallery\">"));
        // Through the server: the page loads media from its own origin only.
        assert!(
            html[0]
                .contains("src=\"/_media?url=http%3A%2F%2Fx.test%2F2.png%3Fa%3D1%26b%3D%222%22\""),
            "{}",
            html[0]
        );
        assert!(!html[0].contains("javascript"));
        let plain = [variable(Some("message"), "string", None, None, false)];
        assert_eq!(blocks(&json!({"message": "hi"}), &plain), None);
    }
}
