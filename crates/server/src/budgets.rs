//! `/api/v1/identities/{id}/budget`: an identity's own blast-radius budget (docs/safety.md). An admin sets it
//! (`PUT`) or clears it (`DELETE`, back to the configured budgets), never through an agent's key and never on
//! itself; each change is recorded as `budget.set` before it takes effect. The admin and the identity itself may
//! read it (`GET`), with the configured budgets that apply and their usage now.

use axum::Json;
use axum::extract::{Path, State};
use domain::payload::IdentityLimit;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(show, set, clear))
}

/// `PUT /api/v1/identities/{id}/budget`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBudgetRequest {
    /// The identity's own limits (1 to 10), the fields of `[[budgets.limits]]` without `per`, e.g.
    /// `[{"window_seconds": 600, "mutations": 10, "deletes": 2}]`. They apply besides the configured budgets;
    /// the strictest wins. They replace any it had.
    #[schema(min_items = 1, max_items = 10)]
    limits: Vec<IdentityLimit>,
    /// Why (recorded; 1–1000 characters, not blank).
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    reason: String,
}

/// `DELETE /api/v1/identities/{id}/budget`: why the identity's own limits go.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearBudgetRequest {
    /// Why (recorded; 1–1000 characters, not blank).
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    reason: String,
}

#[utoipa::path(get, path = "/identities/{id}/budget", tag = "safety", operation_id = "get_identity_budget",
    params(("id" = String, Path, description = "The identity (`agt_…`, `usr_…`)")),
    description = "Admin, or the identity itself. Its own limits (`own`, empty without any; `set`: who set them, \
        when, why, and the `budget.set` entry) and the configured budgets that apply to it (`configured`: \
        `identity`, its roles', its groups' and `global`, each with `used`, the window's counters now and \
        `frees_at`; `namespace` and `cluster` ones, counted per target, without).",
    responses((status = 200, description = "{identity_id, own: [limit], set, configured: [limit]}"),
              (status = 403, description = "Neither an admin nor the identity itself", body = ErrorBody),
              (status = 503, description = "Its stored budget cannot be read (an edited database); its mutations fail until an admin sets or clears it", body = ErrorBody)))]
async fn show(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.pipeline.identity_budget(&caller.0, &id).await?;
    Ok(Json(json!(view)))
}

#[utoipa::path(put, path = "/identities/{id}/budget", tag = "safety", operation_id = "set_identity_budget",
    params(("id" = String, Path, description = "The identity (`agt_…`, `usr_…`)")),
    request_body = SetBudgetRequest,
    description = "Admin, never an agent's key (whatever its roles), never on itself, nor by a person an agent \
        could act as or that the identity could act as. Sets the identity's own limits, checked with the \
        configured budgets on every mutation it asks for (the strictest wins; a refusal is `budget.exceeded` \
        with `set_in` naming the `budget.set` entry). Recorded as `budget.set` (with the limits it replaces) \
        before it takes effect.",
    responses((status = 200, description = "{budget: {identity_id, own, set, configured}, ledger_entry_id}"),
              (status = 400, description = "Invalid limits (a window of 1 s to 30 days, at least one limit of 0 to 2^53 − 1, 1 to 10 limits), an unknown field, or a blank reason", body = ErrorBody),
              (status = 403, description = "Not an admin, an agent's key, the identity itself, or a caller the identity could act as", body = ErrorBody),
              (status = 404, description = "No such identity", body = ErrorBody)))]
async fn set(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<SetBudgetRequest>,
) -> Result<Json<Value>, ApiError> {
    let (view, entry) = state
        .pipeline
        .set_identity_budget(&caller.0, &id, request.limits, &request.reason)
        .await?;
    Ok(Json(json!({"budget": view, "ledger_entry_id": entry.id})))
}

#[utoipa::path(delete, path = "/identities/{id}/budget", tag = "safety", operation_id = "clear_identity_budget",
    params(("id" = String, Path, description = "The identity (`agt_…`, `usr_…`)")),
    request_body = ClearBudgetRequest,
    description = "Admin, as for setting. Removes the identity's own limits: the configured budgets alone apply \
        again. Recorded as `budget.set` with no `limits` (and the ones removed as `previous`) before it takes \
        effect.",
    responses((status = 200, description = "{budget: {identity_id, own: [], configured}, ledger_entry_id}"),
              (status = 403, description = "Not an admin, an agent's key, the identity itself, or a caller the identity could act as", body = ErrorBody),
              (status = 404, description = "No such identity", body = ErrorBody),
              (status = 409, description = "The identity has no budget of its own", body = ErrorBody)))]
async fn clear(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ClearBudgetRequest>,
) -> Result<Json<Value>, ApiError> {
    let (view, entry) = state
        .pipeline
        .clear_identity_budget(&caller.0, &id, &request.reason)
        .await?;
    Ok(Json(json!({"budget": view, "ledger_entry_id": entry.id})))
}
