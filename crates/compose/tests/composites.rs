//! Jobs that run jobs (spec §13.8–§13.11, §13.13), the engine as a library: one row per rule,
//! each a workflow, an input and what the run gives (or its error's message). The inner jobs
//! call two `shell` components: `say` prints its `text`, `add` prints `a + b`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{check_cases, load, refused, run, Case};
use testkit::Workdir;

const COMPONENTS: &str = r#"components:
  - id: say
    type: shell
    action:
      command: [printf, '%s', '${input.text}']
      output: ${result.stdout}
  - id: add
    type: shell
    action:
      command: [sh, -c, 'sleep "$2"; echo $(($0 + $1))', '${input.a}', '${input.b}', '${input.pause | 0}']
      output: ${result.stdout as integer}
"#;

/// The two components and one workflow of `jobs` (YAML list items, indented four spaces).
fn workflow(jobs: &str) -> String {
    format!("{COMPONENTS}workflow:\n  jobs:\n{jobs}")
}

const EACH: &str = r#"    - id: each
      type: for-each
      input: ${input.items}
      do:
        component: say
        input: {text: 'item=${item} tag=${input.tag}'}
"#;

const FOLD: &str = r#"    - id: fold
      type: accumulate
      input: ${input.items}
      accumulator: ${input.from}
      do:
        component: add
        input: {a: '${accumulator}', b: '${item}'}
"#;

const COUNT: &str = r#"    - id: count
      type: loop
      input: ${input.start}
      do:
        component: add
        input: {a: '${output | ${input}}', b: 1}
      until: {input: '${output}', operator: gte, value: 3}
      output: {final: '${output}'}
"#;

const STEPS: &str = r#"    - id: steps
      type: pipeline
      input: start
      steps:
        - component: say
          input: {text: 'first got ${input}'}
        - component: say
          input: {text: 'last prev=${output} orig=${input} idx=${step.index}'}
"#;

fn cases() -> Vec<Case> {
    let case = |rule, jobs, input, gives| Case {
        rule,
        yaml: workflow(jobs),
        input,
        gives,
    };
    vec![
        case(
            "for-each: each item as ${item}, ${input} the workflow's, results in order",
            EACH,
            json!({"items": ["x", "y"], "tag": "T"}),
            Ok(json!(["item=x tag=T", "item=y tag=T"])),
        ),
        case(
            "for-each: a single value gives its one result, not a list",
            EACH,
            json!({"items": "solo", "tag": "T"}),
            Ok(json!("item=solo tag=T")),
        ),
        case(
            "for-each: no items, no results",
            EACH,
            json!({"items": [], "tag": "T"}),
            Ok(json!([])),
        ),
        case(
            "accumulate: each item folded into the accumulator",
            FOLD,
            json!({"items": [1, 2, 3, 4], "from": 10}),
            Ok(json!(20)),
        ),
        case(
            "accumulate: no items gives the first accumulator",
            FOLD,
            json!({"items": [], "from": 10}),
            Ok(json!(10)),
        ),
        case(
            "loop: the last output is the next input, until the condition holds",
            COUNT,
            json!({"start": 0}),
            Ok(json!({"final": 3})),
        ),
        case(
            "loop: a condition that holds at once runs it once",
            COUNT,
            json!({"start": 7}),
            Ok(json!({"final": 8})),
        ),
        case(
            "pipeline: each step on the last one's output; ${input} the pipeline's",
            STEPS,
            json!({}),
            Ok(json!("last prev=first got start orig=start idx=1")),
        ),
    ]
}

#[tokio::test]
async fn every_composite_rule_gives_what_the_spec_says() {
    check_cases(&Workdir::empty(), cases()).await;
}

#[tokio::test]
async fn a_loop_that_never_ends_stops_at_its_max_iteration_count() {
    let dir = Workdir::empty();
    let jobs = COUNT.replace("value: 3}", "value: 99}\n      max_iteration_count: 4");
    let engine = load(&dir, &workflow(&jobs)).unwrap();
    assert_eq!(
        run(&engine, json!({"start": 0})).await,
        Err("Loop job 'count' exceeded max_iteration_count (4).".into())
    );
}

#[tokio::test]
async fn for_each_runs_batch_size_items_at_once() {
    let dir = Workdir::empty();
    let jobs = |batch: usize| {
        format!(
            "    - id: each\n      type: for-each\n      input: ${{input.items}}\n      batch_size: {batch}\n      do:\n        component: add\n        input: {{a: '${{item}}', b: 0, pause: 0.3}}\n"
        )
    };
    let timed = |batch| {
        let engine = load(&dir, &workflow(&jobs(batch))).unwrap();
        async move {
            let started = Instant::now();
            let out = run(&engine, json!({"items": [1, 2, 3, 4]})).await.unwrap();
            (out, started.elapsed())
        }
    };
    let (out, one_at_a_time) = timed(1).await;
    assert_eq!(out, json!([1, 2, 3, 4]));
    assert!(
        one_at_a_time >= Duration::from_millis(1200),
        "{one_at_a_time:?}"
    );
    let (out, all_at_once) = timed(4).await;
    assert_eq!(out, json!([1, 2, 3, 4]), "in the items' order");
    // Four pauses of 0.3 s side by side: well under the 1.2 s they take one by one.
    assert!(all_at_once < Duration::from_millis(1100), "{all_at_once:?}");
}

#[tokio::test]
async fn composites_written_wrong_are_refused_at_load_with_their_place() {
    let dir = Workdir::empty();
    let refused = |jobs: &str| refused(&dir, &workflow(jobs));
    let err = refused("    - id: each\n      type: for-each\n      input: [1]\n");
    assert!(err.contains(":14:") && err.contains("needs 'do'"), "{err}");
    let err = refused("    - id: each\n      type: for-each\n      do: {component: say}\n");
    assert!(err.contains("needs 'input'"), "{err}");
    let err = refused(
        "    - id: each\n      type: for-each\n      input: [1]\n      do: {component: say, depends_on: [each]}\n",
    );
    assert!(
        err.contains(":17:28:") && err.contains("cannot declare 'depends_on'"),
        "{err}"
    );
    let err = refused(
        "    - id: each\n      type: for-each\n      input: [1]\n      do: {type: delay}\n",
    );
    assert!(
        err.contains(":17:12:") && err.contains("not delay"),
        "{err}"
    );
    let err = refused(
        "    - id: each\n      type: for-each\n      input: [1]\n      do: {component: nowhere}\n",
    );
    assert!(
        err.contains(":17:12:") && err.contains("component 'nowhere' not found"),
        "{err}"
    );
    let err = refused("    - id: again\n      type: loop\n      do: {component: say}\n");
    assert!(err.contains("one of 'while' and 'until'"), "{err}");
    let err = refused("    - id: steps\n      type: pipeline\n      steps: []\n");
    assert!(err.contains("needs 'steps'"), "{err}");
}

#[tokio::test]
async fn fan_out_gives_each_branch_the_items_to_read_as_often_as_needed() {
    let dir = Workdir::empty();
    let yaml = format!(
        "{COMPONENTS}workflow:\n  output: {{fo: '${{jobs.fo.output}}', left: '${{jobs.fo.output.left}}', again: '${{jobs.fo.output.left}}'}}\n  jobs:\n    - id: fo\n      type: fan-out\n      input: ${{input.items}}\n      output: [left, right]\n"
    );
    let engine = load(&dir, &yaml).unwrap();
    assert_eq!(
        run(&engine, json!({"items": [1, 2, 3]})).await,
        Ok(json!({
            "fo": {"left": [1, 2, 3], "right": [1, 2, 3]},
            "left": [1, 2, 3],
            "again": [1, 2, 3],
        })),
        "a branch read twice is whole both times (OD26)"
    );
    assert_eq!(
        run(&engine, json!({"items": "one"})).await,
        Ok(json!({"fo": {"left": ["one"], "right": ["one"]}, "left": ["one"], "again": ["one"]}))
    );
    let refused = |output: &str| {
        let jobs = format!(
            "    - id: fo\n      type: fan-out\n      input: [1]\n      output: {output}\n"
        );
        refused(&dir, &workflow(&jobs))
    };
    let err = refused("'${output}'");
    assert!(
        err.contains(":17:7:") && err.contains("list of its branches' names"),
        "{err}"
    );
    let err = refused("[a, a]");
    assert!(err.contains("different names"), "{err}");
}
