//! Identity administration for admins: create an agent or a person (roles, groups and scopes from a form,
//! no JSON), issue, rotate and revoke keys (a new key is shown once, on the response to the form), suspend,
//! reactivate and revoke identities. The same directory calls and role checks as `/api/v1/identities`, so
//! every change is a ledger entry; every form is checked for its origin and CSRF token before anything else.

mod form;
mod templates;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use gateway::{GatewayError, Identity, IdentityStatus, IssuedKey, Role};
use serde::Deserialize;

use super::{CsrfForm, form_error, nav, same_origin};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, IdentityPage};
use form::IdentityForm;
use templates::{IdentityAdminPage, KeyIssuedPage, KeyView, NewIdentityPage, NewKey, status_changes};

/// Keys shown on an identity's page (as the API's identity shows them).
const SHOWN_KEYS: u32 = 100;

/// This module's routes (merged into the dashboard's; `/identities/new` wins over `/identities/{id}`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/identities/new", get(new_identity))
        .route("/identities", post(create))
        .route("/identities/{id}/status", post(change_status))
        .route("/identities/{id}/keys", post(issue_key))
        .route("/identities/{id}/keys/{key}/rotate", post(rotate_key))
        .route("/identities/{id}/keys/{key}/revoke", post(revoke_key))
}

/// The new-identity form, with `error` and the values sent when they were refused (`status`).
fn form_page(session: &Session, form: &IdentityForm, error: Option<String>, status: StatusCode) -> Response {
    let page = NewIdentityPage {
        nav: nav(session, "identities"),
        error,
        form: form.view(),
    };
    (status, views::html(&page)).into_response()
}

/// The page that shows a new key, this once (responses are never stored: `no-store`); `replaces` names the
/// key a rotation revoked.
fn key_page(
    session: &Session,
    identity: &Identity,
    key: IssuedKey,
    issued: NewKey,
    replaces: Option<String>,
) -> Response {
    let page = KeyIssuedPage {
        nav: nav(session, "identities"),
        heading: issued.heading(),
        identity_id: identity.id.clone(),
        identity_name: identity.name.clone(),
        key_id: key.key.id,
        api_key: key.api_key,
        replaces,
        ledger_entry_id: key.ledger_entry_id,
    };
    views::html(&page).into_response()
}

async fn new_identity(session: Session) -> Result<Response, PageError> {
    session.caller.require(Role::Admin)?;
    Ok(form_page(&session, &IdentityForm::default(), None, StatusCode::OK))
}

async fn create(
    session: Session,
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(pairs) = form.map_err(form_error)?;
    let csrf = pairs
        .iter()
        .find(|(field, _)| field == "csrf")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    session.check_csrf(&csrf)?;
    session.caller.require(Role::Admin)?;
    let (_, form) = IdentityForm::read(pairs)?;
    let new = match form.to_new() {
        Ok(new) => new,
        Err(message) => return Ok(form_page(&session, &form, Some(message), StatusCode::BAD_REQUEST)),
    };
    match state.directory.create(session.caller.actor(), new).await {
        Ok((identity, key)) => Ok(key_page(&session, &identity, key, NewKey::Created, None)),
        Err(GatewayError::BadRequest(message)) => {
            Ok(form_page(&session, &form, Some(message), StatusCode::BAD_REQUEST))
        }
        Err(GatewayError::Conflict(message)) => Ok(form_page(&session, &form, Some(message), StatusCode::CONFLICT)),
        Err(other) => Err(other.into()),
    }
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    csrf: String,
    /// The status to move to, as `IdentityStatus` spells it.
    to: String,
    #[serde(default)]
    reason: String,
    /// `yes` when the box "revoke for good" is ticked.
    #[serde(default)]
    confirm: Option<String>,
}

async fn change_status(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<StatusForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    session.caller.require(Role::Admin)?;
    let to = [
        IdentityStatus::Active,
        IdentityStatus::Suspended,
        IdentityStatus::Revoked,
    ]
    .into_iter()
    .find(|status| status.as_str() == form.to)
    .ok_or_else(|| PageError::bad_request(format!("unknown status {:?}", form.to)))?;
    if to == IdentityStatus::Revoked && form.confirm.as_deref() != Some("yes") {
        return Err(PageError::bad_request(
            "revoking is for good: tick the box to confirm, then revoke again",
        ));
    }
    let reason = Some(form.reason.trim().to_owned()).filter(|reason| !reason.is_empty());
    let (identity, _) = crate::identities::set_status(&state, &session.caller, &id, to, reason).await?;
    Ok(Redirect::to(&format!("/identities/{}", identity.id)).into_response())
}

/// Reads a key form: same origin, the session's token, an admin.
fn key_form(
    session: &Session,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<(), PageError> {
    same_origin(headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    Ok(session.caller.require(Role::Admin)?)
}

async fn issue_key(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    key_form(&session, &headers, form)?;
    // Read first: a key issued must reach the page that shows it once.
    let identity = state.directory.get(&id).await?;
    let key = state.directory.issue_key(session.caller.actor(), &id).await?;
    Ok(key_page(&session, &identity, key, NewKey::Issued, None))
}

async fn rotate_key(
    session: Session,
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    key_form(&session, &headers, form)?;
    let identity = state.directory.get(&id).await?;
    let key = state.directory.rotate_key(session.caller.actor(), &id, &key_id).await?;
    Ok(key_page(&session, &identity, key, NewKey::Rotated, Some(key_id)))
}

async fn revoke_key(
    session: Session,
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    key_form(&session, &headers, form)?;
    let (key, _) = state.directory.revoke_key(session.caller.actor(), &id, &key_id).await?;
    Ok(Redirect::to(&format!("/identities/{}#keys", key.identity_id)).into_response())
}

/// The identity page as an admin sees it: `page` with the identity's keys (Rotate, Revoke, Issue) and the
/// status changes it can make (not on the admin's own page: an admin cannot suspend or revoke itself).
pub(super) async fn identity_page(
    state: &AppState,
    session: &Session,
    page: IdentityPage,
    status: IdentityStatus,
) -> Result<Html<String>, PageError> {
    let IdentityPage {
        nav,
        identity,
        changes,
        chart,
        older,
        newer,
        as_of_seq,
    } = page;
    let keys = state.directory.keys(&identity.id, None, SHOWN_KEYS).await?;
    let own = session.caller.identity.id == identity.id;
    let page = IdentityAdminPage {
        nav,
        changes,
        chart,
        older,
        newer,
        as_of_seq,
        more_keys: keys.len() == SHOWN_KEYS as usize,
        keys: keys.iter().map(KeyView::from).collect(),
        may_issue: status != IdentityStatus::Revoked,
        status_changes: if own { Vec::new() } else { status_changes(status) },
        own,
        identity,
    };
    Ok(views::html(&page))
}
