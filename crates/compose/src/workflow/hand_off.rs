//! Streams handed from one job to the next (spec §13.7): a `filter` whose input is exactly
//! another job's output (`input: ${jobs.llm.output}`), that job's only reader, gets its
//! stream as it comes instead of the whole value once it has ended, and filters it chunk by
//! chunk; so a terminal filter's output reaches the client as the upstream sends it.

use serde_json::Value;

use super::work::Work;
use super::JobPlan;
use crate::binding::{Binding, Expr};

/// For each job (by index), the job its stream is handed to, if any.
pub(super) fn hand_offs(jobs: &[JobPlan], output: Option<&Binding>) -> Vec<Option<usize>> {
    let mut to = vec![None; jobs.len()];
    for (consumer, job) in jobs.iter().enumerate() {
        let Some(source) = streamed_source(job) else {
            continue;
        };
        let Some(producer) = jobs.iter().position(|j| j.id == source) else {
            continue;
        };
        let others = jobs
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != consumer);
        let read_elsewhere = others.clone().any(|(_, other)| may_read(other, source))
            || output.is_some_and(|output| reads_job(output, source));
        if !read_elsewhere && producer != consumer {
            to[producer] = Some(consumer);
        }
    }
    to
}

/// The job a filter takes its whole input from, when it may take it as a stream: `input` is
/// exactly `${jobs.<id>.output}`, it depends on that job, and nothing about it needs the
/// value whole (a pause shows its input; a retry reads it again).
fn streamed_source(job: &JobPlan) -> Option<&str> {
    if !matches!(job.work, Work::Filter { .. }) || job.interrupt.is_some() || job.retry.is_some() {
        return None;
    }
    let expr = job.input.as_ref()?.bare_path("jobs")?;
    if expr.conversion.is_some() {
        return None;
    }
    let source = expr.path_text.as_deref()?.strip_suffix(".output")?;
    job.depends_on
        .iter()
        .flatten()
        .any(|d| d == source)
        .then_some(source)
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
