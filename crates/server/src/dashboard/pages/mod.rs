//! The dashboard's handlers: authenticate the session, ask the pipeline, directory or store (the same
//! calls and role checks as the JSON API), and render a template. One page (or form) per module; the helpers
//! every page uses are here.

mod action_page;
pub(super) mod actions_list;
mod approvals;
mod entries;
mod identities;
pub(super) mod identity_admin;
mod overview;
mod safety;
mod sign_in;
mod single_sign_on;
mod timeline;
mod verify;

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, header};
use gateway::Role;
use serde::Deserialize;
use serde_json::Value;

use super::PageError;
use super::session::Session;
use super::views::Nav;
use crate::AppState;

pub use action_page::action;
pub use approvals::{approvals, decide};
pub use identities::{identities, identity};
pub use overview::overview;
pub use safety::{freeze, lift, safety};
pub use sign_in::{ldap_login, login, login_form, logout};
pub use single_sign_on::{oidc_callback, oidc_start};
pub use timeline::{timeline, timeline_rows};
pub use verify::{export, verify_form, verify_job, verify_start};

/// The navigation bar for `session`, with page `active` marked.
fn nav(session: &Session, active: &'static str) -> Nav {
    let identity = &session.caller.identity;
    Nav {
        name: identity.name.clone(),
        roles: identity.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        csrf: session.csrf.clone(),
        auditor: identity.has_role(Role::Auditor),
        approver: identity.has_role(Role::Approver),
        admin: identity.has_role(Role::Admin),
        active,
    }
}

/// POSTs must come from a page of this gateway: an `Origin` naming another host is refused (on top of
/// the CSRF token and SameSite cookies).
fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if origin != "null" && origin_host == host {
        Ok(())
    } else {
        Err(PageError::forbidden("cross-site form submissions are refused"))
    }
}

fn form_error(rejection: FormRejection) -> PageError {
    PageError::bad_request(format!("the form could not be read: {}", rejection.body_text()))
}

/// A form that carries nothing but its CSRF token (sign-out, starting a verification).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// The names of the identities among `ids`, by id, to show names instead of ids (only those a page shows
/// are looked up: the number of identities does not matter).
async fn names<'a>(
    state: &AppState,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, String>, PageError> {
    let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
    Ok(state.directory.names(&ids).await?)
}

/// A JSON value as a page shows it: null as nothing, a string without its quotes.
fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
