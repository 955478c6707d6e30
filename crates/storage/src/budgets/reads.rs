//! A batch's reads as one statement: the `UNION ALL` of one small indexed query per thing to know (a subject's
//! newest row, a window's first row, its distinct objects and workloads, when the batch's objects were last
//! changed), each row tagged with its slot. A reservation batch of a few reservations is then a handful of
//! round trips in all — the lock, this read, the two writes, the commit — instead of one per query: on SQLite's
//! single writer connection each round trip is a hand-over to its worker thread, and those were the cost.
//!
//! Every row has the same shape, `(slot, name, at, a, b, c, d)`; what the columns hold depends on the slot's
//! kind ([`Slot`]). The text is built here with `$n` placeholders numbered in order (both backends accept
//! them), and the values to bind come with it.

use super::snapshot::Plan;

/// What a row of the read answers.
pub(super) enum Slot {
    /// The subject's newest row: `at`, `a` = seq, `b`/`c`/`d` = total mutations, deletes, replicas.
    Newest(String),
    /// The first row of the (subject, window length): `at`, `b`/`c`/`d` = the totals before it.
    First((String, u64)),
    /// Distinct objects of the (subject, window length) within it: `a`.
    Objects((String, u64)),
    /// Distinct objects of the (subject, window length) under the prefix within it: `a`.
    Workloads((String, u64), String),
    /// When the subject last changed one of the batch's objects: `name` = the object, `at`.
    LastChanged(String),
}

/// A value to bind.
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// Most queries one statement unites (SQLite allows 500 in a compound select).
const QUERIES_PER_STATEMENT: usize = 200;

/// The statements to run, with their binds, and the slot each row's first column numbers.
pub(super) struct Reads {
    pub(super) statements: Vec<(String, Vec<Bind>)>,
    pub(super) slots: Vec<Slot>,
}

/// One query of the union: its text (with `{}` for each placeholder, numbered later) and its binds.
struct Query {
    text: String,
    binds: Vec<Bind>,
}

/// The columns every query selects after its slot and before its own: nothing for `name`.
const NO_NAME: &str = "CAST(NULL AS TEXT)";
const ZERO: &str = "CAST(0 AS BIGINT)";

impl Reads {
    /// The reads `plan` needs.
    pub(super) fn of(plan: &Plan) -> Reads {
        let mut slots = Vec::new();
        let mut queries = Vec::new();
        let text = |value: &str| Bind::Text(value.to_owned());
        for subject in &plan.subjects {
            queries.push(Query {
                text: format!(
                    "{NO_NAME}, at, seq, total_mutations, total_deletes, total_replicas FROM (SELECT seq, at, \
                     total_mutations, total_deletes, total_replicas FROM budget_spend WHERE subject = {{}} \
                     ORDER BY seq DESC LIMIT 1)"
                ),
                binds: vec![text(subject)],
            });
            slots.push(Slot::Newest(subject.clone()));
        }
        for ((subject, seconds), window) in &plan.windows {
            let key = (subject.clone(), *seconds);
            queries.push(Query {
                text: format!(
                    "{NO_NAME}, at, {ZERO}, total_mutations - 1, total_deletes - deletes, total_replicas - replicas \
                     FROM (SELECT at, total_mutations, total_deletes, deletes, total_replicas, replicas \
                     FROM budget_spend WHERE subject = {{}} AND at >= {{}} ORDER BY at, seq LIMIT 1)"
                ),
                binds: vec![text(subject), text(&window.since)],
            });
            slots.push(Slot::First(key.clone()));
            if let Some(cap) = window.objects_up_to {
                queries.push(Query {
                    text: format!(
                        "{NO_NAME}, {NO_NAME}, COUNT(*), {ZERO}, {ZERO}, {ZERO} FROM (SELECT 1 AS one \
                         FROM budget_objects WHERE subject = {{}} AND last_at >= {{}} LIMIT {{}})"
                    ),
                    binds: vec![text(subject), text(&window.since), Bind::Int(cap)],
                });
                slots.push(Slot::Objects(key.clone()));
            }
            for (prefix, cap) in &window.workloads {
                // The keys under `prefix` (ending in '/') sort up to the same prefix ending in '0', the next
                // character.
                let to = format!("{}0", prefix.trim_end_matches('/'));
                queries.push(Query {
                    text: format!(
                        "{NO_NAME}, {NO_NAME}, COUNT(*), {ZERO}, {ZERO}, {ZERO} FROM (SELECT 1 AS one \
                         FROM budget_objects WHERE subject = {{}} AND object >= {{}} AND object < {{}} \
                         AND last_at >= {{}} LIMIT {{}})"
                    ),
                    binds: vec![
                        text(subject),
                        text(prefix),
                        Bind::Text(to),
                        text(&window.since),
                        Bind::Int(*cap),
                    ],
                });
                slots.push(Slot::Workloads(key.clone(), prefix.clone()));
            }
        }
        for (subject, objects) in &plan.objects {
            let list = vec!["{}"; objects.len()].join(", ");
            let mut binds = vec![text(subject)];
            binds.extend(objects.iter().map(|object| text(object)));
            queries.push(Query {
                text: format!(
                    "object, last_at, {ZERO}, {ZERO}, {ZERO}, {ZERO} FROM (SELECT object, last_at \
                     FROM budget_objects WHERE subject = {{}} AND object IN ({list}))"
                ),
                binds,
            });
            slots.push(Slot::LastChanged(subject.clone()));
        }
        let statements = unite(queries);
        Reads { statements, slots }
    }
}

/// The queries as `UNION ALL` statements of at most [`QUERIES_PER_STATEMENT`] each, slots numbered across
/// them, placeholders numbered within each.
fn unite(queries: Vec<Query>) -> Vec<(String, Vec<Bind>)> {
    let mut statements = Vec::new();
    let mut slot = 0;
    let mut queries = queries.into_iter().peekable();
    while queries.peek().is_some() {
        let (mut sql, mut binds, mut placeholder) = (String::new(), Vec::new(), 0);
        for query in queries.by_ref().take(QUERIES_PER_STATEMENT) {
            if !sql.is_empty() {
                sql.push_str(" UNION ALL ");
            }
            let mut parts = query.text.split("{}");
            sql.push_str(&format!("SELECT CAST({slot} AS BIGINT), "));
            sql.push_str(parts.next().unwrap_or_default());
            for part in parts {
                placeholder += 1;
                sql.push_str(&format!("${placeholder}"));
                sql.push_str(part);
            }
            sql.push_str(&format!(" AS q{slot}"));
            binds.extend(query.binds);
            slot += 1;
        }
        statements.push((sql, binds));
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_united_with_slots_and_placeholders_numbered_in_order() {
        let query = |text: &str, binds: usize| Query {
            text: text.to_owned(),
            binds: (0..binds).map(|n| Bind::Int(n as i64)).collect(),
        };
        let many: Vec<Query> = (0..QUERIES_PER_STATEMENT + 1)
            .map(|_| query("x FROM t WHERE a = {}", 1))
            .collect();
        let statements = unite(many);
        assert_eq!(statements.len(), 2, "split at {QUERIES_PER_STATEMENT} queries");
        assert!(
            statements[0]
                .0
                .starts_with("SELECT CAST(0 AS BIGINT), x FROM t WHERE a = $1 AS q0 UNION ALL")
        );
        assert!(statements[0].0.contains(&format!(
            "a = ${} AS q{}",
            QUERIES_PER_STATEMENT,
            QUERIES_PER_STATEMENT - 1
        )));
        assert_eq!(
            statements[1].0,
            format!(
                "SELECT CAST({QUERIES_PER_STATEMENT} AS BIGINT), x FROM t WHERE a = $1 AS q{QUERIES_PER_STATEMENT}"
            ),
            "placeholders restart, slots go on"
        );
        let two = unite(vec![query("x FROM t WHERE a = {} AND b IN ({}, {})", 3)]);
        assert_eq!(
            two[0].0,
            "SELECT CAST(0 AS BIGINT), x FROM t WHERE a = $1 AND b IN ($2, $3) AS q0"
        );
        assert_eq!(two[0].1.len(), 3);
    }
}
