-- The files runs' inputs carried, kept once as bytes beside the run (its input names each
-- `upload:ID`) instead of as base64 inside the input; `bytes` is NULL once the retention
-- removed them (too old, or room was needed for newer ones).
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    field TEXT NOT NULL,
    name TEXT,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    bytes BLOB,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_task ON uploads (task_id);
CREATE INDEX IF NOT EXISTS uploads_age ON uploads (created_at);
