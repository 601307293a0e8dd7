//! The PostgreSQL run history (sqlx), for several replicas sharing one database: the same
//! numbered migrations as SQLite (`migrations/postgres/`), applied when it is opened, and the
//! same rows (see [`super::rows`]).

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::rows::{answer, conversation, count, record, summary, tokens, turns, SUMMARY_COLUMNS};
use super::{Conversation, ConversationSummary, RunRecord, RunStore, RunSummary, StoreError};

/// How long a replica may go without saying it is alive before its runs are failed.
pub const REPLICA_LOST_AFTER: Duration = Duration::from_secs(6);

/// Run history in a PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
    /// The replica this process is: the runs it saves name it.
    replica: String,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and migrates it;
    /// the runs saved through it name `replica`.
    pub async fn open(url: &str, replica: &str) -> Result<Self, StoreError> {
        let place = without_password(url);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|err| StoreError(format!("cannot connect to {place}: {err}")))?;
        sqlx::migrate!("src/store/migrations/postgres")
            .run(&pool)
            .await
            .map_err(|err| StoreError(format!("cannot migrate {place}: {err}")))?;
        Ok(Self {
            pool,
            replica: replica.to_string(),
        })
    }

    /// The connection pool, for the replicas' coordination (`crate::cluster`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }
}

/// The URL as messages may show it: without the user's password.
fn without_password(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let user = rest[..at - scheme.len() - 3]
                .split(':')
                .next()
                .unwrap_or("");
            format!("{scheme}://{user}@{}", &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, as the database keeps times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn error(err: impl std::fmt::Display) -> StoreError {
    StoreError::from_display(err)
}

#[async_trait::async_trait]
impl RunStore for PgStore {
    async fn save(&self, run: &RunRecord) -> Result<(), StoreError> {
        let summary = run.summary();
        // The first save of a run records its input (and what is listed of it); later ones
        // only its progress.
        sqlx::query(
            "INSERT INTO runs (task_id, workflow_id, input, output, status, error, \
             started_at, first_chunk_ms, duration_ms, title, settings, error_summary, \
             request_id, prompt_tokens, completion_tokens, replica_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (task_id) DO UPDATE SET output = EXCLUDED.output, \
             status = EXCLUDED.status, error = EXCLUDED.error, \
             first_chunk_ms = EXCLUDED.first_chunk_ms, duration_ms = EXCLUDED.duration_ms, \
             error_summary = EXCLUDED.error_summary, prompt_tokens = EXCLUDED.prompt_tokens, \
             completion_tokens = EXCLUDED.completion_tokens",
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
        .bind(&self.replica)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn list(&self, limit: u32, before: Option<&str>) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE $1::text IS NULL OR task_id < $1 \
             ORDER BY task_id DESC LIMIT $2"
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
        let row = sqlx::query("SELECT * FROM runs WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?;
        row.as_ref().map(record).transpose().map_err(error)
    }

    async fn delete(&self, task_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM runs WHERE task_id = $1")
            .bind(task_id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() > 0)
    }

    /// Fails the unfinished runs of replicas that stopped saying they are alive (a replica
    /// running them would, see `crate::cluster`).
    async fn fail_unfinished(&self, message: &str) -> Result<u64, StoreError> {
        let alive_since = now_ms() - REPLICA_LOST_AFTER.as_millis() as i64;
        let done = sqlx::query(
            "UPDATE runs SET status = 'failed', error = $1, error_summary = $1 \
             WHERE status NOT IN ('completed', 'failed', 'cancelled') \
             AND (replica_id IS NULL OR replica_id NOT IN \
                  (SELECT id FROM replicas WHERE heartbeat_at > $2))",
        )
        .bind(message)
        .bind(alive_since)
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
             VALUES ($1, $2, $3, $4, $5)",
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
        let mut tx = self.pool.begin().await.map_err(error)?;
        // Answers to one conversation are added one at a time, whichever replica adds them.
        sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let position: i64 = match position {
            Some(position) => i64::from(position),
            None => sqlx::query_scalar(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM answers WHERE conversation_id = $1",
            )
            .bind(conversation_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?,
        };
        sqlx::query("DELETE FROM answers WHERE conversation_id = $1 AND position > $2")
            .bind(conversation_id)
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        sqlx::query("UPDATE answers SET current = 0 WHERE conversation_id = $1 AND position = $2")
            .bind(conversation_id)
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM answers \
             WHERE conversation_id = $1 AND position = $2",
        )
        .bind(conversation_id)
        .bind(position)
        .fetch_one(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query(
            "INSERT INTO answers (conversation_id, position, version, current, prompt, task_id) \
             VALUES ($1, $2, $3, 1, $4, $5)",
        )
        .bind(conversation_id)
        .bind(position)
        .bind(version)
        .bind(prompt)
        .bind(task_id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
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
            "UPDATE answers SET current = CASE WHEN version = $3 THEN 1 ELSE 0 END \
             WHERE conversation_id = $1 AND position = $2 AND EXISTS (SELECT 1 FROM answers \
             WHERE conversation_id = $1 AND position = $2 AND version = $3)",
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
        // ILIKE: searching ignores case, as SQLite's LIKE does.
        let rows = sqlx::query(
            "SELECT id, workflow_id, title, created_at, updated_at FROM conversations c \
             WHERE ($1::text IS NULL OR (updated_at, id) < \
                    (SELECT updated_at, id FROM conversations WHERE id = $1)) \
             AND ($2::text IS NULL OR title ILIKE $2 ESCAPE '\\' OR EXISTS (SELECT 1 \
                  FROM answers a WHERE a.conversation_id = c.id AND a.prompt ILIKE $2 \
                  ESCAPE '\\')) \
             ORDER BY updated_at DESC, id DESC LIMIT $3",
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
            "SELECT id, workflow_id, title, created_at, updated_at FROM conversations \
             WHERE id = $1",
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
             WHERE a.conversation_id = $1 ORDER BY a.position, a.version",
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
        let done = sqlx::query("UPDATE conversations SET title = $1 WHERE id = $2")
            .bind(title)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("DELETE FROM answers WHERE conversation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let done = sqlx::query("DELETE FROM conversations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::suite;

    #[tokio::test]
    async fn postgres_passes_the_store_suite() {
        let server = testkit::postgres::Postgres::start();
        let store = PgStore::open(&server.database(), "r1").await.unwrap();
        suite::every_operation(&store).await;
        // Opening it again (another replica, a restart) finds it migrated and keeps it.
        let url = format!("postgres://mc@127.0.0.1:{}/t0", server.port);
        let again = PgStore::open(&url, "r2").await.unwrap();
        assert!(again.get("a").await.unwrap().is_some());
        store.close().await;
        again.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_added_while_runs_are_saved_all_land() {
        let server = testkit::postgres::Postgres::start();
        let store = PgStore::open(&server.database(), "r1").await.unwrap();
        suite::concurrent_answers(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_reached_is_named_without_its_password() {
        let err = PgStore::open("postgres://mc:hunter22@127.0.0.1:9/history", "r1")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("run history: cannot connect to postgres://mc@127.0.0.1:9/history: "),
            "{err}"
        );
        assert!(!err.contains("hunter22"));
    }

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            without_password("postgres://mc:s3cret@db.example:5432/history"),
            "postgres://mc@db.example:5432/history"
        );
        assert_eq!(
            without_password("postgres://db.example/history"),
            "postgres://db.example/history"
        );
    }
}
