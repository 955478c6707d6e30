//! The transparency log over HTTP: the C2SP `tlog-tiles` read paths (`/checkpoint`, `/tile/…`), static and
//! cacheable for any tiles client, and JSON under `/api/v1/ledger/` (checkpoints, proofs, receipts).
//!
//! Who may read: the auditor role, or anyone when the log is public (`--public-log`). Tiles and checkpoints
//! hold only hashes. A receipt holds its entry, so it needs the auditor role or the entry's own action
//! (the identity that submitted it), public log or not.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gateway::Role;
use ledger_core::tlog::{TilePath, hash_to_base64, leaf_hash};
use serde::Deserialize;
use serde_json::{Value, json};
use storage::{CheckpointRow, TreeReadError};

use crate::auth::Authenticated;
use crate::{ApiError, AppState};

/// The C2SP paths, outside `/api/v1`.
pub fn static_routes() -> Router<AppState> {
    Router::new()
        .route("/checkpoint", get(checkpoint_note))
        .route("/tile/{*path}", get(tile))
}

/// The JSON routes, under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ledger/checkpoint", get(checkpoint))
        .route("/ledger/checkpoints", get(checkpoints))
        .route("/ledger/proofs/inclusion", get(inclusion))
        .route("/ledger/proofs/consistency", get(consistency))
        .route("/ledger/receipts/{id}", get(receipt))
        .route("/ledger/transparency", get(status))
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

/// `GET /checkpoint`: the latest signed checkpoint with its cosignatures (C2SP tlog-tiles).
async fn checkpoint_note(
    caller: Result<Authenticated, ApiError>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    may_read(&state, caller)?;
    let row = latest(&state).await?;
    let note = state.transparency.cosigned_note(&row).await?;
    Ok(text(StatusCode::OK, "no-cache", "text/plain; charset=utf-8", note))
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]` (C2SP tlog-tiles). A tile's bytes never
/// change once it exists at that width, so every answer is immutable. A partial tile of a width the log
/// has passed is served from the wider stored tile (its first W hashes are the same).
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

/// `GET /api/v1/ledger/checkpoint[?size=N]`: the latest checkpoint (or that of exactly N entries) as JSON,
/// with the log's verifier keys and witness status.
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

/// `GET /api/v1/ledger/checkpoints?limit=&before=`: stored checkpoints, largest first, paged.
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

/// `GET /api/v1/ledger/proofs/inclusion?entry=evt_…|seq=S[&size=N]`: the entry's audit path in the tree of
/// N entries (default: the latest checkpoint's).
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

/// `GET /api/v1/ledger/proofs/consistency?from=M[&to=N]`: the proof that the tree of N entries (default: the
/// latest checkpoint's) extends the tree of M.
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

/// `GET /api/v1/ledger/receipts/{entry_id}[?wait=SECONDS]`: the entry's receipt, a C2SP tlog-proof file
/// (`text/x.tlog-proof`), once a checkpoint covers it; 404 `not_yet_covered` before. `wait` waits for a
/// checkpoint that covers it and, with witnesses, has their quorum of cosignatures.
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

/// `GET /api/v1/ledger/transparency`: tree size, latest and cosigned checkpoints, witness lag.
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
