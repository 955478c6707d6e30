-- Trust scores kept up to date as entries are appended (derived state: a pure function of the entries,
-- see `ledger_core::trust`; `docketops trust rebuild` recomputes it). The appender folds each batch into
-- these tables in the batch's own transaction when `trust_state.folded_seq` is the seq just before it;
-- otherwise (entries written by an older release, another scoring version) a catch-up folds what is missing.
-- Older releases ignore these tables.
CREATE TABLE trust_actions (
    action_id   TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL,
    risk        TEXT NOT NULL
);

CREATE TABLE trust_scores (
    identity_id TEXT PRIMARY KEY,
    score       BIGINT NOT NULL,
    changes     BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL
);

-- Every entry that moved a score, with the score after it (the identity page pages through these).
CREATE TABLE trust_changes (
    identity_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    entry_id    TEXT NOT NULL,
    action_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    delta       BIGINT NOT NULL,
    score       BIGINT NOT NULL,
    PRIMARY KEY (identity_id, seq)
);

-- One row: every entry up to `folded_seq` is folded into the tables above, by scoring version `version`.
CREATE TABLE trust_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    folded_seq BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
-- Version 1 is ledger_core::trust::SCORING_VERSION when this table was made; an existing ledger is
-- behind (folded_seq 0) and is caught up when the gateway starts.
INSERT INTO trust_state (id, folded_seq, version) VALUES (1, 0, 1);
