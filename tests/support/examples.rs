//! What the tests of `examples/` share: an example copied into a scratch directory with its
//! providers pointed at the mock, and the doors it is tried through.

use base64::Engine as _;
use serde_json::Value;
use testkit::providers::{Field, Providers, Seen};

use super::{stderr, stdout, Server, Workdir, TEST_KEY};

pub const ANTHROPIC_KEY: &str = "sk-ant-test-key-0123";
pub const ELEVENLABS_KEY: &str = "el-test-key-4567";
pub const TAVILY_KEY: &str = "tvly-test-key-89ab";

/// An example's folder copied into a scratch directory, its providers pointed at the mock,
/// with a `.env` holding every key.
pub fn example(name: &str, providers: &Providers) -> (Workdir, String) {
    let path = format!(
        "{}/examples/{name}/model-compose.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let config = providers.point(&std::fs::read_to_string(path).unwrap());
    let dir = Workdir::empty();
    dir.write("model-compose.yml", &config);
    dir.write(
        ".env",
        &format!(
            "OPENAI_API_KEY={TEST_KEY}\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\nELEVENLABS_API_KEY={ELEVENLABS_KEY}\nTAVILY_API_KEY={TAVILY_KEY}\n"
        ),
    );
    (dir, config)
}

pub fn run_ok(dir: &Workdir, args: &[&str]) -> String {
    let output = super::run(dir, args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

/// `POST /workflows/runs` with this JSON body.
pub async fn api(server: &Server, body: Value) -> reqwest::Response {
    super::post(server, &body.to_string()).await
}

pub async fn api_json(server: &Server, body: Value) -> (u16, Value) {
    let response = api(server, body).await;
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

/// The output the web UI's chat server function ends with (its `end` event's `output`).
pub async fn ui_output(server: &Server, workflow: &str, input: Value) -> Value {
    ui_end(server, workflow, input).await["output"].clone()
}

/// The events of the web UI's chat server function for `input` to `workflow`.
async fn ui_events(server: &Server, workflow: &str, input: Value) -> String {
    let input = input.to_string();
    let args = [("workflow_id", workflow), ("input", &input), ("prompt", "")];
    let response = super::ui_call(server, "chat", &args).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The text the web UI's chat server function streams (its `piece` events, joined).
pub async fn ui_text(server: &Server, workflow: &str, input: Value) -> String {
    let events = ui_events(server, workflow, input).await;
    assert!(events.contains(r#""status":"completed""#), "{events}");
    events
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("event: piece\ndata: "))
        .map(|data| serde_json::from_str::<String>(data).unwrap())
        .collect()
}

/// The `end` event of the web UI's chat server function: the output, and its HTML blocks.
pub async fn ui_end(server: &Server, workflow: &str, input: Value) -> Value {
    let text = ui_events(server, workflow, input).await;
    let end = text
        .split("\n\n")
        .find_map(|event| event.strip_prefix("event: end\ndata: "))
        .unwrap_or_else(|| panic!("no end event in {text}"));
    let end: Value = serde_json::from_str(&end.replace("\ndata: ", "\n")).unwrap();
    assert_eq!(end["status"], "completed", "{end}");
    end
}

pub async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

pub async fn get_json(url: String) -> Value {
    json_of(reqwest::get(url).await.unwrap()).await
}

/// A file part of a multipart form.
pub fn file_part(bytes: &[u8], name: &str, media_type: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes.to_vec())
        .file_name(name.to_string())
        .mime_str(media_type)
        .unwrap()
}

pub async fn post_form(url: String, form: reqwest::multipart::Form) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn data_uri(media_type: &str, name: Option<&str>, bytes: &[u8]) -> String {
    let name = name.map(|n| format!(";name={n}")).unwrap_or_default();
    format!("data:{media_type}{name};base64,{}", base64(bytes))
}

/// The fields of a multipart request the mock received.
pub async fn fields_of(seen: &Seen) -> Vec<(String, Field)> {
    let mut request = axum::http::Request::builder()
        .method("POST")
        .uri("/")
        .body(axum::body::Body::from(seen.body.clone()))
        .unwrap();
    *request.headers_mut() = seen.headers.clone();
    testkit::providers::fields(request).await.unwrap()
}

pub fn text_field<'a>(fields: &'a [(String, Field)], name: &str) -> &'a str {
    fields
        .iter()
        .find_map(|(n, f)| match f {
            Field::Text(text) if n == name => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no text field {name}"))
}
