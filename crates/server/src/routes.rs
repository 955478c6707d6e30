//! Routes and handlers.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ledger_core::{Entry, VerifyOptions, VerifyReport};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::openapi::{ApiDoc, ErrorBody};
use crate::{ApiError, AppState};
use gateway::Role;

pub fn router(state: AppState) -> Router {
    let (documented, document) = documented().split_for_parts();
    let document = Json(crate::openapi::complete(document));
    documented
        // The document itself, built once from the routes above; not one of its own operations.
        .route(
            "/api/v1/openapi.json",
            get(move || std::future::ready(document.clone())),
        )
        .merge(crate::mcp::routes(&state))
        .merge(crate::kubeproxy::routes())
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(state.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.max_body_bytes, json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_request))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::traces::request_span)
                .on_response(crate::traces::record_status),
        )
        .with_state(state)
}

/// The routes the OpenAPI document describes, each operation declared on its handler: `/api/v1` (nested:
/// the handlers' paths are relative to it), health, metrics and the transparency log's `/checkpoint` and
/// `/tile/…`, over [`ApiDoc`]'s info, components and security.
pub(crate) fn documented() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::default()
        .routes(routes!(verify))
        .routes(routes!(list_entries))
        .routes(routes!(get_entry))
        .routes(routes!(export))
        .routes(routes!(keys))
        .merge(crate::identities::routes())
        .merge(crate::freeze::routes())
        .merge(crate::budgets::routes())
        .merge(crate::actions::routes())
        .merge(crate::approvals::routes())
        .merge(crate::audit::routes())
        .merge(crate::transparency::routes());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .nest("/api/v1", api)
        .merge(crate::transparency::static_routes())
}

/// Counts each request by its route template (not its path, which would be unbounded) and times it.
async fn record_request(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Standard methods only: a client picks the method, and each label value is a series of its own.
    let method = crate::traces::known_method(request.method());
    let matched = request.extensions().get::<axum::extract::MatchedPath>();
    crate::traces::name_by_route(request.method(), matched.map(|p| p.as_str()));
    let route = matched.map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http_request(method, &route, response.status().as_u16(), started.elapsed());
    response
}

// Prometheus text format; no authentication (it holds counts, no names or secrets), like most exporters.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Errors produced outside the handlers leave as JSON too: the body-size limit's everywhere, and under
/// `/api/` every plain-text rejection (axum's extractors answer in text; clients of the API parse JSON).
async fn json_errors(
    State(limit): State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!("request bodies are limited to {limit} bytes");
        return ApiError::new(status, "payload_too_large", message).into_response();
    }
    if !api {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    ApiError::new(status, error_code(status), message).into_response()
}

/// The error code for a status, for errors that did not come from a handler.
fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200), (status = 503, description = "The database is not reachable", body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(format!("database not reachable: {e}")))?;
    // Not ready while writes fail (reads would work, but every governed request writes).
    if let Some((fault, reason)) = state.store.write_fault().await {
        let code = match fault {
            storage::WriteFault::Full => "storage_full",
            storage::WriteFault::ReadOnly => "storage_read_only",
        };
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!("the ledger database refuses writes: {reason}"),
        ));
    }
    // Witness lag is shown (sizes only: the probe needs no credentials), never a reason to be unready:
    // appends do not wait for witnesses.
    let transparency = match state.transparency.status().await {
        Ok(log) => json!({
            "checkpoint_size": log.checkpoint_size,
            "cosigned_size": log.cosigned_size,
            "witness_lag": log.witnesses.iter().map(|w| w.lag).collect::<Vec<_>>(),
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot read the transparency log's status");
            Value::Null
        }
    };
    Ok(Json(
        json!({"status": "ready", "database": state.store.kind(), "transparency": transparency}),
    ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    #[serde(default)]
    strict: bool,
}

#[utoipa::path(get, path = "/ledger/verify", tag = "ledger", operation_id = "verify_ledger",
    description = "Auditor. Verifies every hash, link and signature (docs/ledger-format.md).",
    params(("strict" = Option<bool>, Query)),
    responses((status = 200, description = "{valid, entries_checked, head, first_invalid, keys}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn verify(
    caller: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<VerifyQuery>, QueryRejection>,
) -> Result<Json<VerifyReport>, ApiError> {
    caller.require(Role::Auditor)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let options = VerifyOptions {
        required_key: Some(state.signing_key.clone()),
        strict_signatures: query.strict,
        ..VerifyOptions::default()
    };
    let report = storage::verify_ledger(&state.store, options, |_| {}).await?;
    let record = storage::VerificationRecord::of(&report, &caller.0.identity.id, &gateway::now());
    // The report is the answer: a verification that cannot be noted for the overview is still told.
    if let Err(error) = state.store.record_verification(&record).await {
        tracing::warn!(%error, "the verification could not be recorded for the overview");
    }
    if let Some(invalid) = &report.first_invalid {
        tracing::warn!(seq = invalid.seq, reason = ?invalid.reason, "ledger verification failed");
    }
    Ok(Json(report))
}

/// Default and largest page of `GET /ledger/entries`.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    /// Entries with seq greater than this (0: from the start).
    #[serde(default)]
    after_seq: u64,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct EntriesPage {
    entries: Vec<Entry>,
    /// Pass as `after_seq` for the next page; null at the end.
    next_after_seq: Option<u64>,
}

#[utoipa::path(get, path = "/ledger/entries", tag = "ledger", description = "Auditor.",
    params(("after_seq" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64,
            description = "Entries after this seq (default 0: from the start)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{entries, next_after_seq}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn list_entries(
    caller: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<EntriesQuery>, QueryRejection>,
) -> Result<Json<EntriesPage>, ApiError> {
    caller.require(Role::Auditor)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let after = i64::try_from(query.after_seq).map_err(|_| ApiError::bad_request("after_seq is too large"))?;
    let entries = state.store.entries_after(after, limit).await?;
    let next_after_seq = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EntriesPage {
        entries,
        next_after_seq,
    }))
}

#[utoipa::path(get, path = "/ledger/entries/{id}", tag = "ledger", description = "Auditor.",
    params(("id" = String, Path, pattern = "^evt_", max_length = 64, description = "evt_…")),
    responses((status = 200, description = "An entry"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn get_entry(
    caller: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Entry>, ApiError> {
    caller.require(Role::Auditor)?;
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if !id.starts_with("evt_") || id.len() > 64 {
        return Err(ApiError::bad_request("entry ids look like evt_<32 hex digits>"));
    }
    match state.store.entry_by_id(&id).await? {
        Some(entry) => Ok(Json(entry)),
        None => Err(ApiError::not_found(format!("no ledger entry {id}"))),
    }
}

#[utoipa::path(get, path = "/ledger/keys", tag = "ledger", operation_id = "ledger_keys",
    description = "Auditor. Public signing keys.",
    responses((status = 200, description = "{keys, signing_key_id}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn keys(caller: Authenticated, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Auditor)?;
    let keys = state.store.keys().await?;
    let active = keys.iter().map(|k| k.introduced_seq).max();
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            json!({
                "key_id": k.key_id,
                "algorithm": k.algorithm,
                "public_key": k.public_key,
                "introduced_seq": k.introduced_seq,
                "active": Some(k.introduced_seq) == active,
            })
        })
        .collect();
    Ok(Json(json!({"keys": keys, "signing_key_id": state.signing_key.key_id})))
}

// Streams the bundle as it is read from the database; nothing is buffered whole.
#[utoipa::path(get, path = "/ledger/export", tag = "ledger", operation_id = "export_ledger",
    description = "Auditor. The offline bundle (JSON lines) that `docketops verify --bundle` checks.",
    responses((status = 200, description = "The bundle", content_type = "application/jsonl"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn export(caller: Authenticated, State(state): State<AppState>) -> Response {
    if let Err(error) = caller.require(Role::Auditor) {
        return error.into_response();
    }
    export_bundle(state)
}

/// The export bundle as a streamed download (the API's and the dashboard's).
pub(crate) fn export_bundle(state: AppState) -> Response {
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let mut writer = writer;
        if let Err(error) = storage::write_bundle(&state.store, &mut writer, |_| {}).await {
            // The status line is already sent; the client sees a short bundle, which the verifier
            // reports as truncated.
            tracing::error!(%error, "export failed mid-stream");
        }
    });
    let filename = format!(
        "docketops-ledger-{}.jsonl",
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    (
        [
            (header::CONTENT_TYPE, "application/jsonl".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(reader)),
    )
        .into_response()
}
