-- Issue 17 (workloads_percent): PostgreSQL's budget_objects.object sorts byte by byte (COLLATE "C"), as SQLite's
-- text always does (BINARY); nothing to change for that here.
SELECT 1;
