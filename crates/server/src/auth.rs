//! Authentication: every route but the probes needs `Authorization: Bearer <credential>`: an API key of an
//! active identity, or (when OpenID Connect is configured) an ID token of the trusted issuer for one of the
//! accepted audiences, whose groups map to roles. Each handler then names the role it needs.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use gateway::{Caller, Role};

use crate::{ApiError, AppState};

/// The caller behind a valid API key.
#[derive(Debug)]
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// 403 unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<&Caller, ApiError> {
        self.0.require(role)?;
        Ok(&self.0)
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <API key>"))?;
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be \"Bearer <API key>\""))?;
        // JWTs have three dot-separated parts; API keys have none.
        if key.split('.').count() == 3 {
            let Some(oidc) = &state.identity_providers.oidc else {
                return Err(ApiError::unauthorized(
                    "this gateway accepts API keys only (OpenID Connect is not configured)",
                ));
            };
            let user = oidc
                .validate(key, &oidc.api_audiences(), None)
                .await
                .map_err(ApiError::from)?;
            let grants = ::auth::grants_for(&user.groups, &oidc.config().groups);
            return Ok(Authenticated(state.directory.sign_in_external(&user, &grants).await?));
        }
        Ok(Authenticated(state.directory.authenticate(key).await?))
    }
}
