//! The REST API's answers to requests it refuses, in process: the router the server mounts,
//! driven with `tower::ServiceExt::oneshot` (as axum's `examples/testing` does), in front of
//! an upstream mock that must see nothing. The process-level tests keep what needs a server:
//! lifecycle, streaming, faults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use compose::config::{self, Sources};
use compose::task::TaskRegistry;
use compose::Engine;
use serde_json::{json, Value};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::{Workdir, TEST_KEY};
use tower::ServiceExt;

/// The API router of the seed example, as `up` mounts it (under `/api`), with no history.
fn seed_api(upstream: &str) -> (Router, Workdir) {
    let dir = Workdir::empty();
    let path = dir.write("model-compose.yml", &testkit::seed_for(upstream));
    let sources = Sources::isolated(&dir.path, &[("OPENAI_API_KEY", TEST_KEY)]);
    let config = config::load(&[path], &sources).unwrap();
    let engine = Arc::new(Engine::new(&config).unwrap());
    let tasks = Arc::new(TaskRegistry::new(
        engine,
        None,
        config.controller.limits.clone(),
    ));
    let adapter = &config.controller.adapters[0];
    let router =
        model_compose::server::rest::router(tasks, None, adapter, Default::default(), None);
    (router, dir)
}

/// What `router` answers `request`: its status, content type and body as JSON.
async fn answer(router: &Router, request: Request<Body>) -> (u16, String, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, content_type, body)
}

fn run(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post("/api/workflows/runs");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.body(body.into()).unwrap()
}

#[tokio::test]
async fn bad_run_requests_get_a_clear_detail_and_send_nothing_upstream() {
    let mock = MockUpstream::start(Behavior::tokens(&["never"]));
    let (api, _dir) = seed_api(&mock.base_url);
    let json = Some("application/json");
    let cases = [
        (
            run(json, r#"{"input":{"temperature":0.7}}"#),
            400,
            "input.prompt is required",
        ),
        (
            run(json, r#"{"input":{"prompt":"Hi","temperature":"hot"}}"#),
            400,
            "input.temperature must be a number, got \"hot\"",
        ),
        (
            run(json, r#"{"input":{"prompt":"Hi","temperature":"NaN"}}"#),
            400,
            "input.temperature must be a number, got \"NaN\"",
        ),
        (run(json, "{}"), 400, "input.prompt is required"),
        (
            run(json, r#"{"workflow_id":"nope","input":{"prompt":"Hi"}}"#),
            404,
            "Workflow 'nope' not found.",
        ),
        (
            run(
                json,
                r#"{"input":{"prompt":"Hi"},"output_only":true,"wait_for_completion":false}"#,
            ),
            400,
            "output_only=true requires wait_for_completion=true.",
        ),
        (
            run(json, r#"{"input":{"prompt":"Hi"},"subscribe_task":true}"#),
            400,
            "subscribe_task=true requires wait_for_completion=false",
        ),
        (
            run(json, r#"["Hi"]"#),
            400,
            "Invalid request body: expected a JSON object",
        ),
        (
            run(Some("text/plain"), "hi"),
            400,
            "Unsupported Content-Type: text/plain",
        ),
        (
            run(None, r#"{"input":{"prompt":"Hi"}}"#),
            400,
            "Missing or empty Content-Type header.",
        ),
        (
            run(
                Some("application/x-www-form-urlencoded"),
                format!("input{}=x", "[a]".repeat(40)),
            ),
            400,
            "",
        ),
    ];
    for (request, status, detail) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, content_type, body) = answer(&api, request).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(content_type, "application/json", "{what}");
        let message = body["detail"].as_str().unwrap_or_default();
        if detail.is_empty() {
            assert!(!message.is_empty(), "{what}: {body}");
        } else {
            assert_eq!(message, detail, "{what}");
        }
    }
    let (status, _, body) = answer(&api, run(json, r#"{"input": {"prompt": "#)).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid request body: EOF while parsing"),
        "{body}"
    );
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn every_refusal_is_json_even_those_made_before_a_handler() {
    let mock = MockUpstream::start(Behavior::tokens(&["never"]));
    let (api, _dir) = seed_api(&mock.base_url);
    let request = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    };
    let too_big = format!(
        r#"{{"input":{{"prompt":"{}"}}}}"#,
        "x".repeat(33 * 1024 * 1024)
    );
    let cross_site = Request::post("/api/workflows/runs")
        .header("content-type", "application/json")
        .header("origin", "https://elsewhere.example")
        .body(Body::from(r#"{"input":{"prompt":"Hi"}}"#))
        .unwrap();
    let cases = [
        (run(Some("application/json"), too_big), 413),
        (
            request(Method::GET, "/api/workflows?include_schema=maybe"),
            400,
        ),
        (request(Method::GET, "/api/runs?limit=many"), 400),
        (
            request(Method::GET, "/api/tasks/x?output_only=perhaps"),
            400,
        ),
        (request(Method::PUT, "/api/workflows/runs"), 405),
        (request(Method::GET, "/api/nowhere"), 404),
        (request(Method::GET, "/api/tasks/nope"), 404),
        (request(Method::POST, "/api/tasks/nope/cancel"), 404),
        (cross_site, 403),
    ];
    for (request, status) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, content_type, body) = answer(&api, request).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(content_type, "application/json", "{what}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {body}"
        );
    }
    let (_, _, body) = answer(&api, request(Method::GET, "/api/tasks/nope")).await;
    assert_eq!(body, json!({"detail": "Task not found."}));
    assert!(mock.requests().is_empty());
}
