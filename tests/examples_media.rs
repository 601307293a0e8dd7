//! The media examples in `examples/` (speech, transcription, images, a quote read aloud), run
//! as a user would against mocks of their providers' wire formats: files sent as multipart
//! parts, bytes answered with their type, and the web UI's players and images.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::examples::*;
use support::{stderr, Server, TEST_KEY};
use testkit::providers::{speech, Field, Providers, Seen, PNG};

#[tokio::test]
async fn text_to_speech_streams_its_audio_bytes() {
    let providers = Providers::start();
    let (dir, config) = example("openai-text-to-speech", &providers);
    let audio = speech("Hello there");
    // -o FILE writes the bytes as they are.
    let output = support::run(
        &dir,
        &[
            "run",
            "--input",
            r#"{"text": "Hello there"}"#,
            "-o",
            "out.mp3",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.join("out.mp3")).unwrap(), audio);
    assert_eq!(
        stderr(&output),
        format!("wrote {} bytes (audio/mpeg) to out.mp3\n", audio.len())
    );
    // Standard output that is not a terminal gets them too.
    let piped = support::run(&dir, &["run", "--input", r#"{"text": "Hello there"}"#]);
    assert_eq!(piped.stdout, audio);
    let seen = providers.take();
    assert_eq!(seen[0].uri, "/openai/v1/audio/speech");
    assert_eq!(
        seen[0].text(),
        r#"{"model": "tts-1", "input": "Hello there", "voice": "coral", "response_format": "mp3"}"#
    );

    let server = Server::start_with(&dir, &config);
    let response = api(
        &server,
        json!({"input": {"text": "Hello there", "voice": "nova"}, "output_only": true}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.bytes().await.unwrap().to_vec(), audio);
    assert_eq!(providers.take()[0].json()["voice"], "nova");
    // Without output_only, the state shows the bytes as a data URI.
    let (status, state) = api_json(&server, json!({"input": {"text": "Hello there"}})).await;
    assert_eq!(status, 200);
    assert_eq!(state["status"], "completed");
    assert_eq!(state["output"], data_uri("audio/mpeg", None, &audio));
    // The task's output, asked for alone later, is the bytes again.
    let task = state["task_id"].as_str().unwrap();
    let later = reqwest::get(format!("{}/tasks/{task}?output_only=true", server.api))
        .await
        .unwrap();
    assert_eq!(later.headers()["content-type"], "audio/mpeg");
    assert_eq!(later.bytes().await.unwrap().to_vec(), audio);
    // The web UI gets a player.
    let end = ui_end(&server, "__default__", json!({"text": "Hello there"})).await;
    assert_eq!(end["output"], data_uri("audio/mpeg", None, &audio));
    assert_eq!(
        end["blocks"],
        json!([format!(
            "<figure class=\"output\"><audio controls preload=\"metadata\" src=\"{}\"></audio></figure>",
            data_uri("audio/mpeg", None, &audio)
        )])
    );
    // The schema says the output is audio.
    let schema: Value =
        get_json(format!("{}/workflows?include_schema=true", server.api)).await[0].clone();
    assert_eq!(
        schema["output"],
        json!([{"type": "audio", "is_list": false}])
    );
}

#[tokio::test]
async fn transcription_uploads_the_recording_as_a_file_part() {
    let providers = Providers::start();
    let (dir, config) = example("openai-transcription", &providers);
    let clip = speech("a recording");
    std::fs::write(dir.join("clip.mp3"), &clip).unwrap();
    let printed = run_ok(&dir, &["run", "--file", "audio=clip.mp3"]);
    let heard = format!("{} bytes of audio/mpeg in clip.mp3", clip.len());
    assert_eq!(
        printed,
        format!("{{\n  \"text\": \"{heard}\",\n  \"seconds\": 3.0\n}}\n")
    );
    let seen = providers.take();
    assert_eq!(seen[0].uri, "/openai/v1/audio/transcriptions");
    assert!(seen[0]
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    assert_eq!(
        seen[0].header("authorization").unwrap(),
        format!("Bearer {TEST_KEY}")
    );
    let fields = fields_of(&seen[0]).await;
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["model", "file", "language"]);
    assert_eq!(text_field(&fields, "model"), "whisper-1");
    assert_eq!(text_field(&fields, "language"), "en");
    match &fields[1].1 {
        Field::File {
            name,
            content_type,
            bytes,
        } => {
            assert_eq!(
                (name.as_str(), content_type.as_str()),
                ("clip.mp3", "audio/mpeg")
            );
            assert_eq!(bytes.to_vec(), clip);
        }
        other => panic!("file part expected, got {other:?}"),
    }

    let server = Server::start_with(&dir, &config);
    // A multipart request, as a browser form or `curl -F` sends it.
    let form = reqwest::multipart::Form::new()
        .text("input[language]", "ko")
        .text("output_only", "true")
        .part("input[audio]", file_part(&clip, "memo.mp3", "audio/mpeg"));
    let response = post_form(format!("{}/workflows/runs", server.api), form).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_of(response).await,
        json!({"text": format!("{} bytes of audio/mpeg in memo.mp3", clip.len()), "seconds": 3.0})
    );
    let fields = fields_of(&providers.take()[0]).await;
    assert_eq!(text_field(&fields, "language"), "ko");
    // JSON clients send the file as a data URI; plain text is refused, naming the field.
    let input = json!({"audio": data_uri("audio/mpeg", Some("j.mp3"), &clip)});
    let (status, body) = api_json(&server, json!({"input": input, "output_only": true})).await;
    assert_eq!(
        (status, body["text"].clone()),
        (
            200,
            json!(format!("{} bytes of audio/mpeg in j.mp3", clip.len()))
        )
    );
    let (status, body) = api_json(&server, json!({"input": {"audio": "not a file"}})).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("audio"), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("data: URI"),
        "{body}"
    );
    providers.take();
    let output = ui_output(&server, "__default__", input).await;
    assert_eq!(output["seconds"], json!(3.0));
}

#[tokio::test]
async fn image_generation_gives_links_data_and_lists() {
    let providers = Providers::start();
    let (dir, config) = example("openai-image-generation", &providers);
    // The links are fetched, the base64 decoded: each picture comes as its bytes.
    let fetched = |n: u32| data_uri("image/png", Some(&format!("{n}.png")), &PNG);
    let printed = run_ok(&dir, &["run", "--input", r#"{"prompt": "a fox"}"#]);
    assert_eq!(
        printed,
        format!("{{\n  \"picture\": \"{}\"\n}}\n", fetched(1))
    );
    let printed = run_ok(
        &dir,
        &["run", "picture-data", "--input", r#"{"prompt": "a fox"}"#],
    );
    assert_eq!(
        printed,
        format!(
            "{{\n  \"picture\": \"{}\"\n}}\n",
            data_uri("image/png", None, &PNG)
        )
    );
    let printed = run_ok(
        &dir,
        &[
            "run",
            "sketches",
            "--input",
            r#"{"prompt": "a fox", "count": 2}"#,
        ],
    );
    let sketches: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(sketches, json!({"sketches": [fetched(1), fetched(2)]}));
    let seen = providers.take();
    // (A list's links are fetched at once, in any order.)
    let mut files: Vec<&str> = seen
        .iter()
        .map(|s| s.uri.as_str())
        .filter(|uri| uri.starts_with("/files/"))
        .collect();
    files.sort_unstable();
    assert_eq!(files, ["/files/1.png", "/files/1.png", "/files/2.png"]);
    let seen: Vec<Seen> = seen
        .into_iter()
        .filter(|s| !s.uri.starts_with("/files/"))
        .collect();
    let bodies: Vec<String> = seen.iter().map(Seen::text).collect();
    assert_eq!(
        bodies,
        [
            r#"{"model": "dall-e-3", "prompt": "a fox", "n": 1, "size": "1024x1024", "response_format": "url"}"#,
            r#"{"model": "gpt-image-1", "prompt": "a fox", "n": 1}"#,
            r#"{"model": "dall-e-2", "prompt": "a fox", "n": 2, "size": "256x256", "response_format": "url"}"#,
        ]
    );
    assert!(seen
        .iter()
        .all(|s| s.uri == "/openai/v1/images/generations"));
    // Component headers go with every action.
    assert!(seen
        .iter()
        .all(|s| s.header("authorization") == Some(&format!("Bearer {TEST_KEY}"))));

    let server = Server::start_with(&dir, &config);
    let (status, body) = api_json(
        &server,
        json!({"workflow_id": "sketches", "input": {"prompt": "owl"}, "output_only": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["sketches"].as_array().unwrap().len(), 3);
    let schema: Value = get_json(format!("{}/workflows?include_schema=true", server.api)).await;
    let outputs: Vec<Value> = schema
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["output"][0].clone())
        .collect();
    assert_eq!(
        outputs,
        [
            json!({"name": "picture", "type": "image", "format": "url", "is_list": false}),
            json!({"name": "picture", "type": "image", "subtype": "png", "format": "base64", "is_list": false}),
            json!({"name": "sketches", "type": "image", "format": "url", "is_list": true}),
        ]
    );
    let end = ui_end(&server, "picture-data", json!({"prompt": "owl"})).await;
    assert_eq!(
        end["output"],
        json!({"picture": data_uri("image/png", None, &PNG)})
    );
    let html = end["blocks"][0].as_str().unwrap();
    assert!(
        html.contains(&format!(
            "<img alt=\"picture\" src=\"data:image/png;base64,{}\">",
            base64(&PNG)
        )),
        "{html}"
    );
    let end = ui_end(&server, "sketches", json!({"prompt": "owl", "count": 2})).await;
    let html = end["blocks"][0].as_str().unwrap();
    assert!(html.contains("<div class=\"gallery\">"), "{html}");
    assert_eq!(html.matches("<img ").count(), 2, "{html}");
}

#[tokio::test]
async fn image_edit_uploads_the_picture() {
    let providers = Providers::start();
    let (dir, config) = example("openai-image-edit", &providers);
    std::fs::write(dir.join("cat.png"), PNG).unwrap();
    // The upstream's base64, decoded: the PNG's bytes.
    let edited = || data_uri("image/png", None, &PNG);
    let printed = run_ok(
        &dir,
        &[
            "run",
            "--input",
            r#"{"prompt": "add a hat"}"#,
            "--file",
            "image=cat.png",
        ],
    );
    assert_eq!(printed, format!("{{\n  \"edited\": \"{}\"\n}}\n", edited()));
    let seen = providers.take();
    assert_eq!(seen[0].uri, "/openai/v1/images/edits");
    let fields = fields_of(&seen[0]).await;
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["model", "image", "prompt", "size"]);
    assert_eq!(text_field(&fields, "prompt"), "add a hat");
    assert_eq!(text_field(&fields, "size"), "1024x1024");
    assert!(
        matches!(&fields[1].1, Field::File { name, content_type, bytes }
        if name == "cat.png" && content_type == "image/png" && bytes.as_ref() == PNG)
    );

    // A caller's link reaches the mock only because the config allows its address (D32).
    let config = config.replacen(
        "controller:\n",
        "controller:\n  fetch:\n    allow: [127.0.0.1]\n",
        1,
    );
    let server = Server::start_with(&dir, &config);
    let form = reqwest::multipart::Form::new()
        .text("input[prompt]", "add a hat")
        .text("output_only", "true")
        .part("input[image]", file_part(&PNG, "cat.png", "image/png"));
    let response = post_form(format!("{}/workflows/runs", server.api), form).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_of(response).await, json!({"edited": edited()}));
    providers.take();

    // The web UI sends the file once, as multipart, and the run names it.
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let form =
            reqwest::multipart::Form::new().part("file", file_part(&bytes, name, "image/png"));
        post_form(format!("{}/_ui/upload", server.webui), form)
    };
    let response = upload("cat.png", PNG.to_vec()).await;
    assert_eq!(response.status(), 200);
    let uploaded = json_of(response).await;
    assert_eq!(
        (
            &uploaded["name"],
            &uploaded["media_type"],
            &uploaded["size"]
        ),
        (&json!("cat.png"), &json!("image/png"), &json!(PNG.len()))
    );
    let reference = uploaded["reference"].as_str().unwrap();
    assert!(reference.starts_with("upload:"), "{reference}");
    let end = ui_end(
        &server,
        "__default__",
        json!({"image": reference, "prompt": "add a hat"}),
    )
    .await;
    assert!(end["blocks"][0]
        .as_str()
        .unwrap()
        .contains("<img alt=\"edited\""));
    let fields = fields_of(&providers.take()[0]).await;
    assert!(
        matches!(&fields[1].1, Field::File { name, bytes, .. } if name == "cat.png" && bytes.as_ref() == PNG)
    );
    // Too large a file is refused with the limit in the message.
    let response = upload("huge.png", vec![0; 25 * 1024 * 1024 + 1]).await;
    assert_eq!(response.status(), 413);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("larger than 25 MiB"));
    // An unknown reference is a clear error, not a run.
    let response = support::ui_call(
        &server,
        "chat",
        &[
            ("workflow_id", "__default__"),
            ("input", r#"{"image": "upload:gone", "prompt": "x"}"#),
            ("prompt", "x"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("choose it again"));
    assert!(providers.take().is_empty());

    // `edit-link`: the picture is fetched from its link (`;url`) and uploaded as a file part
    // named after it; its input is a text field in the web UI.
    let link = format!("{}/files/1.png", providers.base);
    let input = json!({"image_url": link, "prompt": "add a hat"});
    let (status, body) = api_json(
        &server,
        json!({"workflow_id": "edit-link", "input": input, "output_only": true}),
    )
    .await;
    assert_eq!((status, body), (200, json!({"edited": edited()})));
    let seen = providers.take();
    let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["/files/1.png", "/openai/v1/images/edits"]);
    let fields = fields_of(&seen[1]).await;
    assert!(
        matches!(&fields[1].1, Field::File { name, content_type, bytes }
        if name == "1.png" && content_type == "image/png" && bytes.as_ref() == PNG),
        "{fields:?}"
    );
    let listed = support::ui_call(&server, "workflows", &[]).await;
    let listed = json_of(listed).await;
    let edit_link = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "edit-link")
        .unwrap();
    assert_eq!(edit_link["inputs"][0]["name"], "image_url");
    assert_eq!(edit_link["inputs"][0]["kind"], "text", "{edit_link}");
    assert!(
        ui_end(&server, "edit-link", input.clone()).await["blocks"][0]
            .as_str()
            .unwrap()
            .contains("<img alt=\"edited\"")
    );
    providers.take();
    let printed = run_ok(&dir, &["run", "edit-link", "--input", &input.to_string()]);
    assert_eq!(printed, format!("{{\n  \"edited\": \"{}\"\n}}\n", edited()));
    assert_eq!(providers.take().len(), 2);
    // A link that answers 404 is a 502 naming the link, and nothing is uploaded.
    let gone = json!({"image_url": format!("{}/gone.png", providers.base), "prompt": "x"});
    let (status, body) = api_json(
        &server,
        json!({"workflow_id": "edit-link", "input": gone, "output_only": true}),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.to_string().contains("/gone.png (`;url`): HTTP 404"),
        "{body}"
    );
    let seen = providers.take();
    assert_eq!((seen.len(), seen[0].uri.as_str()), (1, "/gone.png"));
}

#[tokio::test]
async fn quote_to_speech_chains_two_providers() {
    let providers = Providers::start();
    let (dir, config) = example("quote-to-speech", &providers);
    let printed = run_ok(&dir, &["run", "--input", r#"{"theme": "courage"}"#]);
    let quote = "You said: courage";
    assert_eq!(
        serde_json::from_str::<Value>(&printed).unwrap(),
        json!({"quote": quote, "speech": data_uri("audio/mpeg", None, &speech(quote))})
    );
    let seen = providers.take();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].uri, "/openai/v1/chat/completions");
    assert_eq!(
        seen[0].json()["messages"],
        json!([
            {"role": "system", "content": "You write one original, encouraging sentence of at most 25 words. Answer with the sentence only.\n"},
            {"role": "user", "content": "courage"}
        ])
    );
    assert_eq!(
        seen[1].uri,
        "/elevenlabs/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM?output_format=mp3_44100_128"
    );
    assert_eq!(seen[1].header("xi-api-key"), Some(ELEVENLABS_KEY));
    assert_eq!(
        seen[1].text(),
        r#"{"text": "You said: courage", "model_id": "eleven_multilingual_v2"}"#
    );

    let server = Server::start_with(&dir, &config);
    let (status, body) = api_json(
        &server,
        json!({"input": {"voice": "abc"}, "output_only": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["quote"], "You said: perseverance");
    assert!(providers.take()[1]
        .uri
        .starts_with("/elevenlabs/v1/text-to-speech/abc?"));
    // The web UI shows the quote and a player for the speech.
    let end = ui_end(&server, "__default__", json!({"theme": "hope"})).await;
    let blocks: Vec<&str> = end["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(
        blocks[0].contains("<figcaption>quote</figcaption><p>You said: hope</p>"),
        "{}",
        blocks[0]
    );
    let player = format!(
        "src=\"data:audio/mpeg;base64,{}\"",
        base64(&speech("You said: hope"))
    );
    assert!(blocks[1].contains(&player), "{}", blocks[1]);
    let schema: Value =
        get_json(format!("{}/workflows?include_schema=true", server.api)).await[0].clone();
    assert_eq!(
        schema["output"],
        json!([
            {"name": "quote", "type": "text", "is_list": false},
            {"name": "speech", "type": "audio", "subtype": "mpeg", "format": "base64", "is_list": false}
        ])
    );
}
