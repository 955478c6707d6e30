//! Dashboard sign-in: a session cookie backed by a database row, and CSRF tokens.
//!
//! The cookie holds 32 random bytes; the database keeps their SHA-256, who signed in (the digest of the API
//! key, or the identity of a single sign-on or LDAP user) and the session's CSRF token. Every request
//! authenticates again, so revoking the key or suspending the identity ends the session at once. Cookies are `HttpOnly; SameSite=Strict`
//! (and `Secure` behind TLS). Every form carries the CSRF token, compared in constant time; the sign-in
//! form, which comes before any session, uses a double-submit cookie instead.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
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
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
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

/// The value of cookie `name` in the request's `Cookie` headers (parsed by hand: two names, no attributes).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value; `max_age` 0 removes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}")
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
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; dkt_session_x=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("dkt_session=abc"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
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
