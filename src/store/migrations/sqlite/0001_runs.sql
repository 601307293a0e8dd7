-- One row per run: recorded when it starts, replaced when it ends.
-- (IF NOT EXISTS: histories written before migrations existed already have this table.)
CREATE TABLE IF NOT EXISTS runs (
    task_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    status TEXT NOT NULL,
    error TEXT,
    started_at INTEGER NOT NULL,
    first_chunk_ms INTEGER,
    duration_ms INTEGER
);
