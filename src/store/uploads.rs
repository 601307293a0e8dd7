//! The files runs' inputs carry, kept once as bytes beside their run (the input names each
//! `upload:ID`), within the retention: a size for all of them (the oldest make room for new
//! ones, before those are written, so that the database does not outgrow it) and an age for
//! each; and runs past their own age. An upload whose bytes went shows as removed.

use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::sql::{error, now_ms, Dialect, SqlStore};
use super::{Pruned, StoreError, StoredUpload};
use compose::config::Retention;
use compose::media::Blob;
use compose::record::UPLOAD_PREFIX;

/// A file taken out of a run's input, to be stored.
pub(super) struct NewUpload {
    id: String,
    field: String,
    blob: Blob,
}

/// The input with every file (a data URI) replaced by `upload:ID`, and those files.
pub(super) fn extract(input: &Value) -> (Value, Vec<NewUpload>) {
    let mut found = Found {
        uploads: Vec::new(),
        // Ids in the order the files come (a run's uploads are listed by id).
        ids: ulid::Generator::new(),
    };
    let input = replace(input, String::new(), &mut found);
    (input, found.uploads)
}

struct Found {
    uploads: Vec<NewUpload>,
    ids: ulid::Generator,
}

fn replace(value: &Value, field: String, found: &mut Found) -> Value {
    match value {
        Value::String(text) => match text.starts_with("data:").then(|| Blob::from_data_uri(text)) {
            Some(Some(blob)) => {
                let id = found
                    .ids
                    .generate()
                    .unwrap_or_else(|_| ulid::Ulid::new())
                    .to_string();
                let reference = Value::String(format!("{UPLOAD_PREFIX}{id}"));
                found.uploads.push(NewUpload { id, field, blob });
                reference
            }
            _ => value.clone(),
        },
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let field = if field.is_empty() {
                        key.clone()
                    } else {
                        format!("{field}.{key}")
                    };
                    (key.clone(), replace(item, field, found))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| replace(item, format!("{field}[{i}]"), found))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> Option<Vec<u8>>: Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Stores a run's files, after making room for them: the oldest uploads' bytes go until
    /// the new ones fit within the retention's size. A file larger than that is recorded as
    /// removed at once.
    pub(super) async fn store_uploads(
        &self,
        task_id: &str,
        uploads: Vec<NewUpload>,
    ) -> Result<(), StoreError> {
        let cap = i64::try_from(self.retention.uploads_size.0).unwrap_or(i64::MAX);
        let incoming: i64 = uploads
            .iter()
            .map(|u| i64::try_from(u.blob.bytes.len()).unwrap_or(i64::MAX))
            .filter(|size| *size <= cap)
            .sum();
        self.make_room(cap.saturating_sub(incoming)).await?;
        let now = now_ms();
        for upload in uploads {
            let size = i64::try_from(upload.blob.bytes.len()).unwrap_or(i64::MAX);
            let bytes = (size <= cap).then_some(upload.blob.bytes);
            sqlx::query(&DB::statement(
                "INSERT INTO uploads (id, task_id, field, name, media_type, size, bytes, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ))
            .bind(upload.id)
            .bind(task_id)
            .bind(upload.field)
            .bind(upload.blob.name)
            .bind(upload.blob.media_type)
            .bind(size)
            .bind(bytes)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        }
        DB::compact(&self.pool).await.map_err(error)
    }

    /// Removes the oldest uploads' bytes until those left take at most `room` bytes.
    async fn make_room(&self, room: i64) -> Result<(), StoreError> {
        let kept: i64 = sqlx::query(&DB::statement(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads WHERE bytes IS NOT NULL",
        ))
        .fetch_one(&self.pool)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(error)?;
        let mut excess = kept - room;
        if excess <= 0 {
            return Ok(());
        }
        let oldest = sqlx::query(&DB::statement(
            "SELECT id, size FROM uploads WHERE bytes IS NOT NULL ORDER BY created_at, id",
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        for row in oldest {
            if excess <= 0 {
                break;
            }
            let (id, size): (String, i64) = (
                row.try_get(0).map_err(error)?,
                row.try_get(1).map_err(error)?,
            );
            sqlx::query(&DB::statement(
                "UPDATE uploads SET bytes = NULL WHERE id = $1",
            ))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(error)?;
            excess -= size;
        }
        Ok(())
    }

    /// What is known of a run's uploads.
    pub(super) async fn uploads_of(&self, task_id: &str) -> Result<Vec<StoredUpload>, StoreError> {
        let rows = sqlx::query(&DB::statement(
            "SELECT id, field, name, media_type, size, \
             CAST(CASE WHEN bytes IS NULL THEN 1 ELSE 0 END AS BIGINT) \
             FROM uploads WHERE task_id = $1 ORDER BY id",
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter()
            .map(stored)
            .collect::<Result<_, _>>()
            .map_err(error)
    }

    /// One upload of a run, with its bytes unless they were removed.
    pub(super) async fn read_upload(
        &self,
        task_id: &str,
        upload_id: &str,
    ) -> Result<Option<(StoredUpload, Option<Vec<u8>>)>, StoreError> {
        let row = sqlx::query(&DB::statement(
            "SELECT id, field, name, media_type, size, \
             CAST(CASE WHEN bytes IS NULL THEN 1 ELSE 0 END AS BIGINT), bytes \
             FROM uploads WHERE task_id = $1 AND id = $2",
        ))
        .bind(task_id)
        .bind(upload_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let upload = stored(&row).map_err(error)?;
        let bytes: Option<Vec<u8>> = row.try_get(6).map_err(error)?;
        Ok(Some((upload, bytes)))
    }

    /// Removes what is older than the retention keeps: uploads' bytes, and whole runs that
    /// have ended (with their uploads).
    pub(super) async fn prune_history(&self, retention: &Retention) -> Result<Pruned, StoreError> {
        let now = now_ms();
        let uploads = sqlx::query(&DB::statement(
            "UPDATE uploads SET bytes = NULL WHERE bytes IS NOT NULL AND created_at < $1",
        ))
        .bind(now.saturating_sub(ms(retention.uploads.0)))
        .execute(&self.pool)
        .await
        .map_err(error)?;
        let old_runs = now.saturating_sub(ms(retention.runs.0));
        let ended = "started_at < $1 AND status IN ('completed', 'failed', 'cancelled')";
        sqlx::query(&DB::statement(&format!(
            "DELETE FROM uploads WHERE task_id IN (SELECT task_id FROM runs WHERE {ended})"
        )))
        .bind(old_runs)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        let runs = sqlx::query(&DB::statement(&format!("DELETE FROM runs WHERE {ended}")))
            .bind(old_runs)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        DB::compact(&self.pool).await.map_err(error)?;
        Ok(Pruned {
            uploads: DB::rows_affected(&uploads),
            runs: DB::rows_affected(&runs),
        })
    }
}

/// An upload's row: id, field, name, media type, size, whether its bytes were removed.
fn stored<R: Row>(row: &R) -> Result<StoredUpload, sqlx::Error>
where
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredUpload {
        id: row.try_get(0)?,
        field: row.try_get(1)?,
        name: row.try_get(2)?,
        media_type: row.try_get(3)?,
        size: u64::try_from(row.try_get::<i64, _>(4)?).unwrap_or_default(),
        removed: row.try_get::<i64, _>(5)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_in_an_input_become_references() {
        let png = Blob {
            media_type: "image/png".into(),
            name: Some("cat.png".into()),
            bytes: vec![1, 2, 3],
        }
        .to_data_uri();
        let input = json!({"prompt": "data: not a file", "image": png, "pages": ["x", png]});
        let (input, uploads) = extract(&input);
        assert_eq!(uploads.len(), 2);
        assert_eq!(
            input,
            json!({
                "prompt": "data: not a file",
                "image": format!("upload:{}", uploads[0].id),
                "pages": ["x", format!("upload:{}", uploads[1].id)]
            })
        );
        assert_eq!(
            (uploads[0].field.as_str(), uploads[1].field.as_str()),
            ("image", "pages[1]")
        );
        assert_eq!(uploads[0].blob.bytes, [1, 2, 3]);
        assert_eq!(uploads[0].blob.name.as_deref(), Some("cat.png"));
    }
}
