//! The queries the gateway runs per request, with sample parameters, and their query plans. The query-plan
//! test (`tests/hot_paths.rs`) asserts on a large seeded ledger that none of them reads a table that grows
//! with the ledger ([`GROWING_TABLES`]) whole; the statements come from `queries`, the same text the `Store`
//! functions (and the appender's trust fold) run.

use crate::dashboard::TimelineFilter;
use crate::directory::ActionFilter;
use crate::queries;
use domain::{ActionStatus, EntryKind};

mod explain;
mod overview;
mod tlog;

/// A parameter value to plan a statement with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A text value.
    Text(String),
    /// An integer value.
    Int(i64),
    /// NULL of a text column.
    Null,
    /// NULL of an integer column.
    NullInt,
    /// A text array (PostgreSQL only: `= ANY($1)`).
    Texts(Vec<String>),
}

/// The tables that grow with the ledger: no per-request statement may read one whole.
pub const GROWING_TABLES: [&str; 8] = [
    "ledger_entries",
    "actions",
    "trust_changes",
    "trust_actions",
    "trust_scores",
    "tlog_tiles",
    "tlog_checkpoints",
    "tlog_cosignatures",
];

/// One per-request statement and the parameters to plan it with.
#[derive(Debug, Clone)]
pub struct HotPath {
    /// What the statement is for, e.g. `auth: key by digest`; unique, and how tests name it.
    pub name: &'static str,
    /// The statement, exactly as the `Store` runs it.
    pub sql: String,
    /// Its parameters in `$n` order.
    pub params: Vec<Sample>,
}

/// A statement's plan as the database prints it (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN QUERY PLAN`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The [`HotPath`]'s name.
    pub name: &'static str,
    /// The statement that was planned.
    pub sql: String,
    /// The plan's text, one line per plan node.
    pub plan: String,
}

impl Plan {
    /// The lines of the plan that read one of [`GROWING_TABLES`] whole: a PostgreSQL sequential scan, or a
    /// SQLite `SCAN` without an index (`e` and `a` are the aliases the statements give the first two).
    pub fn full_scans(&self) -> Vec<&str> {
        self.plan.lines().filter(|line| is_full_scan(line)).collect()
    }
}

fn is_full_scan(line: &str) -> bool {
    let line = line.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
    if let Some(table) = line.strip_prefix("Seq Scan on ") {
        let table = table.split_whitespace().next().unwrap_or("");
        return GROWING_TABLES.contains(&table);
    }
    if let Some(rest) = line.strip_prefix("SCAN ") {
        let mut words = rest.split_whitespace();
        let table = words.next().unwrap_or("");
        let indexed = words.next() == Some("USING");
        return !indexed && (GROWING_TABLES.contains(&table) || matches!(table, "e" | "a"));
    }
    false
}

/// Real values from the database, so the planner sees real selectivities.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The newest action.
    pub action_id: String,
    /// The identity that requested it.
    pub identity_id: String,
    /// The digest of one of that identity's keys (empty if it has none).
    pub key_digest: String,
    /// The action's first ledger entry (empty if it has none).
    pub entry_id: String,
    /// The action's namespace (`default` if it has none).
    pub namespace: String,
    /// The ledger's highest seq (0 when empty).
    pub seq: i64,
    /// The current time (RFC 3339 UTC, microseconds).
    pub now: String,
    /// The statements of the appender's trust fold differ by backend (`= ANY($1)` or `IN (…)`).
    pub postgres: bool,
}

fn text(value: &str) -> Sample {
    Sample::Text(value.to_string())
}

/// Every per-request statement that touches a table that grows with the ledger (and authentication's).
pub fn hot_paths(s: &Samples) -> Vec<HotPath> {
    let mut paths = identity_paths(s);
    paths.extend(action_paths(s));
    paths.extend(recovery_paths(s));
    paths.extend(entry_paths(s));
    paths.extend(duty_and_audit_paths(s));
    paths.extend(action_list_paths(s));
    paths.extend(timeline_paths(s));
    paths.extend(trust_paths(s));
    paths.extend(tlog::tlog_paths(s));
    paths.extend(overview::overview_paths(s));
    paths
}

fn path(name: &'static str, sql: String, params: Vec<Sample>) -> HotPath {
    HotPath { name, sql, params }
}

/// Authentication's lookups and the identities API's pages.
fn identity_paths(s: &Samples) -> Vec<HotPath> {
    vec![
        path(
            "auth: key by digest",
            queries::key_by_digest(),
            vec![text(&s.key_digest)],
        ),
        path(
            "auth: identity by id",
            queries::identity_by_id(),
            vec![text(&s.identity_id)],
        ),
        path(
            "identities: first page",
            queries::identities_page(false),
            vec![Sample::Int(100)],
        ),
        path(
            "identities: next page",
            queries::identities_page(true),
            vec![text(&s.identity_id), Sample::Int(100)],
        ),
        path("identities: keys of", queries::keys_of(), vec![text(&s.identity_id)]),
        path(
            "identities: page of keys",
            queries::keys_page(true),
            vec![text(&s.identity_id), text("key_sample"), Sample::Int(100)],
        ),
    ]
}

/// An action's life: found by id or idempotency key, updated, claimed, approved, expired.
fn action_paths(s: &Samples) -> Vec<HotPath> {
    vec![
        path("actions: by id", queries::action_by_id(), vec![text(&s.action_id)]),
        path(
            "breakers: recent actions of an identity with a status",
            queries::RECENT_ACTIONS_WITH_STATUS.into(),
            vec![text(&s.identity_id), text(&s.now), text(ActionStatus::Denied.as_str())],
        ),
        path(
            "breakers: budget refusals of an identity",
            crate::breakers::BUDGET_HITS.into(),
            vec![
                text(&s.identity_id),
                text(&s.now),
                text(ActionStatus::Denied.as_str()),
                text(EntryKind::BudgetExceeded.as_str()),
            ],
        ),
        path(
            "breakers: newest bypasses",
            crate::breakers::entries_of_kind_before(),
            vec![
                text(EntryKind::AuditBypassDetected.as_str()),
                Sample::Int(s.seq),
                Sample::Int(100),
            ],
        ),
        path("actions: update", queries::UPDATE_ACTION.into(), update_params(s)),
        path(
            "actions: claim",
            queries::CLAIM_ACTION.into(),
            vec![
                text(&s.action_id),
                text(ActionStatus::PendingApproval.as_str()),
                text(ActionStatus::Expired.as_str()),
                text(&s.now),
            ],
        ),
        path(
            "approvals: claim for execution",
            queries::CLAIM_FOR_EXECUTION.into(),
            vec![text(&s.action_id), text(&s.now), text("gwi_sample")],
        ),
        path(
            "approvals: renew digest",
            queries::RENEW_APPROVAL.into(),
            vec![
                text(&s.action_id),
                text("sha256:old"),
                text("sha256:new"),
                text(&s.now),
                text(&s.now),
            ],
        ),
        path(
            "approvals: of action",
            queries::APPROVALS_OF.into(),
            vec![text(&s.action_id), text("sha256:old")],
        ),
        path(
            "approvals: expiry scan",
            queries::due_approvals(),
            vec![text(&s.now), Sample::Int(1000)],
        ),
        path(
            "actions: by idempotency key",
            queries::action_by_idempotency_key(),
            vec![text(&s.identity_id), text("idem-sample")],
        ),
    ]
}

/// Recovery: the actions a gateway left unfinished, taken over and resumed.
fn recovery_paths(s: &Samples) -> Vec<HotPath> {
    vec![
        path(
            "recovery: unfinished actions",
            queries::unfinished_actions(),
            vec![text("gwi_sample"), text(&s.now), text(&s.now), Sample::Int(100)],
        ),
        path(
            "recovery: take over",
            queries::TAKE_OVER_ACTION.into(),
            vec![text(&s.action_id), Sample::Null, text("gwi_sample"), text(&s.now)],
        ),
        path(
            "recovery: record intent",
            queries::RECORD_INTENT.into(),
            vec![text(&s.action_id), text("{}"), text("gwi_sample")],
        ),
    ]
}

/// Reads of ledger entries (the API's, the appender's head, the SIEM export's pages) and the export's cursor.
fn entry_paths(s: &Samples) -> Vec<HotPath> {
    vec![
        path(
            "entries: of action",
            queries::entries_of_action(),
            vec![text(&s.action_id)],
        ),
        path("entries: by id", queries::entry_by_id(), vec![text(&s.entry_id)]),
        path("entries: head (appender)", queries::head(), vec![]),
        path(
            "entries: page after seq (API, SIEM export)",
            queries::entries_after(),
            vec![Sample::Int(s.seq / 2), Sample::Int(1000)],
        ),
        path("siem: cursor", queries::EXPORT_CURSOR.into(), vec![text("siem")]),
    ]
}

/// Separation of duties between requester and approver, and the audit log's claims.
fn duty_and_audit_paths(s: &Samples) -> Vec<HotPath> {
    vec![
        path(
            "approvals: separation of duties",
            queries::CONTROLLERS_OF.into(),
            vec![text(&s.identity_id)],
        ),
        path(
            "audit: claim event",
            queries::AUDIT_CLAIM.into(),
            vec![text("default"), text("audit-sample"), text(&s.now), text(&s.now)],
        ),
    ]
}

/// The actions list under each filter the API offers: the first page, and the next one.
fn action_list_paths(s: &Samples) -> Vec<HotPath> {
    let actions = |identity: bool, status: bool, namespace: bool| ActionFilter {
        identity_id: identity.then(|| s.identity_id.clone()),
        status: status.then(|| ActionStatus::PendingApproval.as_str().to_string()),
        namespace: namespace.then(|| s.namespace.clone()),
        before: None,
        limit: 100,
    };
    let mut paths = Vec::new();
    for (name, identity, status, namespace) in [
        ("actions: list", false, false, false),
        ("actions: list by requester", true, false, false),
        ("actions: list by status (pending approvals)", false, true, false),
        ("actions: list by namespace", false, false, true),
        ("actions: list by requester and status", true, true, false),
    ] {
        let filter = actions(identity, status, namespace);
        paths.push(path(name, queries::actions_list(&filter), action_params(&filter)));
        let next = ActionFilter {
            before: Some(s.action_id.clone()),
            ..filter
        };
        paths.push(path(
            next_page_name(name),
            queries::actions_list(&next),
            action_params(&next),
        ));
    }
    paths
}

/// The trust tables' statements: the reads of the API and the appender's fold in every append transaction.
fn trust_paths(s: &Samples) -> Vec<HotPath> {
    let actions = vec![s.action_id.clone(), "act_sample".to_string()];
    let owners = vec![s.identity_id.clone(), "gwi_sample".to_string()];
    let (fold_actions, fold_scores) = if s.postgres {
        (
            path(
                "trust: fold, actions of the batch",
                queries::TRUST_ACTIONS_ANY.into(),
                vec![Sample::Texts(actions)],
            ),
            path(
                "trust: fold, scores of the batch",
                queries::TRUST_SCORES_ANY.into(),
                vec![Sample::Texts(owners)],
            ),
        )
    } else {
        (
            path(
                "trust: fold, actions of the batch",
                queries::trust_actions_in(actions.len()),
                actions.iter().map(|id| text(id)).collect(),
            ),
            path(
                "trust: fold, scores of the batch",
                queries::trust_scores_in(owners.len()),
                owners.iter().map(|id| text(id)).collect(),
            ),
        )
    };
    let version = Sample::Int(i64::from(ledger_core::trust::SCORING_VERSION));
    vec![
        path("trust: score", queries::TRUST_SCORE.into(), vec![text(&s.identity_id)]),
        path(
            "trust: changes, newest page",
            queries::TRUST_CHANGES.into(),
            vec![text(&s.identity_id), Sample::Int(i64::MAX), Sample::Int(50)],
        ),
        path(
            "trust: changes, older page",
            queries::TRUST_CHANGES.into(),
            vec![text(&s.identity_id), Sample::Int(s.seq / 2), Sample::Int(50)],
        ),
        path(
            "trust: fold, check and move the state",
            queries::TRUST_ADVANCE.into(),
            vec![Sample::Int(s.seq + 10), Sample::Int(s.seq), version],
        ),
        fold_actions,
        fold_scores,
        path("trust: catch-up, up to date?", queries::TRUST_UP_TO_DATE.into(), vec![]),
    ]
}

fn next_page_name(name: &str) -> &'static str {
    match name {
        "actions: list" => "actions: list, next page",
        "actions: list by requester" => "actions: list by requester, next page",
        "actions: list by status (pending approvals)" => "actions: list by status, next page",
        "actions: list by namespace" => "actions: list by namespace, next page",
        _ => "actions: list by requester and status, next page",
    }
}

fn update_params(s: &Samples) -> Vec<Sample> {
    let mut params = vec![
        text(&s.action_id),
        text(ActionStatus::Completed.as_str()),
        text("LOW"),
        Sample::Null,
        text(&s.now),
    ];
    params.extend([
        Sample::Null,
        Sample::Null,
        Sample::Null,
        Sample::NullInt,
        Sample::Null,
        Sample::Null,
    ]);
    params
}

/// The parameters `queries::actions_list` numbers, in its order.
pub(crate) fn action_params(filter: &ActionFilter) -> Vec<Sample> {
    let given = [&filter.identity_id, &filter.status, &filter.namespace, &filter.before];
    let mut params: Vec<Sample> = given.into_iter().flatten().map(|v| text(v)).collect();
    params.push(Sample::Int(i64::from(filter.limit.clamp(1, 1000))));
    params
}

/// The parameters `queries::timeline` numbers, in its order.
pub(crate) fn timeline_params(filter: &TimelineFilter) -> Vec<Sample> {
    let mut params = vec![
        Sample::Int(filter.before_seq.unwrap_or(i64::MAX)),
        Sample::Int(filter.after_seq.unwrap_or(0)),
    ];
    let given = [
        &filter.identity,
        &filter.namespace,
        &filter.kind,
        &filter.status,
        &filter.risk,
    ];
    params.extend(given.into_iter().flatten().map(|v| text(v)));
    params.push(Sample::Int(i64::from(filter.limit.clamp(1, 1000))));
    params
}

fn timeline_paths(s: &Samples) -> Vec<HotPath> {
    let base = TimelineFilter {
        limit: 50,
        ..TimelineFilter::default()
    };
    let variants: Vec<(&'static str, TimelineFilter)> = vec![
        ("timeline", base.clone()),
        (
            "timeline: older page",
            TimelineFilter {
                before_seq: Some(s.seq / 2),
                ..base.clone()
            },
        ),
        (
            "timeline: newer entries",
            TimelineFilter {
                after_seq: Some(s.seq - 10),
                ..base.clone()
            },
        ),
        (
            "timeline: by identity",
            TimelineFilter {
                identity: Some(s.identity_id.clone()),
                ..base.clone()
            },
        ),
        (
            "timeline: by namespace",
            TimelineFilter {
                namespace: Some(s.namespace.clone()),
                ..base.clone()
            },
        ),
        (
            "timeline: by kind",
            TimelineFilter {
                kind: Some(EntryKind::ApprovalGranted.as_str().into()),
                ..base.clone()
            },
        ),
        (
            "timeline: by status",
            TimelineFilter {
                status: Some(ActionStatus::Failed.as_str().into()),
                ..base.clone()
            },
        ),
        (
            "timeline: by risk",
            TimelineFilter {
                risk: Some("HIGH".into()),
                ..base.clone()
            },
        ),
    ];
    variants
        .into_iter()
        .map(|(name, filter)| HotPath {
            name,
            sql: queries::timeline(&filter),
            params: timeline_params(&filter),
        })
        .collect()
}

/// Binds `params` to a query in order (one macro for both backends' query types; arrays only by
/// [`explain::bind_postgres`]).
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::hot_paths::Sample::Text(v) => query.bind(v.clone()),
                $crate::hot_paths::Sample::Int(v) => query.bind(*v),
                $crate::hot_paths::Sample::Null => query.bind(None::<String>),
                $crate::hot_paths::Sample::NullInt => query.bind(None::<i64>),
                $crate::hot_paths::Sample::Texts(_) => unreachable!("arrays are bound on PostgreSQL only"),
            };
        }
        query
    }};
}
pub(crate) use bind_all;

#[cfg(test)]
mod tests {
    use super::is_full_scan;

    #[test]
    fn full_scans_are_told_from_index_scans() {
        assert!(is_full_scan(
            "  ->  Seq Scan on ledger_entries e  (cost=0.00..1.00 rows=1 width=8)"
        ));
        assert!(is_full_scan("Seq Scan on actions  (cost=0.00..1.00 rows=1 width=8)"));
        assert!(!is_full_scan("Seq Scan on gateway_instances g"));
        assert!(!is_full_scan(
            "Index Scan Backward using ledger_entries_pkey on ledger_entries e"
        ));
        assert!(is_full_scan("SCAN e"));
        assert!(is_full_scan("SCAN actions"));
        assert!(!is_full_scan("SCAN actions USING INDEX actions_created"));
        assert!(!is_full_scan(
            "SEARCH e USING INDEX ledger_entries_action_id (action_id=?)"
        ));
        assert!(!is_full_scan("SCAN g"));
        assert!(is_full_scan(
            "Seq Scan on trust_changes  (cost=0.00..1.00 rows=1 width=8)"
        ));
        assert!(is_full_scan("SCAN trust_scores"));
        assert!(!is_full_scan(
            "SEARCH trust_scores USING INDEX sqlite_autoindex_trust_scores_1 (identity_id=?)"
        ));
        assert!(!is_full_scan("Seq Scan on trust_state st"));
    }
}
