//! The SQLite run history (sqlx), the default. The file is created on first use; its schema is
//! the numbered migrations in `migrations/sqlite/`, applied when it is opened. Its statements
//! are the shared ones (`sql.rs`).

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Pool, Sqlite, Transaction};

use super::saves::Writer;
use super::sql::{error, Dialect, SqlStore};
use super::StoreError;

/// Run history in a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

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
            // A connection to a local file does not go stale: pinging it before each use (the
            // pool's default) was a second round trip to its thread on every save.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|err| StoreError(format!("cannot open {}: {err}", path.display())))?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|err| StoreError(format!("cannot migrate {}: {err}", path.display())))?;
        Ok(Self {
            saves: Writer::start(pool.clone()),
            pool,
            replica: None,
            retention: Default::default(),
        })
    }
}

#[async_trait::async_trait]
impl Dialect for Sqlite {
    /// `$1` as SQLite numbers its parameters: `?1`.
    fn statement(sql: &str) -> Cow<'_, str> {
        Cow::Owned(sql.replace('$', "?"))
    }

    /// Unnumbered: sqlx asks SQLite the name of each parameter it binds, which for numbered
    /// ones is a search through all of them, for a statement of many (a batch of saves) a
    /// cost that grows with their number squared.
    fn in_order(_: usize) -> String {
        "?".into()
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// It reads before it writes: a deferred transaction could not take the write lock once
    /// another connection wrote in between (SQLITE_BUSY, without waiting).
    async fn begin_answer(
        pool: &Pool<Sqlite>,
        _conversation: &str,
    ) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Writes the log of large writes into the file and empties it: a file of tens of MB
    /// (an upload) would otherwise stay beside the database, as large as it once was.
    async fn compact(pool: &Pool<Sqlite>) -> Result<(), sqlx::Error> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Failure, Output, RunStore, Status};
    use sqlx::SqlitePool;

    #[tokio::test]
    async fn sqlite_passes_the_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let store = SqliteStore::open(&path).await.unwrap();
        super::super::suite::every_operation(&store).await;
        super::super::suite::sessions(&store).await;
        // What was written is there once the file is opened again.
        store.close().await;
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.get("a").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn sqlite_keeps_uploads_apart_within_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap()
            .with_retention(super::super::suite::small_retention());
        super::super::suite::uploads(&store).await;
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
        // Written before records were typed: a streaming run, an output and an error as text.
        sqlx::query("INSERT INTO runs (task_id, workflow_id, input, output, status, error, started_at) VALUES ('older', 'w', '{}', '{\"a\":1}', 'streaming', 'upstream returned 401: no', 0)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            store.get("old").await.unwrap().unwrap().status,
            Status::Completed
        );
        let older = store.get("older").await.unwrap().unwrap();
        assert_eq!(older.status, Status::Processing);
        assert_eq!(older.output, Some(Output::Text(r#"{"a":1}"#.into())));
        assert_eq!(
            older.error,
            Some(Failure::unknown("upstream returned 401: no"))
        );
        let listed = store.list(10, None).await.unwrap();
        assert_eq!(listed[1].title, "Old one");
        assert_eq!(listed[1].temperature(), Some(0.3));
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
    async fn saves_at_once_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap();
        super::super::suite::saves_at_once(std::sync::Arc::new(store)).await;
    }

    /// A save the database refuses fails alone, though it came with others: the statement
    /// they shared is written again row by row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_save_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.task_id = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let store = std::sync::Arc::new(store);
        let mut all = tokio::task::JoinSet::new();
        for i in 0..40 {
            let store = std::sync::Arc::clone(&store);
            let id = if i == 20 {
                "bad".to_string()
            } else {
                format!("good-{i}")
            };
            all.spawn(async move {
                let saved = store.save(&super::super::suite::run(&id, 1)).await;
                (id, saved)
            });
        }
        let mut refused = 0;
        while let Some(done) = all.join_next().await {
            let (id, saved) = done.unwrap();
            match saved {
                Err(err) => {
                    assert_eq!(id, "bad");
                    assert!(err.to_string().contains("refused"), "{err}");
                    refused += 1;
                }
                Ok(()) => assert!(store.get(&id).await.unwrap().is_some(), "{id}"),
            }
        }
        assert_eq!(refused, 1);
        assert!(store.get("bad").await.unwrap().is_none());
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
