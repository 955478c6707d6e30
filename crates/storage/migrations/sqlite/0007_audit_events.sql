-- Audit events of the API servers already judged a bypass and recorded (by cluster and audit id), so a
-- replayed webhook batch or a re-read audit log records nothing twice.
CREATE TABLE audit_events_recorded (
    cluster     TEXT NOT NULL,
    audit_id    TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (cluster, audit_id)
);
