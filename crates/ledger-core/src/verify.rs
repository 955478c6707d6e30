//! The streaming verifier (docs/ledger-format.md §6).
//!
//! Entries are fed in order, a batch at a time; the verifier keeps only the link to the previous entry
//! and the key history, so its memory does not grow with the ledger. Per batch:
//! 1. on all cores, each entry alone: payload canonical, event hash, chain hash recomputed;
//! 2. in order: sequence continuity, links, keys (genesis, rotations);
//! 3. on all cores, signatures: Ed25519 batch verification per chunk as the fast path, and strict
//!    per-entry verification of a chunk that fails, to name the first bad entry.
//!
//! The first invalid entry wins; everything after it is not examined.

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;

use crate::entry::{Entry, FORMAT, KIND_INITIALIZED, KIND_KEY_ROTATED};
use crate::hash::{self, Digest};
use crate::json::{self, Numbers};
use crate::keys::{self, ALGORITHM, LedgerPublicKey, PublicKeyInfo, signature_from_hex};

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
    /// Verify every signature on its own instead of in batches (slower; same result for every ledger
    /// this project writes).
    pub strict_signatures: bool,
    /// When known (an export bundle's header), the head the entries must reach.
    pub expected_head: Option<(u64, Digest)>,
}

/// Signatures are batch-verified in chunks of this many (larger batches cost less per signature;
/// 256 measured about 10% faster than 64, and more gained nothing).
const SIGNATURE_CHUNK: usize = 256;

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

        let signature_failure = first_bad_signature(&jobs, self.options.strict_signatures);
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

    /// Decides which key must have signed `entry`, following the genesis and rotation entries seen so
    /// far (including those earlier in this batch, held in `added`).
    fn check_key(
        &self,
        entry: &Entry,
        active: &mut Option<usize>,
        added: &mut Vec<(u64, LedgerPublicKey)>,
    ) -> Result<VerifyingKey, (Reason, String)> {
        let known = |key_id: &str| -> Option<(usize, LedgerPublicKey)> {
            self.keys
                .iter()
                .map(|k| (k.report.introduced_seq, k.key.clone()))
                .chain(added.iter().cloned())
                .enumerate()
                .find(|(_, (_, k))| k.key_id == key_id)
                .map(|(i, (_, k))| (i, k))
        };
        let key_entry_error = |message: String| (Reason::InvalidKeyEntry, message);

        if entry.seq == 1 {
            if entry.kind != KIND_INITIALIZED {
                return Err(key_entry_error(format!(
                    "entry 1 must be {KIND_INITIALIZED:?} (it introduces the first signing key), not {:?}",
                    entry.kind
                )));
            }
            let key = introduced_key(entry).map_err(key_entry_error)?;
            if !self.options.trusted_genesis_keys.is_empty() && !self.options.trusted_genesis_keys.contains(&key) {
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
            added.push((1, key.clone()));
            *active = Some(self.keys.len() + added.len() - 1);
            return Ok(key.key);
        }
        if entry.kind == KIND_INITIALIZED {
            return Err(key_entry_error(format!(
                "a second {KIND_INITIALIZED:?} entry at seq {}",
                entry.seq
            )));
        }
        let Some((index, key)) = known(&entry.key_id) else {
            return Err((
                Reason::UnknownKey,
                format!("key {} was never introduced by the chain", entry.key_id),
            ));
        };
        if Some(index) != *active {
            let active_id = active
                .and_then(|a| known_by_index(&self.keys, added, a))
                .map_or_else(|| "none".to_string(), |k| k.key_id);
            return Err((
                Reason::KeyNotActive,
                format!(
                    "signed with {} but the active key at this point is {active_id}",
                    entry.key_id
                ),
            ));
        }
        if entry.kind == KIND_KEY_ROTATED {
            let next = introduced_key(entry).map_err(key_entry_error)?;
            let previous = entry
                .payload_value()
                .ok()
                .and_then(|p| p.get("previous_key_id").and_then(|v| v.as_str()).map(str::to_string));
            if previous.as_deref() != Some(entry.key_id.as_str()) {
                return Err(key_entry_error(format!(
                    "a rotation must name the key that signs it ({}) as previous_key_id",
                    entry.key_id
                )));
            }
            if known(&next.key_id).is_some() {
                return Err(key_entry_error(format!("key {} was already introduced", next.key_id)));
            }
            let proven = entry
                .payload_value()
                .ok()
                .and_then(|p| {
                    p.get("proof")
                        .and_then(|v| v.as_str())
                        .and_then(keys::signature_from_hex)
                })
                .zip(entry.prev_chain_hash.parse::<Digest>().ok())
                .is_some_and(|(proof, prev)| next.verify_key_proof(&prev, &proof));
            if !proven {
                return Err(key_entry_error(format!(
                    "the rotation does not prove possession of the new key {}: its proof is missing or does not verify",
                    next.key_id
                )));
            }
            added.push((entry.seq, next));
            *active = Some(self.keys.len() + added.len() - 1);
        }
        Ok(key.key)
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

fn known_by_index(keys: &[KeyState], added: &[(u64, LedgerPublicKey)], index: usize) -> Option<LedgerPublicKey> {
    keys.iter()
        .map(|k| k.key.clone())
        .chain(added.iter().map(|(_, k)| k.clone()))
        .nth(index)
}

/// The key a genesis or rotation entry introduces, checked against its stated key id.
fn introduced_key(entry: &Entry) -> Result<LedgerPublicKey, String> {
    let payload = entry.payload_value().map_err(|e| format!("{}: {e}", entry.kind))?;
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str());
    if entry.kind == KIND_INITIALIZED && field("format") != Some(FORMAT) {
        return Err(format!("{}: format must be {FORMAT:?}", entry.kind));
    }
    if field("algorithm") != Some(ALGORITHM) {
        return Err(format!("{}: algorithm must be {ALGORITHM:?}", entry.kind));
    }
    let key = LedgerPublicKey::from_hex(field("public_key").unwrap_or_default())
        .map_err(|e| format!("{}: {e}", entry.kind))?;
    if field("key_id") != Some(key.key_id.as_str()) {
        return Err(format!(
            "{}: key_id does not match the public key (expected {})",
            entry.kind, key.key_id
        ));
    }
    Ok(key)
}

/// Step 1: the checks one entry needs nothing else for.
fn check_alone(entry: &Entry) -> Result<Local, (Reason, String)> {
    let malformed = |message: String| (Reason::Malformed, message);
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

/// Step 3: the index (into the batch) of the first entry whose signature fails, if any.
fn first_bad_signature(jobs: &[SignatureJob], strict: bool) -> Option<usize> {
    let strict_check = |job: &SignatureJob| job.key.verify_strict(&job.message, &job.signature).is_ok();
    jobs.par_chunks(SIGNATURE_CHUNK)
        .filter_map(|chunk| {
            if !strict {
                let messages: Vec<&[u8]> = chunk.iter().map(|j| j.message.as_slice()).collect();
                let signatures: Vec<Signature> = chunk.iter().map(|j| j.signature).collect();
                let keys: Vec<VerifyingKey> = chunk.iter().map(|j| j.key).collect();
                if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                    return None;
                }
            }
            // Fall back to strict, one at a time, to find which entry failed.
            chunk.iter().find(|job| !strict_check(job)).map(|job| job.index)
        })
        .min()
}

/// Convenience for tests and small ledgers: verifies a whole slice.
pub fn verify_entries(entries: &[Entry], options: VerifyOptions) -> VerifyReport {
    let mut verifier = Verifier::new(options);
    verifier.check(entries);
    verifier.finish()
}
