//! What a batch of reservations needs to know, read once inside its transaction (`read_snapshot!`): each
//! subject's newest row, each window's first row and distinct objects (per subject and window length, so the
//! same for every reservation of the batch, which all count at the batch's moment), and when the batch's objects
//! were last changed. Each reservation's usage is then counted in memory ([`Snapshot::count`]) from it and the
//! rows the batch has added before it ([`Snapshot::add`]), so a batch costs a few statements per subject and
//! window, not per reservation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::{Counted, Spend, Usage, Window};
use crate::StorageError;

/// A subject's newest row: (seq, at, total mutations, total deletes, total replicas).
pub(super) type Newest = (i64, String, i64, i64, i64);

/// A window's first row: its time and the totals before it (mutations, deletes, replicas).
type First = (String, i64, i64, i64);

/// The subject's newest row: its seq, time and running totals.
pub(super) const NEWEST: &str = "SELECT seq, at, total_mutations, total_deletes, total_replicas FROM budget_spend \
                                 WHERE subject = $1 ORDER BY seq DESC LIMIT 1";
/// The window's first row (the oldest counted): its time and the totals before it.
pub(super) const FIRST_IN_WINDOW: &str = "SELECT at, total_mutations - 1, total_deletes - deletes, \
                                          total_replicas - replicas FROM budget_spend WHERE subject = $1 AND at >= $2 \
                                          ORDER BY at, seq LIMIT 1";
/// Distinct objects changed within the window, counted up to `$3` at most.
pub(super) const OBJECTS: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM budget_objects WHERE subject = $1 \
                                  AND last_at >= $2 LIMIT $3) AS within_window";
/// Distinct objects with keys in `[$2, $3)` changed within the window, counted up to `$5` at most.
pub(super) const OBJECTS_IN_RANGE: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM budget_objects WHERE subject = $1 \
                                           AND object >= $2 AND object < $3 AND last_at >= $4 LIMIT $5) AS within_window";

/// What a batch reads: its moment, its subjects, their windows, and the objects it changes.
pub(super) struct Plan {
    /// The moment the batch counts at (and stamps its rows with).
    pub(super) at: String,
    pub(super) subjects: BTreeSet<String>,
    pub(super) windows: BTreeMap<(String, u64), WindowPlan>,
    /// Per subject, the objects the batch's reservations change.
    pub(super) objects: BTreeMap<String, BTreeSet<String>>,
}

/// One window length of one subject: where it starts, and how far to count its objects and workloads.
pub(super) struct WindowPlan {
    pub(super) since: String,
    /// The largest count any of the batch's windows asks for (`None`: none limits objects).
    pub(super) objects_up_to: Option<i64>,
    /// Per workload key prefix (`cluster/namespace/Kind/`), the largest count asked for.
    pub(super) workloads: BTreeMap<String, i64>,
}

impl Plan {
    /// The plan for `requests` (each reservation's windows and the object it changes, `""` for none), counted
    /// at `at`.
    pub(super) fn new<'a>(
        at: &str,
        requests: impl IntoIterator<Item = (&'a [Window], &'a str)>,
    ) -> Result<Plan, StorageError> {
        let mut plan = Plan {
            at: at.to_owned(),
            subjects: BTreeSet::new(),
            windows: BTreeMap::new(),
            objects: BTreeMap::new(),
        };
        for (windows, object) in requests {
            for window in windows {
                plan.subjects.insert(window.subject.clone());
                if !object.is_empty() {
                    let objects = plan.objects.entry(window.subject.clone()).or_default();
                    objects.insert(object.to_owned());
                }
                let key = (window.subject.clone(), window.seconds);
                let planned = match plan.windows.entry(key) {
                    std::collections::btree_map::Entry::Occupied(planned) => planned.into_mut(),
                    std::collections::btree_map::Entry::Vacant(vacant) => {
                        let since = domain::time::minus(at, Duration::from_secs(window.seconds))
                            .ok_or_else(|| StorageError::Invalid(format!("{at:?} is not an RFC 3339 time")))?;
                        vacant.insert(WindowPlan {
                            since,
                            objects_up_to: None,
                            workloads: BTreeMap::new(),
                        })
                    }
                };
                planned.objects_up_to = planned.objects_up_to.max(window.objects_up_to());
                if let (Some(workloads), Some(cap)) = (&window.limits.workloads, window.workloads_up_to()) {
                    for prefix in &workloads.prefixes {
                        let counted = planned.workloads.entry(prefix.clone()).or_default();
                        *counted = (*counted).max(cap);
                    }
                }
            }
        }
        Ok(plan)
    }
}

/// One window length's counts when the batch began.
pub(super) struct Counts {
    pub(super) since: String,
    pub(super) first: Option<First>,
    pub(super) objects: Option<i64>,
    pub(super) workloads: HashMap<String, i64>,
}

/// What the batch read, and what it has added since.
pub(super) struct Snapshot {
    at: String,
    /// Each subject's newest row when the batch began.
    start: HashMap<String, Option<Newest>>,
    /// Each subject's newest row now (with the rows the batch added).
    pub(super) newest: HashMap<String, Option<Newest>>,
    pub(super) windows: HashMap<(String, u64), Counts>,
    /// When each (subject, object) of the batch was last changed before it.
    pub(super) last_changed: HashMap<(String, String), String>,
    /// Per subject, the objects the batch changed, with when each was last changed before it.
    touched: HashMap<String, HashMap<String, Option<String>>>,
    /// Per subject, the time of the first row the batch added.
    first_added: HashMap<String, String>,
}

/// Reads a [`Snapshot`] for the [`Plan`] `$plan` through `$conn` (a transaction or a connection). A macro,
/// not a function: like `with_writer!`, the body is compiled once per backend.
macro_rules! read_snapshot {
    ($conn:expr, $plan:expr) => {{
        use $crate::budgets::snapshot::{Counts, FIRST_IN_WINDOW, NEWEST, Newest, OBJECTS, OBJECTS_IN_RANGE, Snapshot};
        let plan = &$plan;
        let mut snapshot = Snapshot::new(&plan.at);
        for subject in &plan.subjects {
            let row: Option<Newest> = sqlx::query_as(NEWEST).bind(subject).fetch_optional(&mut *$conn).await?;
            snapshot.newest.insert(subject.clone(), row);
        }
        for ((subject, seconds), window) in &plan.windows {
            let first = sqlx::query_as(FIRST_IN_WINDOW)
                .bind(subject)
                .bind(&window.since)
                .fetch_optional(&mut *$conn)
                .await?;
            let objects = match window.objects_up_to {
                None => None,
                Some(cap) => Some(
                    sqlx::query_scalar(OBJECTS)
                        .bind(subject)
                        .bind(&window.since)
                        .bind(cap)
                        .fetch_one(&mut *$conn)
                        .await?,
                ),
            };
            let mut workloads = std::collections::HashMap::new();
            for (prefix, cap) in &window.workloads {
                // The keys under `prefix` (ending in '/') sort up to the same prefix ending in '0', the next
                // character.
                let to = format!("{}0", prefix.trim_end_matches('/'));
                let counted: i64 = sqlx::query_scalar(OBJECTS_IN_RANGE)
                    .bind(subject)
                    .bind(prefix)
                    .bind(&to)
                    .bind(&window.since)
                    .bind(cap)
                    .fetch_one(&mut *$conn)
                    .await?;
                workloads.insert(prefix.clone(), counted);
            }
            let since = window.since.clone();
            let counts = Counts {
                since,
                first,
                objects,
                workloads,
            };
            snapshot.windows.insert((subject.clone(), *seconds), counts);
        }
        for (subject, objects) in &plan.objects {
            let mut query = sqlx::QueryBuilder::new("SELECT object, last_at FROM budget_objects WHERE subject = ");
            query.push_bind(subject.as_str()).push(" AND object IN (");
            let mut list = query.separated(", ");
            for object in objects {
                list.push_bind(object.as_str());
            }
            list.push_unseparated(")");
            let rows: Vec<(String, String)> = query.build_query_as().fetch_all(&mut *$conn).await?;
            for (object, at) in rows {
                snapshot.last_changed.insert((subject.clone(), object), at);
            }
        }
        snapshot.begin();
        snapshot
    }};
}

impl Snapshot {
    pub(super) fn new(at: &str) -> Snapshot {
        Snapshot {
            at: at.to_owned(),
            start: HashMap::new(),
            newest: HashMap::new(),
            windows: HashMap::new(),
            last_changed: HashMap::new(),
            touched: HashMap::new(),
            first_added: HashMap::new(),
        }
    }

    /// Marks the rows read as the batch's start.
    pub(super) fn begin(&mut self) {
        self.start = self.newest.clone();
    }

    /// `window`'s usage now, for a reservation that changes `object`.
    pub(super) fn count(&self, window: &Window, object: &str) -> Counted {
        let subject = &window.subject;
        let counts = &self.windows[&(subject.clone(), window.seconds)];
        let totals = |row: Option<&Option<Newest>>| match row {
            Some(Some((_, _, mutations, deletes, replicas))) => (*mutations, *deletes, *replicas),
            _ => (0, 0, 0),
        };
        let now = totals(self.newest.get(subject));
        // The window's first row read at the start, or (none then) the first the batch added.
        let (oldest, before) = match &counts.first {
            Some((at, mutations, deletes, replicas)) => (Some(at.clone()), (*mutations, *deletes, *replicas)),
            None => (self.first_added.get(subject).cloned(), totals(self.start.get(subject))),
        };
        let touched = self.touched.get(subject);
        // Objects the batch changed that were not in the window before it (they are now).
        let entered = |counts_object: &dyn Fn(&str) -> bool| {
            touched.map_or(0, |touched| {
                let entered = touched.iter().filter(|(object, before)| {
                    counts_object(object) && before.as_ref().is_none_or(|at| *at < counts.since)
                });
                entered.count() as i64
            })
        };
        let objects = window
            .objects_up_to()
            .map(|cap| (counts.objects.unwrap_or(0) + entered(&|_| true)).min(cap));
        let workloads = window.limits.workloads.as_ref().map(|limit| {
            let read: i64 = limit.prefixes.iter().filter_map(|p| counts.workloads.get(p)).sum();
            let of_namespace = |object: &str| limit.prefixes.iter().any(|p| object.starts_with(p.as_str()));
            (read + entered(&of_namespace)).min(limit.limit.saturating_add(1))
        });
        let key = (subject.clone(), object.to_owned());
        let object_seen = touched.is_some_and(|touched| touched.contains_key(object))
            || self.last_changed.get(&key).is_some_and(|at| *at >= counts.since);
        Counted {
            used: Usage {
                mutations: now.0 - before.0,
                deletes: now.1 - before.1,
                replicas: now.2 - before.2,
                objects,
                workloads,
            },
            oldest,
            object_seen,
        }
    }

    /// Adds `spend` to each of `subjects` (distinct): the rows to insert, one per subject.
    pub(super) fn add(&mut self, subjects: &[&str], spend: &Spend) -> Vec<(String, Newest)> {
        let mut rows = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let subject = (*subject).to_owned();
            let row = next_row(self.newest.get(&subject).and_then(Option::as_ref), &self.at, spend);
            self.first_added.entry(subject.clone()).or_insert_with(|| row.1.clone());
            let before = self.last_changed.get(&(subject.clone(), spend.object.clone())).cloned();
            let touched = self.touched.entry(subject.clone()).or_default();
            touched.entry(spend.object.clone()).or_insert(before);
            self.newest.insert(subject.clone(), Some(row.clone()));
            rows.push((subject, row));
        }
        rows
    }
}

/// The row a reservation adds after the subject's `newest`: the next seq, the batch's moment `at` or the
/// newest's time if later (so `at` never decreases along `seq`, whatever the clocks of the gateways), and the
/// running totals.
fn next_row(newest: Option<&Newest>, at: &str, spend: &Spend) -> Newest {
    let (seq, newest_at, mutations, deletes, replicas) = newest.cloned().unwrap_or((0, String::new(), 0, 0, 0));
    (
        seq + 1,
        if at > newest_at.as_str() {
            at.to_owned()
        } else {
            newest_at
        },
        mutations + 1,
        deletes + i64::from(spend.delete),
        replicas + spend.replicas,
    )
}
