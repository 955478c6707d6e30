//! Blast-radius budgets' usage: what each admitted mutation counts against, by subject (the rules are the
//! gateway's). A reservation reads every budget's usage and adds the mutation in one transaction, serialized
//! across gateways (PostgreSQL: a transaction-level advisory lock; SQLite: its single writer), so two gateways
//! cannot both take the last unit of a budget.

use crate::{Backend, StorageError, Store, with_writer};

/// The PostgreSQL advisory lock every reservation takes (one number for the whole database).
const BUDGET_LOCK: i64 = 0x646b_745f_6275_6467; // "dkt_budg"

/// A budget's usage over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Mutations admitted.
    pub mutations: i64,
    /// Of which deletes.
    pub deletes: i64,
    /// Distinct objects changed.
    pub objects: i64,
    /// Total replica change (absolute).
    pub replicas: i64,
}

/// One admitted mutation, as it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    /// The action.
    pub action_id: String,
    /// When (RFC 3339 UTC, microseconds).
    pub at: String,
    /// `cluster/namespace/Kind/name`: what "distinct objects" counts.
    pub object: String,
    /// Whether it deletes.
    pub delete: bool,
    /// Its replica change (absolute).
    pub replicas: i64,
}

/// A budget to check: its subject, the start of its window, and a check of the usage with this mutation
/// added (`Err` with why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `identity:agt_…`, `role:operator`, `namespace:prod/shop`, `cluster:prod` or `global`.
    pub subject: String,
    /// The window's start (RFC 3339 UTC).
    pub since: String,
}

/// The usage of each window before the mutation (`used`), the oldest entry counted (when the window starts to
/// free up), and whether the mutation's object is already among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// Usage before this mutation.
    pub used: Usage,
    /// The oldest mutation counted, if any.
    pub oldest: Option<String>,
    /// Whether this mutation's object was changed before in the window (it adds no distinct object).
    pub object_seen: bool,
}

// PostgreSQL sums BIGINT as NUMERIC: cast back (SQLite accepts the cast too).
const COUNT: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(deletes), 0) AS BIGINT), COUNT(DISTINCT object), \
                     CAST(COALESCE(SUM(replicas), 0) AS BIGINT), MIN(at) FROM budget_usage \
                     WHERE subject = $1 AND at >= $2";
const SEEN: &str = "SELECT COUNT(*) FROM budget_usage WHERE subject = $1 AND at >= $2 AND object = $3";
const INSERT: &str = "INSERT INTO budget_usage (subject, at, action_id, object, deletes, replicas) \
                      VALUES ($1, $2, $3, $4, $5, $6)";

impl Store {
    /// Counts every window, lets `admit` decide, and records `spend` against every subject if it admits —
    /// all in one serialized transaction. Returns `admit`'s verdict.
    pub async fn reserve_budget<E>(
        &self,
        windows: &[Window],
        spend: &Spend,
        admit: impl Fn(&[Counted]) -> Result<(), E>,
    ) -> Result<Result<(), E>, StorageError> {
        let verdict = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            // Serialized: PostgreSQL by an advisory lock; SQLite by taking the write lock first (a write
            // statement, waiting in the busy handler), since a read that later upgrades to a write can fail at
            // once with SQLITE_BUSY when another process writes.
            let serialize = match self.kind() {
                crate::BackendKind::Postgres => "SELECT pg_advisory_xact_lock($1)",
                crate::BackendKind::Sqlite => "DELETE FROM budget_usage WHERE 1 = 0 AND $1 = $1",
            };
            sqlx::query(serialize).bind(BUDGET_LOCK).execute(&mut *tx).await?;
            let mut counted = Vec::with_capacity(windows.len());
            for window in windows {
                let (mutations, deletes, objects, replicas, oldest): (i64, i64, i64, i64, Option<String>) =
                    sqlx::query_as(COUNT).bind(&window.subject).bind(&window.since).fetch_one(&mut *tx).await?;
                let seen: i64 = sqlx::query_scalar(SEEN)
                    .bind(&window.subject).bind(&window.since).bind(&spend.object)
                    .fetch_one(&mut *tx).await?;
                let used = Usage { mutations, deletes, objects, replicas };
                counted.push(Counted { used, oldest, object_seen: seen > 0 });
            }
            let verdict = admit(&counted);
            if verdict.is_ok() {
                let mut subjects: Vec<&str> = windows.iter().map(|w| w.subject.as_str()).collect();
                subjects.sort_unstable();
                subjects.dedup();
                for subject in subjects {
                    sqlx::query(INSERT)
                        .bind(subject).bind(&spend.at).bind(&spend.action_id).bind(&spend.object)
                        .bind(i64::from(spend.delete)).bind(spend.replicas)
                        .execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(verdict)
        }.await)?;
        Ok(verdict)
    }

    /// Forgets usage older than `before` (older than every budget's window).
    pub async fn prune_budget_usage(&self, before: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM budget_usage WHERE at < $1";
        Ok(with_writer!(self, pool => sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
