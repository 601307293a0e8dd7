//! Rows of the history, read the same way from every database: the stores differ in their SQL
//! only.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    Answer, ConversationSummary, Failure, FailureKind, Output, RunRecord, RunSummary, Status,
    TokenUsage, Turn,
};
use compose::record::{JobEvent, JobStage};

/// A row of any of the databases: columns by name, text and 64-bit integers.
pub(super) trait HistoryRow: Row {
    fn get_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn get_i64(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
}

impl<R> HistoryRow for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn get_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }

    fn get_i64(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
}

/// A column that may not be null.
fn required<T>(value: Option<T>, column: &str) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::ColumnNotFound(format!("{column} is null")))
}

pub(super) fn summary<R: HistoryRow>(row: &R) -> Result<RunSummary, sqlx::Error> {
    Ok(RunSummary {
        task_id: text(row, "task_id")?,
        workflow_id: text(row, "workflow_id")?,
        title: text(row, "title")?,
        settings: json(row.get_text("settings")?).unwrap_or_default(),
        status: status(row)?,
        error: failure(row, "error_summary")?,
        started_at: int(row, "started_at")?,
        first_chunk_ms: row.get_i64("first_chunk_ms")?,
        duration_ms: row.get_i64("duration_ms")?,
    })
}

pub(super) fn conversation<R: HistoryRow>(row: &R) -> Result<ConversationSummary, sqlx::Error> {
    Ok(ConversationSummary {
        id: text(row, "id")?,
        workflow_id: text(row, "workflow_id")?,
        title: text(row, "title")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

/// An answer of a conversation, with its position and whether it is the one shown.
pub(super) fn answer<R: HistoryRow>(row: &R) -> Result<(u32, Answer, bool), sqlx::Error> {
    let answer = Answer {
        version: count(int(row, "version")?),
        prompt: text(row, "prompt")?,
        task_id: text(row, "task_id")?,
        status: row
            .get_text("status")?
            .as_deref()
            .map(named_status)
            .transpose()?,
        settings: json(row.get_text("settings")?).unwrap_or_default(),
        output: output(row)?,
        error: failure(row, "error")?,
        duration_ms: row.get_i64("duration_ms")?,
        steps: json::<Vec<JobEvent>>(row.get_text("jobs")?)
            .unwrap_or_default()
            .into_iter()
            .filter(|event| event.event == JobStage::Message)
            .collect(),
        first_chunk_ms: row.get_i64("first_chunk_ms")?,
        usage: usage(row)?,
    };
    let current = int(row, "current")? != 0;
    Ok((count(int(row, "position")?), answer, current))
}

/// A conversation's answers, in order of position and version, as its turns: each with the
/// answer it shows.
pub(super) fn turns(answers: Vec<(u32, Answer, bool)>) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::new();
    for (position, answer, current) in answers {
        let version = answer.version;
        match turns.last_mut().filter(|turn| turn.position == position) {
            Some(turn) => turn.versions.push(answer),
            None => turns.push(Turn {
                position,
                current: 0,
                versions: vec![answer],
            }),
        }
        if let (true, Some(turn)) = (current, turns.last_mut()) {
            turn.current = version;
        }
    }
    turns
}

/// A position or a version as stored (never negative).
pub(super) fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or_default()
}

/// The columns of a summary: never the input or the output.
pub(super) const SUMMARY_COLUMNS: &str = "task_id, workflow_id, title, settings, status, \
                                          error_summary, error_kind, error_http_status, \
                                          error_detail, started_at, first_chunk_ms, duration_ms";

pub(super) fn record<R: HistoryRow>(row: &R) -> Result<RunRecord, sqlx::Error> {
    Ok(RunRecord {
        task_id: text(row, "task_id")?,
        workflow_id: text(row, "workflow_id")?,
        input: json(row.get_text("input")?).unwrap_or(serde_json::Value::Null),
        output: output(row)?,
        status: status(row)?,
        error: failure(row, "error")?,
        started_at: int(row, "started_at")?,
        first_chunk_ms: row.get_i64("first_chunk_ms")?,
        duration_ms: row.get_i64("duration_ms")?,
        request_id: row.get_text("request_id")?,
        trace_id: row.get_text("trace_id")?,
        usage: usage(row)?,
        // Read apart (see `uploads`).
        uploads: Vec::new(),
        interrupt: json(row.get_text("interrupt")?).unwrap_or_default(),
        jobs: json(row.get_text("jobs")?).unwrap_or_default(),
    })
}

fn status<R: HistoryRow>(row: &R) -> Result<Status, sqlx::Error> {
    named_status(&text(row, "status")?)
}

fn named_status(name: &str) -> Result<Status, sqlx::Error> {
    Status::named(name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown status {name:?}").into()))
}

/// The output a row records, of the type it records (a row written before types: text).
fn output<R: HistoryRow>(row: &R) -> Result<Option<Output>, sqlx::Error> {
    let Some(text) = row.get_text("output")? else {
        return Ok(None);
    };
    let type_name = row.get_text("output_type")?;
    Ok(Some(Output::from_stored(type_name.as_deref(), text)))
}

/// The failure a row records, its message in `message_column` (the whole, or the shortened
/// one of a summary). A row written before failures had kinds reads as of an unknown kind.
fn failure<R: HistoryRow>(row: &R, message_column: &str) -> Result<Option<Failure>, sqlx::Error> {
    let Some(message) = row.get_text(message_column)? else {
        return Ok(None);
    };
    let kind = row
        .get_text("error_kind")?
        .and_then(|kind| serde_json::from_value(serde_json::Value::String(kind)).ok())
        .unwrap_or(FailureKind::Unknown);
    let mut failure = Failure::new(kind, message);
    if let Some(status) = row.get_i64("error_http_status")? {
        failure.http_status = u16::try_from(status).unwrap_or(500);
    }
    failure.detail = json(row.get_text("error_detail")?);
    Ok(Some(failure))
}

/// A failure's columns as stored: its kind, HTTP status and detail (its message has columns
/// of its own).
pub(super) fn failure_columns(
    failure: Option<&Failure>,
) -> (Option<String>, Option<i64>, Option<String>) {
    let Some(failure) = failure else {
        return (None, None, None);
    };
    let kind = serde_json::to_value(failure.kind)
        .ok()
        .and_then(|kind| kind.as_str().map(str::to_string));
    let detail = failure.detail.as_ref().map(|detail| detail.to_string());
    (kind, Some(i64::from(failure.http_status)), detail)
}

/// The tokens a row records, if any were reported.
fn usage<R: HistoryRow>(row: &R) -> Result<Option<TokenUsage>, sqlx::Error> {
    let count = |column| {
        row.get_i64(column)
            .map(|n| n.and_then(|n| u64::try_from(n).ok()))
    };
    Ok(TokenUsage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
    }
    .reported())
}

/// A token count as the databases store it (a signed integer).
pub(super) fn tokens(count: Option<u64>) -> Option<i64> {
    count.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn text<R: HistoryRow>(row: &R, column: &str) -> Result<String, sqlx::Error> {
    required(row.get_text(column)?, column)
}

fn int<R: HistoryRow>(row: &R, column: &str) -> Result<i64, sqlx::Error> {
    required(row.get_i64(column)?, column)
}

/// JSON stored as text (an input, the settings).
fn json<T: serde::de::DeserializeOwned>(stored: Option<String>) -> Option<T> {
    serde_json::from_str(&stored?).ok()
}
