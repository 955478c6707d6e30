//! Keeping each witness up to date: one task per witness sends it the latest checkpoint whenever there is
//! a newer one than it cosigned (never two requests at once, so its answers cannot overtake each other),
//! and stores the cosignature line that verifies with the configured witness key.

use std::sync::Arc;
use std::time::Duration;

use ledger_core::tlog::checkpoint;
use ledger_core::tlog::witness::AddCheckpoint;
use signed_note::Verifier as _;
use storage::{CheckpointRow, CosignatureRow, StorageError, TreeReadError};

use super::{Transparency, WitnessEndpoint};

/// How long a failed push waits before the next try (unless a newer checkpoint comes first).
const RETRY: Duration = Duration::from_secs(5);
/// The largest witness answer read: a few signature lines.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a witness has not cosigned the latest checkpoint (logged; the push is tried again).
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("the consistency proof: {0}")]
    Proof(#[from] TreeReadError),
    #[error("cannot reach the witness: {0}")]
    Http(#[from] reqwest::Error),
    #[error(
        "the witness holds size {held}, beyond the log's latest checkpoint {size}: another gateway or a fork signed it"
    )]
    Beyond { held: u64, size: u64 },
    #[error("an answer of {0} bytes")]
    TooLarge(usize),
    #[error("{status}: {text}")]
    Refused { status: u16, text: String },
    #[error("the witness keeps reporting another size")]
    KeepsMoving,
    #[error("no cosignature line of the configured witness key")]
    NoCosignature,
    #[error("the cosignature does not verify: {0}")]
    Cosignature(#[from] checkpoint::CheckpointError),
}

impl Transparency {
    pub(super) async fn follow_witness(self: Arc<Self>, index: usize) {
        let witness = &self.config.witnesses[index];
        let mut latest = self.latest.subscribe();
        loop {
            let wait = match self.push_latest(witness).await {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(witness = %witness.key.name, %error, "no cosignature");
                    Some(RETRY)
                }
            };
            let retry = tokio::time::sleep(wait.unwrap_or(Duration::MAX / 4));
            tokio::select! {
                changed = latest.changed() => if changed.is_err() { return },
                () = retry => {}
            }
        }
    }

    async fn push_latest(&self, witness: &WitnessEndpoint) -> Result<(), PushError> {
        match self.store.latest_checkpoint().await? {
            Some(row) => self.push(witness, &row).await,
            None => Ok(()),
        }
    }

    /// Sends `row` with a consistency proof from the size the witness cosigned last; on a 409 naming
    /// another size (ours was behind: another gateway asked, or the witness's answer was lost), once more
    /// from that size — from `row`'s own size when the witness already holds it, so that it cosigns again.
    async fn push(&self, witness: &WitnessEndpoint, row: &CheckpointRow) -> Result<(), PushError> {
        let size = row.size as u64;
        let held = self.store.witness_size(&witness.key.name).await?;
        let mut old = held;
        for _ in 0..2 {
            if old > size {
                return Err(PushError::Beyond { held: old, size });
            }
            if held == size {
                return Ok(());
            }
            let proof = match old {
                0 => Vec::new(),
                old if old == size => Vec::new(),
                _ => self.store.consistency_proof(old, size).await?,
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: row.note.clone(),
            }
            .to_body();
            let url = format!("{}/add-checkpoint", witness.url.trim_end_matches('/'));
            let response = self.http.post(&url).body(body).send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            if bytes.len() > MAX_ANSWER {
                return Err(PushError::TooLarge(bytes.len()));
            }
            let text = String::from_utf8_lossy(&bytes);
            match status {
                200 => return self.store_cosignature(witness, row, &text).await,
                409 => match text.trim().parse::<u64>() {
                    Ok(theirs) if theirs != old => old = theirs,
                    _ => return Err(refused(409, &text)),
                },
                code => return Err(refused(code, &text)),
            }
        }
        Err(PushError::KeepsMoving)
    }

    /// Keeps the line of the configured witness key (an answer may carry others) once it verifies.
    async fn store_cosignature(
        &self,
        witness: &WitnessEndpoint,
        row: &CheckpointRow,
        text: &str,
    ) -> Result<(), PushError> {
        let line = text
            .lines()
            .map(|l| format!("{l}\n"))
            .find(|l| {
                signed_note::Signature::from_bytes(l.trim_end().as_bytes())
                    .is_ok_and(|s| s.name() == witness.key.name && s.id() == witness.key.key_id())
            })
            .ok_or(PushError::NoCosignature)?;
        let note = checkpoint::add_signature_lines(&row.note, std::slice::from_ref(&line));
        let keys = [self.key.public_key()];
        checkpoint::open(&note, &keys, std::slice::from_ref(&witness.key), 1)?;
        let cosignature = CosignatureRow {
            size: row.size,
            witness: witness.key.name.clone(),
            line,
            received_at: crate::now(),
        };
        self.store.insert_cosignature(&cosignature).await?;
        Ok(self.refresh_cosigned().await?)
    }
}

fn refused(status: u16, text: &str) -> PushError {
    PushError::Refused {
        status,
        text: text.trim().to_owned(),
    }
}
