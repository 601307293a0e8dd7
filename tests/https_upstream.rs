//! Upstreams over HTTPS: which certificates are trusted (the built-in roots, plus those of
//! `SSL_CERT_FILE`), and HTTP/2 servers' limit on streams per connection, which long-lived
//! model streams reach (providers allow 100–256).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::mock_upstream::{Behavior, MockUpstream};
use support::{post, seed_for, stderr, stdout, Server, Workdir};

const PROMPT: &str = r#"{"prompt": "Hi"}"#;

fn test_ca() -> String {
    testkit::test_ca().to_str().unwrap().to_string()
}

#[test]
fn an_https_upstream_is_trusted_only_with_its_ca_from_ssl_cert_file() {
    let mock = MockUpstream::start_https_h2(Behavior::tokens(&["Hello", " over", " TLS"]), 100);
    let dir = Workdir::seed(&mock.base_url);

    // Its CA is in no built-in root store: refused, and the error says why.
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        stderr(&output)
    );
    assert!(mock.requests().is_empty());

    // Given its CA, the same run streams (over HTTP/2: the mock speaks nothing else).
    let output = support::command(&dir, &["run", "--input", PROMPT])
        .env("SSL_CERT_FILE", test_ca())
        .output()
        .unwrap();
    assert_eq!(stderr(&output), "");
    assert_eq!(stdout(&output), "Hello over TLS\n");
    assert_eq!(output.status.code(), Some(0));

    // A file that is not there, or holds no certificate, is an error that names it.
    for (file, why) in [
        ("missing.pem", "No such file or directory"),
        ("model-compose.yml", "no certificate in it"),
    ] {
        let output = support::command(&dir, &["run", "--input", PROMPT])
            .env("SSL_CERT_FILE", file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{file}");
        let message = stderr(&output);
        assert!(
            message.starts_with(&format!("error: SSL_CERT_FILE {file}: ")) && message.contains(why),
            "{message}"
        );
    }
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn more_streams_than_an_http2_connection_allows_all_stream_at_once() {
    // A server that allows 100 streams per connection (the least HTTP/2 asks for, and
    // Google's); each answer stays open after its first token, as a long answer does. On one
    // connection, runs 101 to 120 would wait until one of the first hundred ended.
    let mock = MockUpstream::start_https_h2(Behavior::tokens(&["a", "b"]).stall_after(1), 100);
    let dir = Workdir::seed(&mock.base_url);
    // The answers never end: stopping the server ends them after a second.
    let config =
        seed_for(&mock.base_url).replace("controller:\n", "controller:\n  shutdown_timeout: 1s\n");
    let server = Server::start_with_args(&dir, &config, &[], &[("SSL_CERT_FILE", &test_ca())]);
    let body = r#"{"input":{"prompt":"Hi"},"wait_for_completion":false}"#;
    for _ in 0..120 {
        assert_eq!(post(&server, body).await.status(), 200);
    }
    support::eventually(
        Duration::from_secs(10),
        "120 upstream streams open at once",
        || async { mock.open_streams() == 120 },
    )
    .await;
}
