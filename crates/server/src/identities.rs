//! `/api/v1/identities`: identities and their API keys (admin role). A new key is in the response once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use gateway::{Caller, GatewayError, Identity, IdentityStatus, NewIdentity, Role};
use ledger_core::Entry;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actions::MAX_LIMIT;
use crate::auth::Authenticated;
use crate::body::{JsonBody, OptionalJsonBody};
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
        .routes(routes!(revoke))
        .routes(routes!(keys, issue_key))
        .routes(routes!(rotate_key))
        .routes(routes!(revoke_key))
}

#[utoipa::path(post, path = "/identities", tag = "identities", operation_id = "create_identity",
    request_body = gateway::NewIdentity,
    description = "Admin. Creates an identity and its first API key, shown only in this response.",
    responses((status = 201, description = "{identity, api_key, key, ledger_entry_id}"),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody)))]
async fn create(
    caller: Authenticated,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewIdentity>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = caller.require(Role::Admin)?;
    let (identity, key) = state.directory.create(caller.actor(), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"identity": identity, "api_key": key.api_key, "key": key.key,
                    "ledger_entry_id": key.ledger_entry_id,
                    "note": "the api_key is shown only now; store it"})),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The last identity of the previous page (its `next_after`).
    after: Option<String>,
    limit: Option<u32>,
}

// A page of identities in creation order; `next_after` names the last one when more may follow. Identities
// created after a page was read appear on later pages, so paging to the end sees every identity once.
#[utoipa::path(get, path = "/identities", tag = "identities", operation_id = "list_identities",
    description = "Admin. A page of identities in creation order; pass `next_after` as `after` for the next \
        page (null at the end).",
    params(("after" = Option<String>, Query, description = "The id of the last identity of the previous page (empty: from the start)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{identities: [Identity], next_after}"),
              (status = 400, description = "A limit out of range", body = ErrorBody),
              (status = 404, description = "`after` names no identity", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
async fn list(
    caller: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = page_limit(query.limit)?;
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    if let Some(after) = after
        && state.directory.get(after).await.is_err()
    {
        return Err(ApiError::not_found(format!("after: no identity {after:?}")));
    }
    let identities = state.directory.list(after, limit).await?;
    let next_after = (identities.len() == limit as usize)
        .then(|| identities.last().map(|i| i.id.clone()))
        .flatten();
    Ok(Json(json!({"identities": identities, "next_after": next_after})))
}

/// A page of the entries that moved the trust score, newest first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustPage {
    limit: Option<u32>,
    before_seq: Option<u64>,
}

/// Trust changes per page unless `limit` says otherwise.
const TRUST_PAGE: u32 = 50;

#[utoipa::path(get, path = "/identities/{id}", tag = "identities", operation_id = "get_identity",
    description = "Admin, or the identity itself. `keys` holds its first 100 keys (all of them: `…/keys`). With the identity's trust score (kept beside the ledger, \
                   recomputable with `docketops trust --bundle`) and one page of the entries that moved it, \
                   newest first; `trust.next_before_seq` (null on the last page) is the next page's `before_seq`. \
                   `trust.as_of_seq`: the score counts every entry up to this seq.",
    params(("id" = String, Path),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Trust changes per page: 1–200, default 50"),
           ("before_seq" = Option<u64>, Query, description = "Only trust changes of entries before this seq")),
    responses((status = 200, description = "{identity, keys, trust_score, trust: {identity_id, score, as_of_seq, \
                                            changes_total, changes: [{seq, entry_id, action_id, kind, delta, score}], next_before_seq}}"),
              (status = 400, description = "limit out of range, or an unknown parameter", body = ErrorBody),
              (status = 403, description = "Neither an admin nor this identity", body = ErrorBody)))]
async fn show(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TrustPage>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // Refused rather than clamped: a caller asking for more than the server gives would miss rows unawares.
    let limit = page.limit.unwrap_or(TRUST_PAGE);
    if !(1..=storage::MAX_TRUST_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}",
            storage::MAX_TRUST_PAGE
        )));
    }
    // Admins see everyone; anyone may see themselves.
    if caller.0.identity.id != id {
        caller.require(Role::Admin)?;
    }
    let identity = state.directory.get(&id).await?;
    let trust = state.pipeline.trust(&id).await?;
    let changes = state.pipeline.trust_changes(&id, page.before_seq, limit).await?;
    // A full page may have more behind it: the next one starts before its oldest change.
    let next_before_seq = (changes.len() == limit as usize)
        .then(|| changes.last().map(|c| c.seq))
        .flatten();
    Ok(Json(
        json!({"identity": identity, "keys": state.directory.keys(&id, None, SHOWN_KEYS).await?,
               "trust_score": trust.score,
               "trust": {"identity_id": id, "score": trust.score, "as_of_seq": trust.as_of_seq,
                         "changes_total": trust.changes, "changes": changes,
                         "next_before_seq": next_before_seq}}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

#[utoipa::path(post, path = "/identities/{id}/suspend", tag = "identities", operation_id = "suspend_identity",
    description = "Admin (not on itself). Optional body {\"reason\": \"…\"}.", params(("id" = String, Path)),
    request_body(content = Option<crate::openapi::Reason>, description = "Optional"),
    responses((status = 200, description = "{identity, ledger_entry_id}"),
              (status = 403, description = "Not an admin, or the admin itself", body = ErrorBody),
              (status = 409, description = "Not active", body = ErrorBody)))]
async fn suspend(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<Reason>,
) -> Result<Json<Value>, ApiError> {
    change_status(caller, &state, &id, request, IdentityStatus::Suspended).await
}

#[utoipa::path(post, path = "/identities/{id}/reactivate", tag = "identities", operation_id = "reactivate_identity",
    description = "Admin. A suspended identity only.", params(("id" = String, Path)),
    request_body(content = Option<crate::openapi::Reason>, description = "Optional"),
    responses((status = 200, description = "{identity, ledger_entry_id}"),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Not suspended", body = ErrorBody)))]
async fn reactivate(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<Reason>,
) -> Result<Json<Value>, ApiError> {
    change_status(caller, &state, &id, request, IdentityStatus::Active).await
}

#[utoipa::path(post, path = "/identities/{id}/revoke", tag = "identities", operation_id = "revoke_identity",
    description = "Admin (not on itself). For good, with every key.", params(("id" = String, Path)),
    request_body(content = Option<crate::openapi::Reason>, description = "Optional"),
    responses((status = 200, description = "{identity, ledger_entry_id}"),
              (status = 403, description = "Not an admin, or the admin itself", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<Reason>,
) -> Result<Json<Value>, ApiError> {
    change_status(caller, &state, &id, request, IdentityStatus::Revoked).await
}

async fn change_status(
    caller: Authenticated,
    state: &AppState,
    id: &str,
    request: Reason,
    to: IdentityStatus,
) -> Result<Json<Value>, ApiError> {
    let (identity, entry) = set_status(state, &caller.0, id, to, request.reason).await?;
    Ok(Json(json!({"identity": identity, "ledger_entry_id": entry.id})))
}

/// Moves identity `id` to `to` for `caller`: the rule the API and the dashboard share. Only an admin may, and
/// an admin cannot suspend or revoke itself (it would lock itself out; another admin can).
pub(crate) async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    to: IdentityStatus,
    reason: Option<String>,
) -> Result<(Identity, Entry), GatewayError> {
    state.directory.set_status_by(caller, id, to, reason).await
}

/// Keys shown with an identity (`GET /api/v1/identities/{id}`); `…/keys` pages through all of them.
const SHOWN_KEYS: u32 = 100;

// A page of an identity's keys in creation order, like the identity list.
#[utoipa::path(get, path = "/identities/{id}/keys", tag = "identities", operation_id = "list_keys",
    description = "Admin. A page of the identity's keys in creation order; pass `next_after` as `after` for the \
        next page (null at the end).",
    params(("id" = String, Path),
           ("after" = Option<String>, Query, description = "The id of the last key of the previous page (empty: from the start)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{keys: [KeyInfo], next_after}"),
              (status = 400, description = "A limit out of range", body = ErrorBody),
              (status = 404, description = "No such identity, or `after` names no key of it", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
async fn keys(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = page_limit(query.limit)?;
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let keys = state.directory.keys(&id, after, limit).await?;
    // An empty page after a cursor: the end, or a cursor that names no key of this identity (404).
    if let Some(after) = after
        && keys.is_empty()
        && !state.directory.has_key(&id, after).await?
    {
        return Err(ApiError::not_found(format!("after: no key {after:?} of {id}")));
    }
    let next_after = (keys.len() == limit as usize)
        .then(|| keys.last().map(|k| k.id.clone()))
        .flatten();
    Ok(Json(json!({"keys": keys, "next_after": next_after})))
}

/// `limit` of a list: 1 to [`MAX_LIMIT`], default 100; refused rather than clamped (a caller asking for more
/// than the server gives would miss rows unawares).
fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

/// The key routes' body as sent, for [`no_body`]. Not spelt `Result<Bytes, _>` in the handlers: utoipa would
/// document a `Bytes` argument as the operation's request body, and these routes take none.
type SentBody = Result<Bytes, BytesRejection>;

/// The key routes take no body, or an empty JSON object (`{}`): anything else is refused before anything
/// happens (400, or 415 for a body that is not JSON, as the routes with a JSON body answer).
fn no_body(headers: &HeaderMap, bytes: SentBody) -> Result<(), ApiError> {
    let bytes = bytes.map_err(|rejection| ApiError::new(rejection.status(), "bad_request", rejection.body_text()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = content_type == "application/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_request",
            "Expected request with `Content-Type: application/json`",
        ));
    }
    // serde_json's nesting limit turns a deeply nested document into an error, not a stack overflow.
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(fields)) if fields.is_empty() => Ok(()),
        Ok(_) => Err(ApiError::bad_request(
            "this route takes no body (or an empty JSON object {})",
        )),
        Err(error) => Err(ApiError::bad_request(format!("the body is not valid JSON: {error}"))),
    }
}

#[utoipa::path(post, path = "/identities/{id}/keys", tag = "identities", params(("id" = String, Path)),
    description = "Admin. An additional key, shown once.",
    responses((status = 201, body = gateway::IssuedKey),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "The identity is revoked", body = ErrorBody)))]
async fn issue_key(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: SentBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = caller.require(Role::Admin)?;
    no_body(&headers, body)?;
    let key = state.directory.issue_key(caller.actor(), &id).await?;
    Ok((StatusCode::CREATED, Json(json!(key))))
}

#[utoipa::path(post, path = "/identities/{id}/keys/{key_id}/rotate", tag = "identities",
    params(("id" = String, Path), ("key_id" = String, Path)),
    description = "Admin. A new key replaces the old one, which stops working at once.",
    responses((status = 201, body = gateway::IssuedKey),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "The key or identity is not active", body = ErrorBody)))]
async fn rotate_key(
    caller: Authenticated,
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: SentBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = caller.require(Role::Admin)?;
    no_body(&headers, body)?;
    let key = state.directory.rotate_key(caller.actor(), &id, &key_id).await?;
    Ok((StatusCode::CREATED, Json(json!(key))))
}

#[utoipa::path(post, path = "/identities/{id}/keys/{key_id}/revoke", tag = "identities",
    params(("id" = String, Path), ("key_id" = String, Path)), description = "Admin.",
    responses((status = 200, description = "{key, ledger_entry_id}"),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke_key(
    caller: Authenticated,
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: SentBody,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.require(Role::Admin)?;
    no_body(&headers, body)?;
    let (key, entry) = state.directory.revoke_key(caller.actor(), &id, &key_id).await?;
    Ok(Json(json!({"key": key, "ledger_entry_id": entry.id})))
}
