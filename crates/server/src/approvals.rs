//! `/api/v1/approvals`: pending approvals, and an approver's approve/reject (each recorded, refusals too).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use gateway::{ActionResponse, Verdict};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::body::OptionalJsonBody;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(pending))
        .route("/approvals/{action_id}/approve", post(approve))
        .route("/approvals/{action_id}/reject", post(reject))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingQuery {
    status: Option<String>,
}

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

async fn approve(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(action_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Decision>,
) -> Result<Json<ActionResponse>, ApiError> {
    decide(caller, &state, &action_id, body, Verdict::Approve).await
}

async fn reject(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(action_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Decision>,
) -> Result<Json<ActionResponse>, ApiError> {
    decide(caller, &state, &action_id, body, Verdict::Reject).await
}
