-- Who runs an action: the gateway process (instance) that owns an action while it is RUNNING or EXECUTING,
-- and the instances' heartbeats, so that an action whose owner is gone (crash, kill -9) is found and
-- resolved against the cluster. `intent` is what the action is about to send, stored before the call;
-- `idempotency_key` is the client's key for a retried submission. Older releases ignore these columns.
ALTER TABLE actions ADD COLUMN owner TEXT;
ALTER TABLE actions ADD COLUMN intent TEXT;
ALTER TABLE actions ADD COLUMN idempotency_key TEXT;
CREATE INDEX actions_unfinished ON actions (updated_at) WHERE status IN ('RUNNING', 'EXECUTING');
CREATE UNIQUE INDEX actions_idempotency ON actions (identity_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE gateway_instances (
    id           TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
