//! Mocks of the providers the examples call, on one 127.0.0.1 port, each in its own wire
//! format: OpenAI (chat completions as JSON and SSE, speech as `audio/mpeg` bytes,
//! transcriptions and image edits as multipart uploads, image generations as URLs or base64),
//! Anthropic messages (JSON, and SSE with `event:` lines; `x-api-key` and
//! `anthropic-version` required), ElevenLabs text to speech, and the agents' tools (Tavily's
//! search, OpenWeatherMap's weather). Every request is recorded byte for byte.
//!
//! Point a config at it by replacing `https://api.openai.com/v1` with
//! [`Providers::openai`] (and likewise for the others).

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};

/// A 2×2 orange PNG: what every generated or edited image is.
pub const PNG: [u8; 73] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xdf, 0xc3, 0x00,
    0x44, 0x0c, 0x10, 0x0a, 0x00, 0x2f, 0x3e, 0x06, 0x2d, 0x98, 0xa3, 0x74, 0x29, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The start of every spoken answer: an ID3 tag and an MPEG frame header, bytes that are not
/// UTF-8. The text spoken follows it.
pub const MP3_HEAD: [u8; 14] = [
    b'I', b'D', b'3', 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfb, 0x90, 0x64,
];

/// The audio the mock speaks for `text`: [`MP3_HEAD`] then the text's bytes.
pub fn speech(text: &str) -> Vec<u8> {
    [&MP3_HEAD[..], text.as_bytes()].concat()
}

/// One request as a provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query, as sent (`/openai/v1/images/generations`).
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (JSON bodies are compared as their exact bytes).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The running mock.
pub struct Providers {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Providers {
    pub fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        // The handler needs the address it answers on (image links point to it): it learns
        // it once the server is up.
        let address = Arc::new(std::sync::OnceLock::new());
        // Uploads as large as a provider takes (OpenAI's audio: 25 MB; the tests send more).
        let app = Router::new()
            .fallback(answer)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state((Arc::clone(&seen), Arc::clone(&address)));
        let base = super::serve(app);
        address.get_or_init(|| base.clone());
        Self { base, seen }
    }

    pub fn openai(&self) -> String {
        format!("{}/openai/v1", self.base)
    }

    pub fn anthropic(&self) -> String {
        format!("{}/anthropic/v1", self.base)
    }

    pub fn elevenlabs(&self) -> String {
        format!("{}/elevenlabs/v1", self.base)
    }

    /// A config with every provider's address replaced by this mock's.
    pub fn point(&self, config: &str) -> String {
        config
            .replace("https://api.openai.com/v1", &self.openai())
            .replace("https://api.anthropic.com/v1", &self.anthropic())
            .replace("https://api.elevenlabs.io/v1", &self.elevenlabs())
            .replace("https://api.x.ai/v1", &format!("{}/xai/v1", self.base))
            .replace(
                "https://vision.googleapis.com/v1",
                &format!("{}/google/v1", self.base),
            )
            .replace("https://api.tavily.com", &format!("{}/tavily", self.base))
            .replace(
                "https://api.openweathermap.org",
                &format!("{}/openweather", self.base),
            )
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests so far, then forgets them.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

type Shared = (Arc<Mutex<Vec<Seen>>>, Arc<std::sync::OnceLock<String>>);

async fn answer(State((seen, address)): State<Shared>, request: Request) -> Response {
    let base = address.get().cloned().unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let uri = parts.uri.to_string();
    seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        uri: uri.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let path = parts.uri.path().to_string();
    let json_body = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let form = || {
        let request = Request::from_parts(parts.clone(), Body::from(body.clone()));
        fields(request)
    };
    match path.as_str() {
        "/openai/v1/chat/completions" | "/xai/v1/chat/completions" => openai_chat(&json_body()),
        "/openai/v1/audio/speech" => audio(speech(json_body()["input"].as_str().unwrap_or(""))),
        "/openai/v1/audio/transcriptions" => transcription(form().await),
        "/openai/v1/images/generations" => images(&json_body(), &base),
        "/openai/v1/images/edits" | "/openai/v1/images/variations" => image_edit(form().await),
        "/google/v1/images:annotate" => vision(&json_body()),
        "/anthropic/v1/messages" => anthropic(&parts.headers, &json_body()),
        // Tavily's search and OpenWeatherMap's current weather, as the agents' tools call them.
        "/tavily/search" => axum::Json(json!({"query": json_body()["query"], "results": [
            {"title": "A result", "url": "https://example.com/a", "content": "what the page says"}]}))
        .into_response(),
        "/openweather/data/2.5/weather" => {
            let city = parts.uri.query().and_then(|q| {
                q.split('&').find_map(|pair| pair.strip_prefix("q="))
            });
            axum::Json(json!({"name": city.unwrap_or("Nowhere"), "main": {"temp": 21.5,
                "feels_like": 20.9, "humidity": 40}, "weather": [{"description": "clear sky"}],
                "wind": {"speed": 3.1}}))
            .into_response()
        }
        p if p.starts_with("/elevenlabs/v1/text-to-speech/") => {
            if parts.headers.get("xi-api-key").is_none() {
                return (StatusCode::UNAUTHORIZED, "missing xi-api-key").into_response();
            }
            audio(speech(json_body()["text"].as_str().unwrap_or("")))
        }
        p if p.starts_with("/files/") => {
            ([("content-type", "image/png")], PNG.to_vec()).into_response()
        }
        // A page of text that says where it is.
        p if p.starts_with("/text/") => {
            ([("content-type", "text/plain")], format!("the text at {p}")).into_response()
        }
        // `/redirect?to=URL`: a redirect there.
        "/redirect" => {
            let to = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .unwrap_or("/");
            (StatusCode::FOUND, [("location", to.to_string())]).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"message": format!("no route {path}")}})),
        )
            .into_response(),
    }
}

/// The last user message's text.
pub(crate) fn last_prompt(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.iter().rev().find(|m| m["role"] == "user");
    match last.map(|m| &m["content"]) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The system message's text (empty without one).
fn system_prompt(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages.iter().find(|m| m["role"] == "system");
    system
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

/// What a classifier answers: a system message that asks for `one word: a, b or c.` gets
/// the first of those words the prompt contains (any case), else the last.
fn classified(system: &str, prompt: &str) -> Option<String> {
    let (_, labels) = system.split_once("one word:")?;
    let labels = labels.split('.').next().unwrap_or("");
    let labels: Vec<&str> = labels
        .split([','])
        .flat_map(|part| part.split(" or "))
        .map(str::trim)
        .filter(|label| !label.is_empty())
        .collect();
    let prompt = prompt.to_lowercase();
    let found = labels.iter().find(|l| prompt.contains(&l.to_lowercase()));
    found.or(labels.last()).map(|label| label.to_string())
}

/// `You said: PROMPT` (a classifier's word, when asked for one; see [`classified`]), as JSON
/// or streamed word by word.
fn openai_chat(body: &Value) -> Response {
    if let Some(message) = super::tool_calls::openai_turn(body) {
        if body["stream"] == true {
            return sse_body(
                super::tool_calls::openai_streamed(&message)
                    .map(|data| format!("data: {data}\n\n")),
            );
        }
        return axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        }))
        .into_response();
    }
    let (system, prompt) = (system_prompt(body), last_prompt(body));
    let reply = match super::tool_calls::openai_results(body) {
        Some(results) => format!("Done: {results}"),
        None => classified(&system, &prompt).unwrap_or_else(|| format!("You said: {prompt}")),
    };
    if body["stream"] == true {
        let words = split_words(&reply);
        let usage = (body["stream_options"]["include_usage"] == true).then_some(5);
        return sse_body(
            super::mock_upstream::openai_events(&words, usage)
                .into_iter()
                .map(|data| format!("data: {data}\n\n"))
                .chain(["data: [DONE]\n\n".to_string()]),
        );
    }
    axum::Json(json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    }))
    .into_response()
}

/// An SSE answer with these already framed events.
pub(crate) fn sse_body(events: impl Iterator<Item = String>) -> Response {
    (
        [("content-type", "text/event-stream; charset=utf-8")],
        events.collect::<String>(),
    )
        .into_response()
}

pub(crate) fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        words.push(if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        });
    }
    words
}

/// Audio bytes in two pieces, as a server that streams its audio sends them.
fn audio(bytes: Vec<u8>) -> Response {
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let pieces = vec![
        Bytes::copy_from_slice(first),
        Bytes::copy_from_slice(second),
    ];
    let body = Body::from_stream(futures::stream::iter(
        pieces.into_iter().map(Ok::<_, std::io::Error>),
    ));
    ([("content-type", "audio/mpeg")], body).into_response()
}

/// One field of a multipart upload: its text, or its file's name, type and bytes.
#[derive(Debug, Clone)]
pub enum Field {
    Text(String),
    File {
        name: String,
        content_type: String,
        bytes: Bytes,
    },
}

/// The fields of a multipart request, in order; `None` when it is not one.
pub async fn fields(request: Request) -> Option<Vec<(String, Field)>> {
    let mut form = Multipart::from_request(request, &()).await.ok()?;
    let mut out = Vec::new();
    while let Some(field) = form.next_field().await.ok()? {
        let name = field.name().unwrap_or_default().to_string();
        let value = match field.file_name().map(str::to_string) {
            Some(file) => Field::File {
                name: file,
                content_type: field.content_type().unwrap_or_default().to_string(),
                bytes: field.bytes().await.ok()?,
            },
            None => Field::Text(field.text().await.ok()?),
        };
        out.push((name, value));
    }
    Some(out)
}

fn file_of(fields: &[(String, Field)], wanted: &str) -> Option<(String, String, usize)> {
    fields.iter().find_map(|(name, field)| match field {
        Field::File {
            name: file,
            content_type,
            bytes,
        } if name == wanted => Some((file.clone(), content_type.clone(), bytes.len())),
        _ => None,
    })
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

/// What was heard: the file's name, type and size.
fn transcription(fields: Option<Vec<(String, Field)>>) -> Response {
    let Some(fields) = fields else {
        return bad_request("expected multipart/form-data");
    };
    let Some((name, content_type, size)) = file_of(&fields, "file") else {
        return bad_request("no file part named 'file'");
    };
    axum::Json(json!({
        "text": format!("{size} bytes of {content_type} in {name}"),
        "usage": {"type": "duration", "seconds": 3}
    }))
    .into_response()
}

/// `n` images, as URLs on this mock or as base64 (`response_format: b64_json`, or always for
/// `gpt-image-1`).
fn images(body: &Value, base: &str) -> Response {
    let n = body["n"].as_u64().unwrap_or(1);
    let base64 = body["response_format"] == "b64_json" || body["model"] == "gpt-image-1";
    let data: Vec<Value> = (1..=n)
        .map(|i| {
            if base64 {
                json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(PNG)})
            } else {
                json!({"url": format!("{base}/files/{i}.png")})
            }
        })
        .collect();
    axum::Json(json!({"created": 1700000000, "data": data})).into_response()
}

/// The edited image (always the same PNG), as base64, once an image part arrived.
fn image_edit(fields: Option<Vec<(String, Field)>>) -> Response {
    let Some(fields) = fields else {
        return bad_request("expected multipart/form-data");
    };
    if file_of(&fields, "image").is_none() {
        return bad_request("no file part named 'image'");
    }
    axum::Json(json!({
        "created": 1700000000,
        "data": [{"b64_json": base64::engine::general_purpose::STANDARD.encode(PNG)}]
    }))
    .into_response()
}

/// Google Cloud Vision's answer for any feature: a label, a text and a face, once the image
/// arrived as base64.
fn vision(body: &Value) -> Response {
    let image = body["requests"][0]["image"]["content"]
        .as_str()
        .unwrap_or("");
    if base64::engine::general_purpose::STANDARD
        .decode(image)
        .is_err()
        || image.is_empty()
    {
        return bad_request("image.content must be base64");
    }
    axum::Json(json!({"responses": [{
        "labelAnnotations": [{"description": "Orange", "score": 0.98}],
        "textAnnotations": [{"description": "HELLO"}],
        "fullTextAnnotation": {"text": "HELLO"},
        "faceAnnotations": [{"joyLikelihood": "VERY_LIKELY"}],
        "localizedObjectAnnotations": [{"name": "Square", "score": 0.9}],
        "landmarkAnnotations": [{"description": "Nowhere"}],
        "imagePropertiesAnnotation": {"dominantColors": {"colors": [{"color": {"red": 255, "green": 140}}]}}
    }]}))
    .into_response()
}

/// `You said: PROMPT` from Claude: JSON, or SSE with an `event:` line for every event.
fn anthropic(headers: &HeaderMap, body: &Value) -> Response {
    if headers.get("x-api-key").is_none() || headers.get("anthropic-version").is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"type": "error", "error": {"type": "authentication_error", "message": "x-api-key and anthropic-version are required"}})),
        )
            .into_response();
    }
    use super::tool_calls::{
        anthropic_prompt, anthropic_results, anthropic_streamed, anthropic_turn,
    };
    if let Some(blocks) = anthropic_turn(body) {
        if body["stream"] == true {
            return sse_body(anthropic_streamed(&blocks));
        }
        return axum::Json(json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": body["model"],
            "content": blocks, "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "output_tokens": 4}
        }))
        .into_response();
    }
    let reply = match anthropic_results(body) {
        Some(results) => format!("Done: {results}"),
        None => format!("You said: {}", anthropic_prompt(body)),
    };
    if body["stream"] == true {
        let events = super::mock_upstream::anthropic_events(&split_words(&reply));
        return sse_body(
            events
                .into_iter()
                .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")),
        );
    }
    axum::Json(json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": body["model"],
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 4}
    }))
    .into_response()
}
