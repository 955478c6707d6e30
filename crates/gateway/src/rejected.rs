//! Action requests whose body is not JSON at all: recorded as `action.rejected` like any other request that is
//! not a valid action (SPEC §3), from the raw bytes, since there is no document to record.

use domain::payload::RejectedUnparsable;
use sha2::{Digest as _, Sha256};

use crate::identity::{Caller, Role};
use crate::pipeline::{Pipeline, Trail};
use crate::{GatewayError, new_id};

/// How much of an unparsable body the ledger keeps (the hash covers all of it).
pub const RECORDED_BODY_BYTES: usize = 4096;

impl Pipeline {
    /// Records `action.rejected` for a body that did not parse (`message` says why) and returns the error to
    /// answer with: `BadRequest` once recorded, `Forbidden` for a caller who may not submit actions (nothing
    /// recorded, as for a parsable request), or the ledger's error.
    ///
    /// The first [`RECORDED_BODY_BYTES`] are recorded as text with the SHA-256 of the whole body, unless the
    /// body mentions `data` or `secret`: Secret values cannot be redacted from text that does not parse, and a
    /// hash of them would let anyone test guesses, so then only its size is kept.
    pub async fn reject_unparsable(&self, caller: &Caller, raw: &[u8], message: &str) -> GatewayError {
        if let Err(error) = caller.require(Role::Operator) {
            return error;
        }
        let mut trail = Trail {
            action_id: new_id("act"),
            cluster: None,
            entries: Vec::new(),
        };
        let lowered = String::from_utf8_lossy(raw).to_ascii_lowercase();
        let redacted = lowered.contains("data") || lowered.contains("secret");
        let (text, sha256) = if redacted {
            (executor::diff::REDACTED.to_owned(), None)
        } else {
            let kept = String::from_utf8_lossy(&raw[..raw.len().min(RECORDED_BODY_BYTES)]).into_owned();
            (kept, Some(format!("sha256:{}", hex::encode(Sha256::digest(raw)))))
        };
        let rejected = RejectedUnparsable {
            request_text: text,
            request_bytes: raw.len(),
            request_truncated: raw.len() > RECORDED_BODY_BYTES,
            request_sha256: sha256,
            field: "body".to_owned(),
            message: message.to_owned(),
            key_id: caller.key_id.clone(),
        };
        match self.record(&mut trail, caller.actor(), &rejected).await {
            Ok(()) => GatewayError::BadRequest(format!("body: {message}")),
            Err(error) => error,
        }
    }
}
