-- Issue 17: blast-radius budgets an admin sets for one identity (budget.set), besides the configured ones: one
-- row per identity that has its own limits (a JSON array), read with one primary-key lookup per mutation, and
-- only while some row exists (the store remembers "no rows" for a second). longest_window_seconds lets the pruning of
-- budget_usage keep what these windows still count. recorded_entry is the budget.set entry that set the row
-- (written before the row). Only added: the previous release ignores it.
CREATE TABLE IF NOT EXISTS identity_budgets (
    identity_id TEXT PRIMARY KEY,
    limits TEXT NOT NULL,
    longest_window_seconds INTEGER NOT NULL,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL,
    recorded_entry TEXT NOT NULL
);
