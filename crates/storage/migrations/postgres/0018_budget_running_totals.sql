-- Issue 17: a budget check must cost a few index lookups, whatever the usage in its window (counting the
-- window's rows of budget_usage grew with every mutation admitted). budget_spend keeps, per subject, the
-- mutations in reservation order (seq) with running totals, and 'at' never decreasing along seq, so the usage
-- of a window is the newest row's totals minus the totals before the window's first row: two lookups of the
-- primary key and of (subject, at). budget_objects keeps when each object was last changed, per subject:
-- whether an object is new to a window is one lookup, and distinct objects are counted only up to a limit.
-- The rows of budget_usage are carried over with their totals; the previous release keeps writing
-- budget_usage (not read any more), so budgets are not shared between releases during a rolling upgrade.
CREATE TABLE IF NOT EXISTS budget_spend (
    subject TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    action_id TEXT NOT NULL,
    object TEXT NOT NULL,
    deletes BIGINT NOT NULL,
    replicas BIGINT NOT NULL,
    total_mutations BIGINT NOT NULL,
    total_deletes BIGINT NOT NULL,
    total_replicas BIGINT NOT NULL,
    PRIMARY KEY (subject, seq)
);
CREATE INDEX IF NOT EXISTS budget_spend_subject_at ON budget_spend (subject, at, seq);
CREATE TABLE IF NOT EXISTS budget_objects (
    subject TEXT NOT NULL,
    object TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (subject, object)
);
CREATE INDEX IF NOT EXISTS budget_objects_subject_last ON budget_objects (subject, last_at);
INSERT INTO budget_spend (subject, seq, at, action_id, object, deletes, replicas, total_mutations, total_deletes,
                          total_replicas)
SELECT subject, ROW_NUMBER() OVER w, at, action_id, object, deletes, replicas, COUNT(*) OVER w,
       SUM(deletes) OVER w, SUM(replicas) OVER w
FROM budget_usage
WINDOW w AS (PARTITION BY subject ORDER BY at, action_id ROWS UNBOUNDED PRECEDING);
INSERT INTO budget_objects (subject, object, last_at)
SELECT subject, object, MAX(at) FROM budget_usage GROUP BY subject, object;
