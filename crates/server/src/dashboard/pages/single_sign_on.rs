//! Single sign-on with OpenID Connect: the redirect to the provider and its callback.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::sign_in::start_session;
use crate::AppState;
use crate::dashboard::session;
use crate::dashboard::{PageError, now};

/// Holds the OIDC `state` between the redirect to the provider and the callback (the rest is server-side).
pub(super) const OIDC_COOKIE: &str = "dkt_oidc";
/// The OIDC cookie's path: only the callback reads it.
pub(super) const OIDC_PATH: &str = "/auth/oidc";

/// The cookie holding `flow_state` for ten minutes. Lax, not Strict: the provider's redirect back is a
/// cross-site navigation that must carry it.
fn flow_cookie(flow_state: String, secure: bool) -> Cookie<'static> {
    let mut cookie = session::cookie(OIDC_COOKIE, flow_state, 600, secure);
    cookie.set_path(OIDC_PATH);
    cookie.set_same_site(SameSite::Lax);
    cookie
}

/// The callback URL: as configured, or this gateway's address as the browser used it.
fn oidc_redirect_url(state: &AppState, oidc: &::auth::OidcProvider, headers: &HeaderMap) -> Result<String, PageError> {
    if let Some(url) = &oidc.config().redirect_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .ok_or_else(|| PageError::bad_request("no usable Host header; set redirect_url in [oidc]"))?;
    let scheme = if state.dashboard.secure_cookies {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}/auth/oidc/callback"))
}

/// Sends the browser to the provider (authorization-code flow with PKCE, state and nonce).
pub async fn oidc_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let Some(oidc) = state.identity_providers.oidc.clone() else {
        return Err(PageError::not_found("single sign-on is not configured"));
    };
    let redirect_url = oidc_redirect_url(&state, &oidc, &headers)?;
    let flow_state = session::random_token();
    let nonce = session::random_token();
    let pkce = ::auth::Pkce::new();
    state
        .store
        .insert_login(&storage::LoginRow {
            state_digest: session::digest(&flow_state),
            verifier: pkce.verifier.clone(),
            nonce: nonce.clone(),
            redirect_url: redirect_url.clone(),
            expires_at: gateway::now_plus(std::time::Duration::from_secs(600)),
        })
        .await?;
    let url = oidc
        .authorization_url(&redirect_url, &flow_state, &nonce, &pkce)
        .await
        .map_err(auth_page_error)?;
    let jar = jar.add(flow_cookie(flow_state, state.dashboard.secure_cookies));
    Ok((jar, Redirect::to(&url)).into_response())
}

fn auth_page_error(error: ::auth::AuthError) -> PageError {
    let api = crate::ApiError::from(error);
    PageError::Page {
        status: api.status,
        message: api.message,
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider sends the browser back here with a code: exchange it, validate the ID token, map the
/// groups, and start a session.
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    jar: CookieJar,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Some(oidc) = state.identity_providers.oidc.clone() else {
        return Err(PageError::not_found("single sign-on is not configured"));
    };
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    if let Some(error) = query.error {
        return Err(PageError::Page {
            status: StatusCode::UNAUTHORIZED,
            message: format!(
                "the identity provider refused the sign-in: {error} {}",
                query.error_description.unwrap_or_default()
            ),
        });
    }
    let (Some(code), Some(flow_state)) = (query.code, query.state) else {
        return Err(PageError::bad_request("the callback needs code and state"));
    };
    // The state must be the one this browser was given (no login CSRF), and is used once.
    let cookie_state = session::cookie_value(&headers, OIDC_COOKIE).unwrap_or_default();
    if cookie_state.is_empty() || !session::constant_time_eq(cookie_state.as_bytes(), flow_state.as_bytes()) {
        return Err(PageError::forbidden(
            "this sign-in was not started in this browser; start again from the sign-in page",
        ));
    }
    let Some(login) = state.store.take_login(&session::digest(&flow_state), &now()).await? else {
        return Err(PageError::forbidden(
            "this sign-in expired or was already used; start again from the sign-in page",
        ));
    };
    let id_token = oidc
        .exchange_code(&code, &login.redirect_url, &login.verifier)
        .await
        .map_err(auth_page_error)?;
    let user = oidc
        .validate(
            &id_token,
            std::slice::from_ref(&oidc.config().client_id),
            Some(&login.nonce),
        )
        .await
        .map_err(auth_page_error)?;
    let grants = ::auth::grants_for(&user.groups, &oidc.config().groups);
    let caller = state.directory.sign_in_external(&user, &grants).await?;
    tracing::info!(identity = %caller.identity.id, "dashboard sign-in (OpenID Connect)");
    start_session(&state, jar, format!("identity:{}", caller.identity.id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_cookie_is_lax_on_the_callback_path_for_ten_minutes() {
        for secure in [false, true] {
            let cookie = flow_cookie("abc".into(), secure);
            assert_eq!(cookie.name_value(), ("dkt_oidc", "abc"));
            assert_eq!(cookie.path(), Some("/auth/oidc"));
            assert_eq!(cookie.same_site(), Some(SameSite::Lax));
            assert_eq!(cookie.http_only(), Some(true));
            assert_eq!(cookie.max_age(), Some(time::Duration::seconds(600)));
            assert_eq!(cookie.secure(), Some(secure));
            assert_eq!(cookie.expires(), None, "Max-Age only, as before");
        }
    }
}
