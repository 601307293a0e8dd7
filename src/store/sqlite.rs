//! The SQLite run history (sqlx). The file is created on first use; its schema is the
//! numbered migrations in `migrations/sqlite/`, applied when it is opened.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::rows::{answer, conversation, count, record, summary, tokens, turns, SUMMARY_COLUMNS};
use super::{Conversation, ConversationSummary, RunRecord, RunStore, RunSummary, StoreError};

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
        let answers = rows
            .iter()
            .map(answer)
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(Some(Conversation {
            summary,
            turns: turns(answers),
        }))
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

    #[tokio::test]
    async fn sqlite_passes_the_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let store = SqliteStore::open(&path).await.unwrap();
        super::super::suite::every_operation(&store).await;
        // What was written is there once the file is opened again.
        store.close().await;
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.get("a").await.unwrap().is_some());
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
        super::super::suite::concurrent_answers(std::sync::Arc::new(store)).await;
    }
}
