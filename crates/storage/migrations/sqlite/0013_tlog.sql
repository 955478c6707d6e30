-- The transparency log (docs/ledger-format.md §8): the RFC 6962 tree over the entries as C2SP tlog-tiles hash
-- tiles, the signed checkpoints, and the cosignatures witnesses returned. Derived from the entries: the
-- appender extends the tiles in each batch's own transaction; entries an older release wrote are integrated
-- by the catch-up at start and before each checkpoint. Older releases ignore these tables.
CREATE TABLE tlog_tiles (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    -- 32 bytes per hash, up to 256 hashes; a partial tile grows in place until it is full.
    data  BLOB   NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Every checkpoint the log signed, kept forever.
CREATE TABLE tlog_checkpoints (
    size       BIGINT PRIMARY KEY,
    root_hash  TEXT   NOT NULL,
    note       TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    created_at TEXT   NOT NULL
);

-- One witness's cosignature line on one checkpoint.
CREATE TABLE tlog_cosignatures (
    size        BIGINT NOT NULL,
    witness     TEXT   NOT NULL,
    line        TEXT   NOT NULL,
    received_at TEXT   NOT NULL,
    PRIMARY KEY (size, witness)
);
CREATE INDEX tlog_cosignatures_by_witness ON tlog_cosignatures (witness, size);
