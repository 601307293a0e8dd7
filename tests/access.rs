//! Access keys (D17): with `controller.access_keys`, the API wants a Bearer key on every route
//! but `/health`, and the web UI a session opened on its sign-in page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::mock_upstream::{Behavior, MockUpstream};
use support::{Server, Workdir};

const ACCESS_KEY: &str = "mc-access-0123456789abcdef";
const SEED_BODY: &str = r#"{"input":{"prompt":"Hi"}}"#;

/// The seed with an access key read from the environment, as a user would write it.
fn start(mock: &MockUpstream) -> (Workdir, Server) {
    start_with(mock, "")
}

/// [`start`], with more `controller` settings (indented by two spaces).
fn start_with(mock: &MockUpstream, controller: &str) -> (Workdir, Server) {
    let dir = Workdir::seed(&mock.base_url);
    dir.write(
        ".env",
        &format!(
            "OPENAI_API_KEY={}\nMC_ACCESS_KEY={ACCESS_KEY}\n",
            support::TEST_KEY
        ),
    );
    let config = support::seed_for(&mock.base_url).replace(
        "controller:\n",
        &format!("controller:\n  access_keys:\n    - ${{env.MC_ACCESS_KEY}}\n{controller}"),
    );
    let server = Server::start_with(&dir, &config);
    (dir, server)
}

/// Signs in with `key`: the answer (a redirect, with the session's cookie when right).
async fn sign_in(client: &reqwest::Client, server: &Server, key: &str) -> reqwest::Response {
    client
        .post(format!("{}/_auth/sign-in", server.webui))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_api_wants_a_bearer_key_except_for_health() {
    let mock = MockUpstream::start(Behavior::tokens(&["fine"]));
    let (dir, server) = start(&mock);
    let client = client();
    let health = client
        .get(format!("{}/health", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    for auth in [None, Some("Bearer wrong-key"), Some(ACCESS_KEY)] {
        for (method, path) in [
            ("GET", "/workflows"),
            ("GET", "/runs"),
            ("POST", "/workflows/runs"),
            ("GET", "/tasks/x"),
        ] {
            let mut request = client
                .request(method.parse().unwrap(), format!("{}{path}", server.api))
                .header("Content-Type", "application/json")
                .body(SEED_BODY);
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(
                body,
                json!({"detail": "An access key is required: send `Authorization: Bearer <key>`."})
            );
        }
    }
    assert!(mock.requests().is_empty());
    let response = client
        .post(format!("{}/workflows/runs", server.api))
        .header("Authorization", format!("Bearer {ACCESS_KEY}"))
        .header("Content-Type", "application/json")
        .body(SEED_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "data: fine\n\n");
    // A browser's pre-flight carries no key; it is answered before any key is asked for.
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/workflows/runs", server.api),
        )
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(!log.contains(ACCESS_KEY), "the access key is in the log");
}

#[tokio::test]
async fn the_web_ui_signs_in_with_a_key_and_out_again() {
    let mock = MockUpstream::start(Behavior::tokens(&["fine"]));
    let (dir, server) = start(&mock);
    let client = client();
    let page = client.get(&server.webui).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/sign-in");
    let sign_in = client
        .get(format!("{}/sign-in", server.webui))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 200);
    assert!(sign_in.text().await.unwrap().contains("Access key"));
    let css = client
        .get(format!("{}/pkg/model-compose.css", server.webui))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200, "the sign-in page's stylesheet is open");
    let call = support::ui_call(&server, "conversations", &[]).await;
    assert_eq!(call.status(), 401);

    let post_key = |key: &str| {
        client
            .post(format!("{}/_auth/sign-in", server.webui))
            .form(&[("key", key)])
            .send()
    };
    let wrong = post_key("not-the-key").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::SEE_OTHER);
    assert_eq!(wrong.headers()["location"], "/sign-in?failed=1");
    assert!(wrong.headers().get("set-cookie").is_none());

    let right = post_key(ACCESS_KEY).await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()["location"], "/");
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(ACCESS_KEY), "the cookie is not the key");
    let session = cookie.split(';').next().unwrap().to_string();

    let page = client
        .get(&server.webui)
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign out"));
    let runs = client
        .post(format!("{}/_ui/conversations", server.webui))
        .header("Cookie", &session)
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), 200);

    let out = client
        .post(format!("{}/_auth/sign-out", server.webui))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = client
        .get(&server.webui)
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "the session is closed"
    );
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(!log.contains(ACCESS_KEY), "the access key is in the log");
}

#[tokio::test]
async fn an_empty_access_key_is_a_config_error() {
    let dir = Workdir::seed("http://127.0.0.1:9/v1");
    dir.write(
        "model-compose.yml",
        &support::seed_for("http://127.0.0.1:9/v1")
            .replace("controller:\n", "controller:\n  access_keys: [\"\"]\n"),
    );
    let output = support::run(&dir, &["up"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        support::stderr(&output).contains("an access key cannot be empty"),
        "{}",
        support::stderr(&output)
    );
}

#[tokio::test]
async fn wrong_keys_are_logged_and_slowed_after_five() {
    let mock = MockUpstream::start(Behavior::tokens(&["fine"]));
    let (dir, server) = start(&mock);
    let client = client();
    let bearer = |key: &str| {
        client
            .get(format!("{}/runs", server.api))
            .header("Authorization", format!("Bearer {key}"))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(bearer("guess").await.unwrap().status(), 401);
    }
    // The sixth attempt waits, even with the right key; the sign-in page shares the count.
    for key in ["guess", ACCESS_KEY] {
        let held = bearer(key).await.unwrap();
        assert_eq!(held.status(), 429, "{key}");
        assert_eq!(held.headers()["retry-after"], "1");
        let body: Value = serde_json::from_str(&held.text().await.unwrap()).unwrap();
        assert_eq!(
            body["detail"],
            "Too many wrong access keys: try again in 1 s."
        );
    }
    let page = sign_in(&client, &server, ACCESS_KEY).await;
    assert_eq!(page.headers()["location"], "/sign-in?wait=1");
    assert!(page.headers().get("set-cookie").is_none());
    let shown = client
        .get(format!("{}/sign-in?wait=1", server.webui))
        .send()
        .await
        .unwrap();
    assert!(shown
        .text()
        .await
        .unwrap()
        .contains("Too many wrong keys: wait 1 s, then try again."));
    // Once the wait is over: one more attempt, then twice as long a wait.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(bearer("guess").await.unwrap().status(), 401);
    assert_eq!(
        bearer(ACCESS_KEY).await.unwrap().headers()["retry-after"],
        "2"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(bearer(ACCESS_KEY).await.unwrap().status(), 200);
    assert_eq!(
        bearer("guess").await.unwrap().status(),
        401,
        "counted afresh"
    );
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    let failures = log
        .lines()
        .filter(|line| line.contains("Bearer key refused") && line.contains("client=127.0.0.1"))
        .count();
    assert_eq!(failures, 7, "{log}");
    assert!(!log.contains("guess"), "what was tried is not logged");
}

#[tokio::test]
async fn sessions_outlive_a_restart_and_expire_when_unused() {
    let mock = MockUpstream::start(Behavior::tokens(&["fine"]));
    let (dir, mut server) = start_with(&mock, "  sessions:\n    idle_timeout: 5s\n");
    let client = client();
    let right = sign_in(&client, &server, ACCESS_KEY).await;
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.ends_with("Max-Age=5"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let page = |server: &Server| client.get(&server.webui).header("Cookie", &session).send();
    assert_eq!(page(&server).await.unwrap().status(), 200);
    // The database keeps the session's hash, never its token.
    let token = session.split_once('=').unwrap().1;
    let mut history = Vec::new();
    for file in [".model-compose-history.db", ".model-compose-history.db-wal"] {
        history.extend(std::fs::read(dir.path.join(file)).unwrap_or_default());
    }
    assert!(!String::from_utf8_lossy(&history).contains(token));

    server.stop();
    let config = std::fs::read_to_string(dir.path.join("model-compose.yml")).unwrap();
    let server = Server::start_with(&dir, &config);
    assert_eq!(
        page(&server).await.unwrap().status(),
        200,
        "a restart keeps the session"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    assert_eq!(
        page(&server).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "unused for longer than idle_timeout, it expired"
    );
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_https_proxy_only() {
    let mock = MockUpstream::start(Behavior::tokens(&["fine"]));
    let client = client();
    let proxied = |server: &Server| {
        client
            .post(format!("{}/_auth/sign-in", server.webui))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-For", "203.0.113.9")
            .form(&[("key", ACCESS_KEY)])
            .send()
    };
    // Anyone may send the header: without trusted proxies it means nothing.
    let (_dir, server) = start(&mock);
    let plain = proxied(&server).await.unwrap();
    assert!(!plain.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
    let (dir, server) = start_with(&mock, "  trusted_proxies: [127.0.0.1]\n");
    let secure = proxied(&server).await.unwrap();
    let cookie = secure.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    // Behind the proxy, failures are the forwarded client's.
    let wrong = client
        .get(format!("{}/runs", server.api))
        .header("Authorization", "Bearer guess")
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    assert!(log.contains("client=203.0.113.9"), "{log}");
}
