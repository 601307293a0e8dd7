//! The original model-compose's own http-client examples, unchanged but for their providers'
//! addresses (pointed at `testkit::providers`), run with `run` and `up`. They are not part of
//! this repository: `make compat ORIGINAL=<checkout or git directory of hanyeol/model-compose>`
//! exports them and runs this test, which fails (never skips) without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{stderr, stdout, Server, Workdir};
use testkit::providers::{speech, Providers, PNG};

/// The exported `examples/` folder of the original.
fn originals() -> std::path::PathBuf {
    let Some(dir) = std::env::var_os("MODEL_COMPOSE_ORIGINAL_EXAMPLES") else {
        panic!("MODEL_COMPOSE_ORIGINAL_EXAMPLES is not set: run `make compat ORIGINAL=<path to hanyeol/model-compose>`");
    };
    std::path::PathBuf::from(dir)
}

fn example(path: &str, providers: &Providers) -> (Workdir, String) {
    let file = originals().join(path).join("model-compose.yml");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", file.display()));
    let config = providers.point(&text);
    let dir = Workdir::empty();
    dir.write("model-compose.yml", &config);
    dir.write(
        ".env",
        "OPENAI_API_KEY=k1\nANTHROPIC_API_KEY=k2\nELEVENLABS_API_KEY=k3\nXAI_API_KEY=k4\nGOOGLE_CLOUD_API_KEY=k5\n",
    );
    std::fs::write(dir.join("picture.png"), PNG).unwrap();
    std::fs::write(dir.join("clip.mp3"), speech("clip")).unwrap();
    (dir, config)
}

fn run(dir: &Workdir, args: &[&str]) -> String {
    let output = support::run(dir, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

fn json_run(dir: &Workdir, args: &[&str]) -> Value {
    let printed = run(dir, args);
    serde_json::from_str(&printed).unwrap_or_else(|_| Value::String(printed.trim_end().into()))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
#[ignore = "needs the original's examples: make compat ORIGINAL=<path>"]
fn the_originals_http_client_examples_run_unchanged() {
    let providers = Providers::start();
    let prompt = r#"{"prompt": "Hi"}"#;
    let said = json!({"message": "You said: Hi"});
    let chats = [
        "model-providers/openai/openai-chat-completions",
        "model-providers/xai/xai-chat-completion",
    ];
    for path in chats {
        let (dir, _) = example(path, &providers);
        assert_eq!(json_run(&dir, &["run", "--input", prompt]), said, "{path}");
    }
    let (dir, _) = example(
        "model-providers/anthropic/anthropic-chat-completions",
        &providers,
    );
    assert_eq!(json_run(&dir, &["run", "--input", prompt]), said);
    for path in [
        "model-providers/openai/openai-chat-completions-stream",
        "model-providers/anthropic/anthropic-chat-completions-stream",
    ] {
        let (dir, _) = example(path, &providers);
        assert_eq!(
            run(&dir, &["run", "--input", prompt]),
            "You said: Hi\n",
            "{path}"
        );
    }

    for path in [
        "model-providers/openai/openai-audio-speech",
        "model-providers/elevenlabs/elevenlabs-text-to-speech",
    ] {
        let (dir, config) = example(path, &providers);
        run(
            &dir,
            &["run", "--input", r#"{"text": "Hello"}"#, "-o", "out.mp3"],
        );
        assert_eq!(
            std::fs::read(dir.join("out.mp3")).unwrap(),
            speech("Hello"),
            "{path}"
        );
        let server = Server::start_with(&dir, &config);
        let response = post_bytes(&server, r#"{"input": {"text": "Hi"}, "output_only": true}"#);
        assert_eq!(response, ("audio/mpeg".to_string(), speech("Hi")), "{path}");
    }

    let (dir, _) = example(
        "model-providers/openai/openai-audio-transciptions",
        &providers,
    );
    let heard = json_run(&dir, &["run", "--file", "file=clip.mp3"]);
    assert_eq!(
        heard["text"],
        format!("{} bytes of audio/mpeg in clip.mp3", speech("clip").len())
    );

    let (dir, _) = example(
        "model-providers/openai/openai-image-generations",
        &providers,
    );
    assert_eq!(
        json_run(&dir, &["run", "--input", r#"{"prompt": "fox"}"#]),
        Value::String(format!("{}/files/1.png", providers.base))
    );
    assert_eq!(
        json_run(
            &dir,
            &["run", "gpt-image-1", "--input", r#"{"prompt": "fox"}"#]
        ),
        Value::String(b64(&PNG))
    );
    let (dir, _) = example(
        "model-providers/openai/openai-image-generations-multi",
        &providers,
    );
    let links = json_run(
        &dir,
        &["run", "--input", r#"{"prompt": "fox", "count": 2}"#],
    );
    assert_eq!(links.as_array().map(Vec::len), Some(2), "{links}");
    for path in [
        "model-providers/openai/openai-image-edits",
        "model-providers/openai/openai-image-variations",
    ] {
        let (dir, _) = example(path, &providers);
        let edited = json_run(
            &dir,
            &[
                "run",
                "--input",
                r#"{"prompt": "hat"}"#,
                "--file",
                "image=picture.png",
            ],
        );
        assert_eq!(edited, Value::String(b64(&PNG)), "{path}");
    }

    let (dir, _) = example("model-providers/google/google-cloud-vision", &providers);
    let labels = json_run(&dir, &["run", "--file", "image=picture.png"]);
    assert_eq!(labels["descriptions"], json!(["Orange"]), "{labels}");
    let seen = providers.seen();
    let vision = seen.last().unwrap();
    assert_eq!(vision.uri, "/google/v1/images:annotate?key=k5");
    assert_eq!(vision.json()["requests"][0]["image"]["content"], b64(&PNG));
    assert_eq!(
        vision.json()["requests"][0]["features"][0]["maxResults"],
        10
    );

    let (dir, _) = example("showcase/make-inspiring-quote-voice", &providers);
    let spoken = json_run(&dir, &["run"]);
    let quote = spoken["quote"].as_str().unwrap();
    assert!(
        quote.starts_with("You said: Write an inspiring quote"),
        "{quote}"
    );
    assert_eq!(spoken["audio"], b64(&speech(quote)));
}

/// `POST /workflows/runs` from this synchronous test: the answer's content type and bytes.
fn post_bytes(server: &Server, body: &str) -> (String, Vec<u8>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/workflows/runs", server.api))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        (kind, response.bytes().await.unwrap().to_vec())
    })
}
