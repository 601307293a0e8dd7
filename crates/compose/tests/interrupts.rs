//! Interrupts (spec §14.1–§14.2), the engine as a library: where a job pauses, what the
//! person is told, what an answer does, and which points are published together. A scripted
//! person answers each point as it is published and keeps what it was shown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};

use compose::record::Phase;
use compose::workflow::{Answerer, Asked};
use support::{load, run_attended, Person};
use testkit::Workdir;

const SHELL: &str = r#"components:
  - id: sh
    type: shell
    action:
      command: [sh, -c, '${input.command}']
      output: ${result.stdout}
"#;

/// The original's `job-flow/interrupt` shape: a command shown before it runs, its result after.
fn reviewed() -> String {
    format!("{}{}", testkit::REVIEWED, testkit::SH_COMPONENT)
}

#[tokio::test]
async fn a_pause_shows_the_jobs_input_before_and_its_result_after() {
    let dir = Workdir::empty();
    let engine = load(&dir, &reviewed()).unwrap();
    let person = Person::answering(|_| Value::Null);
    let output = run_attended(&engine, json!({"name": "Bob"}), &person).await;
    assert_eq!(output, Ok(json!({"result": "hi Bob"})));
    let shown = person.shown.lock().clone();
    let [before, after] = [&shown[0][..], &shown[1][..]];
    assert_eq!((before.len(), after.len(), shown.len()), (1, 1, 2));
    let (before, after) = (&before[0], &after[0]);
    assert_eq!(before.job_id, "__job__");
    assert_eq!(before.phase, Phase::Before);
    assert_eq!(
        before.message.as_deref(),
        Some("About to execute: echo \"hi Bob\"")
    );
    assert_eq!(before.metadata, Some(json!({"command": "echo \"hi Bob\""})));
    assert_eq!(after.phase, Phase::After);
    assert_eq!(after.message.as_deref(), Some("Command finished."));
    // The component's result, before the job's `output` maps it.
    assert_eq!(after.metadata, Some(json!({"result": "hi Bob"})));
    // One run of the job: one run id; each point its own id.
    assert_eq!(before.run_id, after.run_id);
    assert_ne!(before.id, after.id);
    assert_eq!(before.id.len(), 26, "a ULID");
}

#[tokio::test]
async fn an_answer_replaces_the_input_before_and_the_result_after() {
    let dir = Workdir::empty();
    let engine = load(&dir, &reviewed()).unwrap();
    let replace_input = Person::answering(|point| match point.phase {
        Phase::Before => json!({"command": "echo replaced"}),
        Phase::After => Value::Null,
    });
    let output = run_attended(&engine, json!({"name": "Bob"}), &replace_input).await;
    assert_eq!(output, Ok(json!({"result": "replaced"})));
    let replace_result = Person::answering(|point| match point.phase {
        Phase::Before => Value::Null,
        Phase::After => json!("edited output"),
    });
    let output = run_attended(&engine, json!({"name": "Bob"}), &replace_result).await;
    assert_eq!(output, Ok(json!({"result": "edited output"})));
}

#[tokio::test]
async fn a_pause_whose_condition_does_not_hold_is_passed_by() {
    let dir = Workdir::empty();
    let yaml = format!(
        r#"{SHELL}workflow:
  job:
    component: sh
    input: {{command: 'echo ${{input.command}}'}}
    interrupt:
      before:
        condition: {{input: '${{input.risky}}', operator: eq, value: true}}
        message: Sure?
"#
    );
    let engine = load(&dir, &yaml).unwrap();
    let person = Person::answering(|_| Value::Null);
    let safe = run_attended(&engine, json!({"command": "a", "risky": false}), &person).await;
    assert_eq!(safe, Ok(json!("a")));
    assert!(person.publications().is_empty());
    let risky = run_attended(&engine, json!({"command": "b", "risky": true}), &person).await;
    assert_eq!(risky, Ok(json!("b")));
    assert_eq!(person.publications(), [["__job__:before"]]);
}

#[tokio::test]
async fn points_are_published_together_once_no_other_job_is_at_work() {
    let dir = Workdir::empty();
    // `a` pauses at once; `slow` works for a while, then `c`, after it, pauses too: the person
    // is asked once, about both.
    let yaml = format!(
        r#"{SHELL}workflow:
  jobs:
    - id: a
      component: sh
      input: {{command: echo a}}
      interrupt: {{before: true}}
    - id: slow
      component: sh
      input: {{command: sleep 0.3; echo slow}}
    - id: c
      component: sh
      depends_on: [slow]
      input: {{command: echo c}}
      interrupt: {{before: {{message: 'after ${{jobs.slow.output}}'}}}}
  output: {{a: '${{jobs.a.output}}', c: '${{jobs.c.output}}'}}
"#
    );
    let engine = load(&dir, &yaml).unwrap();
    let person = Person::answering(|_| Value::Null);
    let output = run_attended(&engine, json!({}), &person).await;
    assert_eq!(output, Ok(json!({"a": "a", "c": "c"})));
    assert_eq!(person.publications(), [["a:before", "c:before"]]);
    assert_eq!(
        person.shown.lock()[0][1].message.as_deref(),
        Some("after slow")
    );
}

#[tokio::test]
async fn a_nested_workflows_points_surface_and_so_do_the_parents_after_it() {
    let dir = Workdir::empty();
    let yaml = format!(
        r#"{SHELL}  - id: inner
    type: workflow
    action: {{workflow: checked}}
workflows:
  - id: outer
    default: true
    jobs:
      - id: call
        component: inner
      - id: last
        component: sh
        depends_on: [call]
        input: {{command: 'echo "${{jobs.call.output}}" done'}}
        interrupt: {{before: true}}
  - id: checked
    jobs:
      - id: check
        component: sh
        input: {{command: echo checked}}
        interrupt: {{after: true}}
"#
    );
    let engine = load(&dir, &yaml).unwrap();
    let person = Person::answering(|_| Value::Null);
    // OD19: the parent's pause after a nested workflow ran must still reach the person.
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        run_attended(&engine, json!({}), &person),
    )
    .await
    .expect("the run went on");
    assert_eq!(output, Ok(json!("checked done")));
    assert_eq!(person.publications(), [["check:after"], ["last:before"]]);
}

#[tokio::test]
async fn inner_jobs_pause_per_item_and_a_batch_is_published_together() {
    let dir = Workdir::empty();
    let yaml = format!(
        r#"{SHELL}workflow:
  job:
    type: for-each
    input: ${{input.items}}
    batch_size: 2
    do:
      component: sh
      input: {{command: 'echo ${{item}}'}}
      interrupt:
        before: {{message: 'item ${{item}}?'}}
"#
    );
    let engine = load(&dir, &yaml).unwrap();
    let person = Person::answering(|point| match point.message.as_deref() {
        Some("item 2?") => json!({"command": "echo two"}),
        _ => Value::Null,
    });
    let output = run_attended(&engine, json!({"items": [1, 2, 3]}), &person).await;
    assert_eq!(output, Ok(json!(["1", "two", "3"])));
    let sizes: Vec<usize> = person.publications().iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 1]);
}

#[tokio::test]
async fn a_routers_input_answered_before_decides_the_route() {
    let dir = Workdir::empty();
    let yaml = format!(
        r#"{SHELL}workflow:
  jobs:
    - id: pick
      type: if
      input: ${{input.kind}}
      conditions:
        - {{operator: eq, value: a, if_true: say-a}}
      otherwise: say-other
      interrupt: {{before: {{message: 'route ${{job.input}}?'}}, after: true}}
    - id: say-a
      component: sh
      input: {{command: echo A}}
    - id: say-other
      component: sh
      input: {{command: echo other}}
"#
    );
    let engine = load(&dir, &yaml).unwrap();
    let go_on = Person::answering(|_| Value::Null);
    assert_eq!(
        run_attended(&engine, json!({"kind": "a"}), &go_on).await,
        Ok(json!("A"))
    );
    assert_eq!(go_on.publications(), [["pick:before"], ["pick:after"]]);
    let change = Person::answering(|point| match point.phase {
        Phase::Before => json!("b"),
        Phase::After => json!("ignored: a router's result is where it goes"),
    });
    assert_eq!(
        run_attended(&engine, json!({"kind": "a"}), &change).await,
        Ok(json!("other"))
    );
}

#[tokio::test]
async fn a_point_nobody_answers_fails_its_job_with_a_message() {
    struct Nobody;
    impl Answerer for Nobody {
        fn ask(&self, points: Vec<Asked>) {
            drop(points);
        }
    }
    let dir = Workdir::empty();
    let engine = load(&dir, &reviewed()).unwrap();
    let output = run_attended(&engine, json!({}), &Nobody).await;
    assert_eq!(
        output,
        Err("job '__job__' was waiting for an answer that will not come".into())
    );
}
