//! A batch of reservations inside a transaction: serialized against every other reservation, counted from
//! one read of what the batch needs (`snapshot`), decided one after the other in memory (each sees the rows
//! of those before it, so limits stay exact), the admitted rows written with one multi-row INSERT and one
//! upsert. The caller owns the transaction: a batch of its own (`batch`), or the ledger writer's, so that a
//! reservation and the entries it decides commit together (`Ledger::append_reserving`).

use std::collections::BTreeMap;

use super::snapshot::Plan;
use super::{Exceeded, Spend, Window, first_exceeded};
use crate::StorageError;

/// The PostgreSQL advisory lock every reservation (and the pruning of usage) takes: one number for the whole
/// database.
pub(super) const BUDGET_LOCK: i64 = 0x646b_745f_6275_6467; // "dkt_budg"

/// Takes [`BUDGET_LOCK`] until the transaction ends.
pub(super) const LOCK_STATEMENT: &str = "SELECT pg_advisory_xact_lock($1)";

/// Most rows one INSERT carries (ten parameters each: within SQLite's and PostgreSQL's limits).
const ROWS_PER_INSERT: usize = 1000;

/// How the reservations of one transaction are serialized against every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serialization {
    /// By a statement of this transaction: PostgreSQL's advisory lock; on SQLite a write statement, so the
    /// write lock is taken before the read (a read that later upgrades to a write can fail at once with
    /// SQLITE_BUSY when another process writes).
    Here,
    /// The transaction already holds SQLite's write lock (`BEGIN IMMEDIATE`); PostgreSQL still takes the
    /// advisory lock (reservations of other transactions take only that one).
    WriteLockHeld,
}

macro_rules! reserve_in {
    ($name:ident, $db:ty, $lock:expr) => {
        /// Decides each reservation of `requests` in order inside `tx` and writes the admitted ones: for
        /// each, `Some` with the first window it would exceed, or `None` (recorded against every subject).
        /// Counted at the latest of their times.
        pub(crate) async fn $name(
            tx: &mut sqlx::Transaction<'_, $db>,
            serialize: Serialization,
            requests: &[(&[Window], &Spend)],
        ) -> Result<Vec<Option<Exceeded>>, StorageError> {
            let at = requests
                .iter()
                .map(|(_, spend)| spend.at.as_str())
                .max()
                .unwrap_or_default();
            let plan = Plan::new(
                at,
                requests
                    .iter()
                    .map(|(windows, spend)| (*windows, spend.object.as_str())),
            )?;
            if let Some(lock) = $lock(serialize) {
                sqlx::query(lock).bind(BUDGET_LOCK).execute(&mut **tx).await?;
            }
            let mut snapshot = read_snapshot!(*tx, plan);
            let mut rows = Vec::new();
            let mut answers = Vec::with_capacity(requests.len());
            for (windows, spend) in requests {
                let counted = windows
                    .iter()
                    .map(|window| snapshot.count(window, &spend.object))
                    .collect();
                let verdict = first_exceeded(windows, counted, spend);
                if verdict.is_none() {
                    let mut subjects: Vec<&str> = windows.iter().map(|w| w.subject.as_str()).collect();
                    subjects.sort_unstable();
                    subjects.dedup();
                    let added = snapshot.add(&subjects, spend);
                    rows.extend(added.into_iter().map(|(subject, row)| (subject, row, *spend)));
                }
                answers.push(verdict);
            }
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO budget_spend (subject, seq, at, action_id, object, deletes, replicas, \
                     total_mutations, total_deletes, total_replicas) ",
                );
                insert.push_values(
                    chunk,
                    |mut row, (subject, (seq, at, mutations, deletes, replicas), spend)| {
                        row.push_bind(subject.as_str())
                            .push_bind(*seq)
                            .push_bind(at.as_str())
                            .push_bind(spend.action_id.as_str())
                            .push_bind(spend.object.as_str())
                            .push_bind(i64::from(spend.delete))
                            .push_bind(spend.replicas)
                            .push_bind(*mutations)
                            .push_bind(*deletes)
                            .push_bind(*replicas);
                    },
                );
                insert.build().execute(&mut **tx).await?;
            }
            // Each (subject, object) once (PostgreSQL refuses to update one row twice in a statement), at its
            // latest time.
            let mut touched: BTreeMap<(&str, &str), &str> = BTreeMap::new();
            for (subject, (_, at, ..), spend) in &rows {
                let last = touched
                    .entry((subject.as_str(), spend.object.as_str()))
                    .or_default();
                *last = (*last).max(at.as_str());
            }
            let touched: Vec<_> = touched.into_iter().collect();
            for chunk in touched.chunks(ROWS_PER_INSERT) {
                let mut touch = sqlx::QueryBuilder::new("INSERT INTO budget_objects (subject, object, last_at) ");
                touch.push_values(chunk, |mut row, ((subject, object), at)| {
                    row.push_bind(*subject).push_bind(*object).push_bind(*at);
                });
                touch.push(" ON CONFLICT (subject, object) DO UPDATE SET last_at = excluded.last_at");
                touch.build().execute(&mut **tx).await?;
            }
            Ok(answers)
        }
    };
}

reserve_in!(reserve_sqlite, sqlx::Sqlite, |serialize| match serialize {
    Serialization::Here => Some("DELETE FROM budget_spend WHERE 1 = 0 AND $1 = $1"),
    Serialization::WriteLockHeld => None,
});
reserve_in!(reserve_postgres, sqlx::Postgres, |_| Some(LOCK_STATEMENT));
