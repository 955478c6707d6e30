-- Approvals (lookup rows beside the ledger's approval.* entries). The request is kept so an approved
-- action can be previewed again and executed; the digest binds an approval to what was previewed.
ALTER TABLE actions ADD COLUMN request TEXT;
ALTER TABLE actions ADD COLUMN approval_digest TEXT;
ALTER TABLE actions ADD COLUMN approvals_required BIGINT;
ALTER TABLE actions ADD COLUMN expires_at TEXT;

CREATE TABLE approvals (
    action_id   TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    decision    TEXT NOT NULL,
    digest      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    entry_id    TEXT,
    PRIMARY KEY (action_id, approver_id)
);
