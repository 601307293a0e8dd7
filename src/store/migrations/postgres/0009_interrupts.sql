-- A run waiting for a person (issue 25) keeps the points it waits on, as JSON, while it is
-- `interrupted`; a restart fails it like any run that did not finish.
ALTER TABLE runs ADD COLUMN interrupt TEXT;
