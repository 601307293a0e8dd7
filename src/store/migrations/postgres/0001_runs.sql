-- One row per run: recorded when it starts, updated when it ends. (The same numbered steps as
-- the SQLite history, in PostgreSQL's types: times and counts are 64-bit integers.)
CREATE TABLE IF NOT EXISTS runs (
    task_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    status TEXT NOT NULL,
    error TEXT,
    started_at BIGINT NOT NULL,
    first_chunk_ms BIGINT,
    duration_ms BIGINT
);
