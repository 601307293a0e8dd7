-- Replicas sharing this database (D22): each says it is alive every few seconds; the runs
-- name the replica that runs them, and the pieces of a run that another replica follows are
-- written here by the one that runs it (the last row of a run, without a piece, ends it).
ALTER TABLE runs ADD COLUMN replica_id TEXT;
CREATE TABLE IF NOT EXISTS replicas (
    id TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS task_pieces (
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    piece TEXT,
    status TEXT,
    error TEXT,
    PRIMARY KEY (task_id, seq)
);
