//! The one error type handlers return; it renders `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: its HTTP status and the body's code and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The response's HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable name for the error (`bad_request`, `not_found`, `storage_full`, …).
    pub code: &'static str,
    /// What went wrong, for a person to read.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 `unauthorized`; the response carries `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// An internal failure: logged in full, reported without internals.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the gateway's log",
        )
    }

    /// 503 `unavailable`: a part the request needs is not there or not reachable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A write the database refused for lack of space (507) or because it is read-only (503). Reads work
    /// meanwhile, and writes work again by themselves once the operator fixes the disk.
    pub fn write_fault(fault: storage::WriteFault, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "write refused by the database");
        match fault {
            storage::WriteFault::Full => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the ledger database's disk is full: nothing of this request was recorded; reads still work, \
                 and writes work again once space is freed",
            ),
            storage::WriteFault::ReadOnly => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_read_only",
                "the ledger database is read-only: nothing of this request was recorded; reads still work",
            ),
        }
    }
}

/// The write fault behind a storage or ledger error, if that is what it is.
fn write_fault_of(error: &gateway::GatewayError) -> Option<storage::WriteFault> {
    match error {
        gateway::GatewayError::Storage(e) => e.fault(),
        gateway::GatewayError::Ledger(storage::AppendError::Storage(e)) => e.fault(),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<gateway::GatewayError> for ApiError {
    fn from(error: gateway::GatewayError) -> Self {
        use gateway::GatewayError as E;
        match error {
            E::BadRequest(message) => ApiError::bad_request(message),
            E::Unauthorized(message) => ApiError::unauthorized(message),
            E::Forbidden(message) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            E::NotFound(message) => ApiError::not_found(message),
            E::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            E::Unavailable(message) => ApiError::unavailable(message),
            E::Unprocessable(message) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message),
            E::TooLarge(message) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message),
            other => match write_fault_of(&other) {
                Some(fault) => ApiError::write_fault(fault, other),
                None => ApiError::internal(other),
            },
        }
    }
}

impl From<::auth::AuthError> for ApiError {
    fn from(error: ::auth::AuthError) -> Self {
        match error {
            ::auth::AuthError::Unauthorized(message) => ApiError::unauthorized(message),
            ::auth::AuthError::Unavailable(_) => ApiError::unavailable(error.to_string()),
            ::auth::AuthError::Config(_) => {
                tracing::error!(%error, "identity provider misconfigured");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string())
            }
        }
    }
}

impl From<storage::StorageError> for ApiError {
    fn from(error: storage::StorageError) -> Self {
        match error.fault() {
            Some(fault) => ApiError::write_fault(fault, error),
            None => ApiError::internal(error),
        }
    }
}
