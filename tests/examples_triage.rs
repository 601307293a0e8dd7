//! `examples/support-triage`, as a user runs it against a mock of OpenAI: a message is sorted
//! (the mock answers a classifier with the first of its words the message contains, else the
//! last), `switch`
//! routes it to that kind's prompt, and the reply waits for a person's approval before it is
//! "sent" (appended to `outbox.txt`): through the REST API, `model-compose run` and the web
//! UI's server functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::examples::*;
use support::{eventually, stderr, stdout, Server};
use testkit::providers::Providers;

const BILLING: &str = "A billing question: I was charged twice on my last invoice";

/// The system prompts the mock was sent, in order.
fn system_prompts(providers: &Providers) -> Vec<String> {
    providers
        .take()
        .iter()
        .map(|seen| {
            let prompt = seen.json()["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_string();
            prompt.split(' ').take(4).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

async fn task(server: &Server, id: &str) -> Value {
    get_json(format!("{}/tasks/{id}", server.api)).await
}

async fn resume(server: &Server, id: &str, answer: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/tasks/{id}/resume", server.api))
        .header("content-type", "application/json")
        .body(json!({ "answer": answer }).to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json_of(response).await)
}

#[tokio::test]
async fn a_reply_is_drafted_for_its_kind_and_sent_once_approved() {
    let providers = Providers::start();
    let (dir, config) = example("support-triage", &providers);
    let server = Server::start_with(&dir, &config);
    let (status, state) = api_json(&server, json!({"input": {"message": BILLING}})).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["status"], "interrupted");
    let point = &state["interrupt"][0];
    assert_eq!(point["job_id"], "send");
    assert_eq!(point["phase"], "before");
    assert_eq!(point["message"], "Send this reply to the customer?");
    assert_eq!(
        point["metadata"],
        json!({"category": "billing", "reply": format!("You said: {BILLING}")})
    );
    assert_eq!(
        system_prompts(&providers),
        ["You sort customer support", "You answer billing questions"]
    );
    assert!(!dir.join("outbox.txt").exists(), "sent before approval");
    // The person edits the reply: the edit is what is sent.
    let id = state["task_id"].as_str().unwrap();
    let point = point["id"].as_str().unwrap();
    let (status, _) = resume(
        &server,
        id,
        json!({ point: "Sorry! The second charge is refunded." }),
    )
    .await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(10), "the run to complete", || async {
        task(&server, id).await["status"] == "completed"
    })
    .await;
    assert_eq!(
        task(&server, id).await["output"],
        "Sorry! The second charge is refunded."
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("outbox.txt")).unwrap(),
        "Sorry! The second charge is refunded.\n---\n"
    );

    // A technical message goes to the engineer's prompt; approved as drafted (null).
    let message = "Technical trouble: the app shows an error when I log in";
    let (_, state) = api_json(&server, json!({"input": {"message": message}})).await;
    assert_eq!(state["interrupt"][0]["metadata"]["category"], "technical");
    let id = state["task_id"].as_str().unwrap();
    resume(
        &server,
        id,
        json!({ state["interrupt"][0]["id"].as_str().unwrap(): null }),
    )
    .await;
    eventually(Duration::from_secs(10), "the run to complete", || async {
        task(&server, id).await["status"] == "completed"
    })
    .await;
    assert_eq!(
        task(&server, id).await["output"],
        format!("You said: {message}")
    );
    assert_eq!(
        system_prompts(&providers),
        ["You sort customer support", "You are Acme's support"]
    );
}

#[test]
fn run_asks_for_the_approval_on_the_terminal() {
    let providers = Providers::start();
    let (dir, _) = example("support-triage", &providers);
    // Anything else is `other`; --auto-resume sends the draft as it is.
    let sent = run_ok(
        &dir,
        &[
            "run",
            "--input",
            r#"{"message": "Do you ship to Norway?"}"#,
            "--auto-resume",
        ],
    );
    assert_eq!(sent, "You said: Do you ship to Norway?\n");
    let prompts = system_prompts(&providers);
    assert_eq!(prompts[1], "You answer Acme's customers.");
    // Typed on the terminal: a reply of the person's own.
    let mut child = support::command(
        &dir,
        &["run", "--input", &json!({"message": BILLING}).to_string()],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"We are on it.\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(stdout(&output), "We are on it.\n", "{}", stderr(&output));
    let asked = stderr(&output);
    assert!(
        asked.contains("interrupt — job 'send' (before)\nSend this reply to the customer?\n"),
        "{asked}"
    );
    assert!(asked.contains("\"category\": \"billing\""), "{asked}");
    assert_eq!(
        std::fs::read_to_string(dir.join("outbox.txt")).unwrap(),
        "You said: Do you ship to Norway?\n---\nWe are on it.\n---\n"
    );
}

#[tokio::test]
async fn the_web_uis_chat_shows_the_point_and_goes_on_once_answered() {
    let providers = Providers::start();
    let (dir, config) = example("support-triage", &providers);
    let server = Server::start_with(&dir, &config);
    let mut response = support::ui_call(
        &server,
        "chat",
        &[
            ("workflow_id", "__default__"),
            ("input", &json!({"message": BILLING}).to_string()),
            ("prompt", BILLING),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    // Read until the run waits: its point comes as an `interrupt` event.
    let mut text = String::new();
    let points: Value = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an interrupt event")
            .unwrap()
            .expect("more of the stream");
        text.push_str(&String::from_utf8_lossy(&chunk));
        let found = text
            .split("\n\n")
            .find_map(|event| event.strip_prefix("event: interrupt\ndata: "));
        if let Some(data) = found {
            break serde_json::from_str(data).unwrap();
        }
    };
    assert_eq!(points[0]["job_id"], "send");
    assert_eq!(points[0]["metadata"]["category"], "billing");
    let start = text
        .split("\n\n")
        .find_map(|event| event.strip_prefix("event: start\ndata: "))
        .unwrap();
    let task_id = serde_json::from_str::<Value>(start).unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let answered = support::ui_call(
        &server,
        "resume",
        &[
            ("task_id", &task_id),
            ("point_id", points[0]["id"].as_str().unwrap()),
            ("answer", ""),
        ],
    )
    .await;
    assert_eq!(answered.status(), 200);
    let rest = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .unwrap()
        .unwrap();
    // Answered: the cards go (an empty list), then the answer ends with the reply sent.
    assert!(rest.contains("event: interrupt\ndata: []\n\n"), "{rest}");
    let end = rest
        .split("\n\n")
        .find_map(|event| event.strip_prefix("event: end\ndata: "))
        .unwrap_or_else(|| panic!("no end in {rest}"));
    let end: Value = serde_json::from_str(end).unwrap();
    assert_eq!(end["status"], "completed");
    assert_eq!(end["output"], format!("You said: {BILLING}"));
}
