//! Components: what a job runs. This implementation's subset has one type, `http-client`.

pub mod http_client;

use std::pin::Pin;

use futures::Stream;
use serde_json::Value;

use super::error::RunError;

pub use http_client::{Action, HttpClient};

/// A stream of values, one per upstream chunk, already mapped through the action's `output`.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value, RunError>> + Send>>;

/// What a component run produced: one value, or a stream of them.
pub enum Output {
    Value(Value),
    Stream(ChunkStream),
}
