-- Issue 18: the console's overview counts per hour (derived state: a pure function of the entries, see
-- `ledger_core::activity`), folded by a catch-up off the request path so the overview reads a few dozen rows
-- whatever the size of the ledger. Rows older than 31 days are pruned as the fold goes. Older releases
-- ignore these tables.
CREATE TABLE IF NOT EXISTS activity_hours (
    hour  TEXT NOT NULL,
    tally TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (hour, tally)
);

-- Actions requested per identity and hour (the most active identities).
CREATE TABLE IF NOT EXISTS activity_requesters (
    hour        TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (hour, identity_id)
);

-- Denials per cause and hour (denials by reason).
CREATE TABLE IF NOT EXISTS activity_denials (
    hour   TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (hour, source, reason)
);

-- The first entry of each hour: where a trust trend starts ("the score 24 hours ago").
CREATE TABLE IF NOT EXISTS activity_marks (
    hour      TEXT PRIMARY KEY,
    first_seq BIGINT NOT NULL
);

-- One row: every entry up to `folded_seq` is counted, by `ledger_core::activity::ACTIVITY_VERSION` `version`.
CREATE TABLE IF NOT EXISTS activity_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    folded_seq BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
