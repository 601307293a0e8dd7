//! Faults: upstreams that stall, send garbage or reset; clients that leave at random; SIGTERM
//! with streams in flight. Bounded, loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use support::mock_upstream::{resetting_upstream, Behavior, MockUpstream};
use support::{post, Server, Workdir};

const SEED_BODY: &str =
    r#"{"input":{"prompt":"Explain machine learning in simple terms","temperature":0.7}}"#;

async fn runs(server: &Server) -> Vec<Value> {
    let url = format!("{}/runs?limit=1000", server.api);
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str::<Vec<Value>>(&body).unwrap()
}

fn with_timeout(seed: &str, timeout: &str) -> String {
    seed.replace(
        "    stream_format: json",
        &format!("    stream_format: json\n    timeout: {timeout}"),
    )
}

#[tokio::test]
async fn an_upstream_that_stalls_is_ended_by_the_timeout_with_an_error_event() {
    let mock = MockUpstream::start(Behavior::tokens(&["first", " second"]).stall_after(1));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(
        &dir,
        &with_timeout(&support::seed_for(&mock.base_url), "1s"),
    );
    let started = Instant::now();
    let body = post(&server, SEED_BODY).await.text().await.unwrap();
    assert_eq!(
        body,
        "data: first\n\nevent: error\ndata: {\"detail\":\"upstream did not finish within 1 s\"}\n\n"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let recorded = runs(&server).await;
    assert_eq!(recorded[0]["status"], "failed");
    assert_eq!(
        recorded[0]["error"],
        json!({"kind": "timeout", "http_status": 504,
               "message": "upstream did not finish within 1 s"})
    );
}

#[tokio::test]
async fn malformed_events_and_invalid_json_are_skipped() {
    let good = |text: &str| {
        format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
    };
    let body = [
        good("one"),
        "data: {not json}\n\n".to_string(),
        "this line is not SSE\n\n".to_string(),
        ": a comment\n\nevent: ping\n\n".to_string(),
        "data: {\"choices\": \"not a list\"}\n\n".to_string(),
        "data: [DONE]\n\ndata: \n\n".to_string(),
        good(" two"),
        "data: {\"choices\":[{\"delta\":{\"content\":".to_string(),
    ]
    .concat();
    let mock = MockUpstream::start(Behavior::raw(&body));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let response = post(&server, SEED_BODY).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "data: one\n\ndata:  two\n\n"
    );
}

#[tokio::test]
async fn an_upstream_that_resets_the_connection_gives_an_error_event() {
    let base_url = resetting_upstream();
    let dir = Workdir::seed(&base_url);
    let server = Server::start(&dir, &base_url);
    let body = post(&server, SEED_BODY).await.text().await.unwrap();
    let (events, error) = body.split_once("event: error\n").expect("an error event");
    assert_eq!(events, "data: reset\n\n");
    assert!(
        error.starts_with("data: {\"detail\":\"upstream stream failed: "),
        "{error}"
    );
    // The server is fine afterwards.
    assert_eq!(post(&server, SEED_BODY).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_runs_left_at_random_leave_nothing_behind() {
    /// Runs going at once.
    const CONCURRENT: usize = 25;
    let tokens: Vec<String> = (0..40).map(|i| format!(" t{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mock = MockUpstream::start(Behavior::tokens(&tokens).delay(Duration::from_millis(2)));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    // Warm up (connection pools, history file), then measure the baseline.
    post(&server, SEED_BODY).await.text().await.unwrap();
    let (fds_before, rss_before) = (server.open_fds(), server.rss_kib());

    let client = reqwest::Client::new();
    let url = format!("{}/workflows/runs", server.api);
    let jobs = (0..500u64).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            // A deterministic spread: leave after 0 to 44 chunks (44 = read to the end).
            let leave_after = (i * 7919 + 13) % 45;
            let response = client
                .post(url)
                .header("Content-Type", "application/json")
                .body(SEED_BODY)
                .send()
                .await
                .unwrap();
            let mut body = response.bytes_stream();
            let mut read = 0;
            while read < leave_after {
                if body.next().await.is_none() {
                    break;
                }
                read += 1;
            }
        }
    });
    futures::stream::iter(jobs)
        .buffer_unordered(CONCURRENT)
        .collect::<Vec<()>>()
        .await;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = runs(&server).await;
        let settled = all.len() == 501
            && all
                .iter()
                .all(|r| matches!(r["status"].as_str(), Some("completed" | "cancelled")));
        if settled && mock.open_streams() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runs still going: {} recorded, {} upstream streams open",
            all.len(),
            mock.open_streams()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancelled = runs(&server)
        .await
        .iter()
        .filter(|r| r["status"] == "cancelled")
        .count();
    assert!(
        cancelled > 100,
        "most clients left early ({cancelled} cancelled)"
    );
    // What may stay open: the upstream pool keeps an idle connection for each run that was
    // going at once (25), until its idle timeout; the clients' kept-alive connections go once
    // the client does. Anything else piling up (a leak per run) would be hundreds.
    drop(client);
    let bound = fds_before + CONCURRENT + 5;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.open_fds() > bound && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (fds_after, rss_after) = (server.open_fds(), server.rss_kib());
    assert!(
        fds_after <= bound,
        "file descriptors: {fds_before} before, {fds_after} after"
    );
    assert!(
        rss_after <= rss_before + 20 * 1024,
        "RSS: {rss_before} KiB before, {rss_after} KiB after"
    );
}

#[tokio::test]
async fn sigterm_with_twenty_streams_in_flight_ends_each_and_records_all() {
    let tokens: Vec<String> = (0..40).map(|i| format!(" w{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mock = MockUpstream::start(Behavior::tokens(&tokens).delay(Duration::from_millis(100)));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url)
        .replace("controller:\n", "controller:\n  shutdown_timeout: 1s\n");
    let mut server = Server::start_with(&dir, &config);
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut body = post(&server, SEED_BODY).await.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        streams.push((String::from_utf8(first.to_vec()).unwrap(), body));
    }
    let stopping = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status();
    for (mut text, mut body) in streams {
        while let Some(chunk) = body.next().await {
            text.push_str(std::str::from_utf8(&chunk.expect("a clean end of body")).unwrap());
        }
        assert!(
            text.ends_with(
                "event: error\ndata: {\"detail\":\"cancelled: the server is shutting down\"}\n\n"
            ),
            "{text}"
        );
    }
    assert!(server.child.wait().unwrap().success());
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let server = Server::start_with(&dir, &config);
    let all = runs(&server).await;
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(|r| r["status"] == "cancelled"
        && r["error"]
            == json!({"kind": "cancelled", "http_status": 409,
                          "message": "cancelled: the server is shutting down"})));
}

#[tokio::test]
async fn runs_left_unfinished_by_a_killed_server_are_marked_failed_at_the_next_start() {
    let tokens: Vec<String> = (0..40).map(|i| format!(" w{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mock = MockUpstream::start(Behavior::tokens(&tokens).delay(Duration::from_millis(100)));
    let dir = Workdir::seed(&mock.base_url);
    let mut server = Server::start(&dir, &mock.base_url);
    mock.set(Behavior::tokens(&["done"]));
    post(&server, SEED_BODY).await.text().await.unwrap();
    mock.set(Behavior::tokens(&tokens).delay(Duration::from_millis(100)));
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut body = post(&server, SEED_BODY).await.bytes_stream();
        body.next().await.unwrap().unwrap();
        streams.push(body);
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status();
    server.child.wait().unwrap();
    drop(streams);

    let server = Server::start(&dir, &mock.base_url);
    let all = runs(&server).await;
    assert_eq!(all.len(), 6);
    let failed: Vec<&Value> = all.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 5, "{all:?}");
    assert!(failed.iter().all(|r| r["error"]
        == json!({"kind": "interrupted", "http_status": 500,
                      "message": "the server stopped during this run"})));
    assert_eq!(all.iter().filter(|r| r["status"] == "completed").count(), 1);
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(log.contains("5 run(s) left unfinished"), "{log}");
}

#[tokio::test]
async fn an_upstream_that_goes_quiet_fails_the_run_after_read_timeout() {
    let mock = MockUpstream::start(Behavior::tokens(&["first", " second"]).stall_after(1));
    let dir = Workdir::seed(&mock.base_url);
    let quiet = support::seed_for(&mock.base_url).replace(
        "    stream_format: json",
        "    stream_format: json\n    read_timeout: 1s",
    );
    let server = Server::start_with(&dir, &quiet);
    let started = Instant::now();
    let body = post(&server, SEED_BODY).await.text().await.unwrap();
    assert_eq!(
        body,
        "data: first\n\nevent: error\ndata: {\"detail\":\"upstream sent nothing for 1 s\"}\n\n"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // One that accepts the request and never answers at all.
    mock.set(Behavior::silent());
    let response = post(&server, SEED_BODY).await;
    assert_eq!(response.status(), 504);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"detail":"upstream sent nothing for 1 s"}"#
    );
}

#[tokio::test]
async fn upstream_answers_are_capped_and_their_type_checked() {
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let capped = support::seed_for(&mock.base_url).replace(
        "    stream_format: json",
        "    stream_format: json\n    max_event_size: 1KiB\n    max_body_size: 1KiB",
    );
    let server = Server::start_with(&dir, &capped);
    // An event over the cap ends the stream with an error event.
    let big = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"ok\"}}}}]}}\n\ndata: {}\n\n",
        "y".repeat(4096)
    );
    mock.set(Behavior::raw(&big));
    assert_eq!(
        post(&server, SEED_BODY).await.text().await.unwrap(),
        "data: ok\n\nevent: error\ndata: {\"detail\":\"upstream stream failed: an event of the stream is larger than 1024 bytes (the action's max_event_size)\"}\n\n"
    );
    // An answer that is not streamed, over the cap.
    mock.set(Behavior::body(
        "application/json",
        &format!("{{\"a\":\"{}\"}}", "z".repeat(4096)),
    ));
    let response = post(&server, SEED_BODY).await;
    assert_eq!(response.status(), 502);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("the upstream's answer is larger than 1 KiB (the action's max_body_size)"));
    // A page of HTML where an API answer was expected.
    mock.set(Behavior::body(
        "text/html; charset=utf-8",
        "<html>Sign in</html>",
    ));
    let response = post(&server, SEED_BODY).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"detail":"upstream returned 200 with content type \"text/html; charset=utf-8\", not JSON, an event stream or text"}"#
    );
    let recorded = runs(&server).await;
    assert_eq!(recorded[0]["status"], "failed");
    // A huge error body is read only in part.
    let huge = "e".repeat(8 * 1024 * 1024);
    mock.set(Behavior::error(500, &huge));
    let response = post(&server, SEED_BODY).await;
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(text.len() < 4096, "{} bytes", text.len());
}
