//! The SQLite run history (sqlx). The file is created on first use; its schema is the
//! numbered migrations in `migrations/sqlite/`, applied when it is opened.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{
    Answer, Conversation, ConversationSummary, RunRecord, RunStore, RunSummary, StoreError,
    TokenUsage, Turn,
};

/// Run history in a SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (or creates) the history at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL stays consistent after a crash and spares an fsync per run.
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|err| StoreError(format!("cannot open {}: {err}", path.display())))?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|err| StoreError(format!("cannot migrate {}: {err}", path.display())))?;
        Ok(Self { pool })
    }
}

fn error(err: impl std::fmt::Display) -> StoreError {
    StoreError::from_display(err)
}

fn summary(row: &SqliteRow) -> Result<RunSummary, sqlx::Error> {
    let settings: String = row.try_get("settings")?;
    Ok(RunSummary {
        task_id: row.try_get("task_id")?,
        workflow_id: row.try_get("workflow_id")?,
        title: row.try_get("title")?,
        settings: serde_json::from_str(&settings).unwrap_or_default(),
        status: row.try_get("status")?,
        error: row.try_get("error_summary")?,
        started_at: row.try_get("started_at")?,
        first_chunk_ms: row.try_get("first_chunk_ms")?,
        duration_ms: row.try_get("duration_ms")?,
    })
}

fn conversation(row: &SqliteRow) -> Result<ConversationSummary, sqlx::Error> {
    Ok(ConversationSummary {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        title: row.try_get("title")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// An answer of a conversation, with its position and whether it is the one shown.
fn answer(row: &SqliteRow) -> Result<(u32, Answer, bool), sqlx::Error> {
    let settings: Option<String> = row.try_get("settings")?;
    let status: Option<String> = row.try_get("status")?;
    let answer = Answer {
        version: count(row.try_get("version")?),
        prompt: row.try_get("prompt")?,
        task_id: row.try_get("task_id")?,
        status: status.unwrap_or_else(|| "deleted".into()),
        settings: settings
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        output: row.try_get("output")?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        first_chunk_ms: row.try_get("first_chunk_ms")?,
        usage: usage(row)?,
    };
    let current: i64 = row.try_get("current")?;
    Ok((count(row.try_get("position")?), answer, current != 0))
}

/// A position or a version as stored (never negative).
fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or_default()
}

/// The columns of a summary: never the input or the output.
const SUMMARY_COLUMNS: &str = "task_id, workflow_id, title, settings, status, error_summary, \
                               started_at, first_chunk_ms, duration_ms";

fn record(row: &SqliteRow) -> Result<RunRecord, sqlx::Error> {
    let input: String = row.try_get("input")?;
    Ok(RunRecord {
        task_id: row.try_get("task_id")?,
        workflow_id: row.try_get("workflow_id")?,
        input: serde_json::from_str(&input).unwrap_or(serde_json::Value::Null),
        output: row.try_get("output")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        first_chunk_ms: row.try_get("first_chunk_ms")?,
        duration_ms: row.try_get("duration_ms")?,
        request_id: row.try_get("request_id")?,
        usage: usage(row)?,
    })
}

/// The tokens a row records, if any were reported.
fn usage(row: &SqliteRow) -> Result<Option<TokenUsage>, sqlx::Error> {
    let count = |column| {
        row.try_get::<Option<i64>, _>(column)
            .map(|n| n.and_then(|n| u64::try_from(n).ok()))
    };
    Ok(TokenUsage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
    }
    .reported())
}

/// A token count as SQLite stores it (a signed integer).
fn tokens(count: Option<u64>) -> Option<i64> {
    count.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl RunStore for SqliteStore {
    async fn save(&self, run: &RunRecord) -> Result<(), StoreError> {
        let summary = run.summary();
        // The first save of a run records its input (and what is listed of it); later ones
        // only its progress.
        sqlx::query(
            "INSERT INTO runs (task_id, workflow_id, input, output, status, error, \
             started_at, first_chunk_ms, duration_ms, title, settings, error_summary, \
             request_id, prompt_tokens, completion_tokens) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (task_id) DO UPDATE SET output = excluded.output, \
             status = excluded.status, error = excluded.error, \
             first_chunk_ms = excluded.first_chunk_ms, duration_ms = excluded.duration_ms, \
             error_summary = excluded.error_summary, prompt_tokens = excluded.prompt_tokens, \
             completion_tokens = excluded.completion_tokens",
        )
        .bind(&run.task_id)
        .bind(&run.workflow_id)
        .bind(run.input.to_string())
        .bind(&run.output)
        .bind(&run.status)
        .bind(&run.error)
        .bind(run.started_at)
        .bind(run.first_chunk_ms)
        .bind(run.duration_ms)
        .bind(&summary.title)
        .bind(serde_json::Value::Object(summary.settings).to_string())
        .bind(&summary.error)
        .bind(&run.request_id)
        .bind(tokens(run.usage.and_then(|u| u.prompt_tokens)))
        .bind(tokens(run.usage.and_then(|u| u.completion_tokens)))
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn list(&self, limit: u32, before: Option<&str>) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE ?1 IS NULL OR task_id < ?1 \
             ORDER BY task_id DESC LIMIT ?2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter()
            .map(summary)
            .collect::<Result<_, _>>()
            .map_err(error)
    }

    async fn get(&self, task_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE task_id = ?")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?;
        row.as_ref().map(record).transpose().map_err(error)
    }

    async fn close(&self) {
        // Closing the last connection checkpoints the WAL and removes its side files.
        self.pool.close().await;
    }

    async fn fail_unfinished(&self, message: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'failed', error = ?1, error_summary = ?1 \
             WHERE status NOT IN ('completed', 'failed', 'cancelled')",
        )
        .bind(message)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn create_conversation(
        &self,
        conversation: &ConversationSummary,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conversations (id, workflow_id, title, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&conversation.id)
        .bind(&conversation.workflow_id)
        .bind(&conversation.title)
        .bind(conversation.created_at)
        .bind(conversation.updated_at)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn add_answer(
        &self,
        conversation_id: &str,
        position: Option<u32>,
        prompt: &str,
        task_id: &str,
        at: i64,
    ) -> Result<(u32, u32), StoreError> {
        // It reads before it writes: a deferred transaction could not take the write lock
        // once another connection wrote in between (SQLITE_BUSY, without waiting).
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let position: i64 = match position {
            Some(position) => i64::from(position),
            None => sqlx::query_scalar(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM answers WHERE conversation_id = ?",
            )
            .bind(conversation_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?,
        };
        sqlx::query("DELETE FROM answers WHERE conversation_id = ? AND position > ?")
            .bind(conversation_id)
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        sqlx::query("UPDATE answers SET current = 0 WHERE conversation_id = ? AND position = ?")
            .bind(conversation_id)
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM answers \
             WHERE conversation_id = ? AND position = ?",
        )
        .bind(conversation_id)
        .bind(position)
        .fetch_one(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query(
            "INSERT INTO answers (conversation_id, position, version, current, prompt, task_id) \
             VALUES (?, ?, ?, 1, ?, ?)",
        )
        .bind(conversation_id)
        .bind(position)
        .bind(version)
        .bind(prompt)
        .bind(task_id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ?")
            .bind(at)
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok((count(position), count(version)))
    }

    async fn select_answer(
        &self,
        conversation_id: &str,
        position: u32,
        version: u32,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE answers SET current = (version = ?3) WHERE conversation_id = ?1 \
             AND position = ?2 AND EXISTS (SELECT 1 FROM answers WHERE conversation_id = ?1 \
             AND position = ?2 AND version = ?3)",
        )
        .bind(conversation_id)
        .bind(i64::from(position))
        .bind(i64::from(version))
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_conversations(
        &self,
        limit: u32,
        before: Option<&str>,
        search: Option<&str>,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let pattern = search.map(|text| {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let rows = sqlx::query(
            "SELECT id, workflow_id, title, created_at, updated_at FROM conversations c \
             WHERE (?1 IS NULL OR (updated_at, id) < \
                    (SELECT updated_at, id FROM conversations WHERE id = ?1)) \
             AND (?2 IS NULL OR title LIKE ?2 ESCAPE '\\' OR EXISTS (SELECT 1 FROM answers a \
                  WHERE a.conversation_id = c.id AND a.prompt LIKE ?2 ESCAPE '\\')) \
             ORDER BY updated_at DESC, id DESC LIMIT ?3",
        )
        .bind(before)
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter()
            .map(conversation)
            .collect::<Result<_, _>>()
            .map_err(error)
    }

    async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, workflow_id, title, created_at, updated_at FROM conversations WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?
        else {
            return Ok(None);
        };
        let summary = conversation(&row).map_err(error)?;
        let rows = sqlx::query(
            "SELECT a.position, a.version, a.current, a.prompt, a.task_id, r.status, \
             r.settings, r.output, r.error, r.duration_ms, r.first_chunk_ms, \
             r.prompt_tokens, r.completion_tokens \
             FROM answers a LEFT JOIN runs r ON r.task_id = a.task_id \
             WHERE a.conversation_id = ? ORDER BY a.position, a.version",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let mut turns: Vec<Turn> = Vec::new();
        for row in &rows {
            let (position, answer, current) = answer(row).map_err(error)?;
            match turns.last_mut().filter(|turn| turn.position == position) {
                Some(turn) => turn.versions.push(answer),
                None => turns.push(Turn {
                    position,
                    current: 0,
                    versions: vec![answer],
                }),
            }
            if current {
                if let Some(turn) = turns.last_mut() {
                    turn.current = turn.versions.last().map_or(0, |a| a.version);
                }
            }
        }
        Ok(Some(Conversation { summary, turns }))
    }

    async fn rename_conversation(&self, id: &str, title: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE conversations SET title = ? WHERE id = ?")
            .bind(title)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("DELETE FROM answers WHERE conversation_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let done = sqlx::query("DELETE FROM conversations WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, task_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM runs WHERE task_id = ?")
            .bind(task_id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(id: &str, started_at: i64) -> RunRecord {
        RunRecord {
            task_id: id.into(),
            workflow_id: "__workflow__".into(),
            input: json!({"prompt": "Hi", "temperature": 0.7}),
            output: Some("Hello".into()),
            status: "completed".into(),
            error: None,
            started_at,
            first_chunk_ms: Some(12),
            duration_ms: Some(40),
            request_id: Some(format!("req-{id}")),
            usage: Some(TokenUsage {
                prompt_tokens: Some(5),
                completion_tokens: None,
            }),
        }
    }

    #[tokio::test]
    async fn keeps_runs_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        {
            let store = SqliteStore::open(&path).await.unwrap();
            store.save(&run("a", 1)).await.unwrap();
            store.save(&run("b", 2)).await.unwrap();
            let mut updated = run("a", 1);
            updated.status = "failed".into();
            updated.error = Some("upstream returned 500: boom".into());
            store.save(&updated).await.unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let runs = store.list(10, None).await.unwrap();
        assert_eq!(
            runs.iter().map(|r| r.task_id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(runs[1].status, "failed");
        assert_eq!(
            runs[1].error.as_deref(),
            Some("upstream returned 500: boom")
        );
        assert_eq!(runs[0].title, "Hi");
        assert_eq!(runs[0].temperature(), Some(0.7));
        let page = store.list(1, Some("b")).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].task_id, "a");
        assert_eq!(store.get("b").await.unwrap(), Some(run("b", 2)));
        assert!(store.delete("b").await.unwrap());
        assert!(!store.delete("b").await.unwrap());
        assert_eq!(store.get("b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_history_written_before_migrations_is_kept_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = SqlitePool::connect(&url).await.unwrap();
        let old_schema = "CREATE TABLE IF NOT EXISTS runs (task_id TEXT PRIMARY KEY, \
            workflow_id TEXT NOT NULL, input TEXT NOT NULL, output TEXT, status TEXT NOT NULL, \
            error TEXT, started_at INTEGER NOT NULL, first_chunk_ms INTEGER, duration_ms INTEGER)";
        sqlx::query(old_schema).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO runs (task_id, workflow_id, input, status, started_at) VALUES ('old', 'w', '{\"prompt\": \"Old one\\nsecond line\", \"temperature\": 0.3}', 'completed', 1)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.get("old").await.unwrap().unwrap().status, "completed");
        let listed = store.list(10, None).await.unwrap();
        assert_eq!(listed[0].title, "Old one");
        assert_eq!(listed[0].temperature(), Some(0.3));
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let migrations = sqlx::migrate!("src/store/migrations/sqlite")
            .migrations
            .len();
        assert_eq!(applied as usize, migrations);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_added_while_runs_are_saved_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap();
        let store = std::sync::Arc::new(store);
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

    #[tokio::test]
    async fn conversations_keep_turns_versions_and_the_answer_shown() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap();
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
        assert_eq!(turn.versions[0].output.as_deref(), Some("Hello"));
        assert!(store.select_answer("c1", 1, 1).await.unwrap());
        assert!(!store.select_answer("c1", 1, 9).await.unwrap());
        let conversation = store.get_conversation("c1").await.unwrap().unwrap();
        assert_eq!(conversation.turns[1].shown().unwrap().task_id, "r2");
        // A run deleted from the history leaves its answer, marked.
        store.delete("r1").await.unwrap();
        let conversation = store.get_conversation("c1").await.unwrap().unwrap();
        assert_eq!(conversation.turns[0].versions[0].status, "deleted");

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
        let ids =
            |list: Vec<ConversationSummary>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
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
}
