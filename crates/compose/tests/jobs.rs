//! Jobs (spec §13), the engine as a library: the types beside `component` (`delay` waits for
//! its `duration`, a template, and gives null or its `output`; `filter` keeps what passes its
//! `where`), what a job that fails does (`retry` with its backoff, then `on_error`), and what
//! is refused at load, with its place, because it is not here yet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

mod support;

use compose::workflow::Access;
use serde_json::{json, Value};
use support::{load, refused, run};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::Workdir;

/// A component that answers `{"text": "ok"}`, and one workflow of `jobs`.
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
      waited: ${{input.waited | 0}}
    output: ${{response.text}}
workflow:
  jobs:
{jobs}"#
    )
}

#[tokio::test]
async fn a_delay_waits_its_duration_then_gives_null_or_its_output() {
    let mock = MockUpstream::start(Behavior::body("application/json", r#"{"text": "ok"}"#));
    let dir = Workdir::empty();
    let jobs = r#"    - id: pause
      type: delay
      duration: ${input.wait | 0}
    - id: after
      depends_on: [pause]
      output: {paused: '${jobs.pause.output}', said: '${output}'}
"#;
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    // The duration is an input the schema declares.
    let schema = engine.workflow(None, Access::All).unwrap();
    let names: Vec<_> = schema
        .input_schema
        .iter()
        .map(|v| v.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["wait", "waited"]);
    let started = Instant::now();
    assert_eq!(
        run(&engine, json!({"wait": "300ms"})).await,
        Ok(json!({"paused": null, "said": "ok"}))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // Seconds as a number, and nothing at all.
    let started = Instant::now();
    run(&engine, json!({"wait": 0.2})).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    run(&engine, json!({})).await.unwrap();
    assert_eq!(
        run(&engine, json!({"wait": "later"})).await,
        Err(
            "job 'pause': duration \"later\" is not a duration (seconds, or 500ms, 2s, 1m, 1h)"
                .into()
        )
    );

    // Until a time: an input 300 ms from now (UTC, with its offset); a time past, at once.
    let jobs = "    - id: pause\n      type: delay\n      mode: specific-time\n      time: ${input.at}\n      timezone: Europe/Paris\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    let at = (jiff::Timestamp::now() + jiff::SignedDuration::from_millis(300)).to_string();
    let started = Instant::now();
    run(&engine, json!({"at": at})).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    run(&engine, json!({"at": "2000-01-01T00:00:00"}))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        run(&engine, json!({"at": "at noon"})).await,
        Err("job 'pause': time \"at noon\" is not a date and time (2026-12-24T18:00:00, with an offset or not)".into())
    );

    // Its own `output`, rendered with the run's input.
    let jobs = "    - id: pause\n      type: delay\n      duration: 10ms\n      output: {waited: '${input.why}'}\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    assert_eq!(
        run(&engine, json!({"why": "politeness"})).await,
        Ok(json!({"waited": "politeness"}))
    );
}

#[tokio::test]
async fn a_filter_keeps_the_items_that_pass_in_their_order() {
    let dir = Workdir::empty();
    let unused = "http://127.0.0.1:9/v1";
    let filter = |condition: &str| {
        let jobs = format!(
            "    - id: keep\n      type: filter\n      input: ${{input.items}}\n      where: {condition}\n"
        );
        load(&dir, &config(unused, &jobs)).unwrap()
    };
    let items = json!({"items": [
        {"name": "a", "score": 10}, {"name": "b", "score": 60}, {"name": "c", "score": 90}
    ]});
    let names = |kept: Value| -> Vec<String> {
        kept.as_array()
            .unwrap()
            .iter()
            .map(|item| item["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The spec's two cases, as the original answers them.
    let scores = filter("{input: '${item.score}', operator: gte, value: 50}");
    assert_eq!(
        names(run(&scores, items.clone()).await.unwrap()),
        ["b", "c"]
    );
    let any = filter("{any: [{input: '${item.name}', value: b}, {input: '${index}', value: 0}]}");
    assert_eq!(names(run(&any, items.clone()).await.unwrap()), ["a", "b"]);
    let not = filter("{not: {input: '${item.name}', operator: starts-with, value: a}}");
    assert_eq!(names(run(&not, items).await.unwrap()), ["b", "c"]);
    // One value that is not a list: kept, or null (the original fails, OD27).
    assert_eq!(
        run(&scores, json!({"items": {"score": 70}})).await,
        Ok(json!({"score": 70}))
    );
    assert_eq!(
        run(&scores, json!({"items": {"score": 7}})).await,
        Ok(Value::Null)
    );
    // Its `output` maps what it kept.
    let jobs = "    - id: keep\n      type: filter\n      input: ${input.items}\n      where: {input: '${item}', operator: gt, value: 1}\n      output: {kept: '${output}'}\n";
    let counted = load(&dir, &config(unused, jobs)).unwrap();
    assert_eq!(
        run(&counted, json!({"items": [1, 2, 3]})).await,
        Ok(json!({"kept": [2, 3]}))
    );
}

#[tokio::test]
async fn job_types_not_here_yet_are_refused_at_load_with_their_place() {
    let dir = Workdir::empty();
    let refused = |jobs: &str| refused(&dir, &config("http://127.0.0.1:9/v1", jobs));
    let err = refused("    - id: pause\n      type: delay\n      mode: specific-time\n");
    assert!(
        err.contains(":14:") && err.contains("needs 'time'"),
        "{err}"
    );
    let err = refused(
        "    - id: pause\n      type: delay\n      mode: specific-time\n      time: '2026-12-24T18:00:00'\n      timezone: Mars/Olympus\n",
    );
    assert!(
        err.contains(":18:7:") && err.contains("unknown time zone 'Mars/Olympus'"),
        "{err}"
    );
    let err = refused("    - id: keep\n      type: filter\n");
    assert!(
        err.contains(":14:") && err.contains("a filter job needs 'input'"),
        "{err}"
    );
    let err = refused(
        "    - id: keep\n      type: filter\n      input: ${input.x}\n      streaming: ${input.s}\n",
    );
    assert!(
        err.contains(":17:7:") && err.contains("a filter's streaming is true or false"),
        "{err}"
    );
    let err = refused(
        "    - id: keep\n      type: filter\n      input: ${input.x}\n      where: {inputs: a}\n",
    );
    assert!(
        err.contains(":17:7:") && err.contains("not `inputs`"),
        "{err}"
    );
    // What every job may declare, refused where it is not run here.
    let err = refused("    - id: ask\n      hook:\n        before: {script: 'def hook(input, **kw): return input'}\n");
    assert!(
        err.contains(":15:7:") && err.contains("job 'ask': hook runs inline Python"),
        "{err}"
    );
    let err = refused(
        "    - id: ask\n      interrupt:\n        before:\n          condition: {input: '${input.x}', operator: near}\n",
    );
    assert!(
        err.contains(":17:44:") && err.contains("job 'ask': unknown operator 'near'"),
        "{err}"
    );
    let err = refused("    - id: ask\n      interrupt: {before: 'yes'}\n");
    assert!(
        err.contains(":15:27:")
            && err.contains("expected true, false or {condition, message, metadata}"),
        "{err}"
    );
    let err = refused("    - id: ask\n      interrupt: {between: true}\n");
    assert!(
        err.contains(":15:") && err.contains("unknown field `between`"),
        "{err}"
    );
    let err = refused("    - id: ask\n      interrupt: {after: {message: 'done ${output'}}\n");
    assert!(
        err.contains(":15:") && err.contains("is not a valid ${...} expression"),
        "{err}"
    );
    let err = refused("    - id: ask\n      max_run_count: 0\n");
    assert!(
        err.contains(":15:7:") && err.contains("at least 1"),
        "{err}"
    );
    let err = refused("    - id: split\n      type: wait\n");
    assert!(
        err.contains(":15:13:") && err.contains("unknown variant `wait`"),
        "{err}"
    );
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
    assert_eq!(run(&engine, json!({})).await, Ok(json!("ok")));
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
        run(&engine, json!({})).await,
        Err("upstream returned 500: boom".into())
    );
    assert_eq!(mock.requests().len(), 2);

    // `on_error.output`, with the error's message.
    let mock = failing(9);
    let jobs = "    - id: ask\n      retry: 2\n      on_error:\n        output: {failed: '${error.message}', asked: '${input.prompt | nothing}'}\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    assert_eq!(
        run(&engine, json!({})).await,
        Ok(json!({"failed": "upstream returned 500: boom", "asked": "nothing"}))
    );
    assert_eq!(mock.requests().len(), 2);

    // `on_error: ignore`: null, which the next job reads.
    let mock = failing(1);
    let jobs = "    - id: first\n      on_error: ignore\n    - id: second\n      depends_on: [first]\n      output: {first: '${jobs.first.output}', second: '${output}'}\n";
    let engine = load(&dir, &config(&mock.base_url, jobs)).unwrap();
    assert_eq!(
        run(&engine, json!({})).await,
        Ok(json!({"first": null, "second": "ok"}))
    );
}

#[tokio::test]
async fn recovery_written_wrong_is_refused_at_load_with_its_place() {
    let dir = Workdir::empty();
    let refused = |jobs: &str| refused(&dir, &config("http://127.0.0.1:9/v1", jobs));
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
        err.contains(":15:18:") && err.contains("job 'ask' routes to unknown job 'elsewhere'"),
        "{err}"
    );
}
