-- The witness's own database (docs/witness.md), never a gateway's: per followed log, the latest
-- checkpoint it cosigned. C2SP tlog-witness: the witness never cosigns anything inconsistent with it.
CREATE TABLE witness_logs (
    origin TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    root_hash TEXT NOT NULL,
    -- The timestamp of the latest cosignature (UNIX seconds); the next one is never lower.
    cosigned_at BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Requests the log signed that contradict what the witness cosigned (a split view, a consistency proof
-- that fails): evidence of log misbehaviour. Bounded: the request text is cut at 64 KiB and only the
-- newest rows of each log are kept.
CREATE TABLE witness_refusals (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    received_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    request TEXT NOT NULL
);

CREATE INDEX witness_refusals_by_origin ON witness_refusals (origin, id);
