//! Streamed outputs: chunks from a component, encoded as text pieces at the end.

use std::pin::Pin;

use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use serde_json::Value;

use crate::binding::operators::OverStream;
use crate::binding::{is_media, Binding, Owner, Scope, StreamEncoding};
use crate::component::{Binary, ChunkStream, Output};
use crate::error::RunError;
use crate::fetch::Fetcher;
use crate::media::Blob;

/// The pieces of a streamed output, in order; empty pieces are never sent. It lives as long
/// as what the rest of its run borrows (`'static` once the run has ended).
pub type TextStream<'a> = Pin<Box<dyn Stream<Item = Result<Piece, RunError>> + Send + 'a>>;

/// One piece of a streamed output: text, or one step of an agent's work (D28), which goes
/// out in order with its text so that a client is told each step where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A step and its text: the text itself, or the JSON of a message or block.
    Step(AgentStep, String),
}

impl Piece {
    /// The text it adds to the answer (a plain piece, or an agent's text); none for a step.
    pub fn text(&self) -> Option<&str> {
        match self {
            Piece::Text(text) | Piece::Step(AgentStep::Text, text) => Some(text),
            Piece::Step(..) => None,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> usize {
        match self {
            Piece::Text(text) | Piece::Step(_, text) => text.len(),
        }
    }
}

/// What a step of an agent's stream is (an SSE client sees its name as the event's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStep {
    /// Its text, as it comes.
    Text,
    /// A message, once it is added (as the original streams them, spec §10.7).
    Message,
    /// A tool call, as it starts.
    ToolCall,
    /// A tool's result, as it ends.
    ToolResult,
}

impl AgentStep {
    /// Its name: the event's name over SSE and in the replicas' table.
    pub fn name(self) -> &'static str {
        match self {
            AgentStep::Text => "text",
            AgentStep::Message => "message",
            AgentStep::ToolCall => "tool_call",
            AgentStep::ToolResult => "tool_result",
        }
    }

    /// The step named `name`.
    pub fn named(name: &str) -> Option<Self> {
        [
            AgentStep::Text,
            AgentStep::Message,
            AgentStep::ToolCall,
            AgentStep::ToolResult,
        ]
        .into_iter()
        .find(|step| step.name() == name)
    }

    /// An agent's chunk as a step: a string is its text, a mapping with a role a message,
    /// a block (`tool_call`, `tool_result`) what its type says.
    fn of(chunk: &Value) -> Self {
        match chunk.get("type").and_then(Value::as_str) {
            _ if chunk.is_string() => AgentStep::Text,
            Some("tool_call") => AgentStep::ToolCall,
            Some("tool_result") => AgentStep::ToolResult,
            _ => AgentStep::Message,
        }
    }
}

/// How a stream's chunks become pieces: as a template says (`as stream/text`, `/json`), or
/// as an agent's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Chunks(StreamEncoding),
    Steps,
}

impl From<StreamEncoding> for Encoding {
    fn from(encoding: StreamEncoding) -> Self {
        Encoding::Chunks(encoding)
    }
}

impl Encoding {
    /// One chunk as a piece; `None` for chunks that are dropped (null and empty).
    fn encode(self, chunk: Value) -> Option<Piece> {
        match self {
            Encoding::Chunks(encoding) => encoding.encode(chunk).map(Piece::Text),
            Encoding::Steps => {
                let step = AgentStep::of(&chunk);
                let text = match step {
                    AgentStep::Text => StreamEncoding::Text.encode(chunk),
                    _ => StreamEncoding::Json.encode(chunk),
                };
                text.map(|text| Piece::Step(step, text))
            }
        }
    }
}

/// A job's result: a value, or a stream or bytes still to be read.
pub enum Produced {
    Value(Value),
    Stream {
        chunks: ChunkStream,
        encoding: Encoding,
    },
    Bytes(Binary),
}

impl From<Output> for Produced {
    fn from(output: Output) -> Self {
        match output {
            Output::Value(value) => Produced::Value(value),
            Output::Stream(chunks) => Produced::Stream {
                chunks,
                encoding: StreamEncoding::Text.into(),
            },
            Output::Bytes(binary) => Produced::Bytes(binary),
        }
    }
}

impl Produced {
    /// A template's value: a stream of one chunk when the template converts it `as stream`.
    pub async fn rendered(
        fetcher: &Fetcher,
        template: &Binding,
        scope: Scope<'_>,
    ) -> Result<Self, RunError> {
        let value = fetcher.render(template, scope).await?;
        if let Some(encoding) = template.stream_encoding() {
            return Ok(Produced::Stream {
                chunks: Box::pin(futures::stream::once(std::future::ready(Ok(value)))),
                encoding: encoding.into(),
            });
        }
        // A single media value (`${output.url as image;url}`, `as audio;base64`) is bytes, as
        // the original answers it, with the media type the bytes have.
        let blob = match &value {
            Value::String(text) if template.is_media() => Blob::from_data_uri(text),
            _ => None,
        };
        Ok(match blob {
            Some(blob) => Produced::Bytes(Binary::from(blob)),
            None => Produced::Value(value),
        })
    }

    /// Reads a stream to its end: text chunks are joined into one string, other chunks
    /// become a list (spec §4.4); bytes become a data URI.
    pub async fn drain(self) -> Result<Value, RunError> {
        match self {
            Produced::Value(value) => Ok(value),
            Produced::Bytes(binary) => binary.read().await,
            Produced::Stream { chunks, .. } => {
                let chunks: Vec<Value> = chunks.try_collect().await?;
                if chunks.iter().all(Value::is_string) {
                    Ok(Value::String(
                        chunks.iter().filter_map(Value::as_str).collect(),
                    ))
                } else {
                    Ok(Value::Array(chunks))
                }
            }
        }
    }
}

/// The encoding when a job's output template passes the component's stream through:
/// exactly `${output as stream...}` (or `${output}`).
pub fn passthrough_encoding(template: &Binding) -> Option<StreamEncoding> {
    match &template.bare("output")?.conversion {
        None => Some(StreamEncoding::Text),
        Some(conversion) => conversion.stream_encoding(),
    }
}

/// Whether a job's output template hands the component's bytes on as they are: exactly
/// `${output}`, or `${output as audio}` (a media type without a format), or `as stream`.
pub fn passes_bytes(template: &Binding) -> bool {
    let Some(expr) = template.bare("output") else {
        return false;
    };
    match &expr.conversion {
        None => true,
        Some(c) => {
            c.stream_encoding().is_some() || (is_media(&c.kind) && !c.list && c.format.is_none())
        }
    }
}

/// Whether a job's output template maps or joins the component's stream (`{"*": "${output}",
/// …}`, `{"+": [… "${output}" …]}`): then its output is a stream too.
pub fn operates_on_stream(template: &Binding) -> bool {
    template
        .operator()
        .and_then(|operator| operator.over_stream("output"))
        .is_some()
}

/// The stream a job's output template makes of the component's stream, chunk by chunk as
/// they come (see [`operates_on_stream`]); `input` (a caller's when `from_caller`), `jobs`
/// and `context` are what the template reads besides.
pub fn operate(
    template: Binding,
    chunks: ChunkStream,
    fetcher: Arc<Fetcher>,
    (input, from_caller): (Value, bool),
    jobs: Value,
    context: Value,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        let owner = if from_caller { Owner::Caller } else { Owner::Server };
        let scope = Scope::new()
            .with_owned("input", &input, owner)
            .with("jobs", &jobs)
            .with("context", &context);
        let Some(operator) = template.operator() else {
            return;
        };
        let mut chunks = chunks;
        match operator.over_stream("output") {
            Some(OverStream::Map) => {
                let mut index = 0;
                while let Some(chunk) = chunks.next().await {
                    let mapped = chunk.and_then(|item| Ok(operator.each(item, index, &scope)?));
                    index += 1;
                    match mapped {
                        Ok(Some(value)) => yield Ok(value),
                        Ok(None) => {}
                        Err(err) => {
                            yield Err(err);
                            return;
                        }
                    }
                }
            }
            Some(OverStream::Join { before, after }) => {
                // The parts around the stream read no chunk: they are rendered at once.
                let edges = match rendered(&fetcher, before, &scope).await {
                    Ok(before) => rendered(&fetcher, after, &scope)
                        .await
                        .map(|after| (before, after)),
                    Err(err) => Err(err),
                };
                let (before, after) = match edges {
                    Ok(edges) => edges,
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                };
                for value in before {
                    yield Ok(value);
                }
                while let Some(chunk) = chunks.next().await {
                    let failed = chunk.is_err();
                    yield chunk;
                    if failed {
                        return;
                    }
                }
                for value in after {
                    yield Ok(value);
                }
            }
            None => {}
        }
    })
}

/// The values of `parts` that are not null.
async fn rendered(
    fetcher: &Fetcher,
    parts: &[Binding],
    scope: &Scope<'_>,
) -> Result<Vec<Value>, RunError> {
    let mut values = Vec::with_capacity(parts.len());
    for part in parts {
        let value = fetcher.render(part, scope.clone()).await?;
        if !value.is_null() {
            values.push(value);
        }
    }
    Ok(values)
}

/// Encodes every chunk as a piece; null and empty pieces are dropped.
pub fn encode(chunks: ChunkStream, encoding: Encoding) -> TextStream<'static> {
    Box::pin(chunks.filter_map(move |chunk| {
        std::future::ready(match chunk {
            Ok(value) => encoding.encode(value).map(Ok),
            Err(err) => Some(Err(err)),
        })
    }))
}
