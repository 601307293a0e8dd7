//! The `http-server` component (spec §17): a local server started under `run` and `up` (not
//! OD24), waited for with a time limit that names its last output, its lines logged with the
//! component's id, called like an http-client with its headers, started again when it dies
//! (reported in `/health`), and stopped with its process group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, get_json, run, stderr, stdout, Server};
use testkit::Workdir;

/// A small JSON echo server on the port it is given.
const ECHO: &str = r#"import http.server, json, os, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        out = json.dumps({"path": self.path, "got": json.loads(body or b"null"),
                          "pid": os.getpid(), "x": self.headers.get("x-test")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
print("echo server starting", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A project whose `echo` component manages the echo server on `port`.
fn project(port: u16, start: &str, extra: &str) -> (Workdir, String) {
    let dir = Workdir::empty();
    dir.write("echo.py", ECHO);
    let config = format!(
        r#"controller:
  adapter:
    type: http-server
    port: 8080
  webui:
    port: 8081
workflow:
  job:
    component: echo
    input: {{text: "${{input.text}}"}}
component:
  id: echo
  type: http-server
  port: {port}
  base_path: /v1
  headers:
    X-Test: hdr
  manage:
    start: {start}
{extra}  action:
    path: /echo
    headers: {{Content-Type: application/json}}
    body: {{text: "${{input.text}}"}}
    output: ${{response}}
"#
    );
    dir.write("model-compose.yml", &config);
    (dir, config)
}

#[test]
fn run_starts_the_server_calls_it_and_stops_it() {
    let port = free_port();
    let (dir, _) = project(port, &format!("[python3, echo.py, '{port}']"), "");
    let output = run(&dir, &["run", "--input", r#"{"text": "hi"}"#]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let said: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(said["path"], "/v1/echo");
    assert_eq!(said["got"], json!({"text": "hi"}));
    assert_eq!(said["x"], "hdr");
    assert!(
        stderr(&output).contains("[echo] echo server starting"),
        "{}",
        stderr(&output)
    );
    assert!(!listens(port), "the server stops with the run");
}

#[test]
fn a_server_that_never_listens_is_a_clear_error_within_start_timeout() {
    let port = free_port();
    let start = "\"echo booting the model; sleep 30\"";
    let (dir, _) = project(port, start, "  start_timeout: 1s\n");
    let started = std::time::Instant::now();
    let output = run(&dir, &["run", "--input", r#"{"text": "hi"}"#]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it waited too long"
    );
    let said = stderr(&output);
    assert!(
        said.contains(&format!("did not listen on port {port} within 1 s")),
        "{said}"
    );
    assert!(
        said.contains("booting the model"),
        "its last output: {said}"
    );

    let failing = "[sh, -c, 'echo no such package >&2; exit 3']";
    // A script key may sit beside `manage`, as the original allows.
    let (dir, _) = project(
        port,
        "[python3, echo.py]",
        &format!("  install: {failing}\n"),
    );
    let output = run(&dir, &["run", "--input", r#"{"text": "hi"}"#]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("install `sh -c"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("no such package"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn under_up_a_server_that_dies_is_started_again_and_reported() {
    let port = free_port();
    let (dir, config) = project(port, &format!("[python3, echo.py, '{port}']"), "");
    let mut server = Server::start_with(&dir, &config);
    let health = get_json(format!("{}/health", server.api)).await;
    assert_eq!(health["services"][0]["id"], "echo");
    assert_eq!(health["services"][0]["status"], "running");
    let pid = health["services"][0]["pid"].as_u64().unwrap();

    // It dies: it is started again, and /health says so.
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let url = format!("{}/health", server.api);
    eventually(
        Duration::from_secs(15),
        "the server is started again",
        || {
            let url = url.clone();
            async move {
                let health = get_json(url).await;
                let service = &health["services"][0];
                service["status"] == "running" && service["restarts"] == 1 && service["pid"] != pid
            }
        },
    )
    .await;
    let health = get_json(url).await;
    assert!(health["services"][0]["last_exit"]
        .as_str()
        .unwrap()
        .contains("signal: 9"));
    let ran = support::post(
        &server,
        r#"{"input": {"text": "again"}, "wait_for_completion": true, "output_only": true}"#,
    )
    .await;
    let said: Value = serde_json::from_str(&ran.text().await.unwrap()).unwrap();
    assert_eq!(said["got"], json!({"text": "again"}));

    // Stopping the server stops its group.
    assert!(server.stop().success());
    assert!(!listens(port), "the managed server stops with `up`");
}
