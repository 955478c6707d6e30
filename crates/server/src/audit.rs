//! `POST /api/v1/audit/events`: the API servers' audit webhook backend. Bypasses among the events are
//! recorded in the ledger (once each); the answer says what was recorded.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use gateway::Role;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::JsonBody;
use crate::openapi::{ErrorBody, EventList};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// The cluster whose API server sends (default: the gateway's default cluster).
    cluster: Option<String>,
    /// The API server's client adds its request timeout (`?timeout=30s`); accepted and not used.
    #[serde(default, rename = "timeout")]
    _timeout: Option<String>,
}

/// The webhook's token (`--audit-webhook-token`), or an auditor's API key.
async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <audit webhook token or API key>"))?;
    if let Some(token) = &state.audit_webhook_token
        && crate::dashboard::constant_time_eq(token.as_bytes(), bearer.as_bytes())
    {
        return Ok(());
    }
    let caller = state.directory.authenticate(bearer).await?;
    caller.require(Role::Auditor)?;
    Ok(())
}

#[utoipa::path(post, path = "/audit/events", tag = "audit", operation_id = "audit_events",
    description = "The API server's audit webhook backend: an audit.k8s.io/v1 EventList. Changes in governed \
        namespaces by anyone but the gateway's executors are recorded once each as audit.bypass_detected. \
        Authenticate with the --audit-webhook-token or an auditor's API key.",
    params(("cluster" = Option<String>, Query, description = "which cluster sends (default: the default cluster)"),
           ("timeout" = Option<String>, Query, description = "The API server's request timeout; ignored")),
    request_body = EventList,
    responses((status = 200, description = "{events, bypasses_recorded, bypasses_already_recorded}"),
              (status = 400, description = "Not an EventList, or an unknown cluster", body = ErrorBody),
              (status = 403, description = "An API key that is not an auditor's", body = ErrorBody),
              (status = 503, description = "No Kubernetes cluster configured", body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let JsonBody(body) = body?;
    let events = gateway::audit::parse_event_list(&body).map_err(ApiError::bad_request)?;
    let clusters = state.pipeline.clusters();
    // Without any cluster there is nothing to judge events against: 503, as for actions.
    if let Err(Err(unavailable)) = clusters.resolve(None) {
        return Err(unavailable.into());
    }
    let name = query.cluster.unwrap_or_else(|| clusters.default_name().to_owned());
    let policy = state
        .pipeline
        .audit_policy(&name)
        .ok_or_else(|| ApiError::bad_request(format!("unknown cluster {name:?}")))?;
    let report = gateway::audit::record_bypasses(&state.store, &state.ledger, &policy, &events).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}
