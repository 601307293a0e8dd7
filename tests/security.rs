//! The API key never leaves the server: not in responses, logs, the history or the pages the
//! browser gets, even when the upstream echoes it. And CORS behaves as configured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{post, Server, Workdir, TEST_KEY};

const SEED_BODY: &str = r#"{"input":{"prompt":"Hi","temperature":0.7}}"#;

#[tokio::test]
async fn the_api_key_is_never_shown() {
    let mock = MockUpstream::start(Behavior::tokens(&["fine"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let client = reqwest::Client::new();
    let mut seen = String::new();
    let mut keep = |label: &str, text: String| seen.push_str(&format!("--- {label}\n{text}\n"));
    let get = |url: String| {
        let request = client.get(url).send();
        async move { request.await.unwrap().text().await.unwrap() }
    };

    keep(
        "stream",
        post(&server, SEED_BODY).await.text().await.unwrap(),
    );
    // Upstream errors that echo the request, the key in it, in several ways.
    for echo in [
        json!({"error": {"message": format!("Incorrect API key provided: {TEST_KEY}")}})
            .to_string(),
        format!("Authorization: Bearer {TEST_KEY}"),
        json!({"detail": {"headers": {"authorization": format!("Bearer {TEST_KEY}")}}}).to_string(),
    ] {
        mock.set(Behavior::error(401, &echo));
        let response = post(&server, SEED_BODY).await;
        assert_eq!(response.status(), 502);
        keep("error", response.text().await.unwrap());
        let waited = post(
            &server,
            &SEED_BODY.replace("}}", "},\"wait_for_completion\":false}"),
        )
        .await;
        let task: serde_json::Value = serde_json::from_str(&waited.text().await.unwrap()).unwrap();
        let task_url = format!("{}/tasks/{}", server.api, task["task_id"].as_str().unwrap());
        support::eventually(Duration::from_secs(5), "the task to fail", || {
            let task = get(task_url.clone());
            async move { task.await.contains("\"status\":\"failed\"") }
        })
        .await;
        keep("task", get(task_url.clone()).await);
    }
    keep(
        "bad input",
        post(&server, r#"{"input":{}}"#).await.text().await.unwrap(),
    );
    keep("runs", get(format!("{}/runs", server.api)).await);
    keep(
        "schema",
        get(format!("{}/workflows?include_schema=true", server.api)).await,
    );
    keep("page", get(server.webui.clone()).await);
    let ui_runs = support::ui_call(&server, "runs", &[]).await;
    assert_eq!(ui_runs.status(), 200);
    keep("ui runs", ui_runs.text().await.unwrap());
    let run = [
        ("workflow_id", "__workflow__"),
        ("input", r#"{"prompt":"Hi"}"#),
    ];
    let ui_run = support::ui_call(&server, "run", &run).await;
    keep("ui run", ui_run.text().await.unwrap());

    assert!(
        seen.contains("upstream returned 401: Incorrect API key provided: [redacted]"),
        "{seen}"
    );
    assert!(seen.contains("\"status\":\"failed\""), "{seen}");
    assert!(!seen.contains(TEST_KEY), "the key leaked:\n{seen}");
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(!log.is_empty(), "the server logs at trace level");
    assert!(!log.contains(TEST_KEY), "the key is in the log:\n{log}");
    // New rows sit in the write-ahead log until a checkpoint: read both files.
    let mut history = Vec::new();
    for file in [".model-compose-history.db", ".model-compose-history.db-wal"] {
        history.extend(std::fs::read(dir.path.join(file)).unwrap_or_default());
    }
    let history = String::from_utf8_lossy(&history);
    assert!(
        history.contains("Incorrect API key provided: [redacted]"),
        "the runs are in the history files"
    );
    assert!(
        !history.contains(TEST_KEY),
        "the key is in the history file"
    );
}

#[tokio::test]
async fn cors_allows_any_origin_by_default_with_credentials() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let client = reqwest::Client::new();
    let simple = client
        .get(format!("{}/health", server.api))
        .header("Origin", "http://example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "http://example.com"
    );
    assert_eq!(simple.headers()["access-control-allow-credentials"], "true");
    assert!(simple.headers()["vary"]
        .to_str()
        .unwrap()
        .to_lowercase()
        .contains("origin"));

    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/workflows/runs", server.api),
        )
        .header("Origin", "http://example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-foo")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://example.com");
    assert_eq!(
        headers["access-control-allow-headers"],
        "content-type,x-foo"
    );
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
}

#[tokio::test]
async fn cors_can_be_restricted_to_listed_origins() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replace(
        "    base_path: /api",
        "    base_path: /api\n    origins: \"http://a.example, http://b.example\"",
    );
    let server = Server::start_with(&dir, &config);
    let client = reqwest::Client::new();
    for (origin, allowed) in [
        ("http://a.example", true),
        ("http://b.example", true),
        ("http://evil.example", false),
    ] {
        let response = client
            .get(format!("{}/health", server.api))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let header = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(header, allowed.then(|| origin.to_string()), "{origin}");
    }
}
