//! What a running server keeps stays bounded: big inputs stay out of listings and pages, and
//! finished tasks are compacted and forgotten.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{post, Server, Workdir};

const MIB: u64 = 1024;

#[tokio::test]
async fn big_prompts_stay_out_of_the_lists_and_the_page() {
    let mock = MockUpstream::start(Behavior::tokens(&["ok"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let line = "All work and no play makes a long prompt. ".repeat(40);
    let prompt = format!(
        "A very long prompt\n{}",
        line.repeat(2 * 1024 * 1024 / line.len())
    );
    assert!(prompt.len() >= 2 * 1024 * 1024 - line.len());
    let input = json!({"prompt": prompt}).to_string();
    for _ in 0..10 {
        let body = json!({"input": {"prompt": prompt}}).to_string();
        assert_eq!(
            post(&server, &body).await.text().await.unwrap(),
            "data: ok\n\n"
        );
        // The same prompt in the web UI: a conversation each.
        let chat = [
            ("workflow_id", "__workflow__"),
            ("input", input.as_str()),
            ("prompt", prompt.as_str()),
        ];
        let events = support::ui_call(&server, "chat", &chat)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            events.contains("event: end\ndata: {\"status\":\"completed\""),
            "{events:.300}"
        );
    }
    let page = reqwest::get(&server.webui)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.matches("A very long prompt").count() >= 10,
        "the conversations are on the page, by title"
    );
    assert!(page.len() < 200 * 1024, "the page is {} bytes", page.len());
    for list in ["runs", "conversations"] {
        let list = reqwest::get(format!("{}/{list}", server.api))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(list.len() < 20 * 1024, "the list is {} bytes", list.len());
    }
    let peak = server.peak_rss_kib();
    eprintln!(
        "20 runs of 2 MiB prompts: peak RSS {} MiB, page {} KiB",
        peak / MIB,
        page.len() / 1024
    );
    assert!(peak < 64 * MIB, "peak RSS {} MiB", peak / MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_runs_leave_memory_where_it_was() {
    let mock = MockUpstream::start(Behavior::tokens(&["a", " short", " answer"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let client = reqwest::Client::new();
    let url = format!("{}/workflows/runs", server.api);
    let run_all = |count: usize| {
        let (client, url) = (client.clone(), url.clone());
        futures::stream::iter(0..count)
            .map(move |i| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let body = json!({"input": {"prompt": format!("run {i}")}}).to_string();
                    let response = client
                        .post(url)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        response.text().await.unwrap(),
                        "data: a\n\ndata:  short\n\ndata:  answer\n\n"
                    );
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
    };
    run_all(500).await;
    let before = server.rss_kib();
    let started = Instant::now();
    run_all(20_000).await;
    let after = server.rss_kib();
    eprintln!(
        "20,000 runs in {:?}: RSS {} MiB before, {} MiB after",
        started.elapsed(),
        before / MIB,
        after / MIB
    );
    assert!(
        after <= before + 30 * MIB,
        "RSS {} MiB before, {} MiB after",
        before / MIB,
        after / MIB
    );
}

/// The seed with `controller.limits` set as given.
fn with_limits(base_url: &str, limits: &str) -> String {
    support::seed_for(base_url).replace(
        "controller:\n",
        &format!("controller:\n  limits: {limits}\n"),
    )
}

/// Reads from `stream` until the server closes it; returns how long that took.
fn closed_after(stream: &mut std::net::TcpStream) -> std::time::Duration {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                return started.elapsed()
            }
            Err(err) => panic!("the connection stayed open: {err}"),
        }
    }
}

fn api_address(server: &Server) -> String {
    server
        .api
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed_after_the_header_timeout() {
    use std::io::Write;
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(&dir, &with_limits(&mock.base_url, "{header_timeout: 1s}"));
    let address = api_address(&server);
    // A connection that never sends a request.
    let mut silent = std::net::TcpStream::connect(&address).unwrap();
    let waited = closed_after(&mut silent);
    assert!(
        waited >= std::time::Duration::from_millis(800),
        "{waited:?}"
    );
    // One kept alive after a request, then quiet.
    let mut idle = std::net::TcpStream::connect(&address).unwrap();
    write!(idle, "GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let waited = closed_after(&mut idle);
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn idle_connections_beyond_the_descriptor_limit_do_not_stop_the_server() {
    let mock = MockUpstream::start(Behavior::tokens(&["still", " here"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = with_limits(&mock.base_url, "{header_timeout: 2s}");
    let server = Server::start_with_file_limit(&dir, &config, 256);
    let address = api_address(&server);
    // Far more idle connections than the server has descriptors for.
    let idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    let started = Instant::now();
    let body = post(&server, r#"{"input":{"prompt":"Hi"}}"#)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, "data: still\n\ndata:  here\n\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(server.open_fds() < 256, "{} descriptors", server.open_fds());
    drop(idle);
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(
        log.matches("cannot accept connections").count() <= 1,
        "accept errors are reported once:\n{log}"
    );
}
