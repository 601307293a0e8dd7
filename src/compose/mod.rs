//! The compose engine: configuration, bindings, components and workflows.
//! Plain Rust with no web framework in it; the CLI, the REST API and the UI call into it.

pub mod binding;
pub mod component;
pub mod config;
pub mod error;
pub mod schema;
pub mod task;
pub mod workflow;

pub use error::RunError;
pub use workflow::{Engine, RunOutput, TextStream, WorkflowPlan};
