//! Blast-radius budgets' usage: what each admitted mutation counts against, by subject (which budgets apply
//! is the gateway's rule; the arithmetic of a limit is here, [`Counted::exceeds`]). A reservation reads every
//! budget's usage and adds the mutation in one transaction, serialized across gateways (PostgreSQL: a
//! transaction-level advisory lock; SQLite: its single writer), so two gateways cannot both take the last unit
//! of a budget.
//!
//! Concurrent reservations of one process share a transaction (group commit, `batch`): the batch reads what it
//! needs once — per subject and window, whatever the number of reservations in it (`snapshot`) — then decides
//! each reservation in order in memory, each seeing those before it, and writes the admitted ones in two
//! statements. The batch counts at one moment, the latest of its reservations' times, and stamps every row it
//! writes with it.
//!
//! Constant cost, whatever the usage in a window (migration 0018): `budget_spend` keeps each subject's
//! mutations in reservation order (`seq`) with running totals, and `at` never decreasing along `seq` (a
//! mutation is stamped no earlier than the subject's newest), so the mutations within a window are a suffix of
//! that order: usage = the newest row's totals − the totals before the window's first row, two index lookups.
//! `budget_objects` keeps when each object was last changed per subject: whether an object is new to a window
//! is one primary-key lookup, and distinct objects are counted only for a budget that limits them, and only up
//! to that limit.

use serde::Serialize;

use crate::{Backend, StorageError, Store, with_pool, with_writer};

/// A budget's usage over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Mutations admitted.
    pub mutations: i64,
    /// Of which deletes.
    pub deletes: i64,
    /// Distinct objects changed, counted up to the budget's `objects` limit + 1 (`None`: it has none, so
    /// they are not counted).
    pub objects: Option<i64>,
    /// Total replica change (absolute).
    pub replicas: i64,
    /// Distinct workloads of the target's namespace changed, counted up to the budget's workload limit + 1
    /// (`None`: it has none).
    pub workloads: Option<i64>,
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

/// A budget's limits over its window (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many mutations.
    pub mutations: Option<i64>,
    /// At most this many deletes.
    pub deletes: Option<i64>,
    /// At most this many distinct objects changed.
    pub objects: Option<i64>,
    /// At most this much replica change, added up in absolute value.
    pub replicas: Option<i64>,
    /// At most this many of a namespace's workloads changed.
    pub workloads: Option<WorkloadLimit>,
}

/// A limit on the workloads of one namespace changed within a window (the gateway turns a budget's percentage
/// of the namespace's workloads into a number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadLimit {
    /// The objects that count, by the start of their key: `cluster/namespace/Deployment/` and so on, one per
    /// workload kind. Each ends with `/`.
    pub prefixes: Vec<String>,
    /// At most this many of them.
    pub limit: i64,
}

/// A budget to check: its subject, its window and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `identity:agt_…`, `role:operator`, `namespace:prod/shop`, `cluster:prod` or `global`.
    pub subject: String,
    /// The sliding window's length, in seconds: it ends when the reservation is counted.
    pub seconds: u64,
    /// The limits.
    pub limits: Limits,
}

impl Window {
    /// Distinct objects are counted up to one past the limit (enough to tell whether one more passes it), and
    /// not at all without one.
    fn objects_up_to(&self) -> Option<i64> {
        self.limits.objects.map(|cap| cap.saturating_add(1))
    }

    /// Workloads likewise.
    fn workloads_up_to(&self) -> Option<i64> {
        self.limits.workloads.as_ref().map(|w| w.limit.saturating_add(1))
    }
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

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Mutations.
    Mutations,
    /// Deletes.
    Deletes,
    /// Distinct objects changed.
    Objects,
    /// Replica change.
    Replicas,
    /// Workloads of the target's namespace changed (configured as a percentage of them).
    #[serde(rename = "workloads_percent")]
    Workloads,
}

impl Metric {
    /// Its name, as in the configuration and the entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Mutations => "mutations",
            Metric::Deletes => "deletes",
            Metric::Objects => "objects",
            Metric::Replicas => "replicas",
            Metric::Workloads => "workloads_percent",
        }
    }
}

/// The first limit a mutation would pass: which window, which limit, and the usage it was counted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The window's index in the reservation's windows.
    pub window: usize,
    /// The limit passed.
    pub metric: Metric,
    /// The limit.
    pub limit: i64,
    /// The usage with this mutation added.
    pub would_be: i64,
    /// The window's usage before it.
    pub counted: Counted,
}

impl Counted {
    /// The first of `limits` that `spend` added to this usage would pass: (metric, limit, usage with it).
    pub fn exceeds(&self, limits: &Limits, spend: &Spend) -> Option<(Metric, i64, i64)> {
        let used = self.used;
        [
            (Metric::Mutations, limits.mutations, used.mutations + 1),
            (Metric::Deletes, limits.deletes, used.deletes + i64::from(spend.delete)),
            (
                Metric::Objects,
                limits.objects,
                used.objects.unwrap_or(0) + i64::from(!self.object_seen),
            ),
            (Metric::Replicas, limits.replicas, used.replicas + spend.replicas),
            (
                Metric::Workloads,
                limits.workloads.as_ref().map(|w| w.limit),
                used.workloads.unwrap_or(0) + i64::from(!self.object_seen),
            ),
        ]
        .into_iter()
        .find_map(|(metric, cap, would_be)| cap.filter(|cap| would_be > *cap).map(|cap| (metric, cap, would_be)))
    }
}

/// The first window whose limits `spend` would pass, with its counters.
fn first_exceeded(windows: &[Window], counted: Vec<Counted>, spend: &Spend) -> Option<Exceeded> {
    windows
        .iter()
        .zip(counted)
        .enumerate()
        .find_map(|(window, (limits, counted))| {
            let (metric, limit, would_be) = counted.exceeds(&limits.limits, spend)?;
            Some(Exceeded {
                window,
                metric,
                limit,
                would_be,
                counted,
            })
        })
}

mod reads;
#[macro_use]
mod snapshot;
mod batch;
mod within;

pub(crate) use batch::Queue;
pub use batch::ReservationStats;
pub(crate) use within::{Serialization, reserve_postgres, reserve_sqlite};

impl Store {
    /// Counts every window and records `spend` against every subject unless it would pass a window's limits —
    /// in one transaction serialized across gateways, shared with this process's concurrent reservations. The
    /// stand-alone form: the gateway reserves with the entries a reservation decides (`Ledger::append_reserving`).
    /// Returns the first limit it would pass (nothing recorded), or `None` (recorded).
    pub async fn reserve_budget(&self, windows: Vec<Window>, spend: Spend) -> Result<Option<Exceeded>, StorageError> {
        batch::reserve(self, windows, spend).await
    }

    /// Each window's usage at `now`, read without the reservation's lock and spending nothing (for the API: the
    /// numbers inform, they decide nothing, and a reader must not be able to hold up every reservation).
    pub async fn budget_usage(&self, windows: &[Window], now: &str) -> Result<Vec<Counted>, StorageError> {
        let plan = snapshot::Plan::new(now, [(windows, "")])?;
        let snapshot = with_pool!(self, pool => async {
            let mut conn = pool.acquire().await?;
            Ok::<_, sqlx::Error>(read_snapshot!(conn, plan))
        }.await)?;
        Ok(windows.iter().map(|window| snapshot.count(window, "")).collect())
    }

    /// Forgets usage older than `before` (older than every budget's window).
    pub async fn prune_budget_usage(&self, before: &str) -> Result<u64, StorageError> {
        let spent = "DELETE FROM budget_spend WHERE at < $1";
        let objects = "DELETE FROM budget_objects WHERE last_at < $1";
        // Under the budgets' lock on PostgreSQL: a reservation upserts the same `budget_objects` rows, and
        // deleting them concurrently in another order could deadlock (and fail the writer's whole batch).
        let (begin, lock) = match self.kind() {
            crate::BackendKind::Postgres => ("BEGIN ISOLATION LEVEL READ COMMITTED", Some(within::LOCK_STATEMENT)),
            crate::BackendKind::Sqlite => ("BEGIN", None),
        };
        Ok(with_writer!(self, pool => async {
            let mut tx = pool.begin_with(begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(within::BUDGET_LOCK).execute(&mut *tx).await?;
            }
            let removed = sqlx::query(spent).bind(before).execute(&mut *tx).await?.rows_affected();
            sqlx::query(objects).bind(before).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        }.await)?)
    }
}
