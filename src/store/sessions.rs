//! The web UI's sessions (D17), kept in the history's database so that every replica accepts
//! them and a restart keeps them. A session is known by the SHA-256 of its token: what the
//! database holds opens nothing. Sessions expire after a while unused (sliding), and past a
//! bound on their number the least recently used go first.

use std::time::Duration;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::sql::{error, now_ms, Dialect, SqlStore};
use super::StoreError;

/// A session's last use is written again when it is older than this: often enough for an
/// expiry measured in days, seldom enough that a page's requests write nothing.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// How long sessions last and how many are kept.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Unused for this long, a session is closed.
    pub idle: Duration,
    /// The most sessions kept; past it, the least recently used are closed.
    pub max: u64,
}

/// What a request's session turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// Not open (never was, closed, or expired).
    Unknown,
    /// Open; `refreshed` when its expiry was pushed back by this use.
    Open { refreshed: bool },
}

/// Where sessions are kept.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Records a new session; expired ones go, and the least recently used past the bound.
    async fn open_session(&self, token_hash: &str, limits: SessionLimits)
        -> Result<(), StoreError>;
    /// Whether the session is open, marking it used (which pushes its expiry back).
    async fn use_session(&self, token_hash: &str, idle: Duration)
        -> Result<SessionUse, StoreError>;
    async fn close_session(&self, token_hash: &str) -> Result<(), StoreError>;
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl<DB> SessionStore for SqlStore<DB>
where
    DB: Dialect,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn open_session(
        &self,
        token_hash: &str,
        limits: SessionLimits,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(&DB::statement("DELETE FROM sessions WHERE used_at < $1"))
            .bind(now.saturating_sub(ms(limits.idle)))
            .execute(&self.pool)
            .await
            .map_err(error)?;
        sqlx::query(&DB::statement(
            "INSERT INTO sessions (token_hash, opened_at, used_at) VALUES ($1, $2, $2)",
        ))
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        let count: i64 = sqlx::query(&DB::statement("SELECT COUNT(*) FROM sessions"))
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(error)?;
        let max = i64::try_from(limits.max).unwrap_or(i64::MAX);
        if count > max {
            sqlx::query(&DB::statement(
                "DELETE FROM sessions WHERE token_hash IN \
                 (SELECT token_hash FROM sessions ORDER BY used_at ASC LIMIT $1)",
            ))
            .bind(count - max)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        }
        Ok(())
    }

    async fn use_session(
        &self,
        token_hash: &str,
        idle: Duration,
    ) -> Result<SessionUse, StoreError> {
        let now = now_ms();
        let used_at: Option<i64> = sqlx::query(&DB::statement(
            "SELECT used_at FROM sessions WHERE token_hash = $1",
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(error)?;
        let Some(used_at) = used_at else {
            return Ok(SessionUse::Unknown);
        };
        if used_at < now.saturating_sub(ms(idle)) {
            self.close_session(token_hash).await?;
            return Ok(SessionUse::Unknown);
        }
        let refreshed = used_at < now.saturating_sub(ms(REFRESH_EVERY));
        if refreshed {
            sqlx::query(&DB::statement(
                "UPDATE sessions SET used_at = $1 WHERE token_hash = $2",
            ))
            .bind(now)
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        }
        Ok(SessionUse::Open { refreshed })
    }

    async fn close_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(&DB::statement("DELETE FROM sessions WHERE token_hash = $1"))
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(())
    }
}
