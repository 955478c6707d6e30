//! The statements the gateway runs per request, by name. The `Store` functions run exactly this text, and
//! [`hot_paths`] hands the same text (with sample parameters) to the query-plan test, which asserts with
//! EXPLAIN that none of them reads `ledger_entries` or `actions` whole (docs/performance.md).

use crate::ENTRY_COLUMNS;
use crate::dashboard::TimelineFilter;
use crate::directory::{ACTION_COLUMNS, ActionFilter, IDENTITY_COLUMNS, KEY_COLUMNS};

pub(crate) fn key_by_digest() -> String {
    format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE digest = $1 AND recorded_entry IS NOT NULL")
}

pub(crate) fn identity_by_id() -> String {
    format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = $1 AND recorded_entry IS NOT NULL")
}

/// A page of identities in creation order: after the identity `$1` and at most `$2`, or from the start and
/// at most `$1`.
pub(crate) fn identities_page(after: bool) -> String {
    let (after, limit) = if after {
        (
            "AND (created_at, id) > (SELECT created_at, id FROM identities WHERE id = $1)",
            "$2",
        )
    } else {
        ("", "$1")
    };
    format!(
        "SELECT {IDENTITY_COLUMNS} FROM identities WHERE recorded_entry IS NOT NULL {after} \
         ORDER BY created_at, id LIMIT {limit}"
    )
}

/// The names of up to `n` identities by id (the dashboard shows names instead of ids).
pub(crate) fn identity_names(n: usize) -> String {
    let placeholders = (1..=n.max(1)).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    format!("SELECT id, name FROM identities WHERE id IN ({placeholders}) AND recorded_entry IS NOT NULL")
}

/// Whether an active admin exists (start-up decides on the bootstrap admin with this, not a full list).
pub(crate) const ACTIVE_ADMIN_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM identities WHERE recorded_entry IS NOT NULL \
     AND status = 'active' AND roles LIKE '%\"admin\"%')";

pub(crate) fn keys_of() -> String {
    format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE identity_id = $1 AND recorded_entry IS NOT NULL ORDER BY created_at, id"
    )
}

/// A page of an identity's keys in creation order: after the key `$2` and at most `$3`, or at most `$2`.
pub(crate) fn keys_page(after: bool) -> String {
    let (after, limit) = if after {
        (
            "AND (created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = $2 AND identity_id = $1)",
            "$3",
        )
    } else {
        ("", "$2")
    };
    format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE identity_id = $1 AND recorded_entry IS NOT NULL {after} \
         ORDER BY created_at, id LIMIT {limit}"
    )
}

pub(crate) fn action_by_id() -> String {
    format!("SELECT {ACTION_COLUMNS} FROM actions WHERE id = $1")
}

/// How many actions an identity asked for since `$2` that ended with status `$3` (a circuit breaker's count):
/// a range of `actions_identity_created`, as long as the identity's actions in the window.
pub(crate) const RECENT_ACTIONS_WITH_STATUS: &str =
    "SELECT COUNT(*) FROM actions WHERE identity_id = $1 AND created_at >= $2 AND status = $3";

pub(crate) const UPDATE_ACTION: &str = "UPDATE actions SET status = $2, risk = $3, decision = $4, updated_at = $5, \
     last_entry_id = $6, request = $7, approval_digest = $8, approvals_required = $9, expires_at = $10, approval_groups = $11 WHERE id = $1";

pub(crate) const CLAIM_ACTION: &str = "UPDATE actions SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2";

pub(crate) const CLAIM_FOR_EXECUTION: &str = "UPDATE actions SET status = 'EXECUTING', updated_at = $2, owner = $3 \
     WHERE id = $1 AND status = 'PENDING_APPROVAL' AND (expires_at IS NULL OR expires_at > $2)";

pub(crate) const RENEW_APPROVAL: &str = "UPDATE actions SET approval_digest = $3, expires_at = $4, updated_at = $5 \
     WHERE id = $1 AND status = 'PENDING_APPROVAL' AND approval_digest = $2";

pub(crate) const APPROVALS_OF: &str = "SELECT action_id, approver_id, decision, digest, created_at, entry_id \
     FROM approvals WHERE action_id = $1 AND digest = $2 ORDER BY created_at";

pub(crate) fn action_by_idempotency_key() -> String {
    format!("SELECT {ACTION_COLUMNS} FROM actions WHERE identity_id = $1 AND idempotency_key = $2")
}

/// The action list, newest first. Only the filters given appear in the statement (numbered in the order
/// identity, status, namespace, the cursor `before`; the limit last), so each variant has a plan that uses its own index rather
/// than one generic plan for `($1 IS NULL OR …)` that can use none.
pub(crate) fn actions_list(filter: &ActionFilter) -> String {
    let mut conditions = Vec::new();
    let mut n = 0;
    for (column, given) in [
        ("identity_id", filter.identity_id.is_some()),
        ("status", filter.status.is_some()),
        ("namespace", filter.namespace.is_some()),
    ] {
        if given {
            n += 1;
            conditions.push(format!("{column} = ${n}"));
        }
    }
    if filter.before.is_some() {
        n += 1;
        conditions.push(format!(
            "(created_at, id) < (SELECT created_at, id FROM actions WHERE id = ${n})"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT {ACTION_COLUMNS} FROM actions {filter} ORDER BY created_at DESC, id DESC LIMIT ${}",
        n + 1
    )
}

pub(crate) fn due_approvals() -> String {
    format!(
        "SELECT {ACTION_COLUMNS} FROM actions WHERE status = 'PENDING_APPROVAL' AND expires_at <= $1 \
         ORDER BY expires_at, id LIMIT $2"
    )
}

pub(crate) fn unfinished_actions() -> String {
    format!(
        "SELECT {ACTION_COLUMNS} FROM actions WHERE status IN ('RUNNING', 'EXECUTING') AND ( \
           owner = $1 \
           OR (owner IS NULL AND updated_at < $3) \
           OR (owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM gateway_instances g \
               WHERE g.id = actions.owner AND g.heartbeat_at >= $2))) \
         ORDER BY updated_at, id LIMIT $4"
    )
}

pub(crate) const TAKE_OVER_ACTION: &str = "UPDATE actions SET owner = $3, updated_at = $4 WHERE id = $1 \
     AND status IN ('RUNNING', 'EXECUTING') AND (owner = $2 OR (owner IS NULL AND $2 IS NULL))";

pub(crate) const RECORD_INTENT: &str =
    "UPDATE actions SET intent = $2 WHERE id = $1 AND owner = $3 AND status IN ('RUNNING', 'EXECUTING')";

pub(crate) fn entries_of_action() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE action_id = $1 ORDER BY seq")
}

pub(crate) fn entry_by_id() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE id = $1")
}

/// The newest entry (also the appender's head read inside its transaction). Written with MAX rather than
/// `ORDER BY seq DESC LIMIT 1`, which SQLite plans as a (stopped) table scan: both backends answer MAX from
/// the primary key's end.
pub(crate) fn head() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq = (SELECT MAX(seq) FROM ledger_entries)")
}

/// A page of entries by seq (the API's paging, the SIEM export after its cursor).
pub(crate) fn entries_after() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2")
}

pub(crate) const EXPORT_CURSOR: &str =
    "SELECT name, last_seq, last_entry_id, updated_at FROM export_cursors WHERE name = $1";

/// Who created an identity and who issued its active keys (separation of duties, at each approval).
pub(crate) const CONTROLLERS_OF: &str = "SELECT x.actor, i.name, x.key_id FROM ( \
         SELECT created_by AS actor, NULL AS key_id FROM identities WHERE id = $1 \
         UNION ALL \
         SELECT COALESCE(k.issued_by, e.actor) AS actor, k.id AS key_id FROM api_keys k \
         LEFT JOIN ledger_entries e ON e.id = k.recorded_entry \
         WHERE k.identity_id = $1 AND k.status = 'active' AND k.recorded_entry IS NOT NULL \
     ) x LEFT JOIN identities i ON i.id = x.actor \
     WHERE x.actor IS NOT NULL ORDER BY x.key_id IS NOT NULL, x.key_id";

pub(crate) const AUDIT_CLAIM: &str = "INSERT INTO audit_events_recorded (cluster, audit_id, recorded_at) \
     VALUES ($1, $2, $3) ON CONFLICT (cluster, audit_id) DO UPDATE SET recorded_at = excluded.recorded_at \
     WHERE audit_events_recorded.entry_id IS NULL AND audit_events_recorded.recorded_at < $4";

/// The dashboard timeline: entries newest first (oldest first after `after_seq`) with their action's
/// namespace, status and risk. Parameters: `$1` before seq, `$2` after seq, then the filters given in the
/// order identity, namespace, kind, status, risk, then the limit.
pub(crate) fn timeline(filter: &TimelineFilter) -> String {
    let mut conditions = vec!["e.seq < $1".to_string(), "e.seq > $2".to_string()];
    let mut n = 2;
    let mut push = |given: bool, condition: &dyn Fn(usize) -> String| {
        if given {
            n += 1;
            conditions.push(condition(n));
        }
    };
    // The requester's actions through the subquery (an index range), not through the join's column: an OR
    // across the join makes PostgreSQL hash the whole actions table.
    push(filter.identity.is_some(), &|n| {
        format!("(e.actor = ${n} OR e.action_id IN (SELECT id FROM actions WHERE identity_id = ${n}))")
    });
    push(filter.namespace.is_some(), &|n| format!("a.namespace = ${n}"));
    push(filter.kind.is_some(), &|n| format!("e.kind = ${n}"));
    push(filter.status.is_some(), &|n| format!("a.status = ${n}"));
    push(filter.risk.is_some(), &|n| format!("a.risk = ${n}"));
    let order = if filter.after_seq.is_some() { "ASC" } else { "DESC" };
    let columns = ENTRY_COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {columns}, a.namespace AS a_namespace, a.status AS a_status, a.risk AS a_risk \
         FROM ledger_entries e LEFT JOIN actions a ON a.id = e.action_id WHERE {} ORDER BY e.seq {order} LIMIT ${}",
        conditions.join(" AND "),
        n + 1
    )
}

/// An identity's stored score and how far the trust tables are folded (`Store::trust_score`).
pub(crate) const TRUST_SCORE: &str = "SELECT st.folded_seq, st.version, (SELECT MAX(seq) FROM ledger_entries), \
     trust_scores.score, trust_scores.changes, trust_scores.last_seq FROM trust_state st \
     LEFT JOIN trust_scores ON trust_scores.identity_id = $1 WHERE st.id = 1";

/// A page of the entries that moved an identity's score, newest first, before seq `$2` (`i64::MAX`: from
/// the newest), at most `$3` (`Store::trust_changes`).
pub(crate) const TRUST_CHANGES: &str = "SELECT seq, entry_id, action_id, kind, delta, score FROM trust_changes \
     WHERE identity_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";

/// The appender's check and move of the trust state in every append transaction: folds the batch only if
/// every entry before it (`$2`) is folded by this scoring version (`$3`).
pub(crate) const TRUST_ADVANCE: &str =
    "UPDATE trust_state SET folded_seq = $1 WHERE id = 1 AND folded_seq = $2 AND version = $3";

/// The appender's fold, PostgreSQL: the stored rows of the batch's actions (`$1`, an array of ids).
pub(crate) const TRUST_ACTIONS_ANY: &str =
    "SELECT action_id, identity_id, risk FROM trust_actions WHERE action_id = ANY($1)";

/// The appender's fold, PostgreSQL: the stored scores of the identities the batch may move (`$1`, an array).
pub(crate) const TRUST_SCORES_ANY: &str =
    "SELECT identity_id, score, changes, last_seq FROM trust_scores WHERE identity_id = ANY($1)";

/// [`TRUST_ACTIONS_ANY`] on SQLite, of `n` ids.
pub(crate) fn trust_actions_in(n: usize) -> String {
    format!(
        "SELECT action_id, identity_id, risk FROM trust_actions WHERE action_id IN ({})",
        placeholders(n)
    )
}

/// [`TRUST_SCORES_ANY`] on SQLite, of `n` identities.
pub(crate) fn trust_scores_in(n: usize) -> String {
    format!(
        "SELECT identity_id, score, changes, last_seq FROM trust_scores WHERE identity_id IN ({})",
        placeholders(n)
    )
}

fn placeholders(n: usize) -> String {
    (1..=n.max(1)).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The catch-up's check at start-up and after a scoring change: whether the trust tables are up to date.
pub(crate) const TRUST_UP_TO_DATE: &str = "SELECT folded_seq, version, \
     (SELECT COALESCE(MAX(seq), 0) FROM ledger_entries) FROM trust_state WHERE id = 1";

// The transparency log (`tlog*.rs`): the tiles the appender reads and writes in every append transaction, and
// the reads of the log's API and the checkpointer.

/// The last level-0 tile: its index and its length give the tree's size.
pub(crate) const TLOG_LAST_TILE: &str = "SELECT idx, data FROM tlog_tiles WHERE level = 0 ORDER BY idx DESC LIMIT 1";
/// As [`TLOG_LAST_TILE`] without the tile's bytes.
pub(crate) const TLOG_LAST_TILE_LENGTH: &str =
    "SELECT idx, CAST(length(data) AS BIGINT) FROM tlog_tiles WHERE level = 0 ORDER BY idx DESC LIMIT 1";
pub(crate) const TLOG_TILE: &str = "SELECT data FROM tlog_tiles WHERE level = $1 AND idx = $2";
/// A partial tile grows in place until it is full.
pub(crate) const TLOG_WRITE_TILE: &str = "INSERT INTO tlog_tiles (level, idx, data) VALUES ($1, $2, $3) \
     ON CONFLICT (level, idx) DO UPDATE SET data = excluded.data";
/// The chain hashes of an entry bundle (`/tile/entries/N`).
pub(crate) const TLOG_BUNDLE_HASHES: &str =
    "SELECT chain_hash FROM ledger_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq";
/// A catch-up page: the entries after the tree's end.
pub(crate) const TLOG_CATCH_UP_PAGE: &str =
    "SELECT seq, chain_hash FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2";
pub(crate) const TLOG_HEAD_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM ledger_entries";

const CHECKPOINT_COLUMNS: &str = "size, root_hash, note, key_id, created_at";

pub(crate) const INSERT_CHECKPOINT: &str = "INSERT INTO tlog_checkpoints (size, root_hash, note, key_id, \
     created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size) DO NOTHING";

pub(crate) fn latest_checkpoint() -> String {
    format!("SELECT {CHECKPOINT_COLUMNS} FROM tlog_checkpoints ORDER BY size DESC LIMIT 1")
}

pub(crate) fn checkpoint_at() -> String {
    format!("SELECT {CHECKPOINT_COLUMNS} FROM tlog_checkpoints WHERE size = $1")
}

/// The smallest checkpoint of at least `$1` entries.
pub(crate) fn checkpoint_covering() -> String {
    format!("SELECT {CHECKPOINT_COLUMNS} FROM tlog_checkpoints WHERE size >= $1 ORDER BY size LIMIT 1")
}

/// A page of checkpoints below `$1`, largest first.
pub(crate) fn checkpoints_before() -> String {
    format!("SELECT {CHECKPOINT_COLUMNS} FROM tlog_checkpoints WHERE size < $1 ORDER BY size DESC LIMIT $2")
}

pub(crate) const INSERT_COSIGNATURE: &str = "INSERT INTO tlog_cosignatures (size, witness, line, received_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line, received_at = excluded.received_at";
pub(crate) const COSIGNATURES_OF: &str =
    "SELECT size, witness, line, received_at FROM tlog_cosignatures WHERE size = $1 ORDER BY witness";
/// The largest checkpoint a witness cosigned.
pub(crate) const WITNESS_SIZE: &str = "SELECT COALESCE(MAX(size), 0) FROM tlog_cosignatures WHERE witness = $1";
