//! The transparency log over HTTP: the C2SP `tlog-tiles` read paths (`/checkpoint`, `/tile/…`), static and
//! cacheable for any tiles client, and JSON under `/api/v1/ledger/` (checkpoints, proofs, receipts).
//!
//! Who may read: the auditor role, or anyone when the log is public (`--public-log`). Tiles and checkpoints
//! hold only hashes. A receipt holds its entry, so it needs the auditor role or the entry's own action
//! (the identity that submitted it), public log or not.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway::Role;
use ledger_core::tlog::{TilePath, hash_to_base64, leaf_hash};
use serde::Deserialize;
use serde_json::{Value, json};
use storage::{CheckpointRow, TreeReadError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// The C2SP paths, outside `/api/v1`. `/tile/{*path}` is a plain route, its operation listed in `ApiDoc`:
/// `routes!` would route the path the document spells, `/tile/{path}`, which matches one segment only.
pub fn static_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(checkpoint_note))
        .route("/tile/{*path}", get(tile))
}

/// The JSON routes, under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(checkpoint))
        .routes(routes!(checkpoints))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(receipt))
        .routes(routes!(status))
}

/// Checks the caller may read the log: always, when it is public.
fn may_read(state: &AppState, caller: Result<Authenticated, ApiError>) -> Result<(), ApiError> {
    if state.transparency.config().public {
        return Ok(());
    }
    caller?.require(Role::Auditor)?;
    Ok(())
}

/// Sizes, seqs and cursors are stored as BIGINT: larger values are refused (the OpenAPI maximum).
fn bounded(name: &str, value: Option<u64>) -> Result<Option<u64>, ApiError> {
    match value {
        Some(v) if v > i64::MAX as u64 => Err(ApiError::bad_request(format!("{name}: at most {}", i64::MAX))),
        other => Ok(other),
    }
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn tree_error(error: TreeReadError) -> ApiError {
    use ledger_core::tlog::proofs::ProofError;
    match error {
        TreeReadError::Proof(ProofError::NotInTree { .. }) => ApiError::not_found(error.to_string()),
        TreeReadError::Proof(ProofError::BadRange { .. }) => ApiError::bad_request(error.to_string()),
        TreeReadError::Storage(e) => e.into(),
        TreeReadError::Proof(e) => ApiError::internal(e),
    }
}

fn text(
    status: StatusCode,
    cache: &'static str,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)],
        body.into(),
    )
        .into_response()
}

async fn latest(state: &AppState) -> Result<CheckpointRow, ApiError> {
    state
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))
}

/// The latest checkpoint's size, at least `at_least`: as this gateway last saw it (its checkpointer reads it
/// every interval), or from the database when that is smaller (another gateway may have signed since).
async fn latest_size(state: &AppState, at_least: u64) -> Result<u64, ApiError> {
    match state.transparency.latest_size() {
        size if size >= at_least.max(1) => Ok(size),
        _ => Ok(latest(state).await?.size as u64),
    }
}

// `GET /checkpoint`: the latest signed checkpoint with its cosignatures (C2SP tlog-tiles).
#[utoipa::path(get, path = "/checkpoint", tag = "transparency", operation_id = "tlog_checkpoint_note",
    description = "Auditor, or anyone when the log is public. The latest checkpoint (C2SP tlog-checkpoint) as a \
        signed note with its witness cosignatures (docs/transparency.md).",
    responses((status = 200, description = "The signed note", content_type = "text/plain"),
              (status = 404, description = "No checkpoint yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn checkpoint_note(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    may_read(&state, caller)?;
    let row = latest(&state).await?;
    let note = state.transparency.cosigned_note(&row).await?;
    Ok(text(StatusCode::OK, "no-cache", "text/plain; charset=utf-8", note))
}

// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]` (C2SP tlog-tiles). A tile's bytes never
// change once it exists at that width, so every answer is immutable. A partial tile of a width the log
// has passed is served from the wider stored tile (its first W hashes are the same).
#[utoipa::path(get, path = "/tile/{path}", tag = "transparency", operation_id = "tlog_tile",
    description = "Auditor, or anyone when public. C2SP tlog-tiles: `tile/<L>/<N>[.p/<W>]` hash tiles and \
        `tile/entries/<N>[.p/<W>]` entry bundles (each leaf: a u16 length and the entry's 32-byte chain hash). \
        Immutable once served.",
    params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`")),
    responses((status = 200, description = "Tile bytes", content_type = "application/octet-stream"),
              (status = 404, description = "Not a tile path, or not in the log yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn tile(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&state, caller)?;
    let tile = TilePath::parse(&format!("tile/{path}")).map_err(|e| ApiError::not_found(e.to_string()))?;
    let missing = || ApiError::not_found(format!("{} is not in the log yet", tile.to_path()));
    let data = match tile.level {
        None => state
            .store
            .entry_bundle(tile.index, tile.width)
            .await?
            .ok_or_else(missing)?,
        Some(level) => {
            let stored = state.store.tile(level, tile.index).await?.ok_or_else(missing)?;
            let bytes = tile.width * 32;
            if stored.len() < bytes {
                return Err(missing());
            }
            stored[..bytes].to_vec()
        }
    };
    Ok(text(
        StatusCode::OK,
        "public, max-age=31536000, immutable",
        "application/octet-stream",
        data,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointQuery {
    size: Option<u64>,
}

fn checkpoint_json(row: &CheckpointRow, note: String) -> Value {
    json!({
        "origin": note.split('\n').next().unwrap_or_default(),
        "size": row.size,
        "root_hash": row.root_hash,
        "note": note,
        "key_id": row.key_id,
        "created_at": row.created_at,
    })
}

// `GET /api/v1/ledger/checkpoint[?size=N]`: the latest checkpoint (or that of exactly N entries) as JSON,
// with the log's verifier keys and witness status.
#[utoipa::path(get, path = "/ledger/checkpoint", tag = "transparency", operation_id = "tlog_checkpoint",
    description = "Auditor, or anyone when public. The latest checkpoint (or that of exactly `size` entries) as \
        JSON, with the log's verifier keys and the cosignatures.",
    params(("size" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64, description = "A stored checkpoint's size")),
    responses((status = 200, description = "{origin, size, root_hash, note, key_id, created_at, verifier_keys, cosignatures}"),
              (status = 404, description = "No checkpoint (of that size) yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn checkpoint(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
    params: Result<Query<CheckpointQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    may_read(&state, caller)?;
    let params = query(params)?;
    let row = match bounded("size", params.size)? {
        Some(size) => state
            .store
            .checkpoint_at(size)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no checkpoint of size {size}")))?,
        None => latest(&state).await?,
    };
    let mut body = checkpoint_json(&row, state.transparency.cosigned_note(&row).await?);
    body["verifier_keys"] = json!(state.transparency.verifier_keys().await?);
    body["cosignatures"] = json!(state.store.cosignatures(row.size as u64).await?);
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

const MAX_CHECKPOINTS: u32 = 1000;

// `GET /api/v1/ledger/checkpoints?limit=&before=`: stored checkpoints, largest first, paged.
#[utoipa::path(get, path = "/ledger/checkpoints", tag = "transparency", operation_id = "tlog_checkpoints",
    description = "Auditor, or anyone when public. Every signed checkpoint, largest first.",
    params(("before" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64, description = "Sizes below this (a page's next_before)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{checkpoints, next_before}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn checkpoints(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
    params: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    may_read(&state, caller)?;
    let params = query(params)?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_CHECKPOINTS).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: 1 to {MAX_CHECKPOINTS}")));
    }
    let rows = state
        .store
        .checkpoints_before(bounded("before", params.before)?, limit)
        .await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.size))
        .flatten();
    let items: Vec<Value> = rows.iter().map(|r| checkpoint_json(r, r.note.clone())).collect();
    Ok(Json(json!({"checkpoints": items, "next_before": next_before})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    entry: Option<String>,
    seq: Option<u64>,
    size: Option<u64>,
}

// `GET /api/v1/ledger/proofs/inclusion?entry=evt_…|seq=S[&size=N]`: the entry's audit path in the tree of
// N entries (default: the latest checkpoint's).
#[utoipa::path(get, path = "/ledger/proofs/inclusion", tag = "transparency", operation_id = "tlog_inclusion",
    description = "Auditor, or anyone when public. The RFC 6962 audit path of an entry (by id or seq) in the \
        tree of `size` entries (default: the latest checkpoint's).",
    params(("entry" = Option<String>, Query, description = "evt_…"),
           ("seq" = Option<u64>, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64, description = "Instead of entry (both: the same entry)"),
           ("size" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64)),
    responses((status = 200, description = "{entry_id, seq, leaf_index, tree_size, chain_hash, leaf_hash, root_hash, proof}"),
              (status = 404, description = "No such entry, or no tree of that size yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn inclusion(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
    params: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    may_read(&state, caller)?;
    let params = query(params)?;
    let seq = bounded("seq", params.seq)?;
    if seq == Some(0) {
        return Err(ApiError::bad_request("seq: entries start at 1"));
    }
    let no_entry = || ApiError::not_found("no such entry: name it with entry=evt_… or seq=N");
    let entry = match (&params.entry, seq) {
        (Some(id), _) => state.store.entry_by_id(id).await?,
        (None, Some(seq)) => state.store.entries_after(seq as i64 - 1, 1).await?.into_iter().next(),
        (None, None) => None,
    }
    .ok_or_else(no_entry)?;
    // Both given: they must name the same entry.
    if seq.is_some_and(|s| s != entry.seq) {
        return Err(no_entry());
    }
    let size = match params.size {
        Some(size) => size,
        None => latest_size(&state, entry.seq).await?,
    };
    let proof = state
        .store
        .inclusion_proof(size, entry.seq - 1)
        .await
        .map_err(tree_error)?;
    let root = state.store.tree_root(size).await.map_err(tree_error)?;
    let chain = entry
        .chain_hash
        .parse()
        .map_err(|_| ApiError::internal("unreadable chain_hash"))?;
    Ok(Json(json!({
        "entry_id": entry.id,
        "seq": entry.seq,
        "leaf_index": entry.seq - 1,
        "tree_size": size,
        "chain_hash": entry.chain_hash,
        "leaf_hash": hash_to_base64(&leaf_hash(&chain)),
        "root_hash": hash_to_base64(&root),
        "proof": proof.iter().map(hash_to_base64).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

// `GET /api/v1/ledger/proofs/consistency?from=M[&to=N]`: the proof that the tree of N entries (default: the
// latest checkpoint's) extends the tree of M.
#[utoipa::path(get, path = "/ledger/proofs/consistency", tag = "transparency", operation_id = "tlog_consistency",
    description = "Auditor, or anyone when public. The RFC 6962 proof that the tree of `to` entries (default: the \
        latest checkpoint's) extends the tree of `from` entries.",
    params(("from" = u64, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64), ("to" = Option<u64>, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64)),
    responses((status = 200, description = "{from, to, from_root, to_root, proof}"),
              (status = 404, description = "No tree of that size yet, or `from` above `to`", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn consistency(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
    params: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    may_read(&state, caller)?;
    let params = query(params)?;
    bounded("from", Some(params.from))?;
    let to = match bounded("to", params.to)? {
        Some(to) => to,
        None => latest_size(&state, params.from).await?,
    };
    if params.from > to {
        return Err(ApiError::not_found(format!(
            "no consistency proof from {} to the smaller tree of {to}: a log only grows",
            params.from
        )));
    }
    let proof = state
        .store
        .consistency_proof(params.from, to)
        .await
        .map_err(tree_error)?;
    let from_root = state.store.tree_root(params.from).await.map_err(tree_error)?;
    let to_root = state.store.tree_root(to).await.map_err(tree_error)?;
    Ok(Json(json!({
        "from": params.from,
        "to": to,
        "from_root": hash_to_base64(&from_root),
        "to_root": hash_to_base64(&to_root),
        "proof": proof.iter().map(hash_to_base64).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptQuery {
    wait: Option<u64>,
}

/// Longest `wait` of a receipt, in seconds.
const MAX_RECEIPT_WAIT: u64 = 60;

// `GET /api/v1/ledger/receipts/{entry_id}[?wait=SECONDS]`: the entry's receipt, a C2SP tlog-proof file
// (`text/x.tlog-proof`), once a checkpoint covers it; 404 `not_yet_covered` before. `wait` waits for a
// checkpoint that covers it and, with witnesses, has their quorum of cosignatures.
#[utoipa::path(get, path = "/ledger/receipts/{id}", tag = "transparency", operation_id = "tlog_receipt",
    description = "The auditor, or the identity whose action the entry belongs to (or that wrote it). The entry's receipt, a C2SP \
        tlog-proof file that `docketops verify --receipt` checks offline; 404 `not_yet_covered` until a \
        checkpoint covers the entry (about a second; `wait` long-polls).",
    params(("id" = String, Path, description = "evt_…"),
           ("wait" = Option<u64>, Query, minimum = 0, maximum = 60, description = "Seconds to wait for a checkpoint")),
    responses((status = 200, description = "The receipt", content_type = "text/x.tlog-proof")))]
async fn receipt(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let wait = params.wait.unwrap_or(0);
    if wait > MAX_RECEIPT_WAIT {
        return Err(ApiError::bad_request(format!(
            "wait: at most {MAX_RECEIPT_WAIT} seconds"
        )));
    }
    let not_found = || ApiError::not_found(format!("no entry {id:?}"));
    let entry = state.store.entry_by_id(&id).await?.ok_or_else(not_found)?;
    if !caller.0.identity.has_role(Role::Auditor) {
        let owner = match &entry.action_id {
            Some(action) => state.store.action(action).await?.map(|a| a.identity_id),
            None => None,
        };
        if owner.as_deref() != Some(caller.0.identity.id.as_str()) && entry.actor != caller.0.identity.id {
            return Err(not_found());
        }
    }
    if wait > 0 {
        state
            .transparency
            .wait_for_receipt(entry.seq, Duration::from_secs(wait))
            .await;
    }
    let receipt = state.transparency.receipt(&entry).await.map_err(ApiError::internal)?;
    match receipt {
        Some(receipt) => Ok(text(StatusCode::OK, "no-cache", "text/x.tlog-proof", receipt.to_text())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_yet_covered",
            "no checkpoint covers this entry yet (one is signed about every second): retry, or pass ?wait=SECONDS",
        )),
    }
}

// `GET /api/v1/ledger/transparency`: tree size, latest and cosigned checkpoints, witness lag.
#[utoipa::path(get, path = "/ledger/transparency", tag = "transparency", operation_id = "tlog_status",
    description = "Auditor, or anyone when public. Tree size, latest and cosigned checkpoints, each witness's lag.",
    responses((status = 200, description = "{origin, tree_size, checkpoint_size, cosigned_size, quorum, witnesses}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
async fn status(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let signed_in = caller.is_ok();
    may_read(&state, caller)?;
    let mut status = state.transparency.status().await?;
    // A public log shows anonymous readers its witnesses' progress, not where they run.
    if !signed_in {
        status.witnesses.iter_mut().for_each(|w| w.url.clear());
    }
    Ok(Json(json!(status)))
}
