//! `up` with its history in PostgreSQL (a server the test starts itself): runs and
//! conversations land there, and a second server on the same database reads them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use support::{get_json, Server, Workdir, TEST_KEY};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::postgres::Postgres;

/// The seed config with its history at `${env.DATABASE_URL}`.
fn config(upstream: &str) -> String {
    testkit::seed_for(upstream).replace(
        "controller:\n",
        "controller:\n  history:\n    url: ${env.DATABASE_URL}\n",
    )
}

fn replica(upstream: &str, database: &str) -> (Workdir, Server) {
    support::replica_on(database, &config(upstream))
}

#[tokio::test]
async fn the_history_is_shared_by_every_server_on_the_database() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let mock = MockUpstream::start(Behavior::tokens(&["Shared", " history"]));
    let (dir_a, a) = replica(&mock.base_url, &database);
    let (_dir_b, b) = replica(&mock.base_url, &database);

    let response = support::post(&a, r#"{"input": {"prompt": "Hi"}, "output_only": true}"#).await;
    let task = response.headers()["x-task-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        response.text().await.unwrap(),
        "data: Shared\n\ndata:  history\n\n"
    );
    // B reads the run A made, and lists it.
    support::eventually(std::time::Duration::from_secs(5), "the run on B", || {
        let url = format!("{}/runs/{task}", b.api);
        async move { get_json(url).await["status"] == "completed" }
    })
    .await;
    let run = get_json(format!("{}/runs/{task}", b.api)).await;
    assert_eq!(run["output"], "Shared history");
    let listed = get_json(format!("{}/runs", b.api)).await;
    assert_eq!(listed[0]["task_id"].as_str(), Some(task.as_str()));

    // A conversation started from A's web UI is on B's too.
    let chat = support::ui_call(
        &a,
        "chat",
        &[
            ("workflow_id", "__workflow__"),
            ("input", r#"{"prompt": "Hello"}"#),
            ("prompt", "Hello"),
        ],
    )
    .await;
    assert!(chat.text().await.unwrap().contains("event: end"));
    let conversations = get_json(format!("{}/conversations", b.api)).await;
    assert_eq!(conversations[0]["title"], "Hello");
    // Nothing about the database was written beside the config.
    assert!(!dir_a.join(".model-compose-history.db").exists());
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_stops_up_with_a_clear_message() {
    let dir = Workdir::empty();
    dir.write(
        ".env",
        &format!(
            "OPENAI_API_KEY={TEST_KEY}\nDATABASE_URL=postgres://mc:hunter22@127.0.0.1:9/history\n"
        ),
    );
    dir.write(
        "model-compose.yml",
        &testkit::any_port(&config("http://127.0.0.1:9/v1")),
    );
    let output = support::run(&dir, &["up"]);
    let err = support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot connect to postgres://mc@127.0.0.1:9/history"),
        "{err}"
    );
    assert!(!err.contains("hunter22"), "{err}");
}

/// Reads an SSE body as it comes: each event's data, and when it arrived.
async fn events_with_times(response: reqwest::Response) -> Vec<(String, std::time::Instant)> {
    counted_events(response, Arc::default()).await
}

/// [`events_with_times`], counting the events in `seen` as they come.
async fn counted_events(
    response: reqwest::Response,
    seen: Arc<AtomicUsize>,
) -> Vec<(String, std::time::Instant)> {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut pending = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = body.next().await {
        pending.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = pending.find("\n\n") {
            events.push((pending[..end].to_string(), std::time::Instant::now()));
            seen.fetch_add(1, Ordering::SeqCst);
            pending.drain(..end + 2);
        }
    }
    events
}

async fn start_run(server: &Server) -> String {
    let response = support::post(
        server,
        r#"{"input": {"prompt": "Hi"}, "wait_for_completion": false}"#,
    )
    .await;
    let task: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    task["task_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_run_on_one_replica_is_read_followed_and_cancelled_on_another() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let words: Vec<String> = (0..12).map(|i| format!(" w{i}")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mock =
        MockUpstream::start(Behavior::tokens(&words).delay(std::time::Duration::from_millis(60)));
    let (_a_dir, a) = replica(&mock.base_url, &database);
    let (_b_dir, b) = replica(&mock.base_url, &database);

    let task = start_run(&a).await;
    let state = get_json(format!("{}/tasks/{task}", b.api)).await;
    assert_eq!(state["task_id"].as_str(), Some(task.as_str()));
    assert_eq!(state["status"], "processing", "{state}");
    // Followed on A and on B at once: the same events, B's within 100 ms of A's.
    let on_a = reqwest::get(format!("{}/tasks/{task}/stream", a.api));
    let on_b = reqwest::get(format!("{}/tasks/{task}/stream", b.api));
    let (on_a, on_b) = tokio::join!(on_a, on_b);
    let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
    assert_eq!(
        on_b.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let (seen_a, seen_b) = tokio::join!(events_with_times(on_a), events_with_times(on_b));
    let texts = |seen: &[(String, std::time::Instant)]| {
        seen.iter().map(|(e, _)| e.clone()).collect::<String>()
    };
    assert_eq!(texts(&seen_b), texts(&seen_a));
    assert_eq!(seen_b.len(), 12);
    let late: Vec<u128> = seen_a
        .iter()
        .zip(&seen_b)
        .skip(1)
        .map(|((_, at_a), (_, at_b))| at_b.saturating_duration_since(*at_a).as_millis())
        .collect();
    assert!(
        late.iter().all(|ms| *ms <= 100),
        "B's pieces late by {late:?} ms"
    );
    support::eventually(std::time::Duration::from_secs(5), "the end on B", || {
        let url = format!("{}/tasks/{task}", b.api);
        async move { get_json(url).await["status"] == "completed" }
    })
    .await;
    let done = get_json(format!("{}/tasks/{task}", b.api)).await;
    assert_eq!(done["output"], words.concat());

    // Cancelled from B, A stops the upstream request.
    mock.set(Behavior::tokens(&words).delay(std::time::Duration::from_millis(500)));
    let task = start_run(&a).await;
    support::eventually(
        std::time::Duration::from_secs(5),
        "the upstream stream",
        || {
            let open = mock.open_streams();
            async move { open == 1 }
        },
    )
    .await;
    let asked = std::time::Instant::now();
    let cancel = reqwest::Client::new()
        .post(format!("{}/tasks/{task}/cancel", b.api))
        .send();
    let closed = async {
        while mock.open_streams() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        asked.elapsed()
    };
    let (cancelled, closed_after) = tokio::join!(cancel, closed);
    assert_eq!(cancelled.unwrap().status(), 200);
    assert!(
        closed_after <= std::time::Duration::from_millis(500),
        "the upstream closed {closed_after:?} after the cancel on B"
    );
    let state = get_json(format!("{}/tasks/{task}", a.api)).await;
    assert_eq!(state["status"], "cancelled", "{state}");
    // A run nobody knows is still a 404 on either.
    let unknown = reqwest::get(format!("{}/tasks/nope", b.api)).await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_replica_killed_mid_stream_has_its_runs_failed_by_the_others() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let words: Vec<&str> = vec![" slow"; 200];
    let mock =
        MockUpstream::start(Behavior::tokens(&words).delay(std::time::Duration::from_millis(100)));
    let (_a_dir, mut a) = replica(&mock.base_url, &database);
    let (_b_dir, b) = replica(&mock.base_url, &database);
    let task = start_run(&a).await;
    let following = reqwest::get(format!("{}/tasks/{task}/stream", b.api))
        .await
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let follower = tokio::spawn(counted_events(following, Arc::clone(&seen)));
    support::eventually(
        std::time::Duration::from_secs(10),
        "B streams what A sends",
        || std::future::ready(seen.load(Ordering::SeqCst) >= 2),
    )
    .await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = std::time::Instant::now();
    let events = tokio::time::timeout(std::time::Duration::from_secs(15), follower)
        .await
        .expect("the follower on B ends")
        .unwrap();
    let (last, _) = events.last().unwrap();
    assert!(last.starts_with("event: error\ndata: "), "{last}");
    assert!(last.contains("replica lost"), "{last}");
    assert!(events.len() > 2, "B streamed what A sent before it died");
    assert!(killed.elapsed() < std::time::Duration::from_secs(10));
    let run = get_json(format!("{}/runs/{task}", b.api)).await;
    assert_eq!(run["status"], "failed");
}

#[tokio::test]
async fn two_replicas_under_200_streams_lose_no_run() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let mock = MockUpstream::start(Behavior::tokens(&["One", " two", " three"]));
    let (_a_dir, a) = replica(&mock.base_url, &database);
    let (_b_dir, b) = replica(&mock.base_url, &database);
    let client = reqwest::Client::new();
    let runs = (0..200).map(|i| {
        let api = if i % 2 == 0 { &a.api } else { &b.api };
        let request = client
            .post(format!("{api}/workflows/runs"))
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"input": {{"prompt": "run {i}"}}, "output_only": true}}"#
            ))
            .send();
        async move { request.await.unwrap().text().await.unwrap() }
    });
    let bodies = futures::future::join_all(runs).await;
    assert!(bodies
        .iter()
        .all(|body| body == "data: One\n\ndata:  two\n\ndata:  three\n\n"));
    support::eventually(
        std::time::Duration::from_secs(10),
        "200 runs recorded",
        || {
            let url = format!("{}/runs?limit=1000", a.api);
            async move {
                let listed = get_json(url).await;
                let runs = listed.as_array().cloned().unwrap_or_default();
                runs.len() == 200 && runs.iter().all(|r| r["status"] == "completed")
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_web_ui_session_opened_on_one_replica_is_good_on_every_other() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let mock = MockUpstream::start(Behavior::tokens(&["x"]));
    let key = "mc-access-0123456789abcdef";
    let with_keys = config(&mock.base_url).replace(
        "controller:\n",
        &format!("controller:\n  access_keys: [{key}]\n"),
    );
    let (_dir_a, a) = support::replica_on(&database, &with_keys);
    let (_dir_b, b) = support::replica_on(&database, &with_keys);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{}/_auth/sign-in", a.webui))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_string();
    for server in [&a, &b] {
        let page = client
            .get(&server.webui)
            .header("Cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{}", server.webui);
    }
    // Signed out on B, it is closed on A as well.
    client
        .post(format!("{}/_auth/sign-out", b.webui))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    let page = client
        .get(&a.webui)
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
}

#[tokio::test]
async fn an_agents_steps_are_followed_on_another_replica_as_on_its_own() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let providers = testkit::providers::Providers::start();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/agent-tools/model-compose.yml"
    );
    // The calculator takes a second, so that the run is still going when B follows it.
    let config = providers
        .point(&std::fs::read_to_string(path).unwrap())
        .replace("${env.TAVILY_API_KEY}", "tvly-test")
        .replace("command: [bc, -l]", "command: [sh, -c, 'sleep 1; bc -l']")
        .replace(
            "controller:\n",
            "controller:\n  history:\n    url: ${env.DATABASE_URL}\n",
        );
    let (_a_dir, a) = support::replica_on(&database, &config);
    let (_b_dir, b) = support::replica_on(&database, &config);
    let question = r#"CALL [{"name": "calculate", "arguments": {"expression": "6*7"}}]"#;
    let body = serde_json::json!({"input": {"question": question}, "wait_for_completion": false});
    let response = support::post(&a, &body.to_string()).await;
    let task: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let task = task["task_id"].as_str().unwrap();
    let (on_a, on_b) = tokio::join!(
        reqwest::get(format!("{}/tasks/{task}/stream", a.api)),
        reqwest::get(format!("{}/tasks/{task}/stream", b.api)),
    );
    let (on_a, on_b) = tokio::join!(on_a.unwrap().text(), on_b.unwrap().text());
    let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
    assert!(
        on_a.contains("event: tool_call\n") && on_a.contains("event: text\ndata: Done:\n"),
        "{on_a}"
    );
    assert_eq!(on_b, on_a, "B tells the same steps, named as A does");
}
