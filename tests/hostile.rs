//! Requests an attacker would send, straight or through a user's browser from another site:
//! the server stays up and starts nothing it should not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir};

async fn health(server: &Server) -> u16 {
    reqwest::get(format!("{}/health", server.api))
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn detail(response: reqwest::Response) -> String {
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    body["detail"].as_str().unwrap().to_string()
}

/// The runs the history holds.
async fn runs(server: &Server) -> Vec<Value> {
    let body = support::get_json(format!("{}/runs", server.api)).await;
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn deeply_nested_form_field_names_are_refused_and_the_server_stays_up() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let client = reqwest::Client::new();
    let url = format!("{}/workflows/runs", server.api);

    // 3,000 levels in a URL-encoded form: about 9 KB.
    let name = format!("input[x]{}", "[a]".repeat(3_000));
    let response = client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("{name}=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = detail(response).await;
    assert!(
        text.starts_with("The form field 'input[x][a][a]") && text.contains("deeper than 32"),
        "{text}"
    );
    // 5,000 levels in a multipart form.
    let name = format!("input[x]{}", "[a]".repeat(5_000));
    let form = reqwest::multipart::Form::new().text(name, "1");
    let response = client.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(detail(response).await.contains("deeper than 32"));

    assert_eq!(health(&server).await, 200, "the server is still up");
    assert!(mock.requests().is_empty(), "nothing was run");
    // A form a person fills in still runs.
    let response = client
        .post(&url)
        .form(&[("input[prompt]", "Hi"), ("output_only", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "data: x\n\n");
}

#[tokio::test]
async fn pages_of_other_sites_start_nothing_whatever_they_send() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let client = reqwest::Client::new();
    let runs_url = format!("{}/workflows/runs", server.api);
    let json_body = r#"{"input":{"prompt":"Hi"},"output_only":true}"#;

    for (origin, site) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (Some("https://evil.example"), Some("cross-site")),
        (None, Some("cross-site")),
    ] {
        let with = |mut request: reqwest::RequestBuilder| {
            if let Some(origin) = origin {
                request = request.header("Origin", origin);
            }
            if let Some(site) = site {
                request = request.header("Sec-Fetch-Site", site);
            }
            request
        };
        let attempts = [
            // A plain HTML form that submits itself.
            with(client.post(&runs_url)).form(&[("input[prompt]", "Hi")]),
            // `fetch(…, {mode: "no-cors", body: FormData})`.
            with(client.post(&runs_url))
                .multipart(reqwest::multipart::Form::new().text("input[prompt]", "Hi")),
            // `text/plain` carrying JSON, and JSON itself.
            with(client.post(&runs_url))
                .header("Content-Type", "text/plain")
                .body(json_body),
            with(client.post(&runs_url))
                .header("Content-Type", "application/json")
                .body(json_body),
            with(client.post(format!(
                "{}/tasks/01J0000000000000000000000/cancel",
                server.api
            ))),
            with(client.delete(format!("{}/runs/01J0000000000000000000000", server.api))),
        ];
        for attempt in attempts {
            let response = attempt.send().await.unwrap();
            assert_eq!(response.status(), 403, "{origin:?} {site:?}");
            assert!(
                detail(response)
                    .await
                    .starts_with("Cross-site request refused"),
                "{origin:?} {site:?}"
            );
        }
    }
    assert!(mock.requests().is_empty(), "nothing was run");
    assert!(runs(&server).await.is_empty(), "the history stays empty");

    // Readers, this machine's pages and clients that are not browsers pass.
    let read = client
        .get(format!("{}/runs", server.api))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    for origin in [None, Some("http://localhost:3000")] {
        let mut request = client
            .post(&runs_url)
            .header("Content-Type", "application/json")
            .body(json_body);
        if let Some(origin) = origin {
            request = request
                .header("Origin", origin)
                .header("Sec-Fetch-Site", "same-site");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{origin:?}");
        assert_eq!(response.text().await.unwrap(), "data: x\n\n");
    }
    assert_eq!(runs(&server).await.len(), 2);
}

/// Bodies a caller makes up, deep and wide, in every form the API reads: each gets an answer
/// (a run, or a 4xx naming what is wrong), and the server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_bodies_of_every_kind_leave_the_server_up() {
    use proptest::prelude::*;
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let url = format!("{}/workflows/runs", server.api);
    let runtime = tokio::runtime::Handle::current();

    let answered = tokio::task::spawn_blocking(move || {
        // A name or a value: deep brackets, braces, template marks and plain words, mixed.
        let piece = prop_oneof![
            Just("[a]"),
            Just("[]"),
            Just("["),
            Just("]"),
            Just("{"),
            Just("}"),
            Just("${input}"),
            Just("${"),
            Just("\"a\":"),
            Just(","),
            Just("prompt"),
            Just("input"),
        ];
        let text = (proptest::collection::vec((piece, 1usize..3000), 1..8)).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(piece, times)| piece.repeat(times))
                .collect::<String>()
        });
        let body = (0usize..4, text.clone(), text);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let client = reqwest::Client::new();
        runner.run(&body, |(kind, name, value)| {
            let request = client.post(&url);
            let request = match kind {
                0 => request
                    .header("Content-Type", "application/json")
                    .body(format!(
                        "{{\"input\": {{\"prompt\": {name}}}, \"x\": {value}}}"
                    )),
                1 => request.header("Content-Type", "application/json").body(
                    serde_json::json!({"input": {"prompt": name}, "output_only": true}).to_string(),
                ),
                2 => request.form(&[(name.as_str(), value.as_str())]),
                _ => request.multipart(reqwest::multipart::Form::new().text(name, value)),
            };
            let status = runtime.block_on(async { request.send().await.map(|r| r.status()) });
            let status = status.map_err(|err| TestCaseError::fail(format!("no answer: {err}")))?;
            prop_assert!(
                status.is_success() || status.is_client_error(),
                "answered {status}"
            );
            Ok(())
        })
    })
    .await
    .unwrap();
    assert!(answered.is_ok(), "{answered:?}");
    assert_eq!(health(&server).await, 200, "the server is still up");
}
