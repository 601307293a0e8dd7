//! The `http-client` component (spec §3): renders an action into an HTTP request, sends it
//! with reqwest and maps the response, or every event of a streamed response, through the
//! action's `output`. Chunks are passed on the moment they arrive; dropping the stream drops
//! the upstream connection.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use reqwest::multipart::{Form, Part};

use super::patience::{Limits, Patience};
use super::{Binary, ByteStream, ChunkStream, Output};
use crate::binding::extract::{self, ChunkPaths};
use crate::binding::{interpolate_text, python_json, Binding, BindingError, Expr, Owner, Scope};
use crate::config::{self, Method, StreamFormat};
use crate::error::{redact, RunError};
use crate::fetch::Fetcher;
use crate::media::{media_type, Blob};
use crate::metrics::{Metrics, TokenUsage, Usage};
use crate::sse::event_data;
use crate::traces::Call;
use crate::upstream::{Answer, Failed, Lanes, Trust, HEAD_LIMIT, MAX_BODY};

mod failure;

use failure::{cause, describe, too_large, upstream_message};

/// How long an upstream may send nothing, unless the action says otherwise (D18).
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// The most of an error body read.
const ERROR_BODY_READ: usize = 64 * 1024;

/// An http-client with its connection pools and compiled actions (in the config's order: a
/// job names its action by its index, see `config::Job::target`).
pub struct HttpClient {
    id: String,
    lanes: Lanes,
    base_url: Option<String>,
    headers: Vec<(String, String)>,
    pub actions: Vec<Arc<Action>>,
    secrets: Arc<[String]>,
    metrics: Arc<Metrics>,
    /// What `;url` and `;path` in its templates read with.
    fetcher: Arc<Fetcher>,
}

/// One action, its templates compiled.
pub struct Action {
    id: String,
    endpoint: Option<Binding>,
    path: Option<Binding>,
    /// The request's URL when no template is in it, parsed once rather than on every call.
    fixed_url: Option<reqwest::Url>,
    method: Method,
    headers: Binding,
    params: Binding,
    body: Binding,
    stream_format: Option<StreamFormat>,
    /// `None` when absent or exactly `${response}`: the response itself is the output.
    output: Option<Binding>,
    /// When the output is one path into each streamed chunk (`${response[].choices[0].delta.content}`),
    /// that expression: each chunk's JSON is then read for that path only.
    chunk_path: Option<Expr>,
    /// Whether the output reads `input` or `context`: only then does a streamed answer keep
    /// them for its events (a chat's input holds the whole conversation so far).
    output_reads_run: bool,
    limits: Limits,
}

impl Action {
    fn compile(action: &config::Action, base_url: Option<&str>) -> Result<Self, BindingError> {
        let compile_str = |s: &Option<String>| {
            s.as_ref()
                .map(|s| Binding::compile(&Value::String(s.clone())))
                .transpose()
        };
        let output = action
            .output
            .as_ref()
            .map(Binding::compile)
            .transpose()?
            .filter(|output| !output.is_exactly("response"));
        let chunk_path = output
            .as_ref()
            .and_then(|o| o.bare_path("response[]"))
            .filter(|e| extract::covers(&e.path))
            .filter(|e| e.conversion.as_ref().is_none_or(|c| c.format.is_none()))
            .cloned();
        let (endpoint, path) = (compile_str(&action.endpoint)?, compile_str(&action.path)?);
        let literal = |binding: &Option<Binding>| match binding {
            Some(Binding::Literal(Value::String(text))) => Some(text.clone()),
            _ => None,
        };
        let fixed_url = match (&endpoint, base_url) {
            (Some(_), _) => literal(&endpoint),
            (None, Some(base)) => literal(&path).map(|path| join(base, &path)),
            (None, None) => None,
        };
        Ok(Self {
            fixed_url: fixed_url.and_then(|url| reqwest::Url::parse(&url).ok()),
            chunk_path,
            output_reads_run: output
                .as_ref()
                .is_some_and(|o| o.reads(&["input", "context"])),
            id: action.id.clone(),
            endpoint,
            path,
            method: action.method,
            headers: Binding::compile(&action.headers)?,
            params: Binding::compile(&action.params)?,
            body: Binding::compile(&action.body)?,
            stream_format: action.stream_format,
            output,
            limits: Limits {
                total: action.timeout.map(|t| t.0),
                silence: action.read_timeout.map_or(READ_TIMEOUT, |t| t.0),
                max_event: action.max_event_size.map_or(MAX_BODY, |s| s.0),
                max_body: action.max_body_size.map_or(MAX_BODY, |s| s.0),
            },
        })
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
    pub fn new(
        config: &config::HttpClient,
        trust: &Trust,
        secrets: Arc<[String]>,
        metrics: Arc<Metrics>,
        fetcher: Arc<Fetcher>,
    ) -> Result<Self, RunError> {
        Ok(Self {
            id: config.id.clone(),
            lanes: Lanes::new(trust.clone())?,
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            actions: config
                .actions
                .iter()
                .map(|a| Action::compile(a, config.base_url.as_deref()).map(Arc::new))
                .collect::<Result<_, _>>()?,
            secrets,
            metrics,
            fetcher,
        })
    }

    /// Sends the action's request for this job input (whose values are `owner`'s) and returns
    /// its output; the tokens the upstream reports (`usage`) are added to `usage`.
    pub async fn call(
        &self,
        action: &Arc<Action>,
        (input, owner): (Value, Owner<'_>),
        context: &Value,
        usage: &Arc<Usage>,
    ) -> Result<Output, RunError> {
        let scope = Scope::new()
            .with_owned("input", &input, owner)
            .with("context", context);
        let limits = action.limits;
        let deadline = limits.total.map(|t| Instant::now() + t);
        let mut patience = Patience::new(limits, deadline);
        let (request, mut traced) = self.request(&self.lanes.builder(), action, &scope).await?;
        let request = request
            .build()
            .map_err(|err| self.transport(Failed::Client(err)))?;
        let response = patience
            .wait(self.lanes.send(request))
            .await
            .and_then(|sent| sent.map_err(|failed| self.transport(failed)));
        let response = response.inspect_err(|err| {
            self.metrics.upstream(&self.id, None);
            traced.failed(&err.to_string());
        })?;
        let status = response.status;
        self.metrics.upstream(&self.id, Some(status.as_u16()));
        traced.status(status.as_u16());
        if !status.is_success() {
            let body = self
                .read_body(response, &mut patience, ERROR_BODY_READ, Overflow::Cut)
                .await
                .unwrap_or_default();
            return Err(RunError::Upstream {
                status: status.as_u16(),
                message: redact(&upstream_message(&body), &self.secrets),
            });
        }
        let content_type = response
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let media = content_type.as_deref().and_then(media_type);
        let value = match media.as_deref() {
            Some("text/event-stream") => {
                let stream = self.event_stream(
                    (response, traced),
                    Arc::clone(action),
                    patience,
                    if action.output_reads_run {
                        (input, owner != Owner::Server, context.clone())
                    } else {
                        (Value::Null, false, Value::Null)
                    },
                    Arc::clone(usage),
                );
                return Ok(Output::Stream(stream));
            }
            Some(json) if json == "application/json" || json.ends_with("+json") => {
                let body = self
                    .read_body(response, &mut patience, limits.max_body, Overflow::Fail)
                    .await?;
                let value: Value = serde_json::from_str(&body).map_err(|err| {
                    RunError::Transport(format!("invalid JSON from upstream: {err}"))
                })?;
                if let Some(count) = value.get("usage").and_then(TokenUsage::from_usage) {
                    traced.usage(&count);
                    usage.add(count);
                }
                value
            }
            // A page of HTML where an API answer was expected is a sign-in or error page.
            Some("text/html") => {
                return Err(RunError::UnexpectedType {
                    status: status.as_u16(),
                    content_type: content_type.unwrap_or_default(),
                })
            }
            Some(text) if !text.starts_with("text/") => {
                let binary = Binary {
                    filename: response
                        .headers
                        .get(reqwest::header::CONTENT_DISPOSITION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(disposition_filename),
                    content_type: content_type.unwrap_or_default(),
                    chunks: self.byte_stream(response, patience),
                };
                match &action.output {
                    None => return Ok(Output::Bytes(binary)),
                    Some(_) => binary.read().await?,
                }
            }
            _ => Value::String(
                self.read_body(response, &mut patience, limits.max_body, Overflow::Fail)
                    .await?,
            ),
        };
        match &action.output {
            Some(output) => Ok(Output::Value(
                self.fetcher
                    .render(output, scope.with("response", &value))
                    .await?,
            )),
            None => Ok(Output::Value(value)),
        }
    }

    /// A binary body's pieces as they arrive, within the action's silence, deadline and
    /// `max_body_size`.
    fn byte_stream(&self, response: Answer, mut patience: Patience) -> ByteStream {
        let secrets = Arc::clone(&self.secrets);
        let max_body = patience.limits.max_body;
        Box::pin(async_stream::stream! {
            let _lane = response.lane;
            let mut chunks = response.body;
            let mut total = 0;
            loop {
                match patience.wait(chunks.next()).await {
                    Err(err) => {
                        yield Err(err);
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(err))) => {
                        yield Err(RunError::Stream(redact(&describe(&*err), &secrets)));
                        break;
                    }
                    Ok(Some(Ok(chunk))) => {
                        total += chunk.len();
                        if total > max_body {
                            yield Err(too_large(max_body));
                            break;
                        }
                        yield Ok(chunk);
                    }
                }
            }
        })
    }

    /// Reads a body as text, at most `max` bytes: past it, `Overflow` says whether the rest is
    /// left unread or the answer is refused.
    async fn read_body(
        &self,
        response: Answer,
        patience: &mut Patience,
        max: usize,
        overflow: Overflow,
    ) -> Result<String, RunError> {
        let mut body = Vec::new();
        let mut chunks = response.body;
        while let Some(chunk) = patience.wait(chunks.next()).await? {
            let chunk = chunk
                .map_err(|err| RunError::Transport(redact(&describe(&*err), &self.secrets)))?;
            if body.len() + chunk.len() > max {
                match overflow {
                    Overflow::Cut => {
                        body.extend_from_slice(&chunk[..max - body.len()]);
                        break;
                    }
                    Overflow::Fail => return Err(too_large(max)),
                }
            }
            body.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The action's request, and its span when its run is traced (its `traceparent` sent).
    async fn request(
        &self,
        client: &reqwest::Client,
        action: &Action,
        scope: &Scope<'_>,
    ) -> Result<(reqwest::RequestBuilder, Call), RunError> {
        let method = reqwest::Method::from_bytes(action.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let (url, mut request) = match &action.fixed_url {
            Some(fixed) => (
                Cow::Borrowed(fixed.as_str()),
                client.request(method, fixed.clone()),
            ),
            None => {
                let url = self.url(action, scope).await?;
                let request = client.request(method, url.as_str());
                (Cow::Owned(url), request)
            }
        };

        if let Value::Object(params) = self.fetcher.render(&action.params, scope.clone()).await? {
            let pairs: Vec<(String, String)> = params
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, interpolate_text(&v)))
                .collect();
            request = request.query(&pairs);
        }

        let mut headers = self.headers.clone();
        if let Value::Object(action_headers) =
            self.fetcher.render(&action.headers, scope.clone()).await?
        {
            for (key, value) in action_headers {
                headers.retain(|(k, _)| *k != key);
                if !value.is_null() {
                    headers.push((key, interpolate_text(&value)));
                }
            }
        }
        let is_content_type = |k: &str| k.eq_ignore_ascii_case("content-type");
        let content_type = headers
            .iter()
            .find(|(k, _)| is_content_type(k))
            .map(|(_, v)| media_type(v).unwrap_or_default());
        let multipart = content_type.as_deref() == Some("multipart/form-data");
        for (key, value) in &headers {
            // A multipart body's type names its boundary, which the form writes itself.
            if !(multipart && is_content_type(key)) {
                request = request.header(key, value);
            }
        }

        let body = self.fetcher.render(&action.body, scope.clone()).await?;
        let traced = Call::start((action.method.as_str(), &url, &body));
        if let Some(traceparent) = traced.traceparent() {
            request = request.header("traceparent", traceparent);
        }
        // A body that is bytes (`body: ${input.file as file}`) is sent as they are.
        if let Some(blob) = body.as_str().and_then(Blob::from_data_uri) {
            if content_type.is_none() {
                request = request.header("Content-Type", &blob.media_type);
            }
            return Ok((request.body(blob.bytes), traced));
        }
        request = match (body, content_type.as_deref()) {
            (Value::Null, _) => request,
            (Value::Object(fields), Some("multipart/form-data")) => {
                request.multipart(multipart_form(fields)?)
            }
            (_, Some("multipart/form-data")) => {
                return Err(RunError::Unsupported(
                    "a multipart/form-data body must be a mapping of fields".into(),
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
        Ok((request, traced))
    }

    /// `endpoint`, or `base_url` + `path`.
    async fn url(&self, action: &Action, scope: &Scope<'_>) -> Result<String, RunError> {
        let text = |binding| async move {
            self.fetcher
                .render(binding, scope.clone())
                .await
                .map(|v| interpolate_text(&v))
        };
        match (&action.endpoint, &action.path, &self.base_url) {
            (Some(endpoint), _, _) => text(endpoint).await,
            (None, Some(path), Some(base)) => Ok(join(base, &text(path).await?)),
            _ => Err(RunError::Unsupported(format!(
                "action '{}' has no endpoint, or a path without base_url",
                action.id
            ))),
        }
    }

    /// Maps every event of an SSE response through the action's output; nulls are dropped.
    /// The last `usage` the events report (OpenAI's final chunk, Anthropic's `message_start`
    /// and `message_delta`) is added to `usage` when the stream ends.
    fn event_stream(
        &self,
        (response, mut traced): (Answer, Call),
        action: Arc<Action>,
        mut patience: Patience,
        (input, caller, context): (Value, bool, Value),
        usage: Arc<Usage>,
    ) -> ChunkStream {
        let secrets = Arc::clone(&self.secrets);
        let fetcher = Arc::clone(&self.fetcher);
        Box::pin(async_stream::stream! {
            let _lane = response.lane;
            let mut reported = ReportedUsage {
                count: TokenUsage::default(),
                run: usage,
            };
            let limits = action.limits;
            let mut events = std::pin::pin!(event_data(
                response.body.map(|r| r.map_err(|e| describe(&*e))),
                limits.max_event,
            ));
            // Whatever of the job's input is a caller's counts as the caller's here.
            let owner = if caller { Owner::Caller } else { Owner::Server };
            let scope = Scope::new().with_owned("input", &input, owner).with("context", &context);
            let json = action.stream_format == Some(StreamFormat::Json);
            // Otherwise, the paths the output reads of each JSON chunk, when it can tell.
            let chunk_paths = match (json, &action.chunk_path, &action.output) {
                (true, None, Some(output)) => ChunkPaths::of(output, "response[]"),
                _ => None,
            };
            loop {
                let next = match patience.wait(events.next()).await {
                    Ok(next) => next,
                    Err(err) => {
                        yield Err(err);
                        break;
                    }
                };
                let data = match next {
                    None => break,
                    Some(Ok(data)) => data,
                    Some(Err(err)) => {
                        yield Err(RunError::Stream(redact(&err, &secrets)));
                        break;
                    }
                };
                traced.piece();
                if let Some(count) = event_usage(&data) {
                    reported.count.merge_latest(count);
                    traced.usage(&reported.count);
                }
                let value = match (json, &action.chunk_path, &chunk_paths, &action.output) {
                    (true, Some(expr), ..) => {
                        expr.converted(extract::extract(&data, &expr.path), &scope).map_err(RunError::from)
                    }
                    // Read for the paths the output reads only.
                    (true, None, Some(paths), Some(output)) => {
                        let values = paths.read(&data);
                        let scope = scope.clone().with_known("response[]", paths.paths(), &values);
                        fetcher.render(output, scope).await
                    }
                    (_, _, _, output) => {
                        let chunk = match json {
                            true => serde_json::from_str(&data).unwrap_or(Value::Null),
                            false => Value::String(data),
                        };
                        match output {
                            Some(output) => fetcher.render(output, scope.clone().with("response[]", &chunk)).await,
                            None => Ok(chunk),
                        }
                    }
                };
                let value = match value {
                    Ok(value) => value,
                    Err(err) => {
                        yield Err(err);
                        break;
                    }
                };
                if !value.is_null() {
                    yield Ok(value);
                }
            }
        })
    }

    fn transport(&self, failed: Failed) -> RunError {
        let err = match failed {
            Failed::Client(err) => err,
            Failed::Unreachable { host, detail } => {
                return RunError::Unreachable {
                    host,
                    detail: redact(&detail, &self.secrets),
                }
            }
            Failed::Broken(err) if err.is_parse_too_large() => {
                return RunError::Transport(format!(
                    "the upstream's answer has a head larger than {}",
                    config::Size(HEAD_LIMIT)
                ))
            }
            Failed::Broken(err) => {
                return RunError::Transport(redact(&describe(&err), &self.secrets))
            }
            Failed::NoClient(err) => return err,
        };
        let host = err.url().and_then(|url| {
            let host = url.host_str()?;
            Some(match url.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            })
        });
        match host {
            Some(host) if err.is_connect() || (err.is_timeout() && !err.is_body()) => {
                let detail = if err.is_timeout() {
                    "no answer within the connect timeout".to_string()
                } else {
                    cause(&err)
                };
                RunError::Unreachable {
                    host,
                    detail: redact(&detail, &self.secrets),
                }
            }
            _ => RunError::Transport(redact(&describe(&err), &self.secrets)),
        }
    }
}

/// One streamed request's latest token count, added to its run's when the stream ends or is
/// dropped.
struct ReportedUsage {
    count: TokenUsage,
    run: Arc<Usage>,
}

impl Drop for ReportedUsage {
    fn drop(&mut self) {
        self.run.add(self.count);
    }
}

/// The token count an event reports in a `usage` block (OpenAI's last chunk, Anthropic's
/// `message_delta`) or `message.usage` (Anthropic's `message_start`). Most events have none,
/// which the text says without parsing it.
fn event_usage(data: &str) -> Option<TokenUsage> {
    if !data.contains("\"usage\"") {
        return None;
    }
    let event: Value = serde_json::from_str(data).ok()?;
    let usage = event
        .get("usage")
        .filter(|usage| usage.is_object())
        .or_else(|| event.get("message")?.get("usage"))?;
    TokenUsage::from_usage(usage)
}

/// `base_url` + `path`, one slash between them.
fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The file name of a `Content-Disposition: attachment; filename="speech.mp3"`.
fn disposition_filename(value: &str) -> Option<String> {
    value
        .split(';')
        .find_map(|part| part.trim().strip_prefix("filename="))
        .map(|name| name.trim().trim_matches('"').to_string())
        .filter(|name| !name.is_empty())
}

/// A `multipart/form-data` body: bytes (data URIs) become file parts with their name and
/// type, lists repeat their field, nulls are left out, anything else is a text field.
fn multipart_form(fields: serde_json::Map<String, Value>) -> Result<Form, RunError> {
    let mut form = Form::new();
    for (name, value) in fields {
        let values = match value {
            Value::Array(items) => items,
            value => vec![value],
        };
        for value in values.into_iter().filter(|v| !v.is_null()) {
            let bytes = value.as_str().and_then(Blob::from_data_uri);
            let part = match bytes {
                Some(blob) => Part::bytes(blob.bytes.clone())
                    .file_name(blob.file_name())
                    .mime_str(&blob.media_type)
                    .map_err(|err| RunError::Transport(describe(&err)))?,
                None => Part::text(interpolate_text(&value)),
            };
            form = form.part(name.clone(), part);
        }
    }
    Ok(form)
}

/// What to do with the part of a body past its cap.
#[derive(Clone, Copy)]
enum Overflow {
    /// Keep what came before it (an error body: its start says what went wrong).
    Cut,
    /// Refuse the answer.
    Fail,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(action: &str, base_url: Option<&str>) -> Action {
        let action: config::Action = serde_yaml::from_str(action).unwrap();
        Action::compile(&action, base_url).unwrap()
    }

    #[test]
    fn a_url_without_templates_is_parsed_once() {
        fn fixed(action: &Action) -> Option<&str> {
            action.fixed_url.as_ref().map(reqwest::Url::as_str)
        }
        let base = Some("https://api.example.com/v1/");
        let path = compiled("path: /chat/completions", base);
        assert_eq!(
            fixed(&path),
            Some("https://api.example.com/v1/chat/completions")
        );
        let endpoint = compiled("endpoint: http://127.0.0.1:8000/x", None);
        assert_eq!(fixed(&endpoint), Some("http://127.0.0.1:8000/x"));
        // Rendered on each call: a template in it, no base, or no URL at all.
        assert_eq!(fixed(&compiled("path: /models/${input.id}", base)), None);
        assert_eq!(fixed(&compiled("path: /chat/completions", None)), None);
        assert_eq!(fixed(&compiled("endpoint: 'not a url'", None)), None);
    }
}
