//! Run history stores: SQLite (a file beside the config) is the default. The record and the
//! store trait are the engine's ([`compose::record`]); the database drivers live here.

mod metered;
mod postgres;
mod rows;
mod saves;
mod sessions;
mod sql;
mod sqlite;
#[cfg(test)]
mod suite;
mod uploads;

pub use compose::record::{
    Answer, Conversation, ConversationSummary, Failure, FailureKind, Output, Pruned, RunRecord,
    RunStore, RunSummary, Status, StoreError, StoredUpload, TokenUsage, Turn,
};
pub use metered::Metered;
pub use postgres::PgStore;
pub use sessions::{SessionLimits, SessionStore, SessionUse};
pub use sql::{now_ms, REPLICA_LOST_AFTER};
pub use sqlite::SqliteStore;
