//! `up` with its history in PostgreSQL (a server the test starts itself): runs and
//! conversations land there, and a second server on the same database reads them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::{Server, Workdir, TEST_KEY};
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
    let dir = Workdir::empty();
    dir.write(
        ".env",
        &format!("OPENAI_API_KEY={TEST_KEY}\nDATABASE_URL={database}\n"),
    );
    let server = Server::start_with(&dir, &config(upstream));
    (dir, server)
}

async fn get_json(url: String) -> Value {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
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
