//! Authentication until identities exist: one bootstrap admin key, held only as its digest.

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts};

use crate::{ApiError, AppState, apikey};

/// The bootstrap admin key's digest.
#[derive(Debug)]
pub struct AdminToken {
    digest: String,
}

impl AdminToken {
    pub fn from_digest(digest: String) -> Self {
        Self { digest }
    }

    fn accepts(&self, key: &str) -> bool {
        // Comparing digests, not keys: timing reveals nothing useful about the key.
        apikey::digest(key) == self.digest
    }
}

/// Extractor that admits only requests bearing the admin key.
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let State(state): State<AppState> = State(state.clone());
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
        apikey::parse(key).map_err(|e| ApiError::unauthorized(e.to_string()))?;
        if state.admin.accepts(key) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("unknown API key"))
        }
    }
}
