//! The streaming verifier (docs/ledger-format.md §6).
//!
//! Entries are fed in order, a batch at a time; the verifier keeps only the link to the previous entry
//! and the key history, so its memory does not grow with the ledger. Per batch:
//! 1. on all cores, each entry alone: payload canonical, event hash, chain hash recomputed;
//! 2. in order: sequence continuity, links, keys (genesis, rotations);
//! 3. on all cores, signatures: strict Ed25519 verification of each entry (§4.3).
//!
//! The first invalid entry wins; everything after it is not examined.

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;

use crate::entry::{Entry, KIND_INITIALIZED, KIND_KEY_ROTATED, MAX_PAYLOAD_BYTES};
use crate::hash::{self, Digest};
use crate::json::{self, Numbers};
use crate::keys::{self, LedgerPublicKey, PublicKeyInfo, introduced_key, payload_text, signature_from_hex};

/// Why an entry is invalid. The snake_case names are stable: the API, the CLI and scripts use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A field cannot be read: invalid JSON, a malformed hash or signature.
    Malformed,
    /// The payload text is valid JSON but not in canonical form.
    NotCanonical,
    /// The event no longer hashes to its `event_hash`: the payload or another field was changed.
    PayloadChanged,
    /// The sequence jumps: an entry was removed.
    EntryMissing,
    /// A sequence number repeats or goes backwards.
    OutOfOrder,
    /// `prev_chain_hash` is not the previous entry's chain hash: entries were reordered, or one before
    /// this was replaced or inserted.
    BrokenLink,
    /// `chain_hash` does not follow from seq, prev_chain_hash and event_hash.
    ChainHashMismatch,
    /// The signature does not verify with the entry's key: swapped, forged or re-signed.
    BadSignature,
    /// The entry names a key the chain never introduced.
    UnknownKey,
    /// The entry names a key the chain introduced but that is not the active one at this point.
    KeyNotActive,
    /// The genesis entry's key is not among the keys the verifier was told to trust, or the
    /// gateway's own key is not part of the chain.
    UntrustedKey,
    /// A genesis or key-rotation entry is malformed or in the wrong place.
    InvalidKeyEntry,
    /// An export bundle ends before the head its header announces.
    Truncated,
    /// An export bundle's entries go past, or end on another chain hash than, the head its header
    /// announces.
    HeadMismatch,
}

/// The first invalid entry and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    pub reason: Reason,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadReport {
    pub seq: u64,
    pub chain_hash: Digest,
}

/// A signing key as the chain introduced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    #[serde(flatten)]
    pub info: PublicKeyInfo,
    pub introduced_seq: u64,
    pub retired_seq: Option<u64>,
    pub entries_signed: u64,
}

/// The outcome of a verification, in the shape of `GET /api/v1/ledger/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub valid: bool,
    pub entries_checked: u64,
    pub head: Option<HeadReport>,
    pub first_invalid: Option<Invalid>,
    pub keys: Vec<KeyReport>,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// When non-empty, the genesis key must be one of these (an auditor's pinned key).
    pub trusted_genesis_keys: Vec<LedgerPublicKey>,
    /// A key that must appear in the chain (the gateway's own signing key): a ledger rewritten under
    /// someone else's key is refused even though it is internally consistent.
    pub required_key: Option<LedgerPublicKey>,
    /// Kept for the CLI's `--strict` and the API's `?strict=true`: every signature is verified strictly
    /// (§4.3) whatever this says. Batch verification was dropped because it cannot match the strict
    /// result on every input (a signature whose R has a small-order component) at less cost.
    pub strict_signatures: bool,
    /// When known (an export bundle's header), the head the entries must reach.
    pub expected_head: Option<(u64, Digest)>,
}

struct KeyState {
    report: KeyReport,
    key: LedgerPublicKey,
}

#[derive(Debug)]
pub struct Verifier {
    options: VerifyOptions,
    next_seq: u64,
    prev_chain_hash: Digest,
    keys: Vec<KeyState>,
    active_key: Option<usize>,
    entries_checked: u64,
    first_invalid: Option<Invalid>,
}

impl std::fmt::Debug for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.report.fmt(f)
    }
}

/// What step 1 learns of one entry on its own.
struct Local {
    prev: Digest,
    chain: Digest,
    signature: Signature,
}

struct SignatureJob {
    index: usize,
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
}

impl Verifier {
    pub fn new(options: VerifyOptions) -> Self {
        Self {
            options,
            next_seq: 1,
            prev_chain_hash: Digest::GENESIS,
            keys: Vec::new(),
            active_key: None,
            entries_checked: 0,
            first_invalid: None,
        }
    }

    pub fn entries_checked(&self) -> u64 {
        self.entries_checked
    }

    pub fn is_invalid(&self) -> bool {
        self.first_invalid.is_some()
    }

    /// Records that the next entry could not even be read (for example a bundle line that is not JSON).
    pub fn fail_unreadable(&mut self, message: impl Into<String>) {
        if self.first_invalid.is_none() {
            self.first_invalid = Some(Invalid {
                seq: self.next_seq,
                entry_id: None,
                reason: Reason::Malformed,
                message: message.into(),
            });
        }
    }

    /// Checks the next entries, in ledger order. Returns `false` once an invalid entry has been found;
    /// later calls then do nothing.
    pub fn check(&mut self, batch: &[Entry]) -> bool {
        if self.first_invalid.is_some() {
            return false;
        }
        let locals: Vec<Result<Local, (Reason, String)>> = batch.par_iter().map(check_alone).collect();

        let mut jobs = Vec::with_capacity(batch.len());
        let mut ordered_failure: Option<(usize, Invalid)> = None;
        let mut prev = self.prev_chain_hash;
        // Key changes are applied to a copy so that a bad signature found in step 3, before a rotation
        // seen here, leaves the key history as it was at that entry.
        let mut keys_after: Vec<(u64, LedgerPublicKey)> = Vec::new();
        let mut active = self.active_key;

        for (index, (entry, local)) in batch.iter().zip(&locals).enumerate() {
            let next_seq = self.next_seq + index as u64;
            let fail = |reason, message: String| Invalid {
                seq: entry.seq,
                entry_id: Some(entry.id.clone()),
                reason,
                message,
            };
            if entry.seq != next_seq {
                let invalid = if entry.seq > next_seq {
                    Invalid {
                        seq: next_seq,
                        entry_id: None,
                        reason: Reason::EntryMissing,
                        message: format!(
                            "entry {next_seq} is missing: seq {} is followed by seq {}",
                            next_seq - 1,
                            entry.seq
                        ),
                    }
                } else {
                    fail(
                        Reason::OutOfOrder,
                        format!(
                            "seq {} appears after seq {}: entries out of order or repeated",
                            entry.seq,
                            next_seq - 1
                        ),
                    )
                };
                ordered_failure = Some((index, invalid));
                break;
            }
            let local = match local {
                Ok(local) => local,
                Err((reason, message)) => {
                    ordered_failure = Some((index, fail(*reason, message.clone())));
                    break;
                }
            };
            if local.prev != prev {
                let message = format!(
                    "prev_chain_hash {} is not the chain hash of entry {} ({prev}): entries were reordered, or an entry before it was replaced or inserted",
                    local.prev,
                    entry.seq - 1
                );
                ordered_failure = Some((index, fail(Reason::BrokenLink, message)));
                break;
            }
            if entry.chain_hash != local.chain.to_string() {
                let message = format!("chain_hash should be {} but is {}", local.chain, entry.chain_hash);
                ordered_failure = Some((index, fail(Reason::ChainHashMismatch, message)));
                break;
            }
            match self.check_key(entry, &mut active, &mut keys_after) {
                Ok(key) => jobs.push(SignatureJob {
                    index,
                    message: keys::signature_message(&entry.key_id, &local.chain),
                    key,
                    signature: local.signature,
                }),
                Err((reason, message)) => {
                    ordered_failure = Some((index, fail(reason, message)));
                    break;
                }
            }
            prev = local.chain;
        }

        let signature_failure = first_bad_signature(&jobs);
        let failure = match (signature_failure, ordered_failure) {
            (Some(s), Some((o, invalid))) if o < s => Some((o, invalid)),
            (Some(s), _) => {
                let entry = &batch[s];
                Some((
                    s,
                    Invalid {
                        seq: entry.seq,
                        entry_id: Some(entry.id.clone()),
                        reason: Reason::BadSignature,
                        message: format!(
                            "the signature does not verify with key {}: it was replaced, forged or made with another key",
                            entry.key_id
                        ),
                    },
                ))
            }
            (None, ordered) => ordered,
        };
        let good = failure.as_ref().map_or(batch.len(), |(index, _)| *index);

        // Commit what the good prefix established.
        for job in jobs.iter().take_while(|job| job.index < good) {
            // Keys new in this batch are counted when they are added, just below.
            if let Some(key) = self
                .keys
                .iter_mut()
                .find(|k| k.key.key.as_bytes() == job.key.as_bytes())
            {
                key.report.entries_signed += 1;
            }
        }
        self.apply_key_changes(batch, good, &keys_after, &jobs);
        if good > 0 {
            let last = &batch[good - 1];
            self.next_seq = last.seq + 1;
            self.prev_chain_hash = last.chain_hash.parse().unwrap_or(Digest::GENESIS);
        }
        self.entries_checked += good as u64;
        match failure {
            Some((_, invalid)) => {
                self.first_invalid = Some(invalid);
                false
            }
            None => true,
        }
    }

    /// Finishes: applies the end-of-ledger checks and builds the report.
    pub fn finish(mut self) -> VerifyReport {
        let reached = self.next_seq - 1;
        if self.first_invalid.is_none()
            && let Some((seq, chain_hash)) = self.options.expected_head
        {
            let mismatch = |at: u64, reason, message: String| Invalid {
                seq: at,
                entry_id: None,
                reason,
                message,
            };
            if reached < seq {
                self.first_invalid = Some(mismatch(
                    reached + 1,
                    Reason::Truncated,
                    format!("the bundle announces head seq {seq} but its entries end at seq {reached}"),
                ));
            } else if reached > seq {
                self.first_invalid = Some(mismatch(
                    seq + 1,
                    Reason::HeadMismatch,
                    format!("the bundle announces head seq {seq} but holds entries up to seq {reached}"),
                ));
            } else if seq > 0 && self.prev_chain_hash != chain_hash {
                self.first_invalid = Some(mismatch(
                    seq,
                    Reason::HeadMismatch,
                    format!(
                        "the bundle announces head {chain_hash} at seq {seq} but its entries end on {}",
                        self.prev_chain_hash
                    ),
                ));
            }
        }
        if self.first_invalid.is_none()
            && let Some(required) = &self.options.required_key
            && self.entries_checked > 0
            && !self.keys.iter().any(|k| k.key == *required)
        {
            self.first_invalid = Some(Invalid {
                seq: 1,
                entry_id: None,
                reason: Reason::UntrustedKey,
                message: format!(
                    "this gateway signs with {} but the ledger's chain never introduces that key: the ledger was rewritten under another key",
                    required.key_id
                ),
            });
        }
        let head = (self.entries_checked > 0).then(|| HeadReport {
            seq: self.next_seq - 1,
            chain_hash: self.prev_chain_hash,
        });
        VerifyReport {
            valid: self.first_invalid.is_none(),
            entries_checked: self.entries_checked,
            head,
            first_invalid: self.first_invalid,
            keys: self.keys.into_iter().map(|k| k.report).collect(),
        }
    }

    /// The keys introduced so far, in order: those committed, then those added earlier in this batch.
    fn introduced<'a>(&'a self, added: &'a [(u64, LedgerPublicKey)]) -> impl Iterator<Item = &'a LedgerPublicKey> {
        self.keys.iter().map(|k| &k.key).chain(added.iter().map(|(_, k)| k))
    }

    /// Decides which key must have signed `entry`, following the genesis and rotation entries seen so
    /// far (including those earlier in this batch, held in `added`).
    fn check_key(
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
    fn apply_key_changes(
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

/// Step 1: the checks one entry needs nothing else for.
fn check_alone(entry: &Entry) -> Result<Local, (Reason, String)> {
    let malformed = |message: String| (Reason::Malformed, message);
    // The writers' limit, checked before parsing: nothing larger is a payload.
    if entry.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(malformed(format!(
            "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            entry.payload.len()
        )));
    }
    let payload = json::parse(&entry.payload, Numbers::SafeIntegers)
        .map_err(|e| malformed(format!("payload is not valid ledger JSON: {e}")))?;
    if !payload.is_object() {
        return Err(malformed("payload is not a JSON object".into()));
    }
    let canonical = json::canonicalize(&payload).map_err(|e| malformed(e.to_string()))?;
    if canonical != entry.payload {
        return Err((
            Reason::NotCanonical,
            "the stored payload is not in RFC 8785 canonical form".into(),
        ));
    }
    let digest = |name: &str, text: &str| -> Result<Digest, (Reason, String)> {
        text.parse().map_err(|e| malformed(format!("{name}: {e}")))
    };
    let prev = digest("prev_chain_hash", &entry.prev_chain_hash)?;
    let stated_event_hash = digest("event_hash", &entry.event_hash)?;
    digest("chain_hash", &entry.chain_hash)?;
    let signature = signature_from_hex(&entry.signature)
        .ok_or_else(|| malformed("signature: expected 128 lowercase hex digits".into()))?;
    let event_hash = hash::event_hash(entry.canonical_event().as_bytes());
    if event_hash != stated_event_hash {
        return Err((
            Reason::PayloadChanged,
            format!(
                "the entry's content hashes to {event_hash}, not its event_hash {stated_event_hash}: the payload or another field was changed"
            ),
        ));
    }
    Ok(Local {
        prev,
        chain: hash::chain_hash(entry.seq, &prev, &event_hash),
        signature,
    })
}

/// Step 3: the index (into the batch) of the first entry whose signature fails strict verification.
/// Ed25519 batch verification is faster but accepts some signatures the strict check refuses (an R
/// with a small-order component passes a batch depending on its random coefficients), and telling
/// those apart costs as much as verifying strictly.
fn first_bad_signature(jobs: &[SignatureJob]) -> Option<usize> {
    jobs.par_iter()
        .find_first(|job| job.key.verify_strict(&job.message, &job.signature).is_err())
        .map(|job| job.index)
}

/// Convenience for tests and small ledgers: verifies a whole slice.
pub fn verify_entries(entries: &[Entry], options: VerifyOptions) -> VerifyReport {
    let mut verifier = Verifier::new(options);
    verifier.check(entries);
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::head_of;
    use crate::{ChainHead, LedgerSigningKey, NewEvent, PreparedEvent, seal};

    fn sealed(head: &ChainHead, event: NewEvent, key: &LedgerSigningKey) -> Entry {
        let (id, timestamp) = (format!("evt_{:032x}", head.seq + 1), "2026-01-01T00:00:00.000000Z");
        let prepared = PreparedEvent::prepare_with_id(event, id, timestamp.into()).unwrap();
        seal(head, vec![prepared], key).remove(0)
    }

    /// A key id and a public key each name one key in a ledger. The same public key always has the
    /// same id, and two keys sharing a 64-bit id cannot be found in a test, so an earlier key sharing
    /// one of the two with the rotation's new key is planted.
    #[test]
    fn a_rotation_may_not_repeat_an_earlier_key_id_or_public_key() {
        let [k1, k2, k3] = [1, 2, 3].map(|n| LedgerSigningKey::from_seed([n; 32]));
        let genesis = sealed(&ChainHead::EMPTY, NewEvent::genesis(&k1.public_key(), "usr_1"), &k1);
        let head = head_of(&genesis).unwrap();
        let rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head.chain_hash, "usr_1");
        let rotation = sealed(&head, rotation, &k1);
        let planted = [
            LedgerPublicKey {
                key_id: k2.key_id().into(),
                key: k3.public_key().key,
            },
            LedgerPublicKey {
                key_id: "ed25519:0000000000000000".into(),
                key: k2.public_key().key,
            },
        ];
        for earlier in planted {
            let mut verifier = Verifier::new(VerifyOptions::default());
            assert!(verifier.check(std::slice::from_ref(&genesis)));
            let report = KeyReport {
                info: earlier.info(),
                introduced_seq: 0,
                retired_seq: Some(0),
                entries_signed: 0,
            };
            verifier.keys.insert(0, KeyState { report, key: earlier });
            verifier.active_key = Some(1);
            assert!(!verifier.check(std::slice::from_ref(&rotation)));
            let invalid = verifier.first_invalid.unwrap();
            assert_eq!(
                (invalid.seq, invalid.reason),
                (2, Reason::InvalidKeyEntry),
                "{invalid:?}"
            );
        }
        assert!(Verifier::new(VerifyOptions::default()).check(&[genesis, rotation]));
    }
}
