//! The dashboard overview's reads (`activity.rs`): the hour ranges of the derived activity tables (pruned to
//! 31 days, so they never grow with the ledger), and the few lookups of growing tables beside them.

use domain::ActionStatus;

use super::{HotPath, Sample, Samples, text};
use crate::activity::queries;

pub(super) fn overview_paths(s: &Samples) -> Vec<HotPath> {
    let path = |name, sql: &str, params: Vec<Sample>| HotPath {
        name,
        sql: sql.to_owned(),
        params,
    };
    let hour = s.now.get(..13).unwrap_or("2026-01-01T00");
    vec![
        path("overview: hours", queries::HOURS, vec![text(hour)]),
        path(
            "overview: top requesters",
            queries::TOP_REQUESTERS,
            vec![text(hour), Sample::Int(8)],
        ),
        path(
            "overview: top denials",
            queries::TOP_DENIALS,
            vec![text(hour), Sample::Int(8)],
        ),
        path(
            "overview: first seq of the day",
            queries::FIRST_SEQ_SINCE,
            vec![text(hour)],
        ),
        path(
            "overview: trust score before an entry",
            queries::TRUST_BEFORE,
            vec![text(&s.identity_id), Sample::Int(s.seq)],
        ),
        path(
            "overview: pending approvals",
            queries::PENDING,
            vec![text(ActionStatus::PendingApproval.as_str())],
        ),
        path("overview: counted and head", queries::PROGRESS, vec![]),
        path("overview: up to date", queries::UP_TO_DATE, vec![]),
    ]
}
