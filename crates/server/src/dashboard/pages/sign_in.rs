//! Sign-in with an API key or a directory (LDAP) password, the session that follows, and sign-out.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use storage::SessionRow;

use super::single_sign_on::{OIDC_COOKIE, OIDC_PATH};
use super::{CsrfForm, form_error, same_origin};
use crate::AppState;
use crate::dashboard::session::{self, LOGIN_COOKIE, SESSION_COOKIE, SESSION_HOURS, Session};
use crate::dashboard::views::{self, LoginPage};
use crate::dashboard::{PageError, now};

pub async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<String>, status: StatusCode) -> Response {
    let token = session::random_token();
    let jar = CookieJar::new().add(session::cookie(
        LOGIN_COOKIE,
        token.clone(),
        3600,
        state.dashboard.secure_cookies,
    ));
    let page = LoginPage {
        login_token: token,
        error,
        oidc: state.identity_providers.oidc.is_some(),
        ldap: state.identity_providers.ldap.is_some(),
    };
    (status, jar, views::html(&page)).into_response()
}

/// The sign-in page again, when its form's token is missing or old.
fn form_expired(state: &AppState) -> Response {
    login_page(
        state,
        Some("the sign-in form expired; please try again".into()),
        StatusCode::FORBIDDEN,
    )
}

/// The sign-in page again, with why the sign-in was refused and its status (401, 403, 503…).
fn refused(state: &AppState, error: crate::ApiError) -> Response {
    tracing::info!(message = %error.message, "dashboard sign-in refused");
    login_page(state, Some(format!("sign-in refused: {}", error.message)), error.status)
}

/// Checks the sign-in form's double-submit token (there is no session yet to hold one).
fn check_login_token(headers: &HeaderMap, sent: &str) -> bool {
    let expected = session::cookie_value(headers, LOGIN_COOKIE).unwrap_or_default();
    !expected.is_empty() && session::constant_time_eq(expected.as_bytes(), sent.as_bytes())
}

/// Starts a session for `principal` and sends the browser to the timeline, with the session cookie in `jar`
/// (the request's) and the sign-in cookies removed.
pub(super) async fn start_session(state: &AppState, jar: CookieJar, principal: String) -> Result<Response, PageError> {
    let token = session::random_token();
    let expires_at = gateway::now_plus(std::time::Duration::from_secs(SESSION_HOURS as u64 * 3600));
    state
        .store
        .insert_session(&SessionRow {
            token_digest: session::digest(&token),
            principal,
            csrf_token: session::random_token(),
            created_at: now(),
            expires_at,
        })
        .await?;
    let secure = state.dashboard.secure_cookies;
    let jar = jar
        .add(session::cookie(SESSION_COOKIE, token, SESSION_HOURS * 3600, secure))
        .add(session::removal(LOGIN_COOKIE, "/", secure))
        // Cleared on the path it was set for.
        .add(session::removal(OIDC_COOKIE, OIDC_PATH, secure));
    Ok((jar, Redirect::to("/")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    api_key: String,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    if !check_login_token(&headers, &form.csrf) {
        return Ok(form_expired(&state));
    }
    let key = form.api_key.trim();
    let caller = match state.directory.authenticate(key).await {
        Ok(caller) => caller,
        Err(error) => return Ok(refused(&state, crate::ApiError::from(error))),
    };
    tracing::info!(identity = %caller.identity.id, key = %caller.key_id, "dashboard sign-in");
    start_session(&state, jar, format!("key:{}", gateway::apikey::digest(key))).await
}

#[derive(Debug, Deserialize)]
pub struct LdapForm {
    csrf: String,
    username: String,
    password: String,
}

/// Sign-in with a directory user name and password (LDAP bind as the user).
pub async fn ldap_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LdapForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    let Some(ldap) = state.identity_providers.ldap.clone() else {
        return Err(PageError::not_found("LDAP sign-in is not configured"));
    };
    if !check_login_token(&headers, &form.csrf) {
        return Ok(form_expired(&state));
    }
    let signed_in = match ldap.authenticate(&form.username, &form.password).await {
        Ok(user) => {
            let grants = ::auth::grants_for(&user.groups, &ldap.config().groups);
            state
                .directory
                .sign_in_external(&user, &grants)
                .await
                .map_err(crate::ApiError::from)
        }
        Err(error) => Err(crate::ApiError::from(error)),
    };
    match signed_in {
        Ok(caller) => {
            tracing::info!(identity = %caller.identity.id, "dashboard sign-in (LDAP)");
            start_session(&state, jar, format!("identity:{}", caller.identity.id)).await
        }
        Err(error) => Ok(refused(&state, error)),
    }
}

pub async fn logout(
    session: Session,
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    if let Some(token) = session::cookie_value(&headers, SESSION_COOKIE) {
        state.store.delete_session(&session::digest(&token), &now()).await?;
    }
    let jar = jar.add(session::removal(SESSION_COOKIE, "/", state.dashboard.secure_cookies));
    Ok((jar, Redirect::to("/login")).into_response())
}
