//! A job that fails (spec §13.1): run again as its `retry` says, waiting between attempts,
//! then given its `on_error` fallback (an output rendered with `${error.message}`, or null)
//! instead of failing the run. A cancelled run stops waiting at once (its future is dropped).

use std::sync::Arc;

use serde_json::{json, Value};

use super::schedule::Step;
use super::stream::Produced;
use super::{run_job, Fallback, Frame, JobPlan, Run};
use crate::error::RunError;
use crate::metrics::Usage;

/// Runs `job` with its recovery: each attempt as [`run_job`] does.
pub(super) async fn run_recovering(
    job: &JobPlan,
    run: &Run<'_>,
    (jobs, context): (&Value, &Value),
    frame: &Frame<'_>,
    usage: &Arc<Usage>,
) -> Result<Step, RunError> {
    let attempts = job
        .retry
        .as_ref()
        .map_or(1, |retry| retry.max_attempt_count);
    let mut attempt = 1;
    let err = loop {
        let err = match run_job(job, run, (jobs, context), frame, usage).await {
            Ok(step) => return Ok(step),
            Err(err) => err,
        };
        let Some(retry) = job.retry.as_ref().filter(|_| attempt < attempts) else {
            break err;
        };
        let wait = retry.delay_after(attempt);
        let message = err.failure(run.secrets).message;
        tracing::warn!(
            job = %job.id,
            "job '{}' attempt {attempt}/{attempts} failed: {message}. Retrying in {:.2}s.",
            job.id,
            wait.as_secs_f64()
        );
        if let Some(spans) = run.traced {
            spans.retrying((&job.id, frame.iteration), attempt, &message);
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    };
    let Some(fallback) = &job.on_error else {
        return Err(err);
    };
    let message = err.failure(run.secrets).message;
    tracing::warn!(job = %job.id, "job '{}' failed, applying on_error: {message}", job.id);
    let output = match fallback {
        Fallback::To(target) => return Ok(Step::Route(Some(target.clone()))),
        Fallback::Output(None) => return Ok(Step::Output(Produced::Value(Value::Null))),
        Fallback::Output(Some(output)) => output,
    };
    let error = json!({ "message": message });
    let scope = frame.scope(run, jobs, context).with("error", &error);
    let value = run.fetcher.render(output, scope).await?;
    Ok(Step::Output(Produced::Value(value)))
}
