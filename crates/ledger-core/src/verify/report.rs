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
