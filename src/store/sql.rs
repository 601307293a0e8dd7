//! The run history's SQL, written once for SQLite and PostgreSQL (sqlx): the databases differ
//! only in how a statement names its parameters, how many rows a statement changed, and how
//! adding an answer holds off other writers (see [`Dialect`]). Opening a store is each
//! database's own (`sqlite.rs`, `postgres.rs`); the rows are read in `rows.rs`.

use std::borrow::Cow;
use std::time::Duration;

use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type,
};

use super::rows::{
    answer, conversation, count, failure_columns, record, summary, turns, HistoryRow,
    SUMMARY_COLUMNS,
};
use super::saves::{RunRow, Saves};
use super::{
    Conversation, ConversationSummary, Failure, Pruned, RunRecord, RunStore, RunSummary,
    StoreError, StoredUpload,
};
use compose::config::Retention;

/// How long a replica may go without saying it is alive before its runs are failed.
pub const REPLICA_LOST_AFTER: Duration = Duration::from_secs(6);

/// Run history in a SQL database.
pub struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// The replica this process is, when the database is shared: the runs it saves name it.
    pub(super) replica: Option<String>,
    /// What is kept of runs and their uploads (see `uploads`).
    pub(super) retention: Retention,
    /// Where runs are saved, gathered (see `saves`).
    pub(super) saves: Saves,
}

impl<DB: Database> SqlStore<DB> {
    /// The store, keeping runs and their uploads as `retention` says.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }
}

/// What differs between the databases.
#[async_trait::async_trait]
pub trait Dialect: Database {
    /// A statement written with `$1`, `$2`… in this database's spelling.
    fn statement(sql: &str) -> Cow<'_, str>;

    /// Parameter `n` (from 1) of a statement whose parameters each appear once, in order.
    fn in_order(n: usize) -> String;

    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Starts the transaction that adds an answer to `conversation`, so that two answers to it
    /// are added one after the other.
    async fn begin_answer(
        pool: &Pool<Self>,
        conversation: &str,
    ) -> Result<Transaction<'static, Self>, sqlx::Error>;

    /// Gives the room of what was just written or removed back to the file system, where the
    /// database keeps a log of large writes beside itself.
    async fn compact(pool: &Pool<Self>) -> Result<(), sqlx::Error>;
}

/// Milliseconds since the Unix epoch, as the databases keep times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn error(err: impl std::fmt::Display) -> StoreError {
    StoreError::from_display(err)
}

#[async_trait::async_trait]
impl<DB> RunStore for SqlStore<DB>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> Option<Vec<u8>>: Decode<'r, DB>,
    DB::Row: HistoryRow,
    usize: ColumnIndex<DB::Row>,
{
    async fn save(&self, run: &RunRecord) -> Result<(), StoreError> {
        // Files in the input are kept apart, once, as bytes; the input names them.
        let (input, uploads) = super::uploads::extract(&run.input);
        if !uploads.is_empty() {
            self.store_uploads(&run.task_id, uploads).await?;
        }
        let row = RunRow::new(run, &input, self.replica.as_deref());
        self.saves.save(row).await
    }

    async fn list(&self, limit: u32, before: Option<&str>) -> Result<Vec<RunSummary>, StoreError> {
        let rows = sqlx::query(&DB::statement(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE CAST($1 AS TEXT) IS NULL OR task_id < $1 \
             ORDER BY task_id DESC LIMIT $2"
        )))
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
        let row = sqlx::query(&DB::statement("SELECT * FROM runs WHERE task_id = $1"))
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?;
        let Some(mut run) = row.as_ref().map(record).transpose().map_err(error)? else {
            return Ok(None);
        };
        run.uploads = self.uploads_of(task_id).await?;
        Ok(Some(run))
    }

    async fn upload(
        &self,
        task_id: &str,
        upload_id: &str,
    ) -> Result<Option<(StoredUpload, Option<Vec<u8>>)>, StoreError> {
        self.read_upload(task_id, upload_id).await
    }

    async fn prune(&self, retention: &Retention) -> Result<Pruned, StoreError> {
        self.prune_history(retention).await
    }

    async fn delete(&self, task_id: &str) -> Result<bool, StoreError> {
        sqlx::query(&DB::statement("DELETE FROM uploads WHERE task_id = $1"))
            .bind(task_id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        let done = sqlx::query(&DB::statement("DELETE FROM runs WHERE task_id = $1"))
            .bind(task_id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// Fails the unfinished runs of replicas that stopped saying they are alive (a replica
    /// running them would, see `crate::cluster`).
    async fn fail_unfinished(&self, failure: &Failure) -> Result<u64, StoreError> {
        let alive_since = now_ms() - REPLICA_LOST_AFTER.as_millis() as i64;
        let (kind, http_status, detail) = failure_columns(Some(failure));
        let done = sqlx::query(&DB::statement(
            "UPDATE runs SET status = 'failed', error = $1, error_summary = $1, \
             error_kind = $3, error_http_status = $4, error_detail = $5 \
             WHERE status NOT IN ('completed', 'failed', 'cancelled') \
             AND (replica_id IS NULL OR replica_id NOT IN \
                  (SELECT id FROM replicas WHERE heartbeat_at > $2))",
        ))
        .bind(&failure.message)
        .bind(alive_since)
        .bind(kind)
        .bind(http_status)
        .bind(detail)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(DB::rows_affected(&done))
    }

    async fn create_conversation(
        &self,
        conversation: &ConversationSummary,
    ) -> Result<(), StoreError> {
        sqlx::query(&DB::statement(
            "INSERT INTO conversations (id, workflow_id, title, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        ))
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
        let mut tx = DB::begin_answer(&self.pool, conversation_id)
            .await
            .map_err(error)?;
        let position: i64 = match position {
            Some(position) => i64::from(position),
            None => sqlx::query_scalar(&DB::statement(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM answers WHERE conversation_id = $1",
            ))
            .bind(conversation_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?,
        };
        sqlx::query(&DB::statement(
            "DELETE FROM answers WHERE conversation_id = $1 AND position > $2",
        ))
        .bind(conversation_id)
        .bind(position)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query(&DB::statement(
            "UPDATE answers SET current = 0 WHERE conversation_id = $1 AND position = $2",
        ))
        .bind(conversation_id)
        .bind(position)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        let version: i64 = sqlx::query_scalar(&DB::statement(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM answers \
             WHERE conversation_id = $1 AND position = $2",
        ))
        .bind(conversation_id)
        .bind(position)
        .fetch_one(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query(&DB::statement(
            "INSERT INTO answers (conversation_id, position, version, current, prompt, task_id) \
             VALUES ($1, $2, $3, 1, $4, $5)",
        ))
        .bind(conversation_id)
        .bind(position)
        .bind(version)
        .bind(prompt)
        .bind(task_id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        sqlx::query(&DB::statement(
            "UPDATE conversations SET updated_at = $1 WHERE id = $2",
        ))
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
        let done = sqlx::query(&DB::statement(
            "UPDATE answers SET current = CASE WHEN version = $3 THEN 1 ELSE 0 END \
             WHERE conversation_id = $1 AND position = $2 AND EXISTS (SELECT 1 FROM answers \
             WHERE conversation_id = $1 AND position = $2 AND version = $3)",
        ))
        .bind(conversation_id)
        .bind(i64::from(position))
        .bind(i64::from(version))
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(DB::rows_affected(&done) > 0)
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
        // Searching ignores case (of ASCII letters, as SQLite lowers them).
        let rows = sqlx::query(
            &DB::statement("SELECT id, workflow_id, title, created_at, updated_at FROM conversations c \
             WHERE (CAST($1 AS TEXT) IS NULL OR (updated_at, id) < \
                    (SELECT updated_at, id FROM conversations WHERE id = $1)) \
             AND (CAST($2 AS TEXT) IS NULL OR LOWER(title) LIKE LOWER($2) ESCAPE '\\' OR EXISTS (SELECT 1 \
                  FROM answers a WHERE a.conversation_id = c.id AND LOWER(a.prompt) LIKE LOWER($2) \
                  ESCAPE '\\')) \
             ORDER BY updated_at DESC, id DESC LIMIT $3"),
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
        let Some(row) = sqlx::query(&DB::statement(
            "SELECT id, workflow_id, title, created_at, updated_at FROM conversations \
             WHERE id = $1",
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?
        else {
            return Ok(None);
        };
        let summary = conversation(&row).map_err(error)?;
        let rows = sqlx::query(&DB::statement(
            "SELECT a.position, a.version, a.current, a.prompt, a.task_id, r.status, \
             r.settings, r.output, r.output_type, r.error, r.error_kind, r.error_http_status, \
             r.error_detail, r.duration_ms, r.first_chunk_ms, r.prompt_tokens, \
             r.completion_tokens, r.jobs \
             FROM answers a LEFT JOIN runs r ON r.task_id = a.task_id \
             WHERE a.conversation_id = $1 ORDER BY a.position, a.version",
        ))
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
        let done = sqlx::query(&DB::statement(
            "UPDATE conversations SET title = $1 WHERE id = $2",
        ))
        .bind(title)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query(&DB::statement(
            "DELETE FROM answers WHERE conversation_id = $1",
        ))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        let done = sqlx::query(&DB::statement("DELETE FROM conversations WHERE id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
