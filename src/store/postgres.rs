//! The PostgreSQL run history (sqlx), for several replicas sharing one database: the same
//! numbered migrations as SQLite (`migrations/postgres/`), applied when it is opened, and the
//! same statements (`sql.rs`).

use std::borrow::Cow;
use std::time::Duration;

use sqlx::postgres::{PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Pool, Postgres, Transaction};

use super::saves::Writer;
use super::sql::{Dialect, SqlStore};
use super::StoreError;

/// Run history in a PostgreSQL database.
pub type PgStore = SqlStore<Postgres>;

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
            saves: Writer::start(pool.clone()),
            pool,
            replica: Some(replica.to_string()),
            retention: Default::default(),
        })
    }

    /// The connection pool, for the replicas' coordination (`crate::cluster`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn replica(&self) -> &str {
        self.replica.as_deref().unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Dialect for Postgres {
    fn statement(sql: &str) -> Cow<'_, str> {
        Cow::Borrowed(sql)
    }

    fn in_order(n: usize) -> String {
        format!("${n}")
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// Locks the conversation's row: answers to it are added one at a time, whichever replica
    /// adds them.
    async fn begin_answer(
        pool: &Pool<Postgres>,
        conversation: &str,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(conversation)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// PostgreSQL reuses the room of removed rows by itself (autovacuum).
    async fn compact(_pool: &Pool<Postgres>) -> Result<(), sqlx::Error> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{suite, RunStore};

    #[tokio::test]
    async fn postgres_passes_the_store_suite() {
        let server = testkit::postgres::Postgres::start();
        let store = PgStore::open(&server.database(), "r1").await.unwrap();
        suite::every_operation(&store).await;
        suite::sessions(&store).await;
        // Opening it again (another replica, a restart) finds it migrated and keeps it.
        let url = format!("postgres://mc@127.0.0.1:{}/t0", server.port);
        let again = PgStore::open(&url, "r2").await.unwrap();
        assert!(again.get("a").await.unwrap().is_some());
        store.close().await;
        again.close().await;
    }

    #[tokio::test]
    async fn postgres_keeps_uploads_apart_within_the_retention() {
        let server = testkit::postgres::Postgres::start();
        let store = PgStore::open(&server.database(), "r1")
            .await
            .unwrap()
            .with_retention(suite::small_retention());
        suite::uploads(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saves_at_once_all_land() {
        let server = testkit::postgres::Postgres::start();
        let store = PgStore::open(&server.database(), "r1").await.unwrap();
        suite::saves_at_once(Arc::new(store)).await;
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
