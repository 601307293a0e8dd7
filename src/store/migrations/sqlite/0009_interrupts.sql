-- A run waiting for a person (issue 25) keeps the points it waits on, as JSON, while it is
-- `interrupted` (a restart fails it like any run that did not finish); and what happened to
-- its jobs (their events, with their inputs and outputs within a bound), for its run view.
ALTER TABLE runs ADD COLUMN interrupt TEXT;
ALTER TABLE runs ADD COLUMN jobs TEXT;
