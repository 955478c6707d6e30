//! `/api/v1/approvals`: pending approvals, and an approver's approve/reject (each recorded, refusals too).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use gateway::{ActionResponse, Verdict};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::body::OptionalJsonBody;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(pending))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingQuery {
    status: Option<String>,
}

#[utoipa::path(get, path = "/approvals", tag = "approvals", operation_id = "list_approvals",
    description = "Approvers and auditors. Actions waiting for an approval, oldest first, with the digest an \
        approval binds to and when they expire.",
    params(("status" = Option<crate::openapi::ApprovalStatus>, Query, description = "pending (the only value)")),
    responses((status = 200, description = "{approvals: [{action, digest, approvals_required, approval_groups, expires_at}]}"),
              (status = 403, description = "Neither an approver nor an auditor", body = ErrorBody)))]
async fn pending(
    caller: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<PendingQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if query.status.as_deref().is_some_and(|s| s != "pending") {
        return Err(ApiError::bad_request(
            "status: only pending approvals are listed (status=pending)",
        ));
    }
    Ok(Json(state.pipeline.pending_approvals(&caller.0).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    comment: Option<String>,
    /// The digest the approver reviewed (from `GET /api/v1/approvals`); refused if it is no longer current.
    digest: Option<String>,
}

/// The optional body, and the decision it asks for.
async fn decide(
    caller: Authenticated,
    state: &AppState,
    action_id: &str,
    body: Decision,
    verdict: Verdict,
) -> Result<Json<ActionResponse>, ApiError> {
    let response = state
        .pipeline
        .decide_approval(&caller.0, action_id, verdict, body.comment, body.digest)
        .await?;
    Ok(Json(response))
}

#[utoipa::path(post, path = "/approvals/{action_id}/approve", tag = "approvals", operation_id = "approve_action",
    description = "Approver (never the requester). The action and its target must still be what was previewed; \
        once enough approvals name the current digest, the action executes exactly once. Optional body \
        {\"comment\": \"…\", \"digest\": \"…\"}. Refusals are recorded as approval.refused.",
    params(("action_id" = String, Path)),
    request_body(content = Option<crate::openapi::Decision>, description = "Optional"),
    responses((status = 200, body = gateway::ActionResponse),
              (status = 403, description = "Not an approver, the requester, or (two-person rule by group) an approver of no group still missing", body = ErrorBody),
              (status = 409, description = "Not pending, expired, already decided, or the target changed", body = ErrorBody),
              (status = 503, description = "The action's cluster is not configured", body = ErrorBody)))]
async fn approve(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(action_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Decision>,
) -> Result<Json<ActionResponse>, ApiError> {
    decide(caller, &state, &action_id, body, Verdict::Approve).await
}

#[utoipa::path(post, path = "/approvals/{action_id}/reject", tag = "approvals", operation_id = "reject_action",
    description = "Approver (never the requester). The action becomes REJECTED.", params(("action_id" = String, Path)),
    request_body(content = Option<crate::openapi::Decision>, description = "Optional"),
    responses((status = 200, body = gateway::ActionResponse),
              (status = 403, description = "Not an approver, or the requester", body = ErrorBody),
              (status = 409, description = "Not pending, expired or already decided", body = ErrorBody),
              (status = 503, description = "The action's cluster is not configured", body = ErrorBody)))]
async fn reject(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(action_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Decision>,
) -> Result<Json<ActionResponse>, ApiError> {
    decide(caller, &state, &action_id, body, Verdict::Reject).await
}
