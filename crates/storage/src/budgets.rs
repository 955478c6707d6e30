//! Blast-radius budgets' usage: what each admitted mutation counts against, by subject (the rules are the
//! gateway's). A reservation reads every budget's usage and adds the mutation in one transaction, serialized
//! across gateways (PostgreSQL: a transaction-level advisory lock; SQLite: its single writer), so two gateways
//! cannot both take the last unit of a budget.
//!
//! Constant cost, whatever the usage in a window (migration 0018): `budget_spend` keeps each subject's
//! mutations in reservation order (`seq`) with running totals, and `at` never decreasing along `seq` (a
//! mutation is stamped no earlier than the subject's newest), so the mutations within a window are a suffix of
//! that order: usage = the newest row's totals − the totals before the window's first row, two index lookups.
//! `budget_objects` keeps when each object was last changed per subject: whether an object is new to a window
//! is one primary-key lookup, and distinct objects are counted only for a budget that limits them, and only up
//! to that limit.

use crate::{Backend, StorageError, Store, with_pool, with_writer};

/// The PostgreSQL advisory lock every reservation takes (one number for the whole database).
const BUDGET_LOCK: i64 = 0x646b_745f_6275_6467; // "dkt_budg"

/// A budget's usage over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Mutations admitted.
    pub mutations: i64,
    /// Of which deletes.
    pub deletes: i64,
    /// Distinct objects changed, counted up to the window's `objects_up_to` (`None`: not counted).
    pub objects: Option<i64>,
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

/// A budget to check: its subject and the start of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `identity:agt_…`, `role:operator`, `namespace:prod/shop`, `cluster:prod` or `global`.
    pub subject: String,
    /// The window's start (RFC 3339 UTC).
    pub since: String,
    /// Count the distinct objects changed in the window up to this many (a budget's `objects` limit + 1); `None`:
    /// not counted ([`Usage::objects`] is then `None`).
    pub objects_up_to: Option<i64>,
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

/// The subject's newest row: its seq, time and running totals.
const NEWEST: &str = "SELECT seq, at, total_mutations, total_deletes, total_replicas FROM budget_spend \
                      WHERE subject = $1 ORDER BY seq DESC LIMIT 1";
/// The window's first row (the oldest counted): its time and the totals before it.
const FIRST_IN_WINDOW: &str = "SELECT at, total_mutations - 1, total_deletes - deletes, total_replicas - replicas \
                               FROM budget_spend WHERE subject = $1 AND at >= $2 ORDER BY at, seq LIMIT 1";
/// Whether the object was changed within the window (one primary-key lookup).
const SEEN: &str = "SELECT COUNT(*) FROM budget_objects WHERE subject = $1 AND object = $2 AND last_at >= $3";
/// Distinct objects changed within the window, counted up to `$3` at most.
const OBJECTS: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM budget_objects WHERE subject = $1 AND last_at >= $2 \
                       LIMIT $3) AS within_window";
const INSERT: &str = "INSERT INTO budget_spend (subject, seq, at, action_id, object, deletes, replicas, \
                      total_mutations, total_deletes, total_replicas) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const TOUCH: &str = "INSERT INTO budget_objects (subject, object, last_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (subject, object) DO UPDATE SET last_at = excluded.last_at";

/// A subject's newest row: (seq, at, total mutations, total deletes, total replicas).
type Newest = (i64, String, i64, i64, i64);

/// A window's usage (a [`Counted`]) within the transaction `$tx`, from the subject's newest row `$newest` and
/// its first row in the window. A macro, not a function: like `with_writer!`, the body is compiled once per
/// backend.
macro_rules! count_window {
    ($tx:expr, $window:expr, $newest:expr, $object:expr) => {{
        let window: &Window = $window;
        let first: Option<(String, i64, i64, i64)> = match $newest {
            None => None,
            Some(_) => {
                sqlx::query_as(FIRST_IN_WINDOW)
                    .bind(&window.subject)
                    .bind(&window.since)
                    .fetch_optional(&mut *$tx)
                    .await?
            }
        };
        let (oldest, mut used) = match (first, $newest) {
            (Some((at, m, d, r)), Some((_, _, mutations, deletes, replicas))) => (
                Some(at),
                Usage {
                    mutations: mutations - m,
                    deletes: deletes - d,
                    replicas: replicas - r,
                    objects: None,
                },
            ),
            _ => (None, Usage::default()),
        };
        let seen: i64 = sqlx::query_scalar(SEEN)
            .bind(&window.subject)
            .bind($object)
            .bind(&window.since)
            .fetch_one(&mut *$tx)
            .await?;
        if let Some(cap) = window.objects_up_to {
            let counted: i64 = sqlx::query_scalar(OBJECTS)
                .bind(&window.subject)
                .bind(&window.since)
                .bind(cap)
                .fetch_one(&mut *$tx)
                .await?;
            used.objects = Some(counted);
        }
        Counted {
            used,
            oldest,
            object_seen: seen > 0,
        }
    }};
}

impl Store {
    /// Counts every window, lets `admit` decide, and records `spend` against every subject if it admits —
    /// all in one serialized transaction. Returns `admit`'s verdict.
    pub async fn reserve_budget<E>(
        &self,
        windows: &[Window],
        spend: &Spend,
        admit: impl Fn(&[Counted]) -> Result<(), E>,
    ) -> Result<Result<(), E>, StorageError> {
        let mut subjects: Vec<&str> = windows.iter().map(|w| w.subject.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let verdict = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            // Serialized: PostgreSQL by an advisory lock; SQLite by taking the write lock first (a write
            // statement, waiting in the busy handler), since a read that later upgrades to a write can fail at
            // once with SQLITE_BUSY when another process writes.
            let serialize = match self.kind() {
                crate::BackendKind::Postgres => "SELECT pg_advisory_xact_lock($1)",
                crate::BackendKind::Sqlite => "DELETE FROM budget_spend WHERE 1 = 0 AND $1 = $1",
            };
            sqlx::query(serialize).bind(BUDGET_LOCK).execute(&mut *tx).await?;
            let mut newest: Vec<Option<Newest>> = Vec::with_capacity(subjects.len());
            for subject in &subjects {
                newest.push(sqlx::query_as(NEWEST).bind(subject).fetch_optional(&mut *tx).await?);
            }
            let newest_of = |subject: &str| subjects.iter().position(|s| *s == subject).and_then(|i| newest[i].clone());
            let mut counted = Vec::with_capacity(windows.len());
            for window in windows {
                let subject_newest = newest_of(&window.subject);
                counted.push(count_window!(tx, window, subject_newest, &spend.object));
            }
            let verdict = admit(&counted);
            if verdict.is_ok() {
                for (subject, newest) in subjects.iter().zip(&newest) {
                    let (seq, at, mutations, deletes, replicas) = next_row(newest.as_ref(), spend);
                    sqlx::query(INSERT)
                        .bind(subject).bind(seq).bind(&at).bind(&spend.action_id).bind(&spend.object)
                        .bind(i64::from(spend.delete)).bind(spend.replicas)
                        .bind(mutations).bind(deletes).bind(replicas)
                        .execute(&mut *tx).await?;
                    sqlx::query(TOUCH).bind(subject).bind(&spend.object).bind(&at).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(verdict)
        }.await)?;
        Ok(verdict)
    }

    /// Each window's usage now, read without the reservation's lock and spending nothing (for the API: the
    /// numbers inform, they decide nothing, and a reader must not be able to hold up every reservation).
    pub async fn budget_usage(&self, windows: &[Window]) -> Result<Vec<Counted>, StorageError> {
        Ok(with_pool!(self, pool => async {
            let mut conn = pool.acquire().await?;
            let mut counted = Vec::with_capacity(windows.len());
            for window in windows {
                let newest: Option<Newest> = sqlx::query_as(NEWEST).bind(&window.subject).fetch_optional(&mut *conn).await?;
                counted.push(count_window!(conn, window, newest, ""));
            }
            Ok::<_, sqlx::Error>(counted)
        }.await)?)
    }

    /// Forgets usage older than `before` (older than every budget's window).
    pub async fn prune_budget_usage(&self, before: &str) -> Result<u64, StorageError> {
        let spent = "DELETE FROM budget_spend WHERE at < $1";
        let objects = "DELETE FROM budget_objects WHERE last_at < $1";
        Ok(with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query(spent).bind(before).execute(&mut *tx).await?.rows_affected();
            sqlx::query(objects).bind(before).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        }.await)?)
    }
}

/// The row a reservation adds after the subject's `newest`: the next seq, a time no earlier than the newest's
/// (so `at` never decreases along `seq`, whatever the clocks of the gateways), and the running totals.
fn next_row(newest: Option<&Newest>, spend: &Spend) -> Newest {
    let (seq, at, mutations, deletes, replicas) = newest.cloned().unwrap_or((0, String::new(), 0, 0, 0));
    (
        seq + 1,
        if spend.at > at { spend.at.clone() } else { at },
        mutations + 1,
        deletes + i64::from(spend.delete),
        replicas + spend.replicas,
    )
}
