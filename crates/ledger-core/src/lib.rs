//! The DocketOps ledger format: RFC 8785 canonical JSON, SHA-256 event and chain hashes, Ed25519
//! signatures, and a streaming verifier. The byte-level rules are in `docs/ledger-format.md`.
//!
//! Architecture invariant: this crate does no I/O, has no async code and knows nothing of databases,
//! HTTP or Kubernetes. Everything here is a pure function of its inputs (plus the clock and the OS
//! random source where an entry id, timestamp or key is made), so the offline verifier can depend on
//! it alone.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod activity;
pub mod bundle;
pub mod chain;
pub mod entry;
pub mod hash;
pub mod json;
pub mod keys;
pub mod tlog;
pub mod trust;
pub mod verify;

pub use chain::{ChainHead, seal};
pub use entry::{Entry, EntryError, EntryParseError, NewEvent, PreparedEvent};
pub use hash::Digest;
pub use keys::{LedgerPublicKey, LedgerSigningKey, PublicKeyInfo};
pub use verify::{Invalid, Reason, Verifier, VerifyOptions, VerifyReport};
