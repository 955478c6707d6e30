-- Issue 17 (workloads_percent): PostgreSQL's budget_objects.object sorts byte by byte (COLLATE "C"), as SQLite's
-- text always does (BINARY); nothing to change for that here.
-- The recovery pass forgets usage older than the longest window (DELETE … WHERE at < $1): by these indexes a
-- range of the oldest rows, not a scan of the tables, which hold up to a window of usage.
CREATE INDEX IF NOT EXISTS budget_spend_at ON budget_spend (at);
CREATE INDEX IF NOT EXISTS budget_objects_last_at ON budget_objects (last_at);
