//! Saves of runs, gathered: the saves asked for while one is being written go to the database
//! together, as one statement (one round trip to the database, one commit) once it is done.
//! Under load a run's two saves (its start, its end) cost a share of a statement each instead of
//! a statement each; alone, a save waits for nobody. A batch the database refuses is written
//! again row by row, so that one bad row fails only its own save. A batch goes out as
//! statements of 1, 2, 4… rows: seven statements in all, each made once and prepared once by
//! each connection (a statement for every batch size would be parsed anew nearly every time).

use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Type};
use tokio::sync::{mpsc, oneshot};

use super::rows::{failure_columns, tokens};
use super::sql::Dialect;
use super::{Output, RunRecord, StoreError};

/// Most rows in one statement (23 parameters each: well within both databases' limits); a
/// power of two.
const MOST_ROWS: usize = 64;
/// The columns of `runs` a save writes.
const COLUMNS: usize = 23;

/// One row of `runs`, as a save writes it.
pub(super) struct RunRow {
    task_id: String,
    workflow_id: String,
    input: String,
    output: Option<String>,
    status: &'static str,
    error: Option<String>,
    started_at: i64,
    first_chunk_ms: Option<i64>,
    duration_ms: Option<i64>,
    title: String,
    settings: String,
    error_summary: Option<String>,
    request_id: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    replica_id: Option<String>,
    output_type: Option<&'static str>,
    error_kind: Option<String>,
    error_http_status: Option<i64>,
    error_detail: Option<String>,
    interrupt: Option<String>,
    jobs: Option<String>,
    trace_id: Option<String>,
}

impl RunRow {
    /// The row of `run` (its input as `input`, its files kept apart) saved by `replica`.
    pub(super) fn new(run: &RunRecord, input: &serde_json::Value, replica: Option<&str>) -> Self {
        let summary = run.summary();
        let output = run.output.as_ref().map(Output::stored);
        let (error_kind, error_http_status, error_detail) = failure_columns(run.error.as_ref());
        Self {
            task_id: run.task_id.clone(),
            workflow_id: run.workflow_id.clone(),
            input: input.to_string(),
            output: output.as_ref().map(|(_, text)| text.to_string()),
            status: run.status.as_str(),
            error: run.error.as_ref().map(|e| e.message.clone()),
            started_at: run.started_at,
            first_chunk_ms: run.first_chunk_ms,
            duration_ms: run.duration_ms,
            title: summary.title,
            settings: serde_json::Value::Object(summary.settings).to_string(),
            error_summary: summary.error.map(|e| e.message),
            request_id: run.request_id.clone(),
            prompt_tokens: tokens(run.usage.and_then(|u| u.prompt_tokens)),
            completion_tokens: tokens(run.usage.and_then(|u| u.completion_tokens)),
            replica_id: replica.map(str::to_string),
            output_type: output.as_ref().map(|(type_name, _)| *type_name),
            error_kind,
            error_http_status,
            error_detail,
            interrupt: (!run.interrupt.is_empty())
                .then(|| serde_json::to_string(&run.interrupt).unwrap_or_default()),
            jobs: (!run.jobs.is_empty())
                .then(|| serde_json::to_string(&run.jobs).unwrap_or_default()),
            trace_id: run.trace_id.clone(),
        }
    }
}

/// A save waiting to be written, and where its outcome goes.
type Pending = (RunRow, oneshot::Sender<Result<(), StoreError>>);

/// Where saves are handed to the writer of one store.
pub(super) struct Saves(mpsc::UnboundedSender<Pending>);

impl Saves {
    /// Writes `row` with whatever other saves come with it; done once it is in the database.
    pub(super) async fn save(&self, row: RunRow) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        let stopped = || StoreError("the history's writer has stopped".into());
        self.0.send((row, done)).map_err(|_| stopped())?;
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The writer of one store's saves.
pub(super) struct Writer<DB: Database> {
    pool: Pool<DB>,
    /// The statements that save 1, 2, 4… [`MOST_ROWS`] rows.
    statements: Vec<String>,
}

impl<DB> Writer<DB>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
{
    /// Starts the writer of `pool` (on the current runtime); it ends with the store.
    pub(super) fn start(pool: Pool<DB>) -> Saves {
        let (sender, receiver) = mpsc::unbounded_channel();
        let statements = (0..=MOST_ROWS.ilog2())
            .map(|power| upsert_statement::<DB>(1 << power))
            .collect();
        tokio::spawn(Writer { pool, statements }.write(receiver));
        Saves(sender)
    }

    /// Takes what is waiting (at most [`MOST_ROWS`]), writes it, tells each save; again, until
    /// the store is gone.
    async fn write(self, mut waiting: mpsc::UnboundedReceiver<Pending>) {
        let mut batch = Vec::new();
        while waiting.recv_many(&mut batch, MOST_ROWS).await > 0 {
            // A statement changes a row once: a run saved twice in one batch (a short run's start
            // and end) is written by two statements, in order.
            while !batch.is_empty() {
                let upto = first_repeat(&batch).unwrap_or(batch.len());
                let rows: Vec<Pending> = batch.drain(..upto).collect();
                let shared: Vec<&RunRow> = rows.iter().map(|(row, _)| row).collect();
                let outcome = self.upsert(&shared).await;
                match outcome {
                    Err(_) if rows.len() > 1 => {
                        for (row, done) in rows {
                            let _ = done.send(self.upsert(&[&row]).await);
                        }
                    }
                    outcome => {
                        let error = outcome.err().map(|err| err.0);
                        for (_, done) in rows {
                            let _ = done.send(match &error {
                                None => Ok(()),
                                Some(message) => Err(StoreError(message.clone())),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Writes `rows` (at most [`MOST_ROWS`]) with a statement for each power of two in their
    /// number. A failure may leave some written: writing them again changes nothing.
    async fn upsert(&self, mut rows: &[&RunRow]) -> Result<(), StoreError> {
        while !rows.is_empty() {
            let power = rows.len().ilog2();
            let (some, rest) = rows.split_at(1 << power);
            self.upsert_exactly(&self.statements[power as usize], some)
                .await?;
            rows = rest;
        }
        Ok(())
    }

    /// Writes `rows` with `sql`, the statement for their number ([`upsert_statement`]).
    async fn upsert_exactly(&self, sql: &str, rows: &[&RunRow]) -> Result<(), StoreError> {
        let mut query = sqlx::query(sql);
        for row in rows {
            query = query
                .bind(row.task_id.as_str())
                .bind(row.workflow_id.as_str())
                .bind(row.input.as_str())
                .bind(row.output.as_deref())
                .bind(row.status)
                .bind(row.error.as_deref())
                .bind(row.started_at)
                .bind(row.first_chunk_ms)
                .bind(row.duration_ms)
                .bind(row.title.as_str())
                .bind(row.settings.as_str())
                .bind(row.error_summary.as_deref())
                .bind(row.request_id.as_deref())
                .bind(row.prompt_tokens)
                .bind(row.completion_tokens)
                .bind(row.replica_id.as_deref())
                .bind(row.output_type)
                .bind(row.error_kind.as_deref())
                .bind(row.error_http_status)
                .bind(row.error_detail.as_deref())
                .bind(row.interrupt.as_deref())
                .bind(row.jobs.as_deref())
                .bind(row.trace_id.as_deref());
        }
        let written = query.execute(&self.pool).await;
        written.map(drop).map_err(super::sql::error)
    }
}

/// The statement that saves `rows` rows, in `DB`'s spelling (its parameters in order): the first save of a run records
/// it whole; later ones its progress, keeping the input (and the jobs, when they bring none).
fn upsert_statement<DB: Dialect>(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO runs (task_id, workflow_id, input, output, status, error, started_at, \
         first_chunk_ms, duration_ms, title, settings, error_summary, request_id, \
         prompt_tokens, completion_tokens, replica_id, output_type, error_kind, \
         error_http_status, error_detail, interrupt, jobs, trace_id) VALUES ",
    );
    for row in 0..rows {
        let first = row * COLUMNS + 1;
        let row: Vec<String> = (first..first + COLUMNS).map(DB::in_order).collect();
        let comma = if sql.ends_with(' ') { "" } else { ", " };
        sql.push_str(&format!("{comma}({})", row.join(", ")));
    }
    sql.push_str(
        " ON CONFLICT (task_id) DO UPDATE SET output = EXCLUDED.output, \
         output_type = EXCLUDED.output_type, status = EXCLUDED.status, \
         error = EXCLUDED.error, error_kind = EXCLUDED.error_kind, \
         error_http_status = EXCLUDED.error_http_status, error_detail = EXCLUDED.error_detail, \
         first_chunk_ms = EXCLUDED.first_chunk_ms, duration_ms = EXCLUDED.duration_ms, \
         error_summary = EXCLUDED.error_summary, prompt_tokens = EXCLUDED.prompt_tokens, \
         completion_tokens = EXCLUDED.completion_tokens, interrupt = EXCLUDED.interrupt, \
         jobs = COALESCE(EXCLUDED.jobs, runs.jobs), \
         trace_id = COALESCE(EXCLUDED.trace_id, runs.trace_id)",
    );
    sql
}

/// Where the first row whose task an earlier row of `batch` already saves is.
fn first_repeat(batch: &[Pending]) -> Option<usize> {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    batch
        .iter()
        .position(|(row, _)| !seen.insert(row.task_id.as_str()))
}
