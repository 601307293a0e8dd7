//! Run history stores: SQLite (a file beside the config) is the default. The record and the
//! store trait are the engine's ([`compose::record`]); the database drivers live here.

mod metered;
mod sqlite;

pub use compose::record::{
    Answer, Conversation, ConversationSummary, RunRecord, RunStore, RunSummary, StoreError,
    TokenUsage, Turn,
};
pub use metered::Metered;
pub use sqlite::SqliteStore;
