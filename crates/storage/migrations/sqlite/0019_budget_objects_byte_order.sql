-- Issue 17 (workloads_percent): PostgreSQL's budget_objects.object sorts byte by byte (COLLATE "C"), as SQLite's
-- text always does (BINARY); nothing to change here. The migration keeps both backends' numbering in step.
SELECT 1;
