//! The `http-client` component (spec §3): renders an action into an HTTP request, sends it
//! with reqwest and maps the response, or every event of a streamed response, through the
//! action's `output`. Chunks are passed on the moment they arrive; dropping the stream drops
//! the upstream connection.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use super::sse_decode::event_data;
use super::{ChunkStream, Output};
use crate::binding::{interpolate_text, python_json, Binding, Expr, Scope};
use crate::config::{self, Method, StreamFormat};
use crate::error::{redact, RunError};
use crate::media::media_type;

/// How long connecting to an upstream may take (D13).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an error body kept for the message.
const ERROR_BODY_LIMIT: usize = 2000;

/// An http-client with its connection pool and compiled actions (in the config's order: a
/// job names its action by its index, see `config::Job::target`).
pub struct HttpClient {
    client: reqwest::Client,
    base_url: Option<String>,
    headers: Vec<(String, String)>,
    pub actions: Vec<Arc<Action>>,
    secrets: Arc<[String]>,
}

/// One action, its templates compiled.
pub struct Action {
    id: String,
    endpoint: Option<Binding>,
    path: Option<Binding>,
    method: Method,
    headers: Binding,
    params: Binding,
    body: Binding,
    stream_format: Option<StreamFormat>,
    /// `None` when absent or exactly `${response}`: the response itself is the output.
    output: Option<Binding>,
    timeout: Option<Duration>,
}

impl Action {
    fn compile(action: &config::HttpAction) -> Self {
        let compile_str = |s: &Option<String>| {
            s.as_ref()
                .map(|s| Binding::compile(&Value::String(s.clone())))
        };
        let output = action
            .output
            .as_ref()
            .map(Binding::compile)
            .filter(|output| !output.is_exactly("response"));
        Self {
            id: action.id.clone(),
            endpoint: compile_str(&action.endpoint),
            path: compile_str(&action.path),
            method: action.method,
            headers: Binding::compile(&action.headers),
            params: Binding::compile(&action.params),
            body: Binding::compile(&action.body),
            stream_format: action.stream_format,
            output,
            timeout: action.timeout.map(|t| t.0),
        }
    }

    /// Every expression, in the order the original's schema inference reads an action.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        for binding in [&self.output, &self.endpoint, &self.path]
            .into_iter()
            .flatten()
        {
            out.extend(binding.exprs());
        }
        for binding in [&self.headers, &self.body, &self.params] {
            out.extend(binding.exprs());
        }
        out
    }

    /// The output template, when the action maps its response.
    pub fn output(&self) -> Option<&Binding> {
        self.output.as_ref()
    }
}

impl HttpClient {
    /// Compiles a configured http-client; `secrets` are redacted from every error message.
    pub fn new(config: &config::HttpClient, secrets: Arc<[String]>) -> Result<Self, RunError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("model-compose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| RunError::Transport(describe(&err)))?;
        Ok(Self {
            client,
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            actions: config
                .actions
                .iter()
                .map(|a| Arc::new(Action::compile(a)))
                .collect(),
            secrets,
        })
    }

    /// Sends the action's request for this job input and returns its output.
    pub async fn call(
        &self,
        action: &Arc<Action>,
        input: &Value,
        context: &Value,
    ) -> Result<Output, RunError> {
        let scope = Scope::new().with("input", input).with("context", context);
        let deadline = action.timeout.map(|t| Instant::now() + t);
        let request = self.request(action, &scope)?;
        let response = within(deadline, action.timeout, request.send())
            .await?
            .map_err(|err| self.transport(&err))?;
        let status = response.status();
        if !status.is_success() {
            let body = within(deadline, action.timeout, response.text())
                .await?
                .unwrap_or_default();
            return Err(RunError::Upstream {
                status: status.as_u16(),
                message: redact(&upstream_message(&body), &self.secrets),
            });
        }
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(media_type)
            .unwrap_or_default();
        if media_type == "text/event-stream" {
            let stream = self.event_stream(
                response,
                Arc::clone(action),
                deadline,
                input.clone(),
                context.clone(),
            );
            return Ok(Output::Stream(stream));
        }
        let is_json = media_type == "application/json";
        let body = within(deadline, action.timeout, response.text())
            .await?
            .map_err(|err| self.transport(&err))?;
        let value = if is_json {
            serde_json::from_str(&body)
                .map_err(|err| RunError::Transport(format!("invalid JSON from upstream: {err}")))?
        } else {
            Value::String(body)
        };
        match &action.output {
            Some(output) => Ok(Output::Value(
                output.render(&scope.with("response", &value))?,
            )),
            None => Ok(Output::Value(value)),
        }
    }

    fn request(&self, action: &Action, scope: &Scope) -> Result<reqwest::RequestBuilder, RunError> {
        let url = self.url(action, scope)?;
        let method = reqwest::Method::from_bytes(action.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let mut request = self.client.request(method, url);

        if let Value::Object(params) = action.params.render(scope)? {
            let pairs: Vec<(String, String)> = params
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, interpolate_text(&v)))
                .collect();
            request = request.query(&pairs);
        }

        let mut headers = self.headers.clone();
        if let Value::Object(action_headers) = action.headers.render(scope)? {
            for (key, value) in action_headers {
                headers.retain(|(k, _)| *k != key);
                if !value.is_null() {
                    headers.push((key, interpolate_text(&value)));
                }
            }
        }
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| media_type(v).unwrap_or_default());
        for (key, value) in &headers {
            request = request.header(key, value);
        }

        let body = action.body.render(scope)?;
        request = match (body, content_type.as_deref()) {
            (Value::Null, _) => request,
            (_, Some("multipart/form-data")) => {
                return Err(RunError::Unsupported(
                    "multipart/form-data bodies are not supported".into(),
                ))
            }
            (Value::Object(map), None | Some("application/x-www-form-urlencoded")) => {
                let pairs: Vec<(String, String)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), interpolate_text(v)))
                    .collect();
                request.form(&pairs)
            }
            (Value::String(text), None) => request
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(text),
            (value, None) => request
                .header("Content-Type", "application/json")
                .body(python_json(&value)),
            (Value::String(text), Some(ct)) if ct != "application/json" => request.body(text),
            (value, Some(_)) => request.body(python_json(&value)),
        };
        Ok(request)
    }

    /// `endpoint`, or `base_url` + `path`.
    fn url(&self, action: &Action, scope: &Scope) -> Result<String, RunError> {
        let text = |binding: &Binding| binding.render(scope).map(|v| interpolate_text(&v));
        match (&action.endpoint, &action.path, &self.base_url) {
            (Some(endpoint), _, _) => Ok(text(endpoint)?),
            (None, Some(path), Some(base)) => Ok(format!(
                "{}/{}",
                base.trim_end_matches('/'),
                text(path)?.trim_start_matches('/')
            )),
            _ => Err(RunError::Unsupported(format!(
                "action '{}' has no endpoint, or a path without base_url",
                action.id
            ))),
        }
    }

    /// Maps every event of an SSE response through the action's output; nulls are dropped.
    fn event_stream(
        &self,
        response: reqwest::Response,
        action: Arc<Action>,
        deadline: Option<Instant>,
        input: Value,
        context: Value,
    ) -> ChunkStream {
        let secrets = Arc::clone(&self.secrets);
        Box::pin(async_stream::stream! {
            let mut events = std::pin::pin!(event_data(response.bytes_stream().map(|r| r.map_err(|e| describe(&e)))));
            let scope = Scope::new().with("input", &input).with("context", &context);
            loop {
                let next = match deadline {
                    Some(deadline) => match tokio::time::timeout_at(deadline, events.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            yield Err(RunError::Timeout(action.timeout.unwrap_or_default()));
                            break;
                        }
                    },
                    None => events.next().await,
                };
                let data = match next {
                    None => break,
                    Some(Ok(data)) => data,
                    Some(Err(err)) => {
                        yield Err(RunError::Stream(redact(&err, &secrets)));
                        break;
                    }
                };
                let chunk = match action.stream_format {
                    Some(StreamFormat::Json) => serde_json::from_str(&data).unwrap_or(Value::Null),
                    Some(StreamFormat::Text) | None => Value::String(data),
                };
                let value = match &action.output {
                    Some(output) => match output.render(&scope.clone().with("response[]", &chunk)) {
                        Ok(value) => value,
                        Err(err) => {
                            yield Err(err.into());
                            break;
                        }
                    },
                    None => chunk,
                };
                if !value.is_null() {
                    yield Ok(value);
                }
            }
        })
    }

    fn transport(&self, err: &reqwest::Error) -> RunError {
        if err.is_timeout() {
            return RunError::Transport("timed out connecting to the upstream".into());
        }
        RunError::Transport(redact(&describe(err), &self.secrets))
    }
}

/// Awaits `future` until the deadline, if there is one.
async fn within<T>(
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    future: impl std::future::Future<Output = T>,
) -> Result<T, RunError> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| RunError::Timeout(timeout.unwrap_or_default())),
        None => Ok(future.await),
    }
}

/// An error and its causes, one sentence: reqwest's own message alone says little.
fn describe(err: &dyn std::error::Error) -> String {
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
fn upstream_message(body: &str) -> String {
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
