//! The run view's server function and what it gives: a run's workflow as a graph, what
//! happened to each job, and the points it waits on.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use compose::record::{JobEvent, Point, Status};

/// A run as its view shows it (see `crate::server::run_view`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub task_id: String,
    pub workflow_id: String,
    /// The workflow's title, else its name, else its id.
    pub title: String,
    pub status: Status,
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    pub duration_ms: Option<i64>,
    /// The workflow's jobs, placed (none when the workflow is no longer in the config).
    pub jobs: Vec<GraphJob>,
    pub events: Vec<JobEvent>,
    pub interrupt: Vec<Point>,
    /// The trace it is exported as (`tracer:`), to find it in the collector.
    pub trace_id: Option<String>,
}

/// A job of the graph: what it waits for and may route to, and where it is drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphJob {
    pub id: String,
    /// Its `type`.
    pub kind: String,
    pub depends_on: Vec<String>,
    pub routes: Vec<String>,
    pub column: u32,
    pub row: u32,
}

/// The run `task_id` as its view shows it; none when no run has that id.
#[server(prefix = "/_ui", endpoint = "run")]
pub async fn get_run(task_id: String) -> Result<Option<RunView>, ServerFnError> {
    let registry = super::registry()?;
    crate::server::run_view::run_view(&registry, &task_id)
        .await
        .map_err(ServerFnError::new)
}
