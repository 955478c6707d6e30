//! JSON request bodies, with every rejection as the API's JSON error: 415 for a body that is not sent as JSON,
//! 400 for one that does not parse or does not fit, 413 (from the size limit) for one that is too big.
//! axum's own `Json` rejections are plain text; these extractors are what handlers use instead.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A required JSON body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// An optional JSON body: an empty body (or `null`) is `T::default()`; a non-empty one must be JSON.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        let bytes = raw(request, state).await?;
        require_json(&headers)?;
        parse(&bytes).map(JsonBody)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        let bytes = raw(request, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(T::default()));
        }
        require_json(&headers)?;
        // `null` says "no body" as well as an empty body does.
        parse::<Option<T>>(&bytes).map(|body| OptionalJsonBody(body.unwrap_or_default()))
    }
}

/// The body as sent (any content type); 413 when it is over the size limit.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        raw(request, state).await.map(RawBody)
    }
}

/// The body's bytes; 413 when it is over the size limit.
pub async fn raw<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, code, rejection.body_text())
    })
}

/// 415 unless the Content-Type is `application/json` or `application/<something>+json`.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let json = essence
        .as_deref()
        .and_then(|v| v.strip_prefix("application/"))
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON, sent with Content-Type: application/json",
        ))
    }
}

/// 400 with serde's message (where in the body, and what is wrong).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
