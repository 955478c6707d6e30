//! `/api/v1/actions`: submit an action (operator role) and read actions with their ledger entries.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::ActionStatus;
use gateway::ActionResponse;
use serde::Deserialize;
use serde_json::Value;
use storage::ActionFilter;

use crate::auth::Authenticated;
use crate::body::{self, RawBody};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/actions", post(submit).get(list))
        .route("/actions/{id}", get(show))
}

/// HTTP 200 for every decided action, whatever the decision (SPEC §3); 400 for a request that is not
/// an action, recorded as `action.rejected` (a body that is not JSON at all too, so it is parsed here).
/// With an `Idempotency-Key` header, a retry of a submission whose answer was lost returns the first action
/// (422 if the key was used for another request). The action runs in a task of the gateway: a client that
/// hangs up does not stop it.
async fn submit(
    caller: Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Json<ActionResponse>, ApiError> {
    body::require_json(&headers)?;
    let body = match serde_json::from_slice::<Value>(&raw) {
        Ok(body) => body,
        Err(error) => {
            let message = format!("invalid JSON body: {error}");
            return Err(state.pipeline.reject_unparsable(&caller.0, &raw, &message).await.into());
        }
    };
    let key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key: visible ASCII only"))?
                .to_owned(),
        ),
        None => None,
    };
    Ok(Json(state.pipeline.submit_once(&caller.0, body, key).await?))
}

/// Largest `wait` of `GET /actions/{id}`, in seconds, and largest `limit` of `GET /actions`.
pub(crate) const MAX_WAIT_SECONDS: u64 = 60;
pub(crate) const MAX_LIMIT: u32 = 1000;
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    /// Seconds to wait for a final status (long poll), at most 60.
    wait: Option<u64>,
}

async fn show(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let wait = match query.wait {
        Some(seconds) if seconds > MAX_WAIT_SECONDS => {
            return Err(ApiError::bad_request(format!(
                "wait: at most {MAX_WAIT_SECONDS} seconds"
            )));
        }
        Some(seconds) => Some(std::time::Duration::from_secs(seconds)),
        None => None,
    };
    Ok(Json(state.pipeline.get(&caller.0, &id, wait).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    namespace: Option<String>,
    identity: Option<String>,
    /// The last action of the previous page (its `next_before`).
    before: Option<String>,
    limit: Option<u32>,
}

async fn list(
    caller: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // Refused rather than clamped: a caller asking for more than the server gives would miss rows unawares.
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(status) = query.status.as_deref().filter(|s| ActionStatus::parse(s).is_none()) {
        return Err(ApiError::bad_request(format!(
            "status {status:?} is not one of {}",
            ActionStatus::ALL.map(ActionStatus::as_str).join(", ")
        )));
    }
    let filter = ActionFilter {
        identity_id: query.identity,
        status: query.status,
        namespace: query.namespace,
        before: query.before.filter(|b| !b.is_empty()),
        limit,
    };
    Ok(Json(state.pipeline.list(&caller.0, filter).await?))
}
