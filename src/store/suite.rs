//! What every history store must do, run against each (SQLite here, PostgreSQL from the tests
//! of `postgres.rs`): one suite, so that the databases cannot drift apart.

use serde_json::json;

use super::{
    ConversationSummary, Failure, FailureKind, Output, RunRecord, RunStore, SessionLimits,
    SessionStore, SessionUse, Status, TokenUsage,
};

/// A completed run, as saved at its end.
pub fn run(id: &str, started_at: i64) -> RunRecord {
    RunRecord {
        task_id: id.into(),
        workflow_id: "__workflow__".into(),
        input: json!({"prompt": "Hi", "temperature": 0.7}),
        output: Some(Output::Text("Hello".into())),
        status: Status::Completed,
        error: None,
        started_at,
        first_chunk_ms: Some(12),
        duration_ms: Some(40),
        request_id: Some(format!("req-{id}")),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        usage: Some(TokenUsage {
            prompt_tokens: Some(5),
            completion_tokens: None,
        }),
        uploads: Vec::new(),
        interrupt: Vec::new(),
        jobs: Vec::new(),
    }
}

/// Runs, their list and pages, unfinished runs failed, and conversations, on an empty store.
pub async fn every_operation(store: &dyn RunStore) {
    runs(store).await;
    conversations(store).await;
}

async fn runs(store: &dyn RunStore) {
    store.save(&run("a", 1)).await.unwrap();
    store.save(&run("b", 2)).await.unwrap();
    let mut updated = run("a", 1);
    updated.status = Status::Failed;
    let boom = Failure::new(FailureKind::UpstreamStatus, "upstream returned 500: boom")
        .with_detail(json!({"status": 500}));
    updated.error = Some(boom.clone());
    store.save(&updated).await.unwrap();
    let runs = store.list(10, None).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.task_id.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert_eq!(runs[1].status, Status::Failed);
    assert_eq!(runs[1].error.as_ref(), Some(&boom));
    assert_eq!(store.get("a").await.unwrap().unwrap().error, Some(boom));
    assert_eq!(runs[0].title, "Hi");
    assert_eq!(runs[0].temperature(), Some(0.7));
    let page = store.list(1, Some("b")).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].task_id, "a");
    assert_eq!(store.get("b").await.unwrap(), Some(run("b", 2)));
    assert!(store.delete("b").await.unwrap());
    assert!(!store.delete("b").await.unwrap());
    assert_eq!(store.get("b").await.unwrap(), None);

    // Runs left streaming or waiting for a person by a server that stopped are failed;
    // finished ones stay as they are. A waiting run keeps its points until then.
    let mut streaming = run("s", 3);
    streaming.status = Status::Processing;
    streaming.output = None;
    store.save(&streaming).await.unwrap();
    let mut waiting = run("w", 3);
    waiting.status = Status::Interrupted;
    waiting.output = None;
    waiting.interrupt = vec![compose::record::Point {
        id: "01P".into(),
        job_id: "approve".into(),
        run_id: "01R".into(),
        phase: compose::record::Phase::Before,
        message: Some("Send it?".into()),
        metadata: Some(json!({"to": "ana"})),
    }];
    store.save(&waiting).await.unwrap();
    assert_eq!(store.get("w").await.unwrap(), Some(waiting));
    let stopped = Failure::new(FailureKind::Interrupted, "the server stopped");
    assert_eq!(store.fail_unfinished(&stopped).await.unwrap(), 2);
    assert_eq!(
        store.get("w").await.unwrap().unwrap().status,
        Status::Failed
    );
    assert!(store.delete("w").await.unwrap());
    let failed = store.get("s").await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error),
        (Status::Failed, Some(stopped))
    );
    assert_eq!(
        store.get("a").await.unwrap().unwrap().status,
        Status::Failed
    );
    assert!(store.delete("s").await.unwrap());
    outputs_as_they_were(store).await;
}

/// Each kind of output reads back as it was written: a value is not text, and text that looks
/// like a value stays text.
async fn outputs_as_they_were(store: &dyn RunStore) {
    let outputs = [
        Output::Json(json!(42)),
        Output::Json(json!({"a": [1, null]})),
        Output::Json(json!("a string value")),
        Output::Text(r#"{"a":1}"#.into()),
        Output::Bytes("data:image/png;base64,iVBORw0KGgo=".into()),
    ];
    for (n, output) in outputs.into_iter().enumerate() {
        let id = format!("o{n}");
        let mut record = run(&id, 4);
        record.output = Some(output);
        store.save(&record).await.unwrap();
        assert_eq!(store.get(&id).await.unwrap(), Some(record));
        assert!(store.delete(&id).await.unwrap());
    }
}

async fn conversations(store: &dyn RunStore) {
    for id in ["r1", "r2", "r3", "r4", "r5"] {
        store.save(&run(id, 1)).await.unwrap();
    }
    let summary = ConversationSummary {
        id: "c1".into(),
        workflow_id: "__workflow__".into(),
        title: "First question".into(),
        created_at: 10,
        updated_at: 10,
    };
    store.create_conversation(&summary).await.unwrap();
    assert_eq!(
        store.add_answer("c1", None, "q1", "r1", 11).await.unwrap(),
        (0, 1)
    );
    assert_eq!(
        store.add_answer("c1", None, "q2", "r2", 12).await.unwrap(),
        (1, 1)
    );
    assert_eq!(
        store.add_answer("c1", None, "q3", "r3", 13).await.unwrap(),
        (2, 1)
    );
    // A new answer to turn 1 (regenerated or edited) drops the turns after it.
    assert_eq!(
        store
            .add_answer("c1", Some(1), "q2 edited", "r4", 14)
            .await
            .unwrap(),
        (1, 2)
    );
    let conversation = store.get_conversation("c1").await.unwrap().unwrap();
    assert_eq!(conversation.summary.updated_at, 14);
    assert_eq!(conversation.turns.len(), 2);
    let turn = &conversation.turns[1];
    assert_eq!((turn.current, turn.versions.len()), (2, 2));
    assert_eq!(turn.shown().unwrap().prompt, "q2 edited");
    assert_eq!(turn.versions[0].output, Some(Output::Text("Hello".into())));
    assert!(store.select_answer("c1", 1, 1).await.unwrap());
    assert!(!store.select_answer("c1", 1, 9).await.unwrap());
    let conversation = store.get_conversation("c1").await.unwrap().unwrap();
    assert_eq!(conversation.turns[1].shown().unwrap().task_id, "r2");
    // A run deleted from the history leaves its answer, marked.
    store.delete("r1").await.unwrap();
    let conversation = store.get_conversation("c1").await.unwrap().unwrap();
    assert_eq!(conversation.turns[0].versions[0].status, None);

    store
        .create_conversation(&ConversationSummary {
            id: "c2".into(),
            title: "Other 100%_".into(),
            created_at: 20,
            updated_at: 20,
            ..summary.clone()
        })
        .await
        .unwrap();
    let ids = |list: Vec<ConversationSummary>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_conversations(10, None, None).await.unwrap()),
        ["c2", "c1"]
    );
    assert_eq!(
        ids(store
            .list_conversations(10, Some("c2"), None)
            .await
            .unwrap()),
        ["c1"]
    );
    assert_eq!(
        ids(store
            .list_conversations(10, None, Some("edited"))
            .await
            .unwrap()),
        ["c1"]
    );
    assert_eq!(
        ids(store
            .list_conversations(10, None, Some("100%_"))
            .await
            .unwrap()),
        ["c2"]
    );
    assert_eq!(
        ids(store.list_conversations(10, None, Some("%")).await.unwrap()),
        ["c2"]
    );
    assert!(store.rename_conversation("c1", "Renamed").await.unwrap());
    assert_eq!(
        store
            .get_conversation("c1")
            .await
            .unwrap()
            .unwrap()
            .summary
            .title,
        "Renamed"
    );
    assert!(store.delete_conversation("c1").await.unwrap());
    assert!(!store.delete_conversation("c1").await.unwrap());
    assert!(store.get_conversation("c1").await.unwrap().is_none());
    assert!(
        store.get("r2").await.unwrap().is_some(),
        "runs stay in the history"
    );
}

/// Answers added to several conversations at once, while their runs are saved: all land.
pub async fn concurrent_answers(store: std::sync::Arc<dyn RunStore>) {
    let mut all = tokio::task::JoinSet::new();
    for c in 0..8 {
        let store = std::sync::Arc::clone(&store);
        all.spawn(async move {
            let id = format!("c{c}");
            let summary = ConversationSummary {
                id: id.clone(),
                workflow_id: "__workflow__".into(),
                title: id.clone(),
                created_at: 1,
                updated_at: 1,
            };
            store.create_conversation(&summary).await.unwrap();
            for turn in 0..10 {
                let task = format!("{id}-{turn}");
                store.save(&run(&task, 1)).await.unwrap();
                store.add_answer(&id, None, "q", &task, 2).await.unwrap();
                store.save(&run(&task, 1)).await.unwrap();
            }
        });
    }
    while let Some(done) = all.join_next().await {
        done.unwrap();
    }
    for c in 0..8 {
        let conversation = store.get_conversation(&format!("c{c}")).await.unwrap();
        assert_eq!(conversation.unwrap().turns.len(), 10);
    }
}

/// Saves that come at once (gathered into shared statements): 100 runs, each saved as it starts
/// and as it ends. Every run lands, with the input of its first save and the end of its last.
pub async fn saves_at_once(store: std::sync::Arc<dyn RunStore>) {
    let mut all = tokio::task::JoinSet::new();
    for i in 0..100 {
        let store = std::sync::Arc::clone(&store);
        all.spawn(async move {
            let id = format!("together-{i}");
            let mut started = run(&id, i);
            started.status = Status::Processing;
            started.output = None;
            store.save(&started).await.unwrap();
            let mut ended = run(&id, i);
            ended.input = json!({"prompt": "not what was asked"});
            store.save(&ended).await.unwrap();
        });
    }
    while let Some(done) = all.join_next().await {
        done.unwrap();
    }
    for i in 0..100 {
        let id = format!("together-{i}");
        let saved = store.get(&id).await.unwrap().unwrap();
        assert_eq!(saved.status, Status::Completed, "{id}");
        assert_eq!(
            saved.input,
            json!({"prompt": "Hi", "temperature": 0.7}),
            "{id}"
        );
        assert_eq!(saved.output, Some(Output::Text("Hello".into())), "{id}");
    }
}

/// Sessions: opened, used, expired when idle, the least recently used closed past the bound.
pub async fn sessions(store: &dyn SessionStore) {
    use std::time::Duration;
    let day = Duration::from_secs(86_400);
    let limits = SessionLimits { idle: day, max: 3 };
    assert_eq!(
        store.use_session("none", day).await.unwrap(),
        SessionUse::Unknown
    );
    store.open_session("a", limits).await.unwrap();
    assert_eq!(
        store.use_session("a", day).await.unwrap(),
        SessionUse::Open { refreshed: false }
    );
    // Idle longer than allowed (any time at all, here): closed, and gone for good.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store.use_session("a", Duration::ZERO).await.unwrap(),
        SessionUse::Unknown
    );
    assert_eq!(
        store.use_session("a", day).await.unwrap(),
        SessionUse::Unknown
    );
    for token in ["b", "c", "d", "e"] {
        store.open_session(token, limits).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        store.use_session("b", day).await.unwrap(),
        SessionUse::Unknown,
        "the least recently used went past the bound"
    );
    for token in ["c", "d", "e"] {
        assert!(matches!(
            store.use_session(token, day).await.unwrap(),
            SessionUse::Open { .. }
        ));
    }
    store.close_session("d").await.unwrap();
    assert_eq!(
        store.use_session("d", day).await.unwrap(),
        SessionUse::Unknown
    );
}

/// The retention the uploads suite expects its store to have: room for 250 bytes of files.
pub fn small_retention() -> compose::config::Retention {
    compose::config::Retention {
        uploads_size: compose::config::Size(250),
        ..Default::default()
    }
}

/// Files in inputs kept apart as bytes, within the retention's size (the oldest go first),
/// removed with their run, and pruned by age. The store has [`small_retention`].
pub async fn uploads(store: &dyn RunStore) {
    use compose::media::Blob;
    let file = |size: usize, name: &str| {
        Blob {
            media_type: "image/png".into(),
            name: Some(name.into()),
            bytes: vec![7; size],
        }
        .to_data_uri()
    };
    let with_input = |id: &str, input: serde_json::Value| RunRecord {
        input,
        ..run(id, 1)
    };
    store
        .save(&with_input(
            "u1",
            json!({"prompt": "Look", "image": file(100, "a.png")}),
        ))
        .await
        .unwrap();
    let first = store.get("u1").await.unwrap().unwrap();
    let upload = first.uploads[0].clone();
    assert_eq!(
        first.input,
        json!({"prompt": "Look", "image": format!("upload:{}", upload.id)})
    );
    assert_eq!(first.title(), "Look");
    assert_eq!(
        (
            upload.field.as_str(),
            upload.name.as_deref(),
            upload.media_type.as_str(),
            upload.size,
            upload.removed
        ),
        ("image", Some("a.png"), "image/png", 100, false)
    );
    let (_, bytes) = store.upload("u1", &upload.id).await.unwrap().unwrap();
    assert_eq!(bytes, Some(vec![7; 100]));
    assert!(store.upload("u1", "nope").await.unwrap().is_none());
    assert!(store.upload("other", &upload.id).await.unwrap().is_none());

    // Two more files: 300 bytes in all would not fit in 250, so the oldest goes first.
    store
        .save(&with_input(
            "u2",
            json!({"pages": [file(100, "b.png"), file(100, "c.png")]}),
        ))
        .await
        .unwrap();
    let first = store.get("u1").await.unwrap().unwrap();
    assert!(first.uploads[0].removed);
    let (info, bytes) = store.upload("u1", &upload.id).await.unwrap().unwrap();
    assert_eq!((info.removed, bytes), (true, None));
    let second = store.get("u2").await.unwrap().unwrap();
    let fields: Vec<(&str, bool)> = second
        .uploads
        .iter()
        .map(|u| (u.field.as_str(), u.removed))
        .collect();
    assert_eq!(fields, [("pages[0]", false), ("pages[1]", false)]);
    // A file larger than all the room there is, is not kept at all.
    store
        .save(&with_input("u3", json!({"image": file(300, "d.png")})))
        .await
        .unwrap();
    let third = store.get("u3").await.unwrap().unwrap();
    assert!(third.uploads[0].removed);
    assert!(!store.get("u2").await.unwrap().unwrap().uploads[0].removed);

    // A run deleted takes its uploads with it.
    let kept = store.get("u2").await.unwrap().unwrap().uploads[0]
        .id
        .clone();
    assert!(store.delete("u2").await.unwrap());
    assert!(store.upload("u2", &kept).await.unwrap().is_none());

    // Past their age, uploads go, then ended runs.
    store
        .save(&with_input("u4", json!({"image": file(10, "e.png")})))
        .await
        .unwrap();
    let zero = compose::config::Duration(std::time::Duration::ZERO);
    let long = compose::config::Duration(std::time::Duration::from_secs(86_400 * 365 * 100));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pruned = store
        .prune(&compose::config::Retention {
            uploads: zero,
            runs: long,
            ..small_retention()
        })
        .await
        .unwrap();
    assert_eq!(
        pruned,
        super::Pruned {
            uploads: 1,
            runs: 0
        }
    );
    assert!(store.get("u4").await.unwrap().unwrap().uploads[0].removed);
    let mut unfinished = with_input("u5", json!({"prompt": "still going"}));
    unfinished.status = Status::Processing;
    store.save(&unfinished).await.unwrap();
    let pruned = store
        .prune(&compose::config::Retention {
            uploads: zero,
            runs: zero,
            ..small_retention()
        })
        .await
        .unwrap();
    assert!(pruned.runs >= 3, "{pruned:?}");
    assert!(store.get("u4").await.unwrap().is_none());
    assert!(
        store.get("u5").await.unwrap().is_some(),
        "a run still going stays"
    );
}
