//! The ledger timeline: filtered pages of entries, and the new rows the live timeline fetches.

use domain::{ActionStatus, EntryKind};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use gateway::{Caller, Role};
use serde::Deserialize;
use storage::TimelineFilter;

use super::entries::{entry_view, public_keys};
use super::{names, nav};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, EntryView, TimelineFilterView, TimelinePage, TimelineRows};

const RISKS: [&str; 3] = ["LOW", "MEDIUM", "HIGH"];
/// Entries per timeline page.
const PAGE: u32 = 50;
/// Longest filter value accepted (names, namespaces and kinds are far shorter).
const MAX_FILTER: usize = 256;

/// How many identities the timeline's identity filter offers (the first ones created, and the one chosen).
const IDENTITY_CHOICES: u32 = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    identity: Option<String>,
    namespace: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    risk: Option<String>,
    before: Option<i64>,
    after: Option<i64>,
}

impl TimelineQuery {
    fn filter(&self, caller: &Caller) -> Result<TimelineFilter, PageError> {
        let clean = |value: &Option<String>| -> Result<Option<String>, PageError> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(text) if text.len() > MAX_FILTER => Err(PageError::bad_request(format!(
                    "filter values are at most {MAX_FILTER} characters"
                ))),
                Some(text) => Ok(Some(text.to_owned())),
            }
        };
        // Auditors see the whole ledger; anyone else the entries of their own actions and their own acts.
        let identity = if caller.identity.has_role(Role::Auditor) {
            clean(&self.identity)?
        } else {
            Some(caller.identity.id.clone())
        };
        Ok(TimelineFilter {
            identity,
            namespace: clean(&self.namespace)?,
            kind: clean(&self.kind)?,
            status: clean(&self.status)?,
            risk: clean(&self.risk)?,
            before_seq: self.before,
            after_seq: self.after,
            // One more than a page: whether older entries exist.
            limit: PAGE + 1,
        })
    }

    /// The filter as a query string, for links that keep it.
    fn query_string(&self) -> String {
        let pairs = [
            ("identity", &self.identity),
            ("namespace", &self.namespace),
            ("kind", &self.kind),
            ("status", &self.status),
            ("risk", &self.risk),
        ];
        pairs
            .iter()
            .filter_map(|(name, value)| {
                value.as_deref().filter(|v| !v.trim().is_empty()).map(|v| {
                    format!(
                        "{name}={}",
                        url::form_urlencoded::byte_serialize(v.trim().as_bytes()).collect::<String>()
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

async fn timeline_entries(
    state: &AppState,
    caller: &Caller,
    query: &TimelineQuery,
) -> Result<Vec<EntryView>, PageError> {
    let filter = query.filter(caller)?;
    let found = state.store.timeline(&filter).await?;
    let names = names(state, found.iter().map(|t| t.entry.actor.as_str())).await?;
    let keys = public_keys(state).await?;
    Ok(found
        .iter()
        .map(|t| entry_view(&t.entry, &names, &keys, Some((&t.namespace, &t.status, &t.risk))))
        .collect())
}

pub async fn timeline(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let mut rows = timeline_entries(&state, &session.caller, &query).await?;
    let has_older = query.after.is_none() && rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let newest = match query.before {
        // An older page: live updates start from the ledger's head, not from this page.
        Some(_) => state.store.head().await?.map_or(0, |e| e.seq),
        None => rows.first().map_or(0, |r| r.seq),
    };
    let older = has_older.then(|| rows.last().map(|r| r.seq)).flatten();
    let mut identities: Vec<(String, String)> = if session.caller.identity.has_role(Role::Auditor) {
        identity_choices(&state, query.identity.as_deref()).await?
    } else {
        Vec::new()
    };
    identities.sort_by(|a, b| a.1.cmp(&b.1));
    let page = TimelinePage {
        nav: nav(&session, "timeline"),
        filter: TimelineFilterView {
            identity: query.identity.clone().unwrap_or_default(),
            namespace: query.namespace.clone().unwrap_or_default(),
            kind: query.kind.clone().unwrap_or_default(),
            status: query.status.clone().unwrap_or_default(),
            risk: query.risk.clone().unwrap_or_default(),
        },
        rows,
        kinds: EntryKind::ALL.map(EntryKind::as_str).to_vec(),
        statuses: ActionStatus::ALL.map(ActionStatus::as_str).to_vec(),
        risks: RISKS.to_vec(),
        identities,
        query: query.query_string(),
        newest,
        older,
    };
    Ok(views::html(&page))
}

/// The identities the timeline's filter offers: the first [`IDENTITY_CHOICES`], and the one chosen.
pub(super) async fn identity_choices(
    state: &AppState,
    chosen: Option<&str>,
) -> Result<Vec<(String, String)>, PageError> {
    let mut choices: Vec<(String, String)> = state
        .directory
        .list(None, IDENTITY_CHOICES)
        .await?
        .into_iter()
        .map(|identity| (identity.id, identity.name))
        .collect();
    if let Some(chosen) = chosen.filter(|id| !choices.iter().any(|(c, _)| c == id)) {
        choices.extend(names(state, [chosen]).await?);
    }
    Ok(choices)
}

/// New rows for the live timeline (`after` = the newest seq shown), oldest first, as HTML table rows.
pub async fn timeline_rows(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    if query.after.is_none() {
        return Err(PageError::bad_request("after=<seq> is required"));
    }
    let rows = timeline_entries(&state, &session.caller, &query).await?;
    Ok(views::html(&TimelineRows { rows }))
}
