//! The compose engine: configuration, the `${...}` binding language, components, workflows,
//! tasks and the run history's types. Plain Rust with no web framework and no database driver
//! in it: the CLI, the REST API and the web UI's server functions are thin doors into it.
//!
//! Without its default `runtime` feature the crate holds only [`record`], the types the web UI
//! shares with the server, so that the browser build (WASM) can use them.

pub mod record;
pub mod sse;

#[cfg(feature = "runtime")]
pub mod binding;
#[cfg(feature = "runtime")]
pub mod component;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod error;
#[cfg(feature = "runtime")]
pub mod fetch;
#[cfg(feature = "runtime")]
pub mod media;
#[cfg(feature = "runtime")]
pub mod metrics;
#[cfg(feature = "runtime")]
pub mod schema;
#[cfg(feature = "runtime")]
pub mod signature;
#[cfg(feature = "runtime")]
pub mod task;
#[cfg(feature = "runtime")]
pub mod traces;
#[cfg(feature = "runtime")]
pub mod upstream;
#[cfg(feature = "runtime")]
pub mod workflow;

#[cfg(feature = "runtime")]
pub use error::RunError;
pub use record::{JobEvent, JobStage};
#[cfg(feature = "runtime")]
pub use workflow::{AgentStep, Engine, JobNews, Piece, RunOutput, TextStream, WorkflowPlan};
