//! The SQLite run history (sqlx). The file is created on first use; its schema is the
//! numbered migrations in `migrations/sqlite/`, applied when it is opened.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{RunRecord, RunStore, RunSummary, StoreError};

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
    })
}

#[async_trait::async_trait]
impl RunStore for SqliteStore {
    async fn save(&self, run: &RunRecord) -> Result<(), StoreError> {
        let summary = run.summary();
        // The first save of a run records its input (and what is listed of it); later ones
        // only its progress.
        sqlx::query(
            "INSERT INTO runs (task_id, workflow_id, input, output, status, error, \
             started_at, first_chunk_ms, duration_ms, title, settings, error_summary) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (task_id) DO UPDATE SET output = excluded.output, \
             status = excluded.status, error = excluded.error, \
             first_chunk_ms = excluded.first_chunk_ms, duration_ms = excluded.duration_ms, \
             error_summary = excluded.error_summary",
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
}
