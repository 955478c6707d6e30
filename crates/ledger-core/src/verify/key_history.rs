//! Step 2's key checks (§4.4, §4.5): which key must have signed each entry, following the genesis and
//! rotation entries, and the key history the verifier keeps once a batch's good prefix is known.

use ed25519_dalek::VerifyingKey;

use super::{KeyReport, KeyState, Reason, SignatureJob, Verifier};
use crate::entry::{Entry, KIND_INITIALIZED, KIND_KEY_ROTATED};
use crate::hash::Digest;
use crate::keys::{self, LedgerPublicKey, introduced_key, payload_text};

impl Verifier {
    /// The keys introduced so far, in order: those committed, then those added earlier in this batch.
    fn introduced<'a>(&'a self, added: &'a [(u64, LedgerPublicKey)]) -> impl Iterator<Item = &'a LedgerPublicKey> {
        self.keys.iter().map(|k| &k.key).chain(added.iter().map(|(_, k)| k))
    }

    /// Decides which key must have signed `entry`, following the genesis and rotation entries seen so
    /// far (including those earlier in this batch, held in `added`).
    pub(super) fn check_key(
        &self,
        entry: &Entry,
        active: &mut Option<usize>,
        added: &mut Vec<(u64, LedgerPublicKey)>,
    ) -> Result<VerifyingKey, (Reason, String)> {
        if entry.seq == 1 {
            let key = self.check_genesis(entry)?;
            let signer = key.key;
            added.push((1, key));
            *active = Some(self.keys.len() + added.len() - 1);
            return Ok(signer);
        }
        if entry.kind == KIND_INITIALIZED {
            return Err(key_entry_error(format!(
                "a second {KIND_INITIALIZED:?} entry at seq {}",
                entry.seq
            )));
        }
        let Some((index, signer)) = self
            .introduced(added)
            .enumerate()
            .find(|(_, k)| k.key_id == entry.key_id)
            .map(|(i, k)| (i, k.key))
        else {
            return Err((
                Reason::UnknownKey,
                format!("key {} was never introduced by the chain", entry.key_id),
            ));
        };
        if Some(index) != *active {
            let active_id = active
                .and_then(|a| self.introduced(added).nth(a))
                .map_or("none", |k| k.key_id.as_str());
            return Err((
                Reason::KeyNotActive,
                format!(
                    "signed with {} but the active key at this point is {active_id}",
                    entry.key_id
                ),
            ));
        }
        if entry.kind == KIND_KEY_ROTATED {
            let next = self.check_rotation(entry, added)?;
            added.push((entry.seq, next));
            *active = Some(self.keys.len() + added.len() - 1);
        }
        Ok(signer)
    }

    /// Entry 1 (§4.4): it introduces the first key, which must be trusted when keys are pinned and must
    /// be the key the entry names.
    fn check_genesis(&self, entry: &Entry) -> Result<LedgerPublicKey, (Reason, String)> {
        if entry.kind != KIND_INITIALIZED {
            return Err(key_entry_error(format!(
                "entry 1 must be {KIND_INITIALIZED:?} (it introduces the first signing key), not {:?}",
                entry.kind
            )));
        }
        let (key, _) = introduced_key(entry).map_err(key_entry_error)?;
        let trusted = &self.options.trusted_genesis_keys;
        if !trusted.is_empty() && !trusted.contains(&key) {
            return Err((
                Reason::UntrustedKey,
                format!(
                    "the ledger starts with key {} which is not among the trusted keys",
                    key.key_id
                ),
            ));
        }
        if entry.key_id != key.key_id {
            return Err(key_entry_error(format!(
                "the genesis entry introduces {} but is signed as {}",
                key.key_id, entry.key_id
            )));
        }
        Ok(key)
    }

    /// A rotation (§4.5), signed by the active key: it names that key as the previous one, introduces a
    /// key the chain has not seen and proves possession of it.
    fn check_rotation(
        &self,
        entry: &Entry,
        added: &[(u64, LedgerPublicKey)],
    ) -> Result<LedgerPublicKey, (Reason, String)> {
        let (next, payload) = introduced_key(entry).map_err(key_entry_error)?;
        if payload_text(&payload, "previous_key_id") != Some(entry.key_id.as_str()) {
            return Err(key_entry_error(format!(
                "a rotation must name the key that signs it ({}) as previous_key_id",
                entry.key_id
            )));
        }
        // Neither may repeat: an old key must not come back, and a key id must name one key (ids are
        // 64 bits of a hash, so two keys could share one).
        if self
            .introduced(added)
            .any(|k| k.key_id == next.key_id || k.key == next.key)
        {
            return Err(key_entry_error(format!(
                "key {} was already introduced (the same key id or public key)",
                next.key_id
            )));
        }
        let proof = payload_text(&payload, "proof").and_then(keys::signature_from_hex);
        let prev = entry.prev_chain_hash.parse::<Digest>().ok();
        if !proof
            .zip(prev)
            .is_some_and(|(proof, prev)| next.verify_key_proof(&prev, &proof))
        {
            return Err(key_entry_error(format!(
                "the rotation does not prove possession of the new key {}: its proof is missing or does not verify",
                next.key_id
            )));
        }
        Ok(next)
    }

    /// Adds keys introduced within the good prefix, marks retirements and counts signatures.
    pub(super) fn apply_key_changes(
        &mut self,
        batch: &[Entry],
        good: usize,
        added: &[(u64, LedgerPublicKey)],
        jobs: &[SignatureJob],
    ) {
        let last_good_seq = if good == 0 { 0 } else { batch[good - 1].seq };
        for (seq, key) in added {
            if *seq > last_good_seq {
                break;
            }
            if let Some(active) = self.active_key {
                self.keys[active].report.retired_seq = Some(*seq);
            }
            self.keys.push(KeyState {
                report: KeyReport {
                    info: key.info(),
                    introduced_seq: *seq,
                    retired_seq: None,
                    entries_signed: 0,
                },
                key: key.clone(),
            });
            self.active_key = Some(self.keys.len() - 1);
            // Entries of this batch signed with this key (the genesis entry signs itself).
            let signed = jobs
                .iter()
                .filter(|job| job.index < good && batch[job.index].key_id == key.key_id)
                .count();
            self.keys.last_mut().expect("just pushed").report.entries_signed += signed as u64;
        }
    }
}

fn key_entry_error(message: String) -> (Reason, String) {
    (Reason::InvalidKeyEntry, message)
}
