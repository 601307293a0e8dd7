//! A task as the REST API and the WebSocket show it (the original's task-state JSON), made
//! from its record: the same on the replica that runs it and on any other.

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Failure, Point, RunRecord, Status};

/// A task's state: `{"task_id", "status", "workflow_id", "interrupt"?, "output"?, "error"?}`,
/// the error as its message (as the original has it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub task_id: String,
    pub status: Status,
    pub workflow_id: String,
    /// The points an interrupted run waits on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interrupt: Vec<Point>,
    /// Only once completed: a stream's text, bytes as a data URI, or the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "message_only"
    )]
    pub error: Option<Failure>,
    /// The trace the run is exported as (`tracer:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl TaskView {
    /// The HTTP status an answer about its failure has (500 when it has none).
    pub fn http_status(&self) -> u16 {
        self.error
            .as_ref()
            .map_or(500, |failure| failure.http_status)
    }
}

fn message_only<S: Serializer>(failure: &Option<Failure>, to: S) -> Result<S::Ok, S::Error> {
    match failure {
        Some(failure) => to.serialize_str(&failure.message),
        None => to.serialize_none(),
    }
}

impl RunRecord {
    /// The run as the task API shows it; the output only once it completed.
    pub fn into_view(self) -> TaskView {
        let output = self
            .output
            .filter(|_| self.status == Status::Completed)
            .map(super::Output::into_value);
        let interrupt = match self.status {
            Status::Interrupted => self.interrupt,
            _ => Vec::new(),
        };
        TaskView {
            task_id: self.task_id,
            status: self.status,
            workflow_id: self.workflow_id,
            interrupt,
            output,
            error: self.error,
            trace_id: self.trace_id,
        }
    }
}
