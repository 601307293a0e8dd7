//! What a run tells of its jobs (the run view's and the history's events): each start with
//! the input the job's work gets, each end with its output or its error's message (never a
//! secret), where routers went, and the iterations of the jobs inside others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use compose::workflow::{Access, Answerer, GoOn, Watch};
use compose::{JobEvent, JobNews, RunOutput};
use futures::StreamExt;
use support::load_with;
use testkit::Workdir;

/// The run's events, each with its value whole.
async fn events(yaml: &str, input: Value) -> Vec<JobEvent> {
    events_asking(yaml, input, &GoOn).await
}

/// [`events`], `answerer` answering the run's pauses.
async fn events_asking(yaml: &str, input: Value, answerer: &dyn Answerer) -> Vec<JobEvent> {
    let dir = Workdir::empty();
    let engine = load_with(&dir, yaml, &[("TOKEN", "s3cr3t-token")]).unwrap();
    let request = engine.request(None, input, Access::All).unwrap();
    let seen = Mutex::new(Vec::new());
    let observer = |news: &JobNews<'_>| seen.lock().push(news.event(news.value.cloned()));
    let watch = Watch {
        observer: &observer,
        usage: Arc::default(),
        answerer,
        traced: None,
    };
    // A stream is read to its end: the run's other jobs may go on meanwhile.
    if let Ok(RunOutput::Stream(pieces)) = engine.run_observed(&request, json!({}), watch).await {
        pieces.for_each(|_| async {}).await;
    }
    seen.into_inner()
}

/// `job:event[iteration]=value` for each event.
fn told(events: &[JobEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let iteration = e.iteration.map(|i| format!("[{i}]")).unwrap_or_default();
            let next = e
                .next_job_id
                .as_deref()
                .map(|n| format!("->{n}"))
                .unwrap_or_default();
            let value = e
                .value
                .as_ref()
                .map(|v| format!("={v}"))
                .unwrap_or_default();
            format!("{}:{}{iteration}{next}{value}", e.job_id, e.event.as_str())
        })
        .collect()
}

const SAY: &str = r#"components:
  - id: say
    type: shell
    action:
      command: [printf, '%s', '${input.text}']
      output: ${result.stdout}
"#;

#[tokio::test]
async fn jobs_tell_their_inputs_outputs_routes_and_iterations() {
    let yaml = format!(
        r#"{SAY}workflow:
  jobs:
    - id: pick
      type: if
      input: ${{input.go}}
      conditions: [{{operator: eq, value: true, if_true: each}}]
    - id: each
      type: for-each
      input: ${{input.items}}
      do:
        component: say
        input: {{text: 'item ${{item}}'}}
"#
    );
    let events = events(&yaml, json!({"go": true, "items": ["a", "b"]})).await;
    assert_eq!(
        told(&events),
        [
            "pick:started=true",
            "pick:routed->each",
            r#"each:started=["a","b"]"#,
            r#"each[do]:started[0]={"text":"item a"}"#,
            r#"each[do]:completed[0]="item a""#,
            r#"each[do]:started[1]={"text":"item b"}"#,
            r#"each[do]:completed[1]="item b""#,
            r#"each:completed=["item a","item b"]"#,
        ]
    );
    assert_eq!(events[0].job_type, "if");
    assert_eq!(events[3].job_type, "component");
}

#[tokio::test]
async fn a_failure_is_told_with_its_message_and_no_secret() {
    let yaml = r#"components:
  - id: call
    type: http-client
    action:
      endpoint: http://127.0.0.1:9/never?token=${env.TOKEN}
      method: GET
workflow:
  job:
    component: call
"#;
    let events = events(yaml, json!({})).await;
    let failed = events.last().unwrap();
    assert_eq!(failed.event.as_str(), "failed");
    let message = failed.value.as_ref().unwrap().as_str().unwrap();
    assert!(!message.contains("s3cr3t-token"), "{message}");
    assert!(message.contains("127.0.0.1:9"), "{message}");
}

#[tokio::test]
async fn a_secret_in_a_jobs_input_is_never_shown() {
    let yaml = format!(
        r#"{SAY}workflow:
  job:
    component: say
    input: {{text: 'token ${{env.TOKEN}}'}}
    interrupt:
      before: {{message: 'Send ${{job.input.text}}?', metadata: {{text: '${{job.input.text}}'}}}}
"#
    );
    let shown = support::Person::answering(|_| Value::Null);
    let events = events_asking(&yaml, json!({}), &shown).await;
    assert_eq!(
        told(&events),
        [
            r#"__job__:started={"text":"token [redacted]"}"#,
            r#"__job__:completed="token [redacted]""#,
        ]
    );
    let points = shown.shown.into_inner().concat();
    assert_eq!(points[0].message.as_deref(), Some("Send token [redacted]?"));
    assert_eq!(
        points[0].metadata,
        Some(json!({"text": "token [redacted]"}))
    );
}
