-- Runs say what their output is and how they failed (issue 24): the output's type (`text`,
-- `json`, `bytes`) beside its text, and the failure's kind, HTTP status and particulars beside
-- its message. Rows written before read as text and as failures of an unknown kind. A
-- streaming run is `processing`, the one spelling of a run that is going.
ALTER TABLE runs ADD COLUMN output_type TEXT;
ALTER TABLE runs ADD COLUMN error_kind TEXT;
ALTER TABLE runs ADD COLUMN error_http_status BIGINT;
ALTER TABLE runs ADD COLUMN error_detail TEXT;
UPDATE runs SET status = 'processing' WHERE status = 'streaming';
