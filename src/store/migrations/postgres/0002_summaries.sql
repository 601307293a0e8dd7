-- What the history's list shows, kept beside each run so that listing reads no input or output.
-- Runs are listed newest first by task id (ULIDs sort by time), which the primary key indexes.
ALTER TABLE runs ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN error_summary TEXT;
