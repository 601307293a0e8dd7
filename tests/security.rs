//! The API key never leaves the server: not in responses, logs, the history or the pages the
//! browser gets, even when the upstream echoes it. And CORS behaves as configured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use base64::Engine as _;

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
        // Cut short, encoded: still the key.
        format!("Incorrect API key provided: {}****", &TEST_KEY[..14]),
        format!(
            "credentials {} refused",
            base64::engine::general_purpose::STANDARD.encode(format!("user:{TEST_KEY}"))
        ),
        format!("key={}", TEST_KEY.replace('-', "%2D")),
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
    let ui_runs = support::ui_call(&server, "conversations", &[]).await;
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
    for fragment in [
        TEST_KEY,
        &TEST_KEY[..12],
        &TEST_KEY[12..],
        &base64::engine::general_purpose::STANDARD.encode(format!("user:{TEST_KEY}"))[12..24],
    ] {
        assert!(
            !seen.contains(fragment),
            "the key leaked ({fragment}):\n{seen}"
        );
    }
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(!log.is_empty(), "the server logs at trace level");
    for fragment in [TEST_KEY, &TEST_KEY[..12], &TEST_KEY[12..]] {
        assert!(!log.contains(fragment), "the key is in the log:\n{log}");
    }
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
        !history.contains(TEST_KEY) && !history.contains(&TEST_KEY[..12]),
        "the key is in the history file"
    );
}

/// The CORS answer to a simple request and to a pre-flight from `origin`: each side's
/// `Access-Control-Allow-Origin` and `-Allow-Credentials`.
async fn cors_for(server: &Server, origin: &str) -> [(Option<String>, Option<String>); 2] {
    let client = reqwest::Client::new();
    let simple = client
        .get(format!("{}/runs", server.api))
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/workflows/runs", server.api),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    let allowed = |response: &reqwest::Response| {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        (
            header("access-control-allow-origin"),
            header("access-control-allow-credentials"),
        )
    };
    [allowed(&simple), allowed(&preflight)]
}

fn granted(origin: &str) -> [(Option<String>, Option<String>); 2] {
    let both = (Some(origin.to_string()), Some("true".to_string()));
    [both.clone(), both]
}

/// Whether neither answer lets the page read the response (no `Allow-Origin`: what
/// `Allow-Credentials` says then does not matter).
fn refused(answers: &[(Option<String>, Option<String>); 2]) -> bool {
    answers.iter().all(|(origin, _)| origin.is_none())
}

#[tokio::test]
async fn by_default_only_pages_of_this_machine_may_call_the_api() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    for origin in [
        "http://localhost:3000",
        "http://127.0.0.1:5173",
        "http://[::1]:8000",
    ] {
        assert_eq!(cors_for(&server, origin).await, granted(origin), "{origin}");
    }
    for origin in [
        "http://evil.example",
        "http://localhost.evil.example",
        "null",
    ] {
        assert!(refused(&cors_for(&server, origin).await), "{origin}");
    }
    // The pre-flight's other answers are the original's.
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/workflows/runs", server.api),
        )
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-foo")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
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
async fn origins_open_the_api_to_the_listed_pages() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    for origins in [
        "\"http://a.example, http://b.example/\"",
        "[http://a.example, http://b.example]",
    ] {
        let config = support::seed_for(&mock.base_url).replace(
            "    base_path: /api",
            &format!("    base_path: /api\n    origins: {origins}"),
        );
        let server = Server::start_with(&dir, &config);
        for origin in [
            "http://a.example",
            "http://b.example",
            "http://localhost:3000",
        ] {
            assert_eq!(cors_for(&server, origin).await, granted(origin), "{origin}");
        }
        assert!(refused(&cors_for(&server, "http://evil.example").await));
    }
}

#[tokio::test]
async fn origins_star_lets_any_page_call_without_credentials_and_warns() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replace(
        "    base_path: /api",
        "    base_path: /api\n    origins: \"*\"",
    );
    let server = Server::start_with(&dir, &config);
    let any = (Some("*".to_string()), None);
    assert_eq!(
        cors_for(&server, "http://evil.example").await,
        [any.clone(), any]
    );
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(
        log.contains("lets any web page the user visits call the API"),
        "{log}"
    );
}

#[tokio::test]
async fn requests_must_name_this_machine_in_their_host() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let client = reqwest::Client::new();
    for url in [format!("{}/health", server.api), server.webui.clone()] {
        let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
        for host in ["rebind.evil.example", "rebind.evil.example:80"] {
            let response = client.get(&url).header("Host", host).send().await.unwrap();
            assert_eq!(response.status(), 403, "{url} as {host}");
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert!(
                body["detail"].as_str().unwrap().contains("Host header"),
                "{body}"
            );
        }
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            "localhost".to_string(),
        ] {
            let response = client.get(&url).header("Host", &host).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url} as {host}");
        }
    }
}

#[tokio::test]
async fn a_server_bound_to_every_address_skips_the_host_check_and_warns_without_keys() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url)
        .replace("    port: 8080", "    port: 8080\n    host: 0.0.0.0");
    let server = Server::start_with(&dir, &config);
    let response = reqwest::Client::new()
        .get(format!("{}/health", server.api))
        .header("Host", "models.internal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(
        log.contains("without access keys: anyone who reaches this port can run workflows"),
        "{log}"
    );
}

/// A workflow whose command takes its arguments from the caller, served on every address.
const TOOL_ON_EVERY_ADDRESS: &str = r#"
controller:
  adapter:
    type: http-server
    host: 0.0.0.0
    port: 8080
    base_path: /api
  webui:
    port: 8081
component:
  type: shell
  action:
    command: [echo, '${input.text}']
    output: ${result.stdout}
workflow:
  id: tool
  job:
    id: say
"#;

#[tokio::test]
async fn a_command_a_caller_chooses_the_arguments_of_is_warned_about_without_keys() {
    let dir = Workdir::empty();
    let server = Server::start_with(&dir, TOOL_ON_EVERY_ADDRESS);
    let response = reqwest::Client::new()
        .post(format!("{}/workflows/runs", server.api))
        .header("Content-Type", "application/json")
        .body(json!({"workflow_id": "tool", "input": {"text": "$(id) hi"}, "wait_for_completion": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["output"], "$(id) hi", "{body}");
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(
        log.contains("workflow 'tool' job 'say' runs a command built from the run's input"),
        "{log}"
    );
}

#[tokio::test]
async fn the_web_ui_answers_calls_from_its_own_pages_only() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let own = server.webui.clone();
    let run = [
        ("workflow_id", "__workflow__"),
        ("input", r#"{"prompt":"Hi"}"#),
        ("prompt", "Hi"),
        ("id", "x"),
    ];
    let client = reqwest::Client::new();
    let call = |name: &str, headers: &[(&str, &str)]| {
        let mut request = client.post(format!("{own}/_ui/{name}")).form(&run);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ] {
        for name in ["chat", "delete_conversation", "conversations"] {
            let response = call(name, &headers).await.unwrap();
            assert_eq!(response.status(), 403, "{name} with {headers:?}");
        }
    }
    assert!(mock.requests().is_empty(), "nothing was run");
    let origin = own.clone();
    let response = call(
        "chat",
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("\"completed\""));
    // Pages may be linked from anywhere, but never framed by another site.
    let page = client
        .get(&own)
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers();
    assert_eq!(
        headers["content-security-policy"],
        "frame-ancestors 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; \
         connect-src 'self'"
    );
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let api = client
        .get(format!("{}/health", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
}
