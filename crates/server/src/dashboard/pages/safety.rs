//! The kill switch on the dashboard: the active freezes (anyone signed in may see why changes are refused),
//! a form to freeze a scope and a button to lift a freeze, for those the gateway lets (the same calls and
//! role checks as `/api/v1/freeze`; an agent never lifts).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use domain::{FreezeScope, IdentityKind};
use serde::Deserialize;

use super::{form_error, nav, same_origin};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, FreezeView, SafetyPage};

pub async fn safety(session: Session, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let may_freeze = state.pipeline.may_freeze(&session.caller).is_ok();
    let page = SafetyPage {
        nav: nav(&session, "safety"),
        may_freeze,
        may_lift: may_freeze && session.caller.identity.kind == IdentityKind::Human,
        freezes: freeze_views(&state).await?,
    };
    Ok(views::html(&page))
}

/// The active freezes as the kill switch and the overview show them.
pub(super) async fn freeze_views(state: &AppState) -> Result<Vec<FreezeView>, PageError> {
    let freezes = state.pipeline.active_freezes().await?;
    Ok(freezes
        .into_iter()
        .map(|f| FreezeView {
            scope: f.scope.describe(),
            id: f.id,
            reason: f.reason,
            frozen_by: f.frozen_by,
            frozen_at: f.frozen_at,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct FreezeForm {
    csrf: String,
    kind: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    identity_id: String,
    reason: String,
}

impl FreezeForm {
    /// The scope the form names; an empty field is an absent one.
    fn scope(&self) -> Result<FreezeScope, PageError> {
        let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        let need = |text: &str, field: &str| {
            given(text).ok_or_else(|| PageError::bad_request(format!("this scope needs a {field}")))
        };
        Ok(match self.kind.as_str() {
            "all" => FreezeScope::All {},
            "agents" => FreezeScope::Agents {},
            "cluster" => FreezeScope::Cluster {
                cluster: need(&self.cluster, "cluster")?,
            },
            "namespace" => FreezeScope::Namespace {
                namespace: need(&self.namespace, "namespace")?,
                cluster: given(&self.cluster),
            },
            "identity" => FreezeScope::Identity {
                identity_id: need(&self.identity_id, "identity id")?,
            },
            other => return Err(PageError::bad_request(format!("unknown scope {other:?}"))),
        })
    }
}

pub async fn freeze(
    session: Session,
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<FreezeForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    let scope = form.scope()?;
    state.pipeline.freeze(&session.caller, scope, &form.reason).await?;
    Ok(Redirect::to("/safety").into_response())
}

#[derive(Debug, Deserialize)]
pub struct LiftForm {
    csrf: String,
    reason: String,
}

pub async fn lift(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<LiftForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    state.pipeline.lift_freeze(&session.caller, &id, &form.reason).await?;
    Ok(Redirect::to("/safety").into_response())
}
