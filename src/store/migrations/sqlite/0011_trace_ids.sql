-- The trace a run is exported as (issue 29), for the run view on any replica.
ALTER TABLE runs ADD COLUMN trace_id TEXT;
