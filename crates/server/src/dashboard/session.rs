//! Dashboard sign-in: a session cookie backed by a database row, and CSRF tokens.
//!
//! The cookie holds 32 random bytes; the database keeps their SHA-256, who signed in (the digest of the API
//! key, or the identity of a single sign-on or LDAP user) and the session's CSRF token. Every request
//! authenticates again, so revoking the key or suspending the identity ends the session at once. Cookies are `HttpOnly; SameSite=Strict`
//! (and `Secure` behind TLS). Every form carries the CSRF token, compared in constant time; the sign-in
//! form, which comes before any session, uses a double-submit cookie instead. Cookies are read from and set
//! through axum-extra's `CookieJar`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum_extra::extract::cookie::{Cookie, SameSite};
use gateway::Caller;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::PageError;
use crate::AppState;

/// The session cookie's name; its value is the session's random token.
pub const SESSION_COOKIE: &str = "dkt_session";
pub const LOGIN_COOKIE: &str = "dkt_login";
/// How long a dashboard session lasts after sign-in.
pub const SESSION_HOURS: i64 = 8;

/// A signed-in dashboard user.
#[derive(Debug)]
pub struct Session {
    /// Who signed in, authenticated again for this request.
    pub caller: Caller,
    /// The session's CSRF token, which every form must carry.
    pub csrf: String,
}

impl Session {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::forbidden(
                "the form's security token is missing or stale; reload the page and try again",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(PageError::SignIn);
        };
        let now = crate::dashboard::now();
        let Some(row) = state
            .store
            .session(&digest(&token), &now)
            .await
            .map_err(PageError::internal)?
        else {
            return Err(PageError::SignIn);
        };
        let caller = match row.principal.split_once(':') {
            Some(("key", digest)) => state.directory.authenticate_digest(digest).await.ok(),
            Some(("identity", id)) => state
                .directory
                .get(id)
                .await
                .ok()
                .filter(|identity| identity.status == gateway::IdentityStatus::Active)
                .map(|identity| gateway::Caller {
                    identity,
                    key_id: "dashboard-session".into(),
                }),
            _ => None,
        };
        match caller {
            Some(caller) => Ok(Session {
                caller,
                csrf: row.csrf_token,
            }),
            None => Err(PageError::SignIn),
        }
    }
}

/// The value of the first cookie `name` the request sent, if it is not empty. The first: browsers send the
/// cookie of the longest path (then the oldest) first, so a copy planted on a wider path by a sibling
/// domain comes later and is not taken. (`CookieJar` keeps the last of a name, hence this reader.)
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| !value.is_empty())
}

/// A dashboard cookie: `Path=/; HttpOnly; SameSite=Strict`, kept `max_age_seconds`, and `Secure` when the
/// gateway serves HTTPS (`set_path` and `set_same_site` change the first two: the OIDC cookie's).
pub fn cookie(name: &'static str, value: impl Into<String>, max_age_seconds: i64, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value.into()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(max_age_seconds))
        .build()
}

/// The cookie that removes cookie `name` set on `path`: empty, `Max-Age=0`, on the same path.
pub fn removal(name: &'static str, path: &'static str, secure: bool) -> Cookie<'static> {
    let mut cookie = cookie(name, "", 0, secure);
    cookie.set_path(path);
    cookie
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn digest(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// Compares secrets (tokens, CSRF and OAuth state) in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};
    use axum::response::IntoResponse;

    use super::*;
    use axum_extra::extract::cookie::CookieJar;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; dkt_session_x=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("dkt_session=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("dkt_login="));
        headers.append(header::COOKIE, HeaderValue::from_static("dkt_session=planted"));
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("abc"),
            "the first of a name"
        );
        assert_eq!(cookie_value(&headers, "dkt_session_x").as_deref(), Some("2"));
        assert_eq!(
            cookie_value(&headers, LOGIN_COOKIE),
            None,
            "an empty cookie is no cookie"
        );
        assert_eq!(cookie_value(&headers, "dkt_oidc"), None);
    }

    /// The `Set-Cookie` headers a response with `jar` carries, each split into its `name=value` and its
    /// attributes (lowercase, sorted).
    fn set_cookies(jar: CookieJar) -> Vec<(String, Vec<String>)> {
        let response = jar.into_response();
        let mut cookies: Vec<(String, Vec<String>)> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| {
                let mut parts = value.to_str().unwrap().split(';').map(|p| p.trim().to_owned());
                let pair = parts.next().unwrap();
                let mut attributes: Vec<String> = parts.map(|a| a.to_ascii_lowercase()).collect();
                attributes.sort();
                (pair, attributes)
            })
            .collect();
        cookies.sort();
        cookies
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn cookies_are_http_only_same_site_and_secure_when_asked() {
        let jar = CookieJar::new()
            .add(cookie(SESSION_COOKIE, "abc", SESSION_HOURS * 3600, false))
            .add(cookie(LOGIN_COOKIE, "def", 3600, true));
        assert_eq!(
            set_cookies(jar),
            [
                (
                    "dkt_login=def".to_owned(),
                    strings(&["httponly", "max-age=3600", "path=/", "samesite=strict", "secure"])
                ),
                (
                    "dkt_session=abc".to_owned(),
                    strings(&["httponly", "max-age=28800", "path=/", "samesite=strict"])
                ),
            ]
        );
    }

    #[test]
    fn removals_are_empty_and_expire_at_once_on_the_same_path() {
        let jar =
            CookieJar::new()
                .add(removal(SESSION_COOKIE, "/", true))
                .add(removal("dkt_oidc", "/auth/oidc", false));
        assert_eq!(
            set_cookies(jar),
            [
                (
                    "dkt_oidc=".to_owned(),
                    strings(&["httponly", "max-age=0", "path=/auth/oidc", "samesite=strict"])
                ),
                (
                    "dkt_session=".to_owned(),
                    strings(&["httponly", "max-age=0", "path=/", "samesite=strict", "secure"])
                ),
            ]
        );
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 64);
    }
}
