//! A job that fails (spec §13.1): `retry` runs it again, waiting as its backoff says, and
//! `on_error` gives an output instead of failing the run. The engine as a library, against
//! an upstream that fails its first requests, then answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use compose::config::{self, Sources};
use compose::workflow::Access;
use compose::{Engine, RunOutput};
use serde_json::{json, Value};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::Workdir;

/// One workflow of jobs `jobs` (YAML, indented as a list under `jobs:`) over a component that
/// answers `{"text": "ok"}` unless the mock fails.
fn config(upstream: &str, jobs: &str) -> String {
    format!(
        r#"
component:
  type: http-client
  base_url: {upstream}
  action:
    path: /chat/completions
    headers:
      Content-Type: application/json
    body:
      prompt: ${{input.prompt | hi}}
    output: ${{response.text}}
workflow:
  jobs:
{jobs}"#
    )
}

fn load(dir: &Workdir, yaml: &str) -> Result<Engine, String> {
    let path = dir.write("model-compose.yml", yaml);
    let sources = Sources::isolated(&dir.path, &[]);
    let config = config::load(&[path], &sources).map_err(|err| err.to_string())?;
    Engine::new(&config)
}

async fn run(engine: &Engine) -> Result<Value, String> {
    let request = engine.request(None, json!({}), Access::All).unwrap();
    match engine.run(&request, json!({})).await {
        Ok(RunOutput::Value(value)) => Ok(value),
        Ok(_) => panic!("a value expected"),
        Err(err) => Err(err.to_string()),
    }
}

fn failing(times: usize) -> MockUpstream {
    MockUpstream::start(
        Behavior::body("application/json", r#"{"text": "ok"}"#).failing_first(
            times,
            500,
            r#"{"error": {"message": "boom"}}"#,
        ),
    )
}

#[tokio::test]
async fn a_retried_job_waits_as_its_backoff_says_then_succeeds() {
    let mock = failing(2);
    let dir = Workdir::empty();
    let jobs =
        "    - id: ask\n      retry: {max_attempt_count: 3, delay: 100ms, backoff: exponential}\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    let started = Instant::now();
    assert_eq!(run(&engine).await, Ok(json!("ok")));
    // 100 ms after the first failure, 200 ms after the second.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn a_job_that_fails_every_attempt_fails_the_run_or_gives_its_fallback() {
    let dir = Workdir::empty();
    // No fallback: the last attempt's error is the run's.
    let mock = failing(9);
    let engine = load(
        &dir,
        &config(&mock.base_url, "    - id: ask\n      retry: 2\n"),
    )
    .unwrap();
    assert_eq!(
        run(&engine).await,
        Err("upstream returned 500: boom".into())
    );
    assert_eq!(mock.requests().len(), 2);

    // `on_error.output`, with the error's message.
    let mock = failing(9);
    let jobs = "    - id: ask\n      retry: 2\n      on_error:\n        output: {failed: '${error.message}', asked: '${input.prompt | nothing}'}\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    assert_eq!(
        run(&engine).await,
        Ok(json!({"failed": "upstream returned 500: boom", "asked": "nothing"}))
    );
    assert_eq!(mock.requests().len(), 2);

    // `on_error: ignore`: null, which the next job reads.
    let mock = failing(1);
    let jobs = "    - id: first\n      on_error: ignore\n    - id: second\n      depends_on: [first]\n      output: {first: '${jobs.first.output}', second: '${output}'}\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    assert_eq!(
        run(&engine).await,
        Ok(json!({"first": null, "second": "ok"}))
    );
}

#[tokio::test]
async fn recovery_written_wrong_is_refused_at_load_with_its_place() {
    let dir = Workdir::empty();
    let refused = |jobs: &str| {
        let yaml = config("http://127.0.0.1:9/v1", jobs);
        match load(&dir, &yaml) {
            Ok(_) => panic!("{jobs} loaded"),
            Err(err) => err,
        }
    };
    let err = refused("    - id: ask\n      retry: 0\n");
    assert!(
        err.contains(":15:14:") && err.contains("at least 1"),
        "{err}"
    );
    let err = refused("    - id: ask\n      on_error: skip\n");
    assert!(
        err.contains(":15:17:") && err.contains("must be 'ignore'"),
        "{err}"
    );
    let err = refused("    - id: ask\n      on_error: {to: elsewhere}\n");
    assert!(
        err.contains(":15:") && err.contains("on_error.to routes"),
        "{err}"
    );
}
