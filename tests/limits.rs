//! What a running server keeps stays bounded: big inputs stay out of listings and pages, and
//! finished tasks are compacted and forgotten.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{post, Server, Workdir};

/// RSS figures are in KiB: this many make a MiB.
const KIB_PER_MIB: u64 = 1024;

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
    // A short run through both doors first: pools and caches are set up before the baseline.
    assert_eq!(
        post(&server, r#"{"input":{"prompt":"Hi"}}"#)
            .await
            .text()
            .await
            .unwrap(),
        "data: ok\n\n"
    );
    let warm = [
        ("workflow_id", "__workflow__"),
        ("input", r#"{"prompt":"Hi"}"#),
        ("prompt", "Hi"),
    ];
    support::ui_call(&server, "chat", &warm)
        .await
        .text()
        .await
        .unwrap();
    let baseline = server.rss_kib();
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
    let page = support::get_text(&server.webui).await;
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
        "20 runs of 2 MiB prompts: RSS {} MiB before, peak {} MiB; page {} KiB",
        baseline / KIB_PER_MIB,
        peak / KIB_PER_MIB,
        page.len() / 1024
    );
    // Kept, the twenty prompts would take 40 MiB at least; one run's passing copies (the
    // body, its JSON, the upstream request, the history row: about ten of 2 MiB) and the
    // history's page caches (2 MiB for each of 4 connections) stay well under that.
    assert!(
        peak < baseline + 40 * KIB_PER_MIB,
        "RSS {} MiB before, peak {} MiB",
        baseline / KIB_PER_MIB,
        peak / KIB_PER_MIB
    );
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
        before / KIB_PER_MIB,
        after / KIB_PER_MIB
    );
    assert!(
        after <= before + 30 * KIB_PER_MIB,
        "RSS {} MiB before, {} MiB after",
        before / KIB_PER_MIB,
        after / KIB_PER_MIB
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

#[tokio::test]
async fn silent_and_idle_connections_are_closed_after_the_header_timeout() {
    use std::io::Write;
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(&dir, &with_limits(&mock.base_url, "{header_timeout: 1s}"));
    let address = server.api_address();
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
    // No cap below the descriptor limit: the idle connections take every descriptor.
    let config = with_limits(
        &mock.base_url,
        "{header_timeout: 2s, max_connections: 1000}",
    );
    let server = Server::start_with_file_limit(&dir, &config, 256);
    let address = server.api_address();
    let idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    let log_path = dir.path.join("server.log");
    let log = || std::fs::read_to_string(&log_path).unwrap();
    support::eventually(
        std::time::Duration::from_secs(10),
        "the server out of descriptors",
        || std::future::ready(log().contains("cannot accept connections")),
    )
    .await;
    // Once the idle ones time out, it accepts again, and serves a run.
    let started = Instant::now();
    let body = post(&server, r#"{"input":{"prompt":"Hi"}}"#)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, "data: still\n\ndata:  here\n\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    drop(idle);
    let log = log();
    assert_eq!(
        log.matches("cannot accept connections").count(),
        1,
        "accept errors are reported once:\n{log}"
    );
    assert!(log.contains("accepting connections again"), "{log}");
}

/// The seed with `controller.max_output` set.
fn with_max_output(base_url: &str, size: &str) -> String {
    support::seed_for(base_url).replace(
        "controller:\n",
        &format!("controller:\n  max_output: {size}\n"),
    )
}

#[tokio::test]
async fn an_output_past_max_output_fails_the_run_with_a_clear_error() {
    let mock = MockUpstream::start(Behavior::endless("endless "));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start_with(&dir, &with_max_output(&mock.base_url, "1MiB"));
    let body = post(&server, r#"{"input":{"prompt":"Hi"},"output_only":true}"#)
        .await
        .text()
        .await
        .unwrap();
    let detail = "the output grew past 1 MiB (controller.max_output): the run was stopped";
    assert!(
        body.ends_with(&format!(
            "data: endless \n\nevent: error\ndata: {{\"detail\":\"{detail}\"}}\n\n"
        )),
        "{}",
        &body[body.len().saturating_sub(300)..]
    );
    let streamed = body.matches("data: endless \n\n").count();
    assert_eq!(
        streamed,
        1024 * 1024 / "endless ".len(),
        "what fitted went out"
    );
    let runs = support::get_json(format!("{}/runs", server.api)).await;
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(
        runs[0]["error"],
        json!({"kind": "output_too_large", "http_status": 502, "message": detail})
    );
}

/// Five clients that read 10 bytes a second from one run while an endless upstream streams as
/// fast as it can: the run stops at `max_output`, and a slow client holds no copy of its own of
/// what it has yet to read (the task's pieces are the one copy), so that the server's memory
/// grows by the run's output and little more.
#[tokio::test]
async fn stalled_readers_cost_no_more_than_the_output_they_read() {
    use std::io::{Read, Write};
    const CLIENTS: usize = 5;
    // Far more than the kernel's socket buffers take off the server's hands.
    const CAP_MIB: u64 = 32;
    // Large pieces, so that the output's text is what its memory is.
    let token = "x".repeat(1000);
    let mock = MockUpstream::start(Behavior::endless(&token));
    let dir = Workdir::seed(&mock.base_url);
    let config = with_max_output(&mock.base_url, &format!("{CAP_MIB}MiB"));
    let server = Server::start_with(&dir, &config);
    // A short run first, so that every pool and cache the server uses has been set up.
    mock.set(Behavior::tokens(&["warm"]));
    post(&server, r#"{"input":{"prompt":"Hi"},"output_only":true}"#)
        .await
        .text()
        .await
        .unwrap();
    mock.set(Behavior::endless(&token));
    let before = server.rss_kib();

    // One run, its client reading 10 bytes a second.
    let address = server.api_address();
    let body = r#"{"input":{"prompt":"Hi"},"output_only":true}"#;
    let run = format!(
        "POST /api/workflows/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut first = std::net::TcpStream::connect(&address).unwrap();
    first.write_all(run.as_bytes()).unwrap();
    let mut head = [0u8; 512];
    let read = first.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..read]).to_string();
    let task = head
        .lines()
        .find_map(|line| line.strip_prefix("x-task-id: "))
        .unwrap_or_else(|| panic!("no task id in {head}"))
        .trim()
        .to_string();
    let state_url = format!("{}/tasks/{task}", server.api);
    support::eventually(
        std::time::Duration::from_secs(60),
        "the run to stop at max_output",
        || async {
            let state = reqwest::get(&state_url)
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            state.contains("\"status\":\"failed\"")
        },
    )
    .await;
    // Once recorded in the history (a copy of the output, written out), what the run left.
    let run_url = format!("{}/runs/{task}", server.api);
    support::eventually(
        std::time::Duration::from_secs(30),
        "the run to be recorded failed",
        || async {
            let run = reqwest::get(&run_url).await.unwrap().text().await.unwrap();
            run.contains("\"status\":\"failed\"")
        },
    )
    .await;
    let settled = server.rss_kib();
    // Four more clients attach to its stream now that it has ended: each has the whole output
    // still to read.
    let mut streams = vec![first];
    for _ in 1..CLIENTS {
        let mut follower = std::net::TcpStream::connect(&address).unwrap();
        write!(
            follower,
            "GET /api/tasks/{task}/stream HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        .unwrap();
        streams.push(follower);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut ten = [0u8; 10];
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if stream.read(&mut ten).unwrap_or(0) == 0 {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            })
        })
        .collect();
    // The followers take a few more bites.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = server.rss_kib();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "{CLIENTS} stalled readers of a {CAP_MIB} MiB output: RSS {before} KiB before the run, \
         {settled} KiB once it was recorded, {after} KiB with its readers"
    );
    // The run keeps its output (for replay); recording it fills the history's page caches
    // (2 MiB for each of its 4 connections) and leaves the allocator some room.
    let run_bound = before + CAP_MIB * KIB_PER_MIB + 10 * KIB_PER_MIB;
    assert!(
        settled <= run_bound,
        "RSS {before} KiB before the run, {settled} KiB after it (at most {run_bound})"
    );
    // Each slow reader holds what it is writing (one frame: at most 256 pieces, here 256 KiB)
    // and what it took from the task (64 KiB), never a copy of what it has yet to read.
    let readers_bound = settled + CLIENTS as u64 * KIB_PER_MIB;
    assert!(
        after <= readers_bound,
        "RSS {settled} KiB before the readers, {after} KiB with them (at most {readers_bound})"
    );
    drop(readers);
}
