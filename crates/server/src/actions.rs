//! `/api/v1/actions`: submit an action (operator role) and read actions with their ledger entries.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use gateway::ActionResponse;
use serde::Deserialize;
use serde_json::Value;
use storage::ActionFilter;

use crate::auth::Authenticated;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/actions", post(submit).get(list))
        .route("/actions/{id}", get(show))
}

/// HTTP 200 for every decided action, whatever the decision (SPEC §3); 400 for a request that is not
/// an action (recorded as `action.rejected`).
/// With an `Idempotency-Key` header, a retry of a submission whose answer was lost returns the first action
/// (422 if the key was used for another request). The action runs in a task of the gateway: a client that
/// hangs up does not stop it.
async fn submit(
    caller: Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<ActionResponse>, ApiError> {
    let Json(body) =
        body.map_err(|rejection| ApiError::new(rejection.status(), "bad_request", rejection.body_text()))?;
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
        Some(seconds) if seconds > 60 => return Err(ApiError::bad_request("wait: at most 60 seconds")),
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
    limit: Option<u32>,
}

async fn list(
    caller: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = ActionFilter {
        identity_id: query.identity,
        status: query.status,
        namespace: query.namespace,
        limit: query.limit.unwrap_or(100),
    };
    Ok(Json(state.pipeline.list(&caller.0, filter).await?))
}
