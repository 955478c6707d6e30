-- Issue 17: the kill switch. A freeze stops every mutation in its scope until it is lifted; every replica
-- reads the active ones (a handful of rows, through a partial index) before each mutation, so a freeze takes
-- effect everywhere at once and survives restarts. Only added: the previous release runs unchanged.
CREATE TABLE IF NOT EXISTS freezes (
    id TEXT PRIMARY KEY,
    -- The scope as canonical JSON (domain::FreezeScope), e.g. {"kind":"namespace","namespace":"shop"}.
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    frozen_by TEXT NOT NULL,
    frozen_at TEXT NOT NULL,
    -- The freeze.enabled entry; NULL only while it is being written.
    recorded_entry TEXT,
    lifted_by TEXT,
    lifted_at TEXT,
    lift_reason TEXT,
    lifted_entry TEXT
);
-- At most one active freeze per scope; the active ones are found without reading lifted history.
CREATE UNIQUE INDEX IF NOT EXISTS freezes_active_scope ON freezes (scope) WHERE lifted_at IS NULL;
