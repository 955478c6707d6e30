//! `/api/v1/freeze`: the kill switch (docs/safety.md). Admins (and approvers where `[freeze]` allows) freeze
//! a scope and lift it; anyone signed in may list the active freezes, so an agent can tell why it is
//! stopped. An agent's key never lifts a freeze. A freeze is lifted by its id (`DELETE /freeze/{id}`) or by
//! the scope it covers (`DELETE /freeze`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::FreezeScope;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(freeze, list, lift_scope))
        .routes(routes!(lift))
}

/// `POST /api/v1/freeze`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// What to freeze: `{"kind": "all"}`, `{"kind": "cluster", "cluster": "prod"}`, `{"kind": "namespace",
    /// "namespace": "shop"}` (every cluster; add `cluster` for one), `{"kind": "identity", "identity_id":
    /// "agt_…"}` or `{"kind": "agents"}`.
    scope: FreezeScope,
    /// Why (recorded; 1–1000 characters, not blank).
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    reason: String,
}

/// `DELETE /api/v1/freeze`: the freeze to lift, by the scope it covers.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftScopeRequest {
    /// The scope, exactly as it was frozen.
    scope: FreezeScope,
    /// Why it is lifted (recorded; 1–1000 characters, not blank).
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    reason: String,
}

/// `DELETE /api/v1/freeze/{id}`: why the freeze is lifted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftRequest {
    /// Why it is lifted (recorded; 1–1000 characters, not blank).
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    reason: String,
}

#[utoipa::path(post, path = "/freeze", tag = "safety", operation_id = "freeze",
    request_body = FreezeRequest,
    description = "Admin (or approver where `[freeze] approvers_may_freeze`). Refuses every mutation in the scope, \
        on every gateway at once, until the freeze is lifted: new actions end DENIED (`freeze.refused`), \
        pending approvals cannot be granted, actions already decided are stopped before their change is sent. \
        Reads still work. Recorded as `freeze.enabled`.",
    responses((status = 201, description = "{freeze: Freeze, ledger_entry_id}"),
              (status = 403, description = "May not freeze", body = ErrorBody),
              (status = 404, description = "No such cluster or identity (a freeze of it would freeze nothing)", body = ErrorBody),
              (status = 409, description = "The scope is frozen already", body = ErrorBody)))]
async fn freeze(
    caller: Authenticated,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<FreezeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (freeze, entry) = state.pipeline.freeze(&caller.0, request.scope, &request.reason).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"freeze": freeze, "ledger_entry_id": entry.id})),
    ))
}

#[utoipa::path(get, path = "/freeze", tag = "safety", operation_id = "list_freezes",
    description = "Anyone signed in. The active freezes, oldest first (at most one per scope).",
    responses((status = 200, description = "{freezes: [Freeze]}")))]
async fn list(_caller: Authenticated, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"freezes": state.pipeline.active_freezes().await?})))
}

#[utoipa::path(delete, path = "/freeze", tag = "safety", operation_id = "lift_freeze_of_scope",
    request_body = LiftScopeRequest,
    description = "Admin (or approver where allowed), never an agent's key. Lifts the active freeze of `scope`. \
        Recorded as `freeze.lifted`.",
    responses((status = 200, description = "{freeze: Freeze, ledger_entry_id}"),
              (status = 403, description = "May not lift (an agent never may)", body = ErrorBody),
              (status = 404, description = "No active freeze of that scope", body = ErrorBody)))]
async fn lift_scope(
    caller: Authenticated,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LiftScopeRequest>,
) -> Result<Json<Value>, ApiError> {
    let active = state.pipeline.active_freezes().await?;
    let Some(found) = active.into_iter().find(|f| f.scope == request.scope) else {
        return Err(ApiError::not_found(format!(
            "no active freeze of {}",
            request.scope.describe()
        )));
    };
    let (freeze, entry) = state
        .pipeline
        .lift_freeze(&caller.0, &found.id, &request.reason)
        .await?;
    Ok(Json(json!({"freeze": freeze, "ledger_entry_id": entry.id})))
}

#[utoipa::path(delete, path = "/freeze/{id}", tag = "safety", operation_id = "lift_freeze",
    params(("id" = String, Path, description = "The freeze (`frz_…`)")),
    request_body = LiftRequest,
    description = "Admin (or approver where allowed), never an agent's key. Lifts the freeze `id`. Recorded as \
        `freeze.lifted`.",
    responses((status = 200, description = "{freeze: Freeze, ledger_entry_id}"),
              (status = 403, description = "May not lift (an agent never may)", body = ErrorBody),
              (status = 409, description = "Lifted already", body = ErrorBody)))]
async fn lift(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<LiftRequest>,
) -> Result<Json<Value>, ApiError> {
    let (freeze, entry) = state.pipeline.lift_freeze(&caller.0, &id, &request.reason).await?;
    Ok(Json(json!({"freeze": freeze, "ledger_entry_id": entry.id})))
}
