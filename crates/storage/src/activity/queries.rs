//! The activity tables' SQL (both backends: `$n` parameters, `ON CONFLICT` upserts).

/// The state row, made at the current version with nothing folded when missing.
pub(super) const ENSURE_STATE: &str =
    "INSERT INTO activity_state (id, folded_seq, version) VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING";

/// The state (SQLite: the transaction already holds the write lock).
pub(super) const STATE: &str = "SELECT folded_seq, version FROM activity_state WHERE id = 1";

/// The state, locked until the transaction ends (PostgreSQL: one fold at a time across gateways).
pub(super) const STATE_FOR_UPDATE: &str = "SELECT folded_seq, version FROM activity_state WHERE id = 1 FOR UPDATE";

/// Empties the counts (a rebuild starts over from seq 0, see [`RESET_STATE`]).
pub(super) const RESET: [&str; 4] = [
    "DELETE FROM activity_hours",
    "DELETE FROM activity_requesters",
    "DELETE FROM activity_denials",
    "DELETE FROM activity_marks",
];

/// Nothing folded, at version `$1`.
pub(super) const RESET_STATE: &str = "UPDATE activity_state SET folded_seq = 0, version = $1 WHERE id = 1";

/// A page of entries with what the counting reads: payloads only of the kinds it reads them of.
pub(super) fn page_sql(payload_kinds: &[&str]) -> String {
    let kinds = payload_kinds
        .iter()
        .map(|kind| format!("'{kind}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT seq, id, timestamp, kind, actor, action_id, \
         CASE WHEN kind IN ({kinds}) THEN payload ELSE '{{}}' END AS payload, '' AS prev_chain_hash, \
         '' AS event_hash, '' AS chain_hash, '' AS key_id, '' AS signature \
         FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
    )
}

pub(super) const ADD_HOUR: &str = "INSERT INTO activity_hours (hour, tally, count) VALUES ($1, $2, $3) \
     ON CONFLICT (hour, tally) DO UPDATE SET count = activity_hours.count + excluded.count";

pub(super) const ADD_REQUESTER: &str = "INSERT INTO activity_requesters (hour, identity_id, count) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (hour, identity_id) DO UPDATE SET count = activity_requesters.count + excluded.count";

pub(super) const ADD_DENIAL: &str = "INSERT INTO activity_denials (hour, source, reason, count) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (hour, source, reason) DO UPDATE SET count = activity_denials.count + excluded.count";

/// Pages are folded in seq order: the first mark of an hour is its first seq.
pub(super) const ADD_MARK: &str =
    "INSERT INTO activity_marks (hour, first_seq) VALUES ($1, $2) ON CONFLICT (hour) DO NOTHING";

/// Rows of hours before `$1`.
pub(super) const PRUNE: [&str; 4] = [
    "DELETE FROM activity_hours WHERE hour < $1",
    "DELETE FROM activity_requesters WHERE hour < $1",
    "DELETE FROM activity_denials WHERE hour < $1",
    "DELETE FROM activity_marks WHERE hour < $1",
];

pub(super) const SET_FOLDED: &str = "UPDATE activity_state SET folded_seq = $1 WHERE id = 1";

/// The state and the head, for the cheap "nothing to do" check.
pub(crate) const UP_TO_DATE: &str = "SELECT folded_seq, version, \
     (SELECT COALESCE(MAX(seq), 0) FROM ledger_entries) FROM activity_state WHERE id = 1";

pub(super) const HEAD: &str = "SELECT COALESCE(MAX(seq), 0) FROM ledger_entries";

/// One statement, so the state and the head come from one snapshot.
pub(crate) const PROGRESS: &str = "SELECT COALESCE((SELECT folded_seq FROM activity_state WHERE id = 1), 0), \
     (SELECT COALESCE(MAX(seq), 0) FROM ledger_entries)";

pub(crate) const HOURS: &str = "SELECT hour, tally, count FROM activity_hours WHERE hour >= $1 ORDER BY hour, tally";

pub(crate) const TOP_REQUESTERS: &str = "SELECT identity_id, CAST(SUM(count) AS BIGINT) AS total \
     FROM activity_requesters WHERE hour >= $1 GROUP BY identity_id ORDER BY total DESC, identity_id LIMIT $2";

pub(crate) const TOP_DENIALS: &str = "SELECT source, reason, CAST(SUM(count) AS BIGINT) AS total \
     FROM activity_denials WHERE hour >= $1 GROUP BY source, reason ORDER BY total DESC, source, reason LIMIT $2";

pub(crate) const FIRST_SEQ_SINCE: &str = "SELECT first_seq FROM activity_marks WHERE hour >= $1 ORDER BY hour LIMIT 1";

pub(crate) const TRUST_BEFORE: &str =
    "SELECT score FROM trust_changes WHERE identity_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1";

pub(crate) const PENDING: &str = "SELECT COUNT(*), MIN(created_at) FROM actions WHERE status = $1";
