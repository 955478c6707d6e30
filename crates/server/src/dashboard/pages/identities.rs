//! Identities with their roles, scopes and trust score, and one identity's trust history.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use gateway::Role;
use serde::Deserialize;

use super::{nav, text_of};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, IdentitiesPage, IdentityPage, IdentityView, TrustChangeView};

/// Identities per page of the identities page.
const IDENTITIES_PAGE: u32 = 100;

async fn identity_view(state: &AppState, identity: &gateway::Identity) -> Result<IdentityView, PageError> {
    let trust = state.pipeline.trust(&identity.id).await?;
    Ok(IdentityView {
        id: identity.id.clone(),
        name: identity.name.clone(),
        kind: identity.kind.as_str().to_owned(),
        roles: identity.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        groups: identity.groups.join(", "),
        scopes: identity
            .scopes
            .iter()
            .map(|scope| {
                format!(
                    "{} in {} (kinds: {})",
                    serde_json::to_value(scope.access)
                        .map(|v| text_of(&v))
                        .unwrap_or_default(),
                    scope.namespaces.join(", "),
                    scope.kinds.join(", ")
                )
            })
            .collect(),
        status: identity.status.as_str().to_owned(),
        trust_score: trust.score,
        trust_trend: String::new(),
        trend_class: "",
    })
}

fn require_admin_or_auditor(session: &Session) -> Result<(), PageError> {
    let identity = &session.caller.identity;
    if identity.has_role(Role::Admin) || identity.has_role(Role::Auditor) {
        Ok(())
    } else {
        Err(PageError::forbidden(format!(
            "{} needs the admin or auditor role to see identities",
            identity.name
        )))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesQuery {
    /// The last identity of the previous page.
    after: Option<String>,
}

pub async fn identities(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<IdentitiesQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    require_admin_or_auditor(&session)?;
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let listed = state.directory.list(query.after.as_deref(), IDENTITIES_PAGE).await?;
    let mut identities = Vec::new();
    let day_start = super::overview::day_start(&state).await?;
    for identity in &listed {
        let mut view = identity_view(&state, identity).await?;
        (view.trust_trend, view.trend_class) =
            super::overview::trust_trend(&state, &identity.id, view.trust_score, day_start).await?;
        identities.push(view);
    }
    let next = (listed.len() == IDENTITIES_PAGE as usize)
        .then(|| listed.last().map(|i| i.id.clone()))
        .flatten();
    let page = IdentitiesPage {
        nav: nav(&session, "identities"),
        identities,
        next,
    };
    Ok(views::html(&page))
}

/// `?before_seq=N`: the page of trust changes before seq N (newest first).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPageQuery {
    before_seq: Option<u64>,
}

/// Trust changes per page (and points of the chart).
const TRUST_CHANGES_PER_PAGE: u32 = 50;

pub async fn identity(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TrustPageQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    if session.caller.identity.id != id {
        require_admin_or_auditor(&session)?;
    }
    let identity = state.directory.get(&id).await?;
    let trust = state.pipeline.trust(&id).await?;
    let page = state
        .pipeline
        .trust_changes(&id, query.before_seq, TRUST_CHANGES_PER_PAGE)
        .await?;
    // Older changes exist when the page is full and does not start at the first change.
    let older = (page.len() == TRUST_CHANGES_PER_PAGE as usize)
        .then(|| page.last().map(|c| c.seq))
        .flatten();
    let shown: Vec<i64> = page.iter().rev().map(|c| c.score).collect();
    let chart = views::trust_chart(&shown, older.is_some(), trust.changes);
    let changes = page
        .iter()
        .map(|c| TrustChangeView {
            seq: c.seq,
            entry_id: c.entry_id.clone(),
            action_id: c.action_id.clone(),
            kind: c.kind.clone(),
            delta: format!("{:+}", c.delta),
            score: c.score,
        })
        .collect();
    let page = IdentityPage {
        nav: nav(&session, "identities"),
        identity: identity_view(&state, &identity).await?,
        changes,
        chart,
        older,
        newer: query.before_seq.is_some(),
        as_of_seq: trust.as_of_seq,
    };
    // Admins get the keys and the status changes; auditors (and anyone on their own page) read only.
    if session.caller.identity.has_role(Role::Admin) {
        return super::identity_admin::identity_page(&state, &session, page, identity.status).await;
    }
    Ok(views::html(&page))
}
