-- Identities, their API keys and actions: lookup tables projected from the ledger, which stays
-- authoritative. A row is effective only once the ledger entry that records it is durable
-- (`recorded_entry` set); rows left unrecorded by a crash are removed at start-up.
CREATE TABLE identities (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    roles          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    recorded_entry TEXT
);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    identity_id    TEXT NOT NULL REFERENCES identities (id),
    digest         TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    recorded_entry TEXT
);
CREATE INDEX api_keys_identity ON api_keys (identity_id);

CREATE TABLE actions (
    id            TEXT PRIMARY KEY,
    identity_id   TEXT NOT NULL,
    action_type   TEXT NOT NULL,
    namespace     TEXT,
    resource_kind TEXT NOT NULL,
    resource_name TEXT,
    status        TEXT NOT NULL,
    risk          TEXT,
    decision      TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_entry_id TEXT
);
CREATE INDEX actions_identity ON actions (identity_id, created_at);
CREATE INDEX actions_status ON actions (status, created_at);
