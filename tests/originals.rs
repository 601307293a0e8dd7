//! The original model-compose's own examples (http-client, routing, interrupts), unchanged but for their providers'
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
        "OPENAI_API_KEY=k1\nANTHROPIC_API_KEY=k2\nELEVENLABS_API_KEY=k3\nXAI_API_KEY=k4\nGOOGLE_CLOUD_API_KEY=k5\nTAVILY_API_KEY=k6\nOPENWEATHER_API_KEY=k7\n",
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
    // One image as the output (`as image;url`, `as image;base64`): its bytes, read from the
    // link or decoded, go to standard output as they are.
    for workflow in ["dall-e", "gpt-image-1"] {
        let printed = support::run(&dir, &["run", workflow, "--input", r#"{"prompt": "fox"}"#]);
        assert_eq!(printed.status.code(), Some(0), "{}", stderr(&printed));
        assert_eq!(printed.stdout, PNG, "{workflow}");
    }
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
        let args = [
            "run",
            "--input",
            r#"{"prompt": "hat"}"#,
            "--file",
            "image=picture.png",
        ];
        let edited = support::run(&dir, &args);
        assert_eq!(edited.status.code(), Some(0), "{}", stderr(&edited));
        assert_eq!(edited.stdout, PNG, "{path}");
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
    // Bytes inside a value are a data URI (see the README's differences).
    assert_eq!(
        spoken["audio"],
        format!("data:audio/mp3;base64,{}", b64(&speech(quote)))
    );
}

#[test]
#[ignore = "needs the original's examples: make compat ORIGINAL=<path>"]
fn the_originals_routing_examples_route_as_they_say() {
    let providers = Providers::start();
    let (dir, config) = example("job-flow/conditional-routing/if", &providers);
    for (score, grade, rendered) in [
        (95, "A", "[Grade A] score=95 - Excellent work!"),
        (75, "B", "[Grade B] score=75 - Good job, keep it up."),
        (10, "F", "[Grade F] score=10 - Needs improvement."),
    ] {
        let input = json!({ "score": score }).to_string();
        let out = json_run(&dir, &["run", "--input", &input]);
        assert_eq!(
            (out["grade"].as_str(), out["rendered"].as_str()),
            (Some(grade), Some(rendered)),
            "{out}"
        );
    }
    // The same through the API.
    let server = Server::start_with(&dir, &config);
    let (_, body) = post_bytes(
        &server,
        r#"{"input": {"score": 91}, "wait_for_completion": true, "output_only": true}"#,
    );
    let out: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(out["grade"], "A", "{out}");
    drop(server);

    let (dir, _) = example("job-flow/conditional-routing/switch", &providers);
    for (language, greeting) in [
        ("ko", "[Korean] 안녕하세요, 민수님!"),
        ("ja", "[Japanese] こんにちは、民秀さん！"),
        ("fr", "[Unknown] Hi, 민수. (no localized greeting for 'fr')"),
    ] {
        let name = if language == "ja" { "民秀" } else { "민수" };
        let input = json!({ "language": language, "name": name }).to_string();
        let out = json_run(&dir, &["run", "--input", &input]);
        assert_eq!(out["rendered"], greeting, "{out}");
    }

    let (dir, _) = example("job-flow/conditional-routing/random", &providers);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..24 {
        let out = json_run(&dir, &["run", "uniform-routing", "--input", "{}"]);
        seen.insert(out["variant"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["A", "B", "C"]);
    let out = json_run(&dir, &["run", "weighted-routing", "--input", "{}"]);
    let variant = out["variant"].as_str().unwrap();
    assert!(
        ["control", "experiment", "canary"].contains(&variant),
        "{out}"
    );
}

#[test]
#[ignore = "needs the original's examples: make compat ORIGINAL=<path>"]
fn the_originals_interrupt_example_waits_for_its_answers() {
    let providers = Providers::start();
    let (dir, config) = example("job-flow/interrupt", &providers);
    let listed = |out: &Value| {
        let result = out["result"].as_str().unwrap_or_default();
        result.contains("model-compose.yml") && result.contains(".env")
    };
    let out = json_run(
        &dir,
        &["run", "--input", r#"{"path": "."}"#, "--auto-resume"],
    );
    assert!(listed(&out), "{out}");
    // Through the API, answering each point as the original's transcript does (spec §14.3).
    let server = Server::start_with(&dir, &config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let call = |method: reqwest::Method, path: String, body: Option<Value>| {
            let request = client.request(method, format!("{}{path}", server.api));
            let request = match body {
                Some(body) => request
                    .header("content-type", "application/json")
                    .body(body.to_string()),
                None => request,
            };
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
            }
        };
        let post = reqwest::Method::POST;
        let state = call(
            post.clone(),
            "/workflows/runs".into(),
            Some(json!({"input": {"path": "."}})),
        )
        .await;
        assert_eq!(state["status"], "interrupted", "{state}");
        let point = &state["interrupt"][0];
        assert_eq!(
            (&point["phase"], &point["message"], &point["metadata"]),
            (
                &json!("before"),
                &json!("About to execute: ls -la \".\""),
                &json!({"command": "ls -la \".\""})
            ),
        );
        let id = state["task_id"].as_str().unwrap().to_string();
        let resumed = call(
            post.clone(),
            format!("/tasks/{id}/resume"),
            Some(json!({"answer": {point["id"].as_str().unwrap(): null}})),
        )
        .await;
        assert_eq!(resumed["status"], "processing");
        let after = loop {
            let state = call(reqwest::Method::GET, format!("/tasks/{id}"), None).await;
            if state["status"] == "interrupted" {
                break state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let point = &after["interrupt"][0];
        assert_eq!(
            (&point["phase"], &point["message"]),
            (
                &json!("after"),
                &json!("Command finished. Review the output.")
            )
        );
        assert!(listed(&point["metadata"]), "{after}");
        call(post, format!("/tasks/{id}/resume"), Some(json!({}))).await;
        let done = loop {
            let state = call(reqwest::Method::GET, format!("/tasks/{id}"), None).await;
            if state["status"] == "completed" {
                break state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(listed(&done["output"]), "{done}");
    });
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

#[test]
#[ignore = "needs the original's examples: make compat ORIGINAL=<path>"]
fn the_originals_agent_examples_call_their_tools() {
    let providers = Providers::start();
    // multi-tool: an http-client tool (the weather) and a shell tool (a calculation) in one turn.
    let (dir, _) = example("agents/multi-tool", &providers);
    let question = r#"CALL [{"name": "get_weather", "arguments": {"city": "Tokyo"}}, {"name": "run_calculation", "arguments": {"expression": "print(2 ** 10)"}}]"#;
    let input = json!({ "question": question }).to_string();
    let out = json_run(&dir, &["run", "main", "--input", &input]);
    let answer = out["answer"].as_str().unwrap_or_default();
    assert!(
        answer.starts_with("Done: {\"city\": \"Tokyo\", \"temperature\": 21.5")
            && answer.ends_with("; 1024"),
        "{out}"
    );
    let requests: Vec<Value> = providers
        .take()
        .iter()
        .filter(|seen| seen.uri.ends_with("/chat/completions"))
        .map(|seen| seen.json())
        .collect();
    assert_eq!(requests.len(), 2, "two model calls");
    // The tools described by their workflows' inputs: JSON types, descriptions, defaults.
    let search = &requests[0]["tools"][0];
    assert_eq!(search["function"]["name"], "search_web", "{search}");
    assert_eq!(
        search["function"]["parameters"]["properties"]["max_results"],
        json!({"type": "integer", "description": "Maximum number of search results", "default": 5})
    );
    // The second request in OpenAI's spelling, as the spec's transcript has it (§10.9).
    let messages = &requests[1]["messages"];
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_0_0", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}},
            {"id": "call_0_1", "type": "function",
             "function": {"name": "run_calculation", "arguments": "{\"expression\": \"print(2 ** 10)\"}"}}]})
    );
    assert_eq!(messages[3]["tool_call_id"], "call_0_0");
    assert_eq!(
        messages[4],
        json!({"role": "tool", "content": "1024", "tool_call_id": "call_0_1"})
    );

    // code-reviewer and disk-analyzer: shell tools that read the machine.
    let (dir, _) = example("agents/code-reviewer", &providers);
    let request = r#"CALL [{"name": "read_file", "arguments": {"path": "model-compose.yml"}}]"#;
    let input = json!({ "request": request }).to_string();
    let out = run(&dir, &["run", "main", "--input", &input]);
    assert!(out.contains("Done: controller:"), "{out}");
    let (dir, _) = example("agents/disk-analyzer", &providers);
    let question = r#"CALL [{"name": "get_disk_usage", "arguments": {}}]"#;
    let input = json!({ "question": question }).to_string();
    let out = run(&dir, &["run", "main", "--input", &input]);
    assert!(out.contains("Filesystem"), "{out}");

    // human-in-the-loop: writing a file asks first (answered on the terminal's behalf).
    let (dir, _) = example("agents/human-in-the-loop", &providers);
    let note = dir.join("note.txt");
    let calls = json!([{"name": "write_file", "arguments": {"path": note, "content": "hello"}}]);
    let input = json!({ "request": format!("CALL {calls}") }).to_string();
    run(&dir, &["run", "main", "--input", &input, "--auto-resume"]);
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "hello\n");
}

#[tokio::test]
#[ignore = "needs the original's examples: make compat ORIGINAL=<path>"]
async fn the_originals_mcp_servers_list_their_workflows_as_tools() {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::ServiceExt;
    compose::upstream::ensure_crypto_provider();
    let providers = Providers::start();
    for (path, tools) in [
        (
            "mcp-servers/slack-bot",
            &["send-message", "list-channels", "join-channel"][..],
        ),
        (
            "mcp-servers/korea-dart-mcp",
            &[
                "search-disclosure",
                "get-financial-statements",
                "get-company-overview",
                "get-company-code",
                "get-dividend-info",
                "get-major-shareholders",
            ][..],
        ),
    ] {
        let (dir, config) = example(path, &providers);
        let env = std::fs::read_to_string(dir.join(".env")).unwrap();
        let keys = "DEFAULT_SLACK_CHANNEL_ID=C1\nSLACK_APP_TOKEN=xoxb-1\nDART_API_KEY=d1\n";
        dir.write(".env", &format!("{env}{keys}"));
        let server = Server::start_with(&dir, &config);
        let url = server.mcp.clone().expect("an MCP endpoint");
        assert!(url.ends_with("/mcp"), "{path}: {url}");
        let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
        let listed = client.list_all_tools().await.unwrap();
        let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, tools, "{path}");
        // Every parameter has a real type and those without a default are required.
        for tool in &listed {
            assert_eq!(tool.input_schema["type"], "object", "{path} {}", tool.name);
        }
        client.cancel().await.unwrap();
    }
}
