//! A run read on a replica that did not run it is answered exactly as its owner answers it:
//! the same status, type and body for its state and for its output alone, whatever the output
//! was (a number, an object, streamed text that looks like JSON, bytes) and however it failed
//! (a 502 from the upstream, a 504 from a timeout). Two servers on one PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Server, Workdir};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::postgres::Postgres;

/// One upstream (the mock answers as it is told, whatever the request), reached by four
/// actions: a JSON answer, a stream, bytes, and one with a one-second timeout; a workflow for
/// each output the test reads back.
fn config(upstream: &str) -> String {
    format!(
        r#"controller:
  adapter:
    type: http-server
    port: 8080
    base_path: /api
  webui:
    port: 8081
  history:
    url: ${{env.DATABASE_URL}}

components:
  - id: model
    type: http-client
    base_url: {upstream}
    headers:
      Authorization: Bearer ${{env.OPENAI_API_KEY}}
      Content-Type: application/json
    actions:
      - id: json
        path: /chat/completions
        body: {{ask: value}}
      - id: stream
        path: /chat/completions
        body: {{stream: true}}
        stream_format: json
        output: ${{response[].choices[0].delta.content}}
      - id: bytes
        path: /chat/completions
        body: {{ask: bytes}}
      - id: slow
        path: /chat/completions
        body: {{ask: value}}
        timeout: 1s

workflows:
  - id: number
    default: true
    job: {{component: model, action: json, output: "${{output.n}}"}}
  - id: object
    job: {{component: model, action: json, output: "${{output.obj}}"}}
  - id: stream
    job: {{component: model, action: stream}}
  - id: bytes
    job: {{component: model, action: bytes, output: "${{output as image}}"}}
  - id: slow
    job: {{component: model, action: slow, output: "${{output.n}}"}}
"#
    )
}

fn replica(upstream: &str, database: &str) -> (Workdir, Server) {
    support::replica_on(database, &config(upstream))
}

/// An answer as a client sees it: status, content type and body.
type Answer = (u16, String, Vec<u8>);

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// Runs `workflow` on `server` (its output alone when `output_only`); its task id and answer.
async fn run(server: &Server, workflow: &str, output_only: bool) -> (String, Answer) {
    let body = json!({"workflow_id": workflow, "input": {}, "output_only": output_only});
    let response = support::post(server, &body.to_string()).await;
    let task = response.headers()["x-task-id"]
        .to_str()
        .unwrap()
        .to_string();
    (task, answer(response).await)
}

/// What `server` answers for `task`: its state, and its output alone.
async fn read(server: &Server, task: &str) -> [Answer; 2] {
    let client = reqwest::Client::new();
    let url = format!("{}/tasks/{task}", server.api);
    let state = answer(client.get(&url).send().await.unwrap()).await;
    let output = client
        .get(format!("{url}?output_only=true"))
        .send()
        .await
        .unwrap();
    [state, answer(output).await]
}

fn text(answer: &Answer) -> (u16, &str, String) {
    let body = String::from_utf8_lossy(&answer.2).into_owned();
    (answer.0, answer.1.as_str(), body)
}

#[tokio::test]
async fn a_replica_answers_for_another_s_runs_exactly_as_their_owner() {
    let postgres = Postgres::start();
    let database = postgres.database();
    let mock = MockUpstream::start(Behavior::body(
        "application/json",
        r#"{"n": 42, "obj": {"a": [1, null], "b": "text"}}"#,
    ));
    let (_dir_a, a) = replica(&mock.base_url, &database);
    let (_dir_b, b) = replica(&mock.base_url, &database);

    let (number, ran) = run(&a, "number", false).await;
    assert_eq!(ran.0, 200);
    let (object, _) = run(&a, "object", false).await;
    mock.set(Behavior::tokens(&["{\"a\"", ":1}"]));
    let (stream, ran) = run(&a, "stream", false).await;
    assert_eq!(text(&ran).2, "data: {\"a\"\n\ndata: :1}\n\n");
    mock.set(Behavior::body("image/png", "\u{1}PNG not really"));
    let (bytes, ran) = run(&a, "bytes", true).await;
    assert_eq!(
        (ran.1.as_str(), ran.2.as_slice()),
        ("image/png", &b"\x01PNG not really"[..])
    );
    mock.set(Behavior::error(500, r#"{"error": {"message": "down"}}"#));
    let (failed, ran) = run(&a, "number", true).await;
    let bad_gateway = json!({"detail": "upstream returned 500: down"}).to_string();
    assert_eq!(text(&ran), (502, "application/json", bad_gateway));
    mock.set(Behavior::stall());
    let (slow, ran) = run(&a, "slow", true).await;
    let timeout = json!({"detail": "upstream did not finish within 1 s"}).to_string();
    assert_eq!(text(&ran), (504, "application/json", timeout));

    let tasks = [&number, &object, &stream, &bytes, &failed, &slow];
    for task in tasks {
        support::eventually(Duration::from_secs(5), "the run in the history", || {
            let url = format!("{}/runs/{task}", b.api);
            async move {
                let status = support::get_json(url).await["status"].clone();
                status == "completed" || status == "failed"
            }
        })
        .await;
    }
    let owner = futures::future::join_all(tasks.map(|task| read(&a, task))).await;
    let other = futures::future::join_all(tasks.map(|task| read(&b, task))).await;
    for ((task, owner), other) in tasks.iter().zip(&owner).zip(&other) {
        for (which, (owner, other)) in ["state", "output_only"].iter().zip(owner.iter().zip(other))
        {
            assert_eq!(text(owner), text(other), "{task} ({which})");
        }
    }
    // What each was, as both answer it.
    let state = |n: usize| serde_json::from_slice::<serde_json::Value>(&owner[n][0].2).unwrap();
    assert_eq!(state(0)["output"], json!(42));
    assert_eq!(state(1)["output"], json!({"a": [1, null], "b": "text"}));
    assert_eq!(state(2)["output"], json!("{\"a\":1}"));
    assert_eq!(
        state(3)["output"],
        json!("data:image/png;base64,AVBORyBub3QgcmVhbGx5")
    );
    assert_eq!(owner[3][1].1, "image/png");
    assert_eq!(
        (state(4)["status"].clone(), owner[4][1].0),
        (json!("failed"), 502)
    );
    assert_eq!(
        (state(5)["error"].clone(), owner[5][1].0),
        (json!("upstream did not finish within 1 s"), 504)
    );
}
