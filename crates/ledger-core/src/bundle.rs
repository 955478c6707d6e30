//! The export bundle: JSON Lines, a header line then one entry per line (docs/ledger-format.md §5).
//! Reading and writing the file is the caller's business; this module only turns lines into values.

use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::hash::Digest;
use crate::json::{self, Numbers};
use crate::keys::PublicKeyInfo;

pub const BUNDLE_FORMAT: &str = "docketops-ledger-bundle/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHead {
    pub seq: u64,
    pub chain_hash: Digest,
}

/// The first line of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    pub format: String,
    pub created_at: String,
    /// How many entry lines follow.
    pub entries: u64,
    /// The last entry's seq and chain hash, so a cut-short file is noticed.
    pub head: Option<BundleHead>,
    /// The public keys the storage lists. Informational: the verifier takes keys from the chain's own
    /// genesis and rotation entries.
    pub keys: Vec<PublicKeyInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a DocketOps ledger bundle: the first line must be a header with format {BUNDLE_FORMAT:?} ({0})")]
    Header(String),
}

impl BundleHeader {
    pub fn parse(line: &str) -> Result<Self, BundleError> {
        let header: BundleHeader =
            serde_json::from_str(line).map_err(|e| BundleError::Header(e.to_string()))?;
        if header.format != BUNDLE_FORMAT {
            return Err(BundleError::Header(format!("found format {:?}", header.format)));
        }
        if header.entries != header.head.as_ref().map_or(0, |h| h.seq) {
            return Err(BundleError::Header("entries and head.seq disagree".into()));
        }
        Ok(header)
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a header always serializes")
    }
}

/// One entry line (without the newline).
pub fn entry_line(entry: &Entry) -> String {
    serde_json::to_string(entry).expect("an entry always serializes")
}

/// Parses one entry line; duplicate keys, floats and unknown fields are refused.
pub fn parse_entry_line(line: &str) -> Result<Entry, String> {
    let value = json::parse(line, Numbers::SafeIntegers).map_err(|e| e.to_string())?;
    Entry::from_json(value)
}
