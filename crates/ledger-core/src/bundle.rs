//! The export bundle: JSON Lines, a header line then one entry per line (docs/ledger-format.md §5).
//! Reading and writing the file is the caller's business; this module only turns lines into values.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::entry::{Entry, EntryParseError};
use crate::hash::Digest;
use crate::keys::PublicKeyInfo;

/// The header's `format`: the one bundle format this release reads and writes.
pub const BUNDLE_FORMAT: &str = "docketops-ledger-bundle/v1";

/// The last entry of the bundled ledger, as the header announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHead {
    /// The last entry's seq (at least 1).
    pub seq: u64,
    /// The last entry's chain hash.
    pub chain_hash: Digest,
}

/// The first line of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    /// Must be [`BUNDLE_FORMAT`].
    pub format: String,
    /// When the bundle was written (DocketOps writes the ledger's timestamp form). Informational: any string is read.
    pub created_at: String,
    /// How many entry lines follow.
    pub entries: u64,
    /// The last entry's seq and chain hash, so a cut-short file is noticed. Required, `null` for an
    /// empty ledger: a header without it does not silently announce an empty ledger.
    #[serde(deserialize_with = "required_nullable")]
    pub head: Option<BundleHead>,
    /// The public keys the storage lists. Informational: the verifier takes keys from the chain's own
    /// genesis and rotation entries.
    pub keys: Vec<PublicKeyInfo>,
}

/// Why a bundle's first line is not accepted as its header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The line is not a header object (not JSON, unknown or missing members), names another format, or
    /// its `entries` and `head` disagree (or `head.seq` is 0); the text says which.
    #[error("not a DocketOps ledger bundle: the first line must be a header with format {BUNDLE_FORMAT:?} ({0})")]
    Header(String),
}

impl BundleHeader {
    /// Parses a header line and checks it: the format is [`BUNDLE_FORMAT`], and `entries` equals `head.seq`
    /// (0 with a null head).
    pub fn parse(line: &str) -> Result<Self, BundleError> {
        let header: BundleHeader = serde_json::from_str(line).map_err(|e| BundleError::Header(e.to_string()))?;
        if header.format != BUNDLE_FORMAT {
            return Err(BundleError::Header(format!("found format {:?}", header.format)));
        }
        if header.head.as_ref().is_some_and(|h| h.seq == 0) {
            return Err(BundleError::Header(
                "head.seq must be at least 1 (an empty ledger's head is null)".into(),
            ));
        }
        if header.entries != header.head.as_ref().map_or(0, |h| h.seq) {
            return Err(BundleError::Header("entries and head.seq disagree".into()));
        }
        Ok(header)
    }

    /// The header as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a header always serializes")
    }
}

/// One entry line (without the newline).
pub fn entry_line(entry: &Entry) -> String {
    serde_json::to_string(entry).expect("an entry always serializes")
}

/// One entry line as written: the payload is kept as the exact text of the line, so the verifier
/// checks that text's canonical form and hash rather than a re-encoding of it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine<'a> {
    seq: u64,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    // Required even though it may be null: a line without it is not an entry line.
    #[serde(borrow, deserialize_with = "required_nullable")]
    action_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(borrow)]
    prev_chain_hash: Cow<'a, str>,
    #[serde(borrow)]
    event_hash: Cow<'a, str>,
    #[serde(borrow)]
    chain_hash: Cow<'a, str>,
    #[serde(borrow)]
    key_id: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
}

/// Parses one entry line. Unknown, missing and repeated fields are refused; the payload's own
/// canonical form, numbers and duplicate keys are the verifier's to check.
pub fn parse_entry_line(line: &str) -> Result<Entry, EntryParseError> {
    // A blank line (also one at the end of the file) is a line like any other, and not an entry.
    if line.trim().is_empty() {
        return Err(EntryParseError::Shape(
            "an empty line: an entry line must be a JSON object (a bundle has no blank lines)".into(),
        ));
    }
    // serde also reads a struct from a JSON array; an entry line is an object, nothing else.
    if !line.trim_start().starts_with('{') {
        return Err(EntryParseError::Shape("an entry line must be a JSON object".into()));
    }
    let line: EntryLine<'_> = serde_json::from_str(line)?;
    Ok(Entry {
        seq: line.seq,
        id: line.id.into_owned(),
        timestamp: line.timestamp.into_owned(),
        kind: line.kind.into_owned(),
        actor: line.actor.into_owned(),
        action_id: line.action_id.map(Cow::into_owned),
        payload: line.payload.get().to_owned(),
        prev_chain_hash: line.prev_chain_hash.into_owned(),
        event_hash: line.event_hash.into_owned(),
        chain_hash: line.chain_hash.into_owned(),
        key_id: line.key_id.into_owned(),
        signature: line.signature.into_owned(),
    })
}

/// With `deserialize_with`, serde no longer treats a missing `Option` member as `None`: it must be
/// present, possibly as `null`.
fn required_nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}
