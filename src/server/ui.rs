//! What the web UI's server functions do, over the task registry.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::api::{InputField, RunMessage, RunRecord, RunSummary, WorkflowInfo, HISTORY_PAGE};
use crate::server::sse::CancelOnDrop;
use compose::task::{Follow, TaskRegistry};

/// The public workflows, with the inputs the form is built from.
pub fn workflows(tasks: &TaskRegistry) -> Vec<WorkflowInfo> {
    tasks
        .engine()
        .public_workflows()
        .map(|w| WorkflowInfo {
            id: w.id.clone(),
            name: w.name.clone(),
            title: w.title.clone(),
            description: w.description.clone(),
            inputs: w
                .input_schema
                .iter()
                .filter_map(|v| {
                    Some(InputField {
                        name: v.name.clone()?,
                        kind: v.kind.clone(),
                        subtype: v.subtype.clone(),
                        default: v.default.clone(),
                        required: v.required,
                        description: v.description.clone(),
                    })
                })
                .collect(),
            streams: w.streams(),
        })
        .collect()
}

/// Starts a run and describes it as message lines until it ends.
pub fn run(
    tasks: Arc<TaskRegistry>,
    workflow_id: &str,
    input: Value,
) -> impl Stream<Item = String> + Send + 'static {
    let started = tasks
        .start(Some(workflow_id), input)
        .map_err(|err| err.to_string());
    async_stream::stream! {
        let task = match started {
            Ok(task) => task,
            Err(error) => {
                yield line(&RunMessage::Ended { status: "failed".into(), error: Some(error), output: None, duration_ms: None });
                return;
            }
        };
        let _owner = CancelOnDrop::new(Arc::clone(&task));
        yield line(&RunMessage::Started { task_id: task.id.clone() });
        let mut follow = std::pin::pin!(task.follow(0));
        let mut first = true;
        while let Some(event) = follow.next().await {
            match event {
                Follow::Piece(text) => {
                    if first {
                        first = false;
                        let after_ms = task.timings().0.unwrap_or_default();
                        yield line(&RunMessage::FirstToken { after_ms });
                    }
                    yield line(&RunMessage::Piece { text });
                }
                Follow::End(status, error) => {
                    // A streamed output has been sent piece by piece already.
                    let output = if first { task.view().output } else { None };
                    yield line(&RunMessage::Ended {
                        status: status.as_str().into(),
                        error,
                        output,
                        duration_ms: task.timings().1,
                    });
                }
            }
        }
    }
}

fn line(message: &RunMessage) -> String {
    let mut text = serde_json::to_string(message).unwrap_or_default();
    text.push('\n');
    text
}

/// A page of the history, newest first, before the task id `before`.
pub async fn runs(tasks: &TaskRegistry, before: Option<&str>) -> Result<Vec<RunSummary>, String> {
    match tasks.store() {
        Some(store) => store
            .list(HISTORY_PAGE as u32, before)
            .await
            .map_err(|err| err.to_string()),
        None => Ok(Vec::new()),
    }
}

/// One run, whole.
pub async fn run_record(tasks: &TaskRegistry, task_id: &str) -> Result<Option<RunRecord>, String> {
    match tasks.store() {
        Some(store) => store.get(task_id).await.map_err(|err| err.to_string()),
        None => Ok(None),
    }
}

/// Deletes a run (cancelling it first if it is still going).
pub async fn delete_run(tasks: &TaskRegistry, task_id: &str) -> Result<(), String> {
    tasks
        .delete_run(task_id)
        .await
        .map(drop)
        .map_err(|err| err.to_string())
}
