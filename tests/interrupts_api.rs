//! Interrupts over the REST API (spec §14.3), in process: a run that pauses answers its
//! request `interrupted` with its points, `POST /tasks/{id}/resume` answers them, a cancel
//! ends it, and the history keeps the points while it waits. The command the workflow runs is
//! `echo` through a `shell` component: no upstream is needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use compose::config::{self, Sources};
use compose::record::RunStore;
use compose::task::TaskRegistry;
use compose::Engine;
use model_compose::store::SqliteStore;
use serde_json::{json, Value};
use testkit::{Workdir, REVIEWED, SH_COMPONENT};
use tower::ServiceExt;

/// The API's place, before a workflow.
const CONTROLLER: &str =
    "controller:\n  adapter: {type: http-server, port: 8080, base_path: /api}\n";

/// Two jobs that pause at once (and `sh`, SH_COMPONENT).
const TWO_AT_ONCE: &str = r#"workflow:
  id: pair
  jobs:
    - id: left
      component: sh
      input: {command: echo left}
      interrupt: {before: {message: left?}}
    - id: right
      component: sh
      input: {command: echo right}
      interrupt: {before: {message: right?}}
  output: {left: '${jobs.left.output}', right: '${jobs.right.output}'}
"#;

/// The API router as `up` mounts it, with a SQLite history in the work directory.
async fn api(yaml: &str) -> (Router, Arc<dyn RunStore>, Workdir) {
    let dir = Workdir::empty();
    let path = dir.write(
        "model-compose.yml",
        &format!("{CONTROLLER}{yaml}{SH_COMPONENT}"),
    );
    let config = config::load(&[path], &Sources::isolated(&dir.path, &[])).unwrap();
    let engine = Arc::new(Engine::new(&config).unwrap());
    let store: Arc<dyn RunStore> = Arc::new(
        SqliteStore::open(&dir.path.join("history.db"))
            .await
            .unwrap(),
    );
    let tasks = TaskRegistry::new(engine, Some(Arc::clone(&store)), config.controller.limits);
    let adapter = &config.controller.adapters[0];
    let router = model_compose::server::rest::router(
        Arc::new(tasks),
        None,
        adapter,
        Default::default(),
        None,
    );
    (router, store, dir)
}

/// What `router` answers: the status and the body as JSON.
async fn call(router: &Router, method: &str, uri: &str, body: Option<&str>) -> (u16, Value) {
    let request = Request::builder().method(method).uri(uri);
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    };
    let response = router.clone().oneshot(request.unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `POST /tasks/{id}/resume` with these answers by point id: the status and the state.
async fn resume(router: &Router, id: &str, answer: Value) -> (u16, Value) {
    let body = json!({ "answer": answer }).to_string();
    call(
        router,
        "POST",
        &format!("/api/tasks/{id}/resume"),
        Some(&body),
    )
    .await
}

/// The task's state once `reached` holds of it (within ten seconds).
async fn state_when(router: &Router, id: &str, reached: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, state) = call(router, "GET", &format!("/api/tasks/{id}"), None).await;
        assert_eq!(status, 200, "{state}");
        if reached(&state) {
            return state;
        }
        assert!(tokio::time::Instant::now() < deadline, "stuck at {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn interrupted_at(phase: &'static str) -> impl Fn(&Value) -> bool {
    move |state| state["status"] == "interrupted" && state["interrupt"][0]["phase"] == phase
}

#[tokio::test]
async fn a_run_waits_for_its_answers_and_the_history_keeps_its_points() {
    let (api, store, _dir) = api(REVIEWED).await;
    let (status, state) = call(
        &api,
        "POST",
        "/api/workflows/runs",
        Some(r#"{"input":{"name":"Bob"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{state}");
    let id = state["task_id"].as_str().unwrap().to_string();
    let point = &state["interrupt"][0];
    let point_id = point["id"].as_str().unwrap().to_string();
    assert_eq!(
        state,
        json!({
            "task_id": id,
            "status": "interrupted",
            "workflow_id": "hitl",
            "interrupt": [{
                "id": point_id,
                "job_id": "__job__",
                "run_id": point["run_id"],
                "phase": "before",
                "message": "About to execute: echo \"hi Bob\"",
                "metadata": {"command": "echo \"hi Bob\""}
            }]
        })
    );
    let (_, again) = call(&api, "GET", &format!("/api/tasks/{id}"), None).await;
    assert_eq!(again, state);
    // The history has the run waiting, with its point (saved as it was published).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        let record = store.get(&id).await.unwrap();
        if let Some(record) = record.filter(|r| !r.interrupt.is_empty()) {
            break record;
        }
        assert!(tokio::time::Instant::now() < deadline, "not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(recorded.status.as_str(), "interrupted");
    assert_eq!(recorded.interrupt[0].id, point_id);

    let (status, resumed) = resume(&api, &id, json!({ point_id: null })).await;
    assert_eq!(
        (status, resumed),
        (
            200,
            json!({"task_id": id, "status": "processing", "workflow_id": "hitl"})
        )
    );
    let after = state_when(&api, &id, interrupted_at("after")).await;
    assert_eq!(after["interrupt"][0]["message"], "Command finished.");
    assert_eq!(
        after["interrupt"][0]["metadata"],
        json!({"result": "hi Bob"})
    );
    assert_eq!(after["interrupt"][0]["run_id"], point["run_id"]);
    // No `answer`: every point goes on.
    let (status, _) = call(&api, "POST", &format!("/api/tasks/{id}/resume"), Some("{}")).await;
    assert_eq!(status, 200);
    let done = state_when(&api, &id, |s| s["status"] == "completed").await;
    assert_eq!(
        done,
        json!({"task_id": id, "status": "completed", "workflow_id": "hitl", "output": {"result": "hi Bob"}})
    );
    let (_, run) = call(&api, "GET", &format!("/api/runs/{id}"), None).await;
    assert_eq!(run["status"], "completed");
    assert!(run.get("interrupt").is_none(), "{run}");
}

#[tokio::test]
async fn an_answer_replaces_what_the_job_was_to_run() {
    let (api, _store, _dir) = api(REVIEWED).await;
    let (_, state) = call(&api, "POST", "/api/workflows/runs", Some(r#"{"input":{}}"#)).await;
    let id = state["task_id"].as_str().unwrap();
    let point = state["interrupt"][0]["id"].as_str().unwrap();
    resume(&api, id, json!({ point: {"command": "echo replaced"} })).await;
    let after = state_when(&api, id, interrupted_at("after")).await;
    assert_eq!(
        after["interrupt"][0]["metadata"],
        json!({"result": "replaced"})
    );
    let point = after["interrupt"][0]["id"].as_str().unwrap();
    resume(&api, id, json!({ point: "edited output" })).await;
    let done = state_when(&api, id, |s| s["status"] == "completed").await;
    assert_eq!(done["output"], json!({"result": "edited output"}));
}

#[tokio::test]
async fn points_reached_together_are_answered_one_by_one() {
    let (api, _store, _dir) = api(TWO_AT_ONCE).await;
    let (status, state) = call(
        &api,
        "POST",
        "/api/workflows/runs",
        Some(r#"{"input":{}, "output_only": true}"#),
    )
    .await;
    // Asked for the output alone, a run that waits is answered 202 with its state.
    assert_eq!(status, 202, "{state}");
    let id = state["task_id"].as_str().unwrap();
    let messages: Vec<&str> = state["interrupt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["left?", "right?"]);
    let left = state["interrupt"][0]["id"].as_str().unwrap();
    let (status, remaining) = resume(&api, id, json!({ left: null, "01UNKNOWN": 5 })).await;
    assert_eq!(status, 200);
    assert_eq!(remaining["status"], "interrupted");
    assert_eq!(remaining["interrupt"].as_array().unwrap().len(), 1);
    assert_eq!(remaining["interrupt"][0]["message"], "right?");
    let right = remaining["interrupt"][0]["id"].as_str().unwrap();
    resume(&api, id, json!({ right: {"command": "echo changed"} })).await;
    let done = state_when(&api, id, |s| s["status"] == "completed").await;
    assert_eq!(done["output"], json!({"left": "left", "right": "changed"}));
}

#[tokio::test]
async fn a_waiting_run_can_be_cancelled_and_wrong_resumes_are_refused() {
    let (api, store, _dir) = api(REVIEWED).await;
    let (status, body) = call(&api, "POST", "/api/tasks/01NOPE/resume", Some("{}")).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Task not found: 01NOPE"}))
    );
    let (_, state) = call(&api, "POST", "/api/workflows/runs", Some(r#"{"input":{}}"#)).await;
    let id = state["task_id"].as_str().unwrap();
    let resume = format!("/api/tasks/{id}/resume");
    let (status, body) = call(&api, "POST", &resume, None).await;
    assert_eq!(status, 422, "no body: {body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Invalid request body"));
    let (status, _) = call(&api, "POST", &resume, Some(r#"{"answer": [1]}"#)).await;
    assert_eq!(status, 422);
    assert_eq!(
        state_when(&api, id, interrupted_at("before")).await["status"],
        "interrupted"
    );

    let (status, cancelled) = call(&api, "POST", &format!("/api/tasks/{id}/cancel"), None).await;
    assert_eq!(
        (status, cancelled),
        (
            200,
            json!({"task_id": id, "status": "cancelled", "workflow_id": "hitl", "error": "cancelled: cancelled by request"})
        )
    );
    let (status, body) = call(&api, "POST", &resume, Some("{}")).await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"detail": format!("Task '{id}' is not in interrupted state (current: cancelled)")})
        )
    );
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status.as_str(), "cancelled");
    assert!(record.interrupt.is_empty());
}
