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

use crate::entry::{Entry, MAX_PAYLOAD_BYTES};
use crate::hash::{self, Digest};
use crate::json::{self, Numbers};
use crate::keys::{self, LedgerPublicKey, signature_from_hex};

mod key_history;
mod report;

pub use report::{HeadReport, Invalid, KeyReport, Reason, VerifyReport};

/// What a verification requires beyond the chain's own consistency. The default pins no key and expects no
/// particular head.
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

/// Verifies a ledger as a stream: feed its entries in order to [`check`](Self::check), then call
/// [`finish`](Self::finish) for the report.
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

/// What step 2 carries from one entry of a batch to the next.
struct OrderedPass {
    /// The chain hash the next entry must link to.
    prev: Digest,
    /// The active key, as an index into the committed keys followed by `keys_after`.
    active: Option<usize>,
    /// Keys this batch introduces, with the seq of the entry that introduces each. They are kept apart
    /// from the committed history so that a bad signature found in step 3, before a rotation seen here,
    /// leaves the key history as it was at that entry.
    keys_after: Vec<(u64, LedgerPublicKey)>,
    /// Step 3's work: one signature per entry that passed step 2.
    jobs: Vec<SignatureJob>,
}

/// A failure and the index, in its batch, of the entry it concerns.
type Failure = (usize, Invalid);

impl Verifier {
    /// A verifier that expects entry 1 next.
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

    /// How many entries have verified so far (all of them before the first invalid one).
    pub fn entries_checked(&self) -> u64 {
        self.entries_checked
    }

    /// Whether an invalid or unreadable entry has been found; later batches are then ignored.
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
        // The steps of the module documentation; only the second needs the entries one after another.
        let locals: Vec<Result<Local, (Reason, String)>> = batch.par_iter().map(check_alone).collect();
        let (pass, ordered_failure) = self.check_in_order(batch, &locals);
        let signature_failure = first_bad_signature(&pass.jobs).map(|index| (index, bad_signature(&batch[index])));
        let failure = earliest(ordered_failure, signature_failure);
        // The entries before the first failure are good: they count, and their key changes hold.
        let good = failure.as_ref().map_or(batch.len(), |(index, _)| *index);
        self.commit_prefix(batch, good, &pass);
        match failure {
            Some((_, invalid)) => {
                self.first_invalid = Some(invalid);
                false
            }
            None => true,
        }
    }

    /// Step 2: the entries in order, up to the first that fails. Returns what the entries before it
    /// established, and the failure.
    fn check_in_order(
        &self,
        batch: &[Entry],
        locals: &[Result<Local, (Reason, String)>],
    ) -> (OrderedPass, Option<Failure>) {
        let mut pass = OrderedPass {
            prev: self.prev_chain_hash,
            active: self.active_key,
            keys_after: Vec::new(),
            jobs: Vec::with_capacity(batch.len()),
        };
        for (index, (entry, local)) in batch.iter().zip(locals).enumerate() {
            if let Err(invalid) = self.check_next(&mut pass, index, entry, local) {
                return (pass, Some((index, invalid)));
            }
        }
        (pass, None)
    }

    /// Step 2 for the entry at `index` in its batch: its place in the sequence, what step 1 found, its
    /// link, its chain hash and its key. When all hold, its signature is queued for step 3.
    fn check_next(
        &self,
        pass: &mut OrderedPass,
        index: usize,
        entry: &Entry,
        local: &Result<Local, (Reason, String)>,
    ) -> Result<(), Invalid> {
        check_sequence(entry, self.next_seq + index as u64)?;
        let at_entry = |(reason, message)| invalid_at(entry, reason, message);
        let local = local
            .as_ref()
            .map_err(|(reason, message)| invalid_at(entry, *reason, message.clone()))?;
        check_link(entry, local, &pass.prev).map_err(at_entry)?;
        let key = self
            .check_key(entry, &mut pass.active, &mut pass.keys_after)
            .map_err(at_entry)?;
        pass.jobs.push(SignatureJob {
            index,
            message: keys::signature_message(&entry.key_id, &local.chain),
            key,
            signature: local.signature,
        });
        pass.prev = local.chain;
        Ok(())
    }

    /// Commits what the batch's first `good` entries established: signature counts, the keys they
    /// introduce, and the link the next batch continues from.
    fn commit_prefix(&mut self, batch: &[Entry], good: usize, pass: &OrderedPass) {
        for job in pass.jobs.iter().take_while(|job| job.index < good) {
            // Keys new in this batch are counted when they are added, just below.
            if let Some(key) = self
                .keys
                .iter_mut()
                .find(|k| k.key.key.as_bytes() == job.key.as_bytes())
            {
                key.report.entries_signed += 1;
            }
        }
        self.apply_key_changes(batch, good, &pass.keys_after, &pass.jobs);
        if good > 0 {
            let last = &batch[good - 1];
            self.next_seq = last.seq + 1;
            self.prev_chain_hash = last.chain_hash.parse().unwrap_or(Digest::GENESIS);
        }
        self.entries_checked += good as u64;
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
}

/// An entry's place in the sequence: a seq past the expected one means entries were removed, one before
/// it that entries were reordered or repeated.
fn check_sequence(entry: &Entry, expected: u64) -> Result<(), Invalid> {
    if entry.seq == expected {
        return Ok(());
    }
    if entry.seq > expected {
        return Err(Invalid {
            seq: expected,
            entry_id: None,
            reason: Reason::EntryMissing,
            message: format!(
                "entry {expected} is missing: seq {} is followed by seq {}",
                expected - 1,
                entry.seq
            ),
        });
    }
    Err(invalid_at(
        entry,
        Reason::OutOfOrder,
        format!(
            "seq {} appears after seq {}: entries out of order or repeated",
            entry.seq,
            expected - 1
        ),
    ))
}

/// The entry's link to the chain hash before it (`prev`), and its own chain hash as step 1 recomputed it.
fn check_link(entry: &Entry, local: &Local, prev: &Digest) -> Result<(), (Reason, String)> {
    if local.prev != *prev {
        return Err((
            Reason::BrokenLink,
            format!(
                "prev_chain_hash {} is not the chain hash of entry {} ({prev}): entries were reordered, or an entry before it was replaced or inserted",
                local.prev,
                entry.seq - 1
            ),
        ));
    }
    if entry.chain_hash != local.chain.to_string() {
        return Err((
            Reason::ChainHashMismatch,
            format!("chain_hash should be {} but is {}", local.chain, entry.chain_hash),
        ));
    }
    Ok(())
}

fn invalid_at(entry: &Entry, reason: Reason, message: String) -> Invalid {
    Invalid {
        seq: entry.seq,
        entry_id: Some(entry.id.clone()),
        reason,
        message,
    }
}

fn bad_signature(entry: &Entry) -> Invalid {
    invalid_at(
        entry,
        Reason::BadSignature,
        format!(
            "the signature does not verify with key {}: it was replaced, forged or made with another key",
            entry.key_id
        ),
    )
}

/// Of step 2's failure and step 3's, the one that comes first in the batch: entries after it were
/// never meant to be judged.
fn earliest(ordered: Option<Failure>, signature: Option<Failure>) -> Option<Failure> {
    match (signature, ordered) {
        (Some(signature), Some(ordered)) if ordered.0 < signature.0 => Some(ordered),
        (Some(signature), _) => Some(signature),
        (None, ordered) => ordered,
    }
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
