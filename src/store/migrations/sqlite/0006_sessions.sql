-- Web UI sessions (D17), shared by every replica and kept across restarts: the SHA-256 of each
-- session's token (never the token), when it was opened and when it was last used.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    opened_at INTEGER NOT NULL,
    used_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_used_at ON sessions (used_at);
