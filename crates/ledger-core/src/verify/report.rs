//! What a verification tells its caller: the first invalid entry and why, the head reached and the keys
//! the chain introduced. These shapes are the API's (`GET /api/v1/ledger/verify`) and the CLI's output.

use serde::Serialize;

use crate::hash::Digest;
use crate::keys::PublicKeyInfo;

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
    /// Where the ledger stops being valid: the seq of the entry that fails a check, or the place of one
    /// that is missing, unreadable, cut off or beyond the bundle's announced head (1 when the required key
    /// is never introduced).
    pub seq: u64,
    /// The invalid entry's id; None when the failure is not one read entry's own (a missing or unreadable
    /// entry, a bundle head that does not match, a required key the chain never introduces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// What is wrong, as a stable code.
    pub reason: Reason,
    /// What was found, in a sentence for people.
    pub message: String,
}

/// The last entry that verified: where the valid part of the ledger ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadReport {
    /// The last verified entry's seq.
    pub seq: u64,
    /// The last verified entry's chain hash.
    pub chain_hash: Digest,
}

/// A signing key as the chain introduced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    /// The key's id, algorithm and public key (members of this object in JSON).
    #[serde(flatten)]
    pub info: PublicKeyInfo,
    /// The seq of the genesis or rotation entry that introduced the key.
    pub introduced_seq: u64,
    /// The seq of the rotation entry that handed over to the next key; None while the key is active.
    pub retired_seq: Option<u64>,
    /// How many verified entries the key signed (a rotation entry counts for the outgoing key).
    pub entries_signed: u64,
}

/// The outcome of a verification, in the shape of `GET /api/v1/ledger/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when every entry verified and the end-of-ledger checks (expected head, required key) passed.
    pub valid: bool,
    /// How many entries verified, from seq 1 up to the first invalid one.
    pub entries_checked: u64,
    /// The last entry that verified; None if none did.
    pub head: Option<HeadReport>,
    /// The first invalid entry and why; None for a valid ledger.
    pub first_invalid: Option<Invalid>,
    /// The keys the verified entries introduced, in chain order.
    pub keys: Vec<KeyReport>,
}
