//! What a caller's values may make the server read (D32): links over http and https to
//! addresses the config allows, each redirect checked; files under `controller.files.roots`
//! only. Through the REST API and the web UI's server function, against a provider mock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::{Server, Workdir};
use testkit::providers::Providers;

/// Two workflows that put what a link or a path names into the prompt of a model that
/// answers "You said: PROMPT"; `localhost` (the mock, by that name) is allowed.
fn config(openai: &str) -> String {
    format!(
        r#"controller:
  adapter:
    type: http-server
    port: 8080
    base_path: /api
  webui:
    port: 8081
  fetch:
    allow: [localhost]
  files:
    roots: [shared]

workflows:
  - id: link
    default: true
    job:
      input:
        prompt: ${{input.link as text;url}}
  - id: file
    job:
      input:
        prompt: ${{input.path as text;path}}

component:
  type: http-client
  base_url: {openai}
  action:
    path: /chat/completions
    headers:
      Content-Type: application/json
    body:
      model: gpt-4o
      messages: [{{role: user, content: "${{input.prompt}}"}}]
    output: ${{response.choices[0].message.content}}
"#
    )
}

/// What a run of `workflow` with `input` is answered, through the REST API and through the
/// web UI's chat server function: each door's status and body.
async fn both_doors(server: &Server, workflow: &str, input: Value) -> [(u16, String); 2] {
    let body = json!({"workflow_id": workflow, "input": input, "output_only": true});
    let api = support::post(server, &body.to_string()).await;
    let api = (api.status().as_u16(), api.text().await.unwrap());
    let ui = support::ui_call(
        server,
        "chat",
        &[
            ("workflow_id", workflow),
            ("input", &input.to_string()),
            ("prompt", "see the link"),
        ],
    )
    .await;
    let ui = (ui.status().as_u16(), ui.text().await.unwrap());
    [api, ui]
}

/// Both doors refused the run for `reason`: the API with a 400, the web UI with a failed end
/// (the chat shows the error in place of the answer).
fn refused([(api_status, api), (_, ui)]: [(u16, String); 2], reason: &str) {
    assert_eq!(api_status, 400, "{api}");
    let detail: Value = serde_json::from_str(&api).unwrap();
    assert!(detail["detail"].as_str().unwrap().contains(reason), "{api}");
    assert!(
        ui.contains("\"status\":\"failed\"") && ui.contains(reason),
        "{ui}"
    );
}

/// This machine's host name: it names this machine, so it resolves to an address of its own
/// (loopback, a private network's or an interface's), whatever the machine.
fn own_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_callers_links_reach_only_allowed_addresses_and_every_redirect_is_checked() {
    let providers = Providers::start();
    let port = providers.base.rsplit(':').next().unwrap().to_string();
    let allowed = |path: &str| format!("http://localhost:{port}{path}");
    let dir = Workdir::empty();
    std::fs::create_dir(dir.path.join("shared")).unwrap();
    let server = Server::start_with(&dir, &config(&providers.openai()));
    let hint = "controller.fetch.allow lists what callers may reach";

    let ok = both_doors(&server, "link", json!({"link": allowed("/text/a")})).await;
    assert_eq!(ok[0], (200, "\"You said: the text at /text/a\"".into()));
    assert_eq!(ok[1].0, 200);
    assert!(
        ok[1].1.contains("You said: the text at /text/a"),
        "{}",
        ok[1].1
    );
    assert_eq!(providers.take().len(), 4, "two fetches and two answers");

    // Refused before anything is sent, naming the input.
    for (link, reason) in [
        (
            "file:///etc/hostname".to_string(),
            "input.link: file: links are not fetched for callers (only http and https)".to_string(),
        ),
        (
            "gopher://localhost/x".into(),
            "input.link: gopher: links are not fetched for callers (only http and https)".into(),
        ),
        (
            format!("http://127.0.0.1:{port}/text/a"),
            format!("input.link: 127.0.0.1 is a loopback address; {hint}"),
        ),
        (
            format!("http://127.1:{port}/text/a"),
            format!("input.link: 127.0.0.1 is a loopback address; {hint}"),
        ),
        (
            format!("http://0x7f000001:{port}/text/a"),
            format!("input.link: 127.0.0.1 is a loopback address; {hint}"),
        ),
        (
            format!("http://[::1]:{port}/text/a"),
            format!("input.link: ::1 is a loopback address; {hint}"),
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/text/a"),
            format!("input.link: 127.0.0.1 is a loopback address; {hint}"),
        ),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            format!("input.link: 169.254.169.254 is a link-local address; {hint}"),
        ),
        (
            "http://10.0.0.5/".into(),
            format!("input.link: 10.0.0.5 is a private address; {hint}"),
        ),
        (
            format!("http://api.localhost:{port}/text/a"),
            format!("input.link: api.localhost is this machine; {hint}"),
        ),
    ] {
        refused(
            both_doors(&server, "link", json!({ "link": &link })).await,
            &reason,
        );
    }
    assert!(providers.take().is_empty(), "nothing was fetched");

    // Names that resolve to this machine, and a redirect to it, are refused once resolved:
    // the run starts, and fails before connecting.
    let own = own_host_name();
    for (link, reason) in [
        (
            format!("http://{own}:{port}/text/a"),
            format!("{own} resolves to "),
        ),
        (
            allowed(&format!("/redirect?to=http://127.0.0.1:{port}/text/a")),
            format!(
                "redirected to http://127.0.0.1:{port}/text/a: 127.0.0.1 is a loopback \
                 address; {hint}"
            ),
        ),
    ] {
        refused(
            both_doors(&server, "link", json!({ "link": &link })).await,
            &reason,
        );
    }
    let fetched: Vec<String> = providers.take().iter().map(|s| s.uri.clone()).collect();
    assert!(
        fetched.iter().all(|uri| uri.starts_with("/redirect")),
        "only the allowed link was requested: {fetched:?}"
    );
    // At most five redirects.
    let mut link = allowed("/text/far");
    for _ in 0..6 {
        link = allowed(&format!("/redirect?to={link}"));
    }
    refused(
        both_doors(&server, "link", json!({ "link": link })).await,
        "more than 5 redirects",
    );
}

#[tokio::test]
async fn a_callers_paths_stay_under_the_roots_and_the_command_line_reads_any() {
    let providers = Providers::start();
    let dir = Workdir::empty();
    std::fs::create_dir(dir.path.join("shared")).unwrap();
    dir.write("shared/notes.txt", "shared notes");
    dir.write("secret.txt", "not for callers");
    std::os::unix::fs::symlink(
        dir.path.join("secret.txt"),
        dir.path.join("shared/link.txt"),
    )
    .unwrap();
    let config = config(&providers.openai());
    let server = Server::start_with(&dir, &config);

    let ok = both_doors(&server, "file", json!({"path": "notes.txt"})).await;
    assert_eq!(ok[0], (200, "\"You said: shared notes\"".into()));
    assert!(ok[1].1.contains("You said: shared notes"), "{}", ok[1].1);
    providers.take();
    for (path, reason) in [
        (
            "/etc/hostname",
            "input.path: /etc/hostname is outside controller.files.roots",
        ),
        (
            "../secret.txt",
            "input.path: ../secret.txt is outside controller.files.roots",
        ),
        (
            "link.txt",
            "input.path: link.txt is outside controller.files.roots",
        ),
        (
            "missing.txt",
            "input.path: no file missing.txt under controller.files.roots",
        ),
    ] {
        refused(
            both_doors(&server, "file", json!({ "path": path })).await,
            reason,
        );
    }
    assert!(providers.take().is_empty(), "nothing was read or sent");

    // The config's owner runs what they like from the command line.
    let output = support::run(
        &dir,
        &["run", "file", "--input", r#"{"path": "secret.txt"}"#],
    );
    assert_eq!(
        support::stdout(&output),
        "You said: not for callers\n",
        "{}",
        support::stderr(&output)
    );
}

#[tokio::test]
async fn the_web_ui_loads_remote_media_through_the_server_under_the_same_rule() {
    let providers = Providers::start();
    let port = providers.base.rsplit(':').next().unwrap().to_string();
    let dir = Workdir::empty();
    std::fs::create_dir(dir.path.join("shared")).unwrap();
    let server = Server::start_with(&dir, &config(&providers.openai()));
    let media = |url: &str| {
        let url = format!(
            "{}/_media?url={}",
            server.webui,
            url.replace(':', "%3A").replace('/', "%2F")
        );
        async move { reqwest::get(url).await.unwrap() }
    };
    let image = media(&format!("http://localhost:{port}/files/1.png")).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(
        image.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(
        image.bytes().await.unwrap().as_ref(),
        testkit::providers::PNG
    );
    // Not an image: not served from this origin.
    let page = media(&format!("http://localhost:{port}/text/a")).await;
    assert_eq!(page.status(), 415);
    // A link callers may not reach is not fetched for the page either.
    let private = media(&format!("http://127.0.0.1:{port}/files/1.png")).await;
    assert_eq!(private.status(), 400);
    let uris: Vec<String> = providers.take().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(uris, ["/files/1.png", "/text/a"]);
}
