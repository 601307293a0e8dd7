//! Streams handed from one job to the next (spec §13.7, §13.8, §13.12): a `filter` or a
//! `for-each` whose input is exactly another job's output (`input: ${jobs.llm.output}`), that
//! job's only reader, gets its stream as it comes instead of the whole value once it has
//! ended, and filters it (runs its job for each chunk) as it comes; a `fan-out` whose branches
//! are each read so hands each its own copy of the stream (see `tee`). So a terminal job's
//! output reaches the client as the upstream sends it.

use serde_json::Value;

use super::work::Work;
use super::JobPlan;
use crate::binding::{Binding, Expr};

/// Where a job's output stream goes as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HandOff {
    /// To the one job that reads it (by index).
    To(usize),
    /// A fan-out's: each branch to the one job that reads it, in the branches' order.
    Branches(Vec<usize>),
}

/// For each job (by index), where its stream is handed, if anywhere.
pub(super) fn hand_offs(jobs: &[JobPlan], output: Option<&Binding>) -> Vec<Option<HandOff>> {
    let mut to = vec![None; jobs.len()];
    // A fan-out hands its branches on when each has one reader that takes it as a stream and
    // nothing else reads the fan-out.
    for (producer, job) in jobs.iter().enumerate() {
        let Work::FanOut { branches, .. } = &job.work else {
            continue;
        };
        let readers: Option<Vec<usize>> = branches
            .iter()
            .map(|branch| {
                let mut readers = jobs.iter().enumerate().filter(|(_, reader)| {
                    streamed_source(reader) == Some((job.id.as_str(), Some(branch.as_str())))
                });
                match (readers.next(), readers.next()) {
                    (Some((reader, _)), None) => Some(reader),
                    _ => None,
                }
            })
            .collect();
        if let Some(readers) = readers.filter(|r| !read_elsewhere(jobs, output, &job.id, r)) {
            to[producer] = Some(HandOff::Branches(readers));
        }
    }
    for (consumer, job) in jobs.iter().enumerate() {
        let Some((source, None)) = streamed_source(job) else {
            continue;
        };
        // A fan-out takes its input as a stream only to hand its branches on.
        if matches!(job.work, Work::FanOut { .. }) && to[consumer].is_none() {
            continue;
        }
        let Some(producer) = jobs.iter().position(|j| j.id == source) else {
            continue;
        };
        if producer != consumer && !read_elsewhere(jobs, output, source, &[consumer]) {
            to[producer] = Some(HandOff::To(consumer));
        }
    }
    to
}

/// Whether a job other than `readers`, or the workflow's `output`, may read `source`.
fn read_elsewhere(
    jobs: &[JobPlan],
    output: Option<&Binding>,
    source: &str,
    readers: &[usize],
) -> bool {
    let others = jobs
        .iter()
        .enumerate()
        .filter(|(index, _)| !readers.contains(index));
    let mut others = others.map(|(_, other)| other);
    others.any(|other| may_read(other, source))
        || output.is_some_and(|output| reads_job(output, source))
}

/// The job (and the branch of it, a fan-out's) a filter, a for-each or a fan-out takes its
/// whole input from, when it may take it as a stream: `input` is exactly
/// `${jobs.<id>.output}` (or `${jobs.<id>.output.<branch>}`), it depends on that job, and
/// nothing about it needs the value whole (a pause shows its input; a retry reads it again).
fn streamed_source(job: &JobPlan) -> Option<(&str, Option<&str>)> {
    let takes_streams = matches!(
        job.work,
        Work::Filter { .. } | Work::ForEach { .. } | Work::FanOut { .. }
    );
    if !takes_streams || job.interrupt.is_some() || job.retry.is_some() {
        return None;
    }
    let expr = job.input.as_ref()?.bare_path("jobs")?;
    if expr.conversion.is_some() {
        return None;
    }
    let path = expr.path_text.as_deref()?;
    let (source, branch) = match path.strip_suffix(".output") {
        Some(source) => (source, None),
        None => {
            let (source, branch) = path.split_once(".output.")?;
            if branch.contains(['.', '[']) {
                return None;
            }
            (source, Some(branch))
        }
    };
    job.depends_on
        .iter()
        .flatten()
        .any(|d| d == source)
        .then_some((source, branch))
}

/// Whether `job` may read `${jobs.<source>…}`: its templates do, or it has templates this
/// does not look into (the jobs inside a loop or a pipeline, its pauses), so it might.
fn may_read(job: &JobPlan, source: &str) -> bool {
    if job.interrupt.is_some() || matches!(job.work, Work::Loop { .. } | Work::Pipeline { .. }) {
        return true;
    }
    let exprs = job.templates().flat_map(Binding::exprs);
    let found = exprs
        .chain(job.work.exprs())
        .any(|expr| names(expr, source));
    found
}

fn reads_job(binding: &Binding, source: &str) -> bool {
    binding.exprs().into_iter().any(|expr| names(expr, source))
}

/// Whether `expr` reads `${jobs.<source>…}`, or might (`${jobs}` whole, or in a default).
fn names(expr: &Expr, source: &str) -> bool {
    if !expr.reads(&["jobs"]) {
        return false;
    }
    let named_other = expr.source == "jobs"
        && expr.default.is_none()
        && expr.index.is_none()
        && expr.path_text.as_deref().is_some_and(|path| {
            let first = path.split(['.', '[']).next().unwrap_or(path);
            first != source
        });
    !named_other
}

/// A filter over a stream: each chunk that passes `condition` (all of them, without one),
/// seen as `${item}` with its `${index}`, beside the run's `${input}`.
pub(super) fn filtered(
    chunks: crate::component::ChunkStream,
    condition: Option<crate::binding::operators::Filter>,
    (input, owner): (Value, crate::binding::Owner<'static>),
) -> crate::component::ChunkStream {
    use futures::StreamExt;
    let Some(condition) = condition else {
        return chunks;
    };
    let mut index = 0_usize;
    Box::pin(chunks.filter_map(move |chunk| {
        let kept = chunk.and_then(|item| {
            let at = Value::from(index);
            index += 1;
            let scope = crate::binding::Scope::new()
                .with_owned("input", &input, owner)
                .with("item", &item)
                .with("index", &at);
            Ok(condition.holds(&scope)?.then_some(item))
        });
        std::future::ready(kept.transpose())
    }))
}
