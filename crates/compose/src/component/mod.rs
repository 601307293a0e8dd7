//! Components: what a job runs: an `http-client`'s requests, a `shell`'s commands (a
//! `workflow` component runs another workflow: see `crate::workflow`).

pub mod http_client;
pub mod managed;
pub mod mcp_client;
mod patience;
pub mod shell;

use std::pin::Pin;

use futures::Stream;
use serde_json::Value;

use super::error::RunError;
use crate::media::Blob;

pub use http_client::{Action, HttpClient};
pub use mcp_client::{McpAction, McpClient};
pub use shell::{Command, Shell};

/// A stream of values, one per upstream chunk, already mapped through the action's `output`.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value, RunError>> + Send>>;

/// Pieces of a binary body, in order.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, RunError>> + Send>>;

/// A body that is not text (audio, an image): streamed as it comes, with its type.
pub struct Binary {
    /// The `Content-Type` as the upstream sent it.
    pub content_type: String,
    /// The file name `Content-Disposition` gave, if any.
    pub filename: Option<String>,
    pub chunks: ByteStream,
}

impl Binary {
    /// Reads the whole body into one value, a data URI (see [`crate::media`]).
    pub async fn read(self) -> Result<Value, RunError> {
        use futures::TryStreamExt;
        let chunks: Vec<bytes::Bytes> = self.chunks.try_collect().await?;
        let blob = Blob::received(&self.content_type, self.filename, chunks.concat());
        Ok(Value::String(blob.to_data_uri()))
    }
}

impl From<Blob> for Binary {
    /// Bytes already read, whole.
    fn from(blob: Blob) -> Self {
        let bytes = bytes::Bytes::from(blob.bytes);
        Self {
            content_type: blob.media_type,
            filename: blob.name,
            chunks: Box::pin(futures::stream::once(std::future::ready(Ok(bytes)))),
        }
    }
}

/// What a component run produced: one value, a stream of them, or bytes.
pub enum Output {
    Value(Value),
    Stream(ChunkStream),
    Bytes(Binary),
}
