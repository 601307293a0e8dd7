-- Conversations (D19): turns with one workflow. Each answer is a run (its record is in `runs`);
-- a turn has one or more answers (versions), one of them shown.
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_recent ON conversations (updated_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS answers (
    conversation_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    version BIGINT NOT NULL,
    current BIGINT NOT NULL DEFAULT 0,
    prompt TEXT NOT NULL,
    task_id TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position, version)
);
