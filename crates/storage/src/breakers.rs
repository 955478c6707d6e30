//! What the circuit breakers count (the gateway's `pipeline::breakers`), each bounded by an index whatever the
//! size of the ledger: an agent's budget refusals within a window, and the newest entries of a rare kind
//! (bypasses) read back page by page.

use domain::{ActionStatus, EntryKind};
use ledger_core::Entry;

use crate::{Backend, ENTRY_COLUMNS, EntryRow, StorageError, Store, with_pool};

/// An agent's actions since `$2` that ended `$3` (DENIED) with an entry of kind `$4` (`budget.exceeded`): the range
/// of actions within the window the other breakers read (`actions_identity_created` or `actions_status_created`),
/// each action's few entries looked up in `ledger_entries_action_id`. The kind is matched with `IN` over those
/// entries, not as a condition of its own: `e.kind = $4` beside `e.action_id = a.id` lets SQLite (without
/// statistics) read every entry of that kind through `ledger_entries_kind_seq` instead. No migration needed.
pub(crate) const BUDGET_HITS: &str = "SELECT COUNT(*) FROM actions a WHERE a.identity_id = $1 AND a.created_at >= $2 \
     AND a.status = $3 AND $4 IN (SELECT e.kind FROM ledger_entries e WHERE e.action_id = a.id)";

/// Entries of kind `$1` below seq `$2`, newest first, `$3` at most: a range of `ledger_entries_kind_seq`. (Both
/// statements are `pub(crate)` for `hot_paths`, the query-plan test.)
pub(crate) fn entries_of_kind_before() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE kind = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3")
}

impl Store {
    /// How many actions `identity_id` asked for since `since` that a blast-radius budget refused (they ended
    /// `DENIED` with a `budget.exceeded` entry): the `budget_hits` breaker.
    pub async fn count_budget_hits(&self, identity_id: &str, since: &str) -> Result<i64, StorageError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(BUDGET_HITS)
            .bind(identity_id)
            .bind(since)
            .bind(ActionStatus::Denied.as_str())
            .bind(EntryKind::BudgetExceeded.as_str())
            .fetch_one(pool)
            .await)?)
    }

    /// Up to `limit` entries of `kind` with a seq below `before_seq` (`None`: from the head), newest first. For
    /// kinds that are rare (a bypass of the gateway): a caller reads pages back until it reaches the time it
    /// wants, so the cost is the entries of that kind it reads, never the ledger.
    pub async fn entries_of_kind_before(
        &self,
        kind: EntryKind,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Entry>, StorageError> {
        let sql = entries_of_kind_before();
        let before = before_seq.map_or(i64::MAX, |seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let rows: Vec<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(kind.as_str())
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }
}
