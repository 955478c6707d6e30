-- Issue 17 (workloads_percent): a namespace's workloads are counted as the budget_objects rows whose object key
-- lies in a range ('c/ns/Deployment/' up to 'c/ns/Deployment0'), which holds only if keys sort byte by byte.
-- A database created with a locale collation (en_US.UTF-8 …) may ignore punctuation and sort otherwise, so the
-- column sorts in the C collation whatever the database's default. The table holds about one window of usage.
ALTER TABLE budget_objects ALTER COLUMN object TYPE TEXT COLLATE "C";
