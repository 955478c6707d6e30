//! The witness's HTTP API (C2SP tlog-witness, docs/witness.md): `POST /add-checkpoint` and `GET /healthz`.
//! Answers are plain text, as the protocol's clients expect: cosignature lines, a size, or the reason of
//! a refusal.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledger_core::LedgerPublicKey;
use ledger_core::tlog::checkpoint::WitnessSigner;
use ledger_core::tlog::witness::{AddCheckpoint, Refusal, origin_of};
use storage::witness::{Cosigning, WitnessError, WitnessStore, is_evidence};

/// Request bodies larger than this are refused with 413: a request is a checkpoint and at most 63 hashes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What the witness's handlers reach.
#[derive(Debug)]
pub struct WitnessState {
    /// The witness's database: for each log, the latest checkpoint it cosigned.
    pub store: WitnessStore,
    /// The witness's key, which signs its cosignatures.
    pub signer: WitnessSigner,
    /// The logs this witness follows: origin → every key of the log (rotated-out ones included).
    pub logs: HashMap<String, Vec<LedgerPublicKey>>,
}

/// The witness's routes over `state`: `POST /add-checkpoint` and `GET /healthz`, bodies up to
/// [`MAX_BODY_BYTES`].
pub fn router(state: WitnessState) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(state))
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

async fn add_checkpoint(State(state): State<Arc<WitnessState>>, body: Bytes) -> Response {
    let request = match std::str::from_utf8(&body) {
        Ok(body) => AddCheckpoint::parse(body),
        Err(_) => Err(Refusal::BadRequest("the body is not UTF-8".into())),
    };
    let request = match request {
        Ok(request) => request,
        Err(refusal) => return answer("", None, Err(refusal.into()), &state.signer),
    };
    let Some(origin) = origin_of(&request.checkpoint) else {
        let refusal = Refusal::BadRequest("the checkpoint names no origin".into());
        return answer("", Some(&request), Err(refusal.into()), &state.signer);
    };
    let result = match state.logs.get(origin) {
        None => Err(Refusal::UnknownLog(origin.to_string()).into()),
        Some(keys) => state.store.add_checkpoint(origin, keys, &request, unix_now()).await,
    };
    answer(origin, Some(&request), result, &state.signer)
}

/// The response to a decided request, logged with what the request claimed.
fn answer(
    origin: &str,
    request: Option<&AddCheckpoint>,
    result: Result<Cosigning, WitnessError>,
    signer: &WitnessSigner,
) -> Response {
    let old = request.map(|r| r.old_size);
    // The checkpoint's size line as sent: verified only when the answer is 200.
    let size = request.and_then(|r| r.checkpoint.lines().nth(1)?.parse::<u64>().ok());
    let (response, reason, evidence) = match result {
        Ok(cosigning) => {
            let line = signer.cosign(&cosigning.checkpoint.body(), cosigning.timestamp);
            (text(StatusCode::OK, line), String::new(), false)
        }
        Err(WitnessError::Refused(refusal)) => (refused(&refusal), refusal.to_string(), is_evidence(&refusal)),
        Err(error) => {
            tracing::error!(origin, %error, "witness storage failed");
            let message = "the witness could not record the checkpoint; try again\n".to_string();
            (
                text(StatusCode::INTERNAL_SERVER_ERROR, message),
                error.to_string(),
                false,
            )
        }
    };
    let status = response.status().as_u16();
    if evidence {
        tracing::warn!(
            origin,
            old,
            size,
            status,
            reason,
            "add-checkpoint: kept as evidence of log misbehaviour"
        );
    } else {
        tracing::info!(origin, old, size, status, reason, "add-checkpoint");
    }
    response
}

/// The response to a refusal; a size mismatch tells the client the size to prove from (C2SP).
fn refused(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    match refusal {
        Refusal::SizeMismatch { latest, .. } => (
            status,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{latest}\n"),
        )
            .into_response(),
        other => text(status, format!("{other}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
