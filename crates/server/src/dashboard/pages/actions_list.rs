//! The actions list: one row per action (not per entry), newest first, filtered by status, namespace and (for
//! auditors) identity, and paged by the API's cursor. The pipeline's `list_rows` applies the API's role rule:
//! anyone but an auditor sees only their own actions.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use domain::ActionStatus;
use gateway::Role;
use serde::Deserialize;
use serde_json::Value;
use storage::{ActionFilter, ActionRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::timeline::identity_choices;
use super::{names, nav, text_of};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, Nav};

/// Actions per page, unless the query asks for fewer.
const PAGE: u32 = 50;
/// Longest filter value accepted (names, namespaces and ids are far shorter).
const MAX_FILTER: usize = 256;

/// This module's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/actions", get(actions))
}

/// The list's query: its filters, the cursor, and an optional smaller page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsQuery {
    status: Option<String>,
    namespace: Option<String>,
    identity: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

/// The filters as the page's form shows them again.
#[derive(Debug, Clone, Default)]
pub struct ActionsFilterView {
    /// The status chosen (empty: any).
    pub status: String,
    /// The namespace typed (empty: any).
    pub namespace: String,
    /// The identity chosen (empty: any; only auditors choose).
    pub identity: String,
}

/// A moment as the pages show it: relative, with the exact time for `datetime` and hover.
#[derive(Debug, Clone)]
pub struct When {
    /// As stored (RFC 3339).
    pub exact: String,
    /// E.g. `3 min ago`.
    pub relative: String,
}

/// One action, one row.
#[derive(Debug, Clone)]
pub struct ActionListRow {
    /// Its id, for the link to its page.
    pub id: String,
    /// When it was asked for.
    pub when: When,
    /// The requester's name (its id when the name is unknown).
    pub who: String,
    /// `TYPE Kind ns/name`.
    pub what: String,
    /// The cluster it targets.
    pub cluster: String,
    /// The assessed risk (empty before assessment).
    pub risk: String,
    /// The policy's outcome (empty before a decision).
    pub decision: String,
    /// Its status, as the API spells it.
    pub status: &'static str,
}

/// `GET /actions`.
#[derive(Debug, Template)]
#[template(path = "actions.html")]
pub struct ActionsPage {
    /// The navigation bar.
    pub nav: Nav,
    /// The filters shown.
    pub filter: ActionsFilterView,
    /// Every status, for the status filter.
    pub statuses: Vec<&'static str>,
    /// (id, name) of identities for the identity filter; empty for anyone but auditors.
    pub identities: Vec<(String, String)>,
    /// This page's rows, newest first.
    pub rows: Vec<ActionListRow>,
    /// The query string of the next (older) page, when there is one.
    pub older: Option<String>,
}

impl ActionsQuery {
    /// Checks the query and turns it into the store's filter (the pipeline adds the role rule).
    fn filter(&self, auditor: bool) -> Result<ActionFilter, PageError> {
        let status = clean(&self.status)?;
        if let Some(status) = status.as_deref().filter(|s| ActionStatus::parse(s).is_none()) {
            return Err(PageError::bad_request(format!(
                "status {status:?} is not one of {}",
                ActionStatus::ALL.map(ActionStatus::as_str).join(", ")
            )));
        }
        let limit = self.limit.unwrap_or(PAGE);
        if !(1..=PAGE).contains(&limit) {
            return Err(PageError::bad_request(format!("limit must be between 1 and {PAGE}")));
        }
        Ok(ActionFilter {
            identity_id: if auditor { clean(&self.identity)? } else { None },
            status,
            namespace: clean(&self.namespace)?,
            before: clean(&self.before)?,
            limit,
        })
    }

    /// The query string of the page after `last` (the filters kept).
    fn older(&self, last: &str) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("namespace", &self.namespace),
            ("identity", &self.identity),
        ] {
            if let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                pairs.append_pair(name, value);
            }
        }
        if let Some(limit) = self.limit.filter(|l| *l != PAGE) {
            pairs.append_pair("limit", &limit.to_string());
        }
        pairs.append_pair("before", last);
        pairs.finish()
    }
}

fn clean(value: &Option<String>) -> Result<Option<String>, PageError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.len() > MAX_FILTER => Err(PageError::bad_request(format!(
            "filter values are at most {MAX_FILTER} characters"
        ))),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// `TYPE Kind ns/name` of an action (no namespace: `TYPE Kind name`; no name: the namespace alone).
fn summary(action_type: &str, kind: &str, namespace: Option<&str>, name: Option<&str>) -> String {
    let target = match (namespace.filter(|n| !n.is_empty()), name.filter(|n| !n.is_empty())) {
        (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
        (Some(namespace), None) => format!("{namespace}/"),
        (None, Some(name)) => name.to_owned(),
        (None, None) => String::new(),
    };
    format!("{action_type} {kind} {target}").trim_end().to_owned()
}

fn row_view(row: &ActionRow, names: &HashMap<String, String>, now: OffsetDateTime) -> ActionListRow {
    let decision = row
        .decision
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .map(|d| text_of(&d))
        .unwrap_or_default();
    ActionListRow {
        id: row.id.clone(),
        when: when(&row.created_at, now),
        who: names
            .get(&row.identity_id)
            .cloned()
            .unwrap_or_else(|| row.identity_id.clone()),
        what: summary(
            &row.action_type,
            &row.resource_kind,
            row.namespace.as_deref(),
            row.resource_name.as_deref(),
        ),
        cluster: row.cluster.clone().unwrap_or_default(),
        risk: row.risk.clone().unwrap_or_default(),
        decision,
        status: row.status.as_str(),
    }
}

/// `GET /actions`: a page of actions the signed-in identity may see.
pub async fn actions(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<ActionsQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let auditor = session.caller.identity.has_role(Role::Auditor);
    let filter = query.filter(auditor)?;
    let (rows, next_before) = state.pipeline.list_rows(&session.caller, filter.clone()).await?;
    let names = names(&state, rows.iter().map(|r| r.identity_id.as_str())).await?;
    let now = OffsetDateTime::now_utc();
    let mut identities = if auditor {
        identity_choices(&state, filter.identity_id.as_deref()).await?
    } else {
        Vec::new()
    };
    identities.sort_by(|a, b| a.1.cmp(&b.1));
    let page = ActionsPage {
        nav: nav(&session, "actions"),
        filter: ActionsFilterView {
            status: filter.status.clone().unwrap_or_default(),
            namespace: filter.namespace.clone().unwrap_or_default(),
            identity: filter.identity_id.clone().unwrap_or_default(),
        },
        statuses: ActionStatus::ALL.map(ActionStatus::as_str).to_vec(),
        identities,
        rows: rows.iter().map(|row| row_view(row, &names, now)).collect(),
        older: next_before.map(|last| query.older(&last)),
    };
    Ok(views::html(&page))
}

/// `at` (RFC 3339) as a page shows it at `now`.
pub(super) fn when(at: &str, now: OffsetDateTime) -> When {
    When {
        exact: at.to_owned(),
        relative: relative(at, now),
    }
}

/// How long before `now` the moment `at` (RFC 3339) was, in words: `just now`, `42 s ago`, `3 min ago`,
/// `5 h ago`, `2 days ago`; a moment more than 30 days back as its date; a moment ahead (another clock) as
/// `in 3 min`. Text that is not RFC 3339 comes back as it is.
pub fn relative(at: &str, now: OffsetDateTime) -> String {
    let Ok(moment) = OffsetDateTime::parse(at, &Rfc3339) else {
        return at.to_owned();
    };
    let seconds = (now - moment).whole_seconds();
    let span = seconds.unsigned_abs();
    let amount = match span {
        0..10 => return "just now".to_owned(),
        10..60 => format!("{span} s"),
        60..3_600 => format!("{} min", span / 60),
        3_600..86_400 => format!("{} h", span / 3_600),
        86_400..172_800 => "1 day".to_owned(),
        172_800..2_592_000 => format!("{} days", span / 86_400),
        _ => return format!("on {}", at.get(..10).unwrap_or(at)),
    };
    if seconds < 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn relative_times_read_like_a_person_would_say_them() {
        let now = at("2026-03-10T12:00:00Z");
        let cases = [
            ("2026-03-10T12:00:00.000000Z", "just now"),
            ("2026-03-10T11:59:51Z", "just now"),
            ("2026-03-10T11:59:18.5Z", "41 s ago"),
            ("2026-03-10T11:57:00Z", "3 min ago"),
            ("2026-03-10T11:00:00.000001Z", "59 min ago"),
            ("2026-03-10T11:00:00Z", "1 h ago"),
            ("2026-03-09T12:00:01Z", "23 h ago"),
            ("2026-03-09T12:00:00Z", "1 day ago"),
            ("2026-03-07T11:00:00Z", "3 days ago"),
            ("2026-02-01T08:00:00Z", "on 2026-02-01"),
            ("2026-03-10T12:03:00Z", "in 3 min"),
            ("2026-03-10T13:00:00+01:00", "just now"),
        ];
        for (moment, expected) in cases {
            assert_eq!(relative(moment, now), expected, "{moment}");
        }
        assert_eq!(relative("yesterday", now), "yesterday", "not RFC 3339: as it is");
        let shown = when("2026-03-10T11:57:00Z", now);
        assert_eq!(
            (shown.exact.as_str(), shown.relative.as_str()),
            ("2026-03-10T11:57:00Z", "3 min ago")
        );
    }

    #[test]
    fn a_summary_names_type_kind_namespace_and_name() {
        assert_eq!(
            summary("T", "Deployment", Some("shop"), Some("web")),
            "T Deployment shop/web"
        );
        assert_eq!(summary("T", "Namespace", None, Some("shop")), "T Namespace shop");
        assert_eq!(summary("T", "Pod", Some("shop"), None), "T Pod shop/");
        assert_eq!(summary("T", "Node", None, None), "T Node");
    }

    #[test]
    fn the_next_page_keeps_the_filters_and_escapes_them() {
        let query = ActionsQuery {
            status: Some(ActionStatus::Denied.as_str().to_owned()),
            namespace: Some("a&b c".to_owned()),
            identity: Some(" ".to_owned()),
            before: Some("act_1".to_owned()),
            limit: Some(2),
        };
        let expected = format!(
            "status={}&namespace=a%26b+c&limit=2&before=act_2",
            ActionStatus::Denied.as_str()
        );
        assert_eq!(query.older("act_2"), expected);
        assert!(query.filter(true).is_ok());
        let too_many = ActionsQuery {
            limit: Some(PAGE + 1),
            ..ActionsQuery::default()
        };
        assert!(too_many.filter(true).is_err());
        let unknown = ActionsQuery {
            status: Some("SOMETIMES".to_owned()),
            ..ActionsQuery::default()
        };
        assert!(unknown.filter(true).is_err());
        let someone = ActionsQuery {
            identity: Some("agt_1".to_owned()),
            ..ActionsQuery::default()
        };
        assert_eq!(someone.filter(false).unwrap().identity_id, None, "only auditors choose");
        assert_eq!(someone.filter(true).unwrap().identity_id.as_deref(), Some("agt_1"));
    }
}
