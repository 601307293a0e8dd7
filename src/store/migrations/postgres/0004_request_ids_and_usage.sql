-- The id of the request that started each run, and the tokens its upstreams reported.
ALTER TABLE runs ADD COLUMN request_id TEXT;
ALTER TABLE runs ADD COLUMN prompt_tokens BIGINT;
ALTER TABLE runs ADD COLUMN completion_tokens BIGINT;
