//! `/api/v1/actions`: submit an action (operator role) and read actions with their ledger entries.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use domain::ActionStatus;
use gateway::ActionResponse;
use serde::Deserialize;
use serde_json::Value;
use storage::ActionFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::body::{self, RawBody};
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(submit, list))
        .routes(routes!(show))
}

// HTTP 200 for every decided action, whatever the decision (SPEC §3); 400 for a request that is not
// an action, recorded as `action.rejected` (a body that is not JSON at all too, so it is parsed here).
// With an `Idempotency-Key` header, a retry of a submission whose answer was lost returns the first action
// (422 if the key was used for another request). The action runs in a task of the gateway: a client that
// hangs up does not stop it.
#[utoipa::path(post, path = "/actions", tag = "actions", operation_id = "submit_action",
    request_body = gateway::ActionRequest,
    description = "Runs an action through guardrails, risk, policy, execution and verification. HTTP 200 for \
        every decided action, whatever the decision (see `status`).",
    responses(
        (status = 200, description = "Decided (COMPLETED, DENIED, PENDING_APPROVAL, FAILED; PREVIEWED for a dry run)", body = gateway::ActionResponse),
        (status = 400, description = "Not a valid action, or not JSON at all (recorded as action.rejected)", body = ErrorBody),
        (status = 413, description = "The body is over the size limit, or the request could not be recorded whole (recorded as action.rejected)", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for another request", body = ErrorBody),
        (status = 403, description = "The identity lacks the operator role", body = ErrorBody),
        (status = 503, description = "No Kubernetes cluster configured", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/actions/{id}", tag = "actions", operation_id = "get_action",
    description = "The action, its status and every ledger entry that belongs to it (auditors: any action; \
        operators: their own; anyone else's is 404).",
    params(("id" = String, Path, description = "act_…"),
           ("wait" = Option<u64>, Query, minimum = 0, maximum = 60,
            description = "Long poll: seconds (at most 60) to wait for a final status")),
    responses((status = 200, description = "{action, entries}")))]
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

#[utoipa::path(get, path = "/actions", tag = "actions", operation_id = "list_actions",
    description = "Newest first (operators: their own; auditors: all). Pass `next_before` as `before` for the \
        next page (null at the end).",
    params(("status" = Option<domain::ActionStatus>, Query), ("namespace" = Option<String>, Query),
           ("identity" = Option<String>, Query),
           ("before" = Option<String>, Query, description = "The id of the last action of the previous page (empty: from the newest)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{actions: [...], next_before}"),
              (status = 404, description = "`before` names no action the caller may see", body = ErrorBody)))]
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
