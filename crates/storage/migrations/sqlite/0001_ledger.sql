-- The ledger: one row per entry, append-only. Text columns hold exactly the bytes that were hashed
-- and signed (the payload is canonical JSON text, never re-encoded by the database).
CREATE TABLE ledger_entries (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    timestamp       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    action_id       TEXT,
    payload         TEXT    NOT NULL,
    prev_chain_hash TEXT    NOT NULL,
    event_hash      TEXT    NOT NULL,
    chain_hash      TEXT    NOT NULL,
    key_id          TEXT    NOT NULL,
    signature       TEXT    NOT NULL
);
CREATE INDEX ledger_entries_action_id ON ledger_entries (action_id) WHERE action_id IS NOT NULL;

-- Defence in depth: the application never updates or deletes an entry. Someone with direct database
-- access can drop these triggers; verification still catches what they change.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;

-- Public signing keys as the chain introduced them (genesis and rotation entries); a lookup copy,
-- the chain stays authoritative.
CREATE TABLE ledger_keys (
    key_id         TEXT    PRIMARY KEY,
    algorithm      TEXT    NOT NULL,
    public_key     TEXT    NOT NULL,
    introduced_seq INTEGER NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
