-- What the history's list shows, kept beside each run so that listing reads no input or output:
-- the prompt's first line, the input's numbers, a shortened error. Runs are listed newest first
-- by task id (ULIDs sort by time), which the primary key already indexes.
ALTER TABLE runs ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN error_summary TEXT;

UPDATE runs SET
    title = COALESCE(
        (SELECT substr(
                    CASE WHEN instr(value, char(10)) > 0
                         THEN substr(value, 1, instr(value, char(10)) - 1)
                         ELSE value END,
                    1, 80)
           FROM json_each(runs.input) WHERE json_each.type = 'text' LIMIT 1),
        '(no prompt)'),
    settings = COALESCE(
        (SELECT json_group_object(key, value)
           FROM json_each(runs.input) WHERE json_each.type IN ('integer', 'real')),
        '{}'),
    error_summary = CASE WHEN length(error) > 300 THEN substr(error, 1, 300) || '…' ELSE error END;
