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
async fn big_prompts_stay_out_of_the_history_list_and_the_page() {
    let mock = MockUpstream::start(Behavior::tokens(&["ok"]));
    let dir = Workdir::seed(&mock.base_url);
    let server = Server::start(&dir, &mock.base_url);
    let line = "All work and no play makes a long prompt. ".repeat(40);
    let prompt = format!(
        "A very long prompt\n{}",
        line.repeat(2 * 1024 * 1024 / line.len())
    );
    assert!(prompt.len() >= 2 * 1024 * 1024 - line.len());
    for _ in 0..20 {
        let body = json!({"input": {"prompt": prompt}}).to_string();
        assert_eq!(
            post(&server, &body).await.text().await.unwrap(),
            "data: ok\n\n"
        );
    }
    let page = reqwest::get(&server.webui)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("A very long prompt"),
        "the history is on the page"
    );
    assert!(page.len() < 200 * 1024, "the page is {} bytes", page.len());
    let list = reqwest::get(format!("{}/runs", server.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.len() < 20 * 1024, "the list is {} bytes", list.len());
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
