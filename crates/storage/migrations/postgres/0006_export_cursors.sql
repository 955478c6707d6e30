-- SIEM export positions (`docketops siem run`): for each named export, the last entry its sink
-- acknowledged. The exporter resumes after `last_seq`; `last_entry_id` lets it notice a ledger that was
-- replaced under it (the entry at `last_seq` must still have this id).
CREATE TABLE export_cursors (
    name          TEXT PRIMARY KEY,
    last_seq      BIGINT NOT NULL,
    last_entry_id TEXT,
    updated_at    TEXT NOT NULL
);
