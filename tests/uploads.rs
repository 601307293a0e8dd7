//! Files sent with runs are stored once, as bytes beside their run, within the history's
//! retention: a file no input reads is refused, and the oldest uploads make room for new ones
//! so that the history stays within its size on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use support::{Server, Workdir, TEST_KEY};
use testkit::providers::Providers;

const MB: u64 = 1_000_000;

/// The transcription example, pointed at the provider mocks, its uploads kept within `cap`.
fn transcription(providers: &Providers, cap: &str) -> (Workdir, Server) {
    let example = format!(
        "{}/examples/openai-transcription/model-compose.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let config = providers
        .point(&std::fs::read_to_string(example).unwrap())
        .replace(
            "controller:\n",
            &format!("controller:\n  history:\n    retention:\n      uploads_size: {cap}\n"),
        );
    let dir = Workdir::empty();
    dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
    let server = Server::start_with(&dir, &config);
    (dir, server)
}

/// The bytes the history takes on disk, its write-ahead log included.
fn history_on_disk(dir: &Workdir) -> u64 {
    std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(".model-compose-history.db")
        })
        .map(|entry| entry.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_uploads_of_30_mb_stay_within_a_500_mb_history_and_every_run_reads() {
    let providers = Providers::start();
    let (dir, server) = transcription(&providers, "500MB");
    let client = reqwest::Client::new();
    let url = format!("{}/workflows/runs", server.api);
    let file = |i: u8| vec![i; 30 * 1024 * 1024];

    // A file that no input reads is refused before anything runs or is stored.
    let stray = reqwest::multipart::Form::new().part(
        "input[other]",
        reqwest::multipart::Part::bytes(vec![0; 1024]).file_name("x.bin"),
    );
    let refused = client.post(&url).multipart(stray).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let detail: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(
        detail["detail"],
        "The file field 'input[other]' is not an input of workflow '__workflow__'."
    );
    assert!(providers.take().is_empty());

    let mut tasks = Vec::new();
    for i in 0..40u8 {
        let form = reqwest::multipart::Form::new().part(
            "input[audio]",
            reqwest::multipart::Part::bytes(file(i))
                .file_name(format!("memo-{i}.mp3"))
                .mime_str("audio/mpeg")
                .unwrap(),
        );
        let response = client.post(&url).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let task: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(task["status"], "completed", "{task}");
        tasks.push(task["task_id"].as_str().unwrap().to_string());
        // The mock keeps what it was sent: let it go.
        assert_eq!(providers.take().len(), 1);
    }
    let on_disk = history_on_disk(&dir);
    eprintln!(
        "40 uploads of 30 MiB under a 500 MB cap: {} MB on disk",
        on_disk / MB
    );
    assert!(on_disk <= 500 * MB, "{on_disk} bytes on disk");

    // Every run reads; the input names its file, whose bytes the newest runs still have.
    let mut removed = 0;
    for (i, task) in tasks.iter().enumerate() {
        let run = support::get_json(format!("{}/runs/{task}", server.api)).await;
        assert_eq!(run["status"], "completed");
        let upload = &run["uploads"][0];
        assert_eq!(
            run["input"]["audio"],
            format!("upload:{}", upload["id"].as_str().unwrap())
        );
        assert_eq!(upload["name"], format!("memo-{i}.mp3"));
        assert_eq!(upload["media_type"], "audio/mpeg");
        assert_eq!(upload["size"], 30 * 1024 * 1024);
        let bytes = client
            .get(format!(
                "{}/runs/{task}/uploads/{}",
                server.api,
                upload["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap();
        if upload["removed"] == true {
            removed += 1;
            assert_eq!(bytes.status(), 410);
        } else {
            assert_eq!(bytes.status(), 200);
            assert_eq!(bytes.headers()["content-type"], "audio/mpeg");
            assert_eq!(bytes.bytes().await.unwrap().as_ref(), file(i as u8));
        }
    }
    // The oldest went, the newest stayed: 15 of 31.5 MB fit in 500 MB.
    assert_eq!(removed, 25);
    let last = support::get_json(format!("{}/runs/{}", server.api, tasks[39])).await;
    assert_eq!(last["uploads"][0]["removed"], false);
    let first = support::get_json(format!("{}/runs/{}", server.api, tasks[0])).await;
    assert_eq!(first["uploads"][0]["removed"], true);
}
