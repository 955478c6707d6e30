//! What a batch of reservations needs to know, read once inside its transaction (`read_snapshot!`): each
//! subject's newest row, each window's first row and distinct objects (per subject and window length, so the
//! same for every reservation of the batch, which all count at the batch's moment), and when the batch's objects
//! were last changed. Each reservation's usage is then counted in memory ([`Snapshot::count`]) from it and the
//! rows the batch has added before it ([`Snapshot::add`]), so a batch costs a few statements per subject and
//! window, not per reservation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::reads::Slot;
use super::{Counted, Spend, Usage, Window};
use crate::StorageError;

/// A subject's newest row: (seq, at, total mutations, total deletes, total replicas).
pub(super) type Newest = (i64, String, i64, i64, i64);

/// A window's first row: its time and the totals before it (mutations, deletes, replicas).
type First = (String, i64, i64, i64);

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

/// Reads a [`Snapshot`] for the [`Plan`] `$plan` through `$conn` (a transaction or a connection), in one
/// statement (`reads`). A macro, not a function: like `with_writer!`, the body is compiled once per backend.
macro_rules! read_snapshot {
    ($conn:expr, $plan:expr) => {{
        use $crate::budgets::reads::{Bind, Reads};
        let plan = &$plan;
        let reads = Reads::of(plan);
        let mut rows = Vec::new();
        for (sql, binds) in &reads.statements {
            let mut query = sqlx::query_as(sql);
            for bind in binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text.as_str()),
                    Bind::Int(int) => query.bind(*int),
                };
            }
            rows.extend(query.fetch_all(&mut *$conn).await?);
        }
        $crate::budgets::snapshot::Snapshot::read(plan, &reads.slots, rows)
    }};
}

/// A row of the batch's read (see `reads`): slot, name, at, a, b, c, d.
pub(super) type Row = (
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

impl Snapshot {
    fn new(at: &str) -> Snapshot {
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

    /// The snapshot `rows` (answering `slots`) make for `plan`.
    pub(super) fn read(plan: &Plan, slots: &[Slot], rows: Vec<Row>) -> Snapshot {
        let mut snapshot = Snapshot::new(&plan.at);
        for subject in &plan.subjects {
            snapshot.newest.insert(subject.clone(), None);
        }
        for (key, window) in &plan.windows {
            let counts = Counts {
                since: window.since.clone(),
                first: None,
                objects: None,
                workloads: HashMap::new(),
            };
            snapshot.windows.insert(key.clone(), counts);
        }
        for (slot, name, at, a, b, c, d) in rows {
            let Some(slot) = usize::try_from(slot).ok().and_then(|slot| slots.get(slot)) else {
                continue;
            };
            let (a, b, c, d) = (a.unwrap_or(0), b.unwrap_or(0), c.unwrap_or(0), d.unwrap_or(0));
            match slot {
                Slot::Newest(subject) => {
                    snapshot.newest.insert(subject.clone(), at.map(|at| (a, at, b, c, d)));
                }
                Slot::First(key) => {
                    if let Some(counts) = snapshot.windows.get_mut(key) {
                        counts.first = at.map(|at| (at, b, c, d));
                    }
                }
                Slot::Objects(key) => {
                    if let Some(counts) = snapshot.windows.get_mut(key) {
                        counts.objects = Some(a);
                    }
                }
                Slot::Workloads(key, prefix) => {
                    if let Some(counts) = snapshot.windows.get_mut(key) {
                        counts.workloads.insert(prefix.clone(), a);
                    }
                }
                Slot::LastChanged(subject) => {
                    if let (Some(object), Some(at)) = (name, at) {
                        snapshot.last_changed.insert((subject.clone(), object), at);
                    }
                }
            }
        }
        snapshot.start = snapshot.newest.clone();
        snapshot
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
