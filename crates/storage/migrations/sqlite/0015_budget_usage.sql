-- Issue 17: blast-radius budgets. One row per admitted mutation and per subject it counts against
-- (identity:…, role:…, namespace:…, cluster:…, global), so a budget's usage over a window is one range of the
-- primary key, as long as the mutations admitted in that window (never longer than its limit allows), whatever
-- the size of the ledger. Rows older than every window are pruned. Only added: the previous release ignores it.
CREATE TABLE IF NOT EXISTS budget_usage (
    subject TEXT NOT NULL,
    at TEXT NOT NULL,
    action_id TEXT NOT NULL,
    object TEXT NOT NULL,
    deletes INTEGER NOT NULL,
    replicas INTEGER NOT NULL,
    PRIMARY KEY (subject, at, action_id)
);
