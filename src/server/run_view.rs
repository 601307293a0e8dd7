//! A run as its run view shows it: the workflow's jobs laid out as a graph (each job in the
//! column after those it waits for or is routed from), what happened to each, and the points
//! it waits on. Read from the running task, else from the history.

use std::collections::HashMap;

use compose::task::TaskRegistry;
use compose::workflow::{Access, WorkflowPlan};

use crate::server_fns::{GraphJob, RunView};

/// The run `task_id`, live or recorded; none when neither knows it.
pub async fn run_view(tasks: &TaskRegistry, task_id: &str) -> Result<Option<RunView>, String> {
    let (record, events) = match tasks.get(task_id) {
        Some(task) => (task.record(false), task.job_events()),
        None => match tasks.store() {
            Some(store) => match store.get(task_id).await.map_err(|e| e.to_string())? {
                Some(mut record) => {
                    let events = std::mem::take(&mut record.jobs);
                    (record, events)
                }
                None => return Ok(None),
            },
            None => return Ok(None),
        },
    };
    let plan = tasks
        .engine()
        .workflow(Some(&record.workflow_id), Access::Public)
        .ok();
    Ok(Some(RunView {
        title: plan
            .as_ref()
            .and_then(|p| p.title.clone().or_else(|| p.name.clone()))
            .unwrap_or_else(|| record.workflow_id.clone()),
        jobs: plan.as_deref().map(graph).unwrap_or_default(),
        task_id: record.task_id,
        workflow_id: record.workflow_id,
        status: record.status,
        error: record.error.map(|failure| failure.message),
        started_at: record.started_at,
        duration_ms: record.duration_ms,
        events,
        interrupt: record.interrupt,
        trace_id: record.trace_id,
    }))
}

/// The workflow's jobs with their places: a job's column is one past the furthest of those it
/// waits for or is routed from (edges that close a cycle, a rewind, are left out); its row is
/// its order among its column's jobs.
fn graph(plan: &WorkflowPlan) -> Vec<GraphJob> {
    let index: HashMap<&str, usize> = plan
        .jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.id.as_str(), i))
        .collect();
    // Who comes before each job: what it depends on, and the routers that name it.
    let mut before: Vec<Vec<usize>> = plan
        .jobs
        .iter()
        .map(|job| {
            let ids = job.depends_on.iter().flatten();
            ids.filter_map(|id| index.get(id.as_str()).copied())
                .collect()
        })
        .collect();
    for (router, job) in plan.jobs.iter().enumerate() {
        for target in &job.routes {
            if let Some(&target) = index.get(target.as_str()) {
                before[target].push(router);
            }
        }
    }
    let columns = columns(&before);
    let mut rows: HashMap<u32, u32> = HashMap::new();
    plan.jobs
        .iter()
        .zip(columns)
        .map(|(job, column)| {
            let row = rows.entry(column).or_default();
            let place = *row;
            *row += 1;
            GraphJob {
                id: job.id.clone(),
                kind: job.kind.name().to_string(),
                depends_on: job.depends_on.iter().flatten().cloned().collect(),
                routes: job.routes.clone(),
                column,
                row: place,
            }
        })
        .collect()
}

/// Each job's column: the longest way to it, in config order when a cycle leaves no job
/// whose predecessors are all placed.
fn columns(before: &[Vec<usize>]) -> Vec<u32> {
    let count = before.len();
    let mut column: Vec<Option<u32>> = vec![None; count];
    while let Some(next) = (0..count)
        .filter(|j| column[*j].is_none())
        .find(|j| before[*j].iter().all(|b| column[*b].is_some() || b == j))
        .or_else(|| (0..count).find(|j| column[*j].is_none()))
    {
        let placed = before[next].iter().filter_map(|b| column[*b]);
        column[next] = Some(placed.map(|c| c + 1).max().unwrap_or(0));
    }
    column.into_iter().map(Option::unwrap_or_default).collect()
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_follow_the_longest_way_and_survive_cycles() {
        // 0 → 1 → 3, 0 → 2, 2 → 3; 3 routes back to 1 (a rewind).
        let before = vec![vec![], vec![0, 3], vec![0], vec![1, 2]];
        assert_eq!(columns(&before), [0, 1, 1, 2]);
        assert_eq!(columns(&[vec![], vec![0], vec![1]]), [0, 1, 2]);
        assert_eq!(columns(&[vec![1], vec![0]]), [0, 1]);
    }
}
