-- An agent's stream (issue 26) is its text and its steps in order: a row that is a step names
-- it (`text`, `message`, `tool_call`, `tool_result`); a plain piece has none.
ALTER TABLE task_pieces ADD COLUMN step TEXT;
