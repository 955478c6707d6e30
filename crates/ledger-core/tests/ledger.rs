//! The ledger-core integration tests: sealing and verifying chains, every kind of tampering, key
//! rotation, verifier options, streaming in batches, property tests, export bundle lines, the
//! published test vectors (`tests/data/vectors.json`, copied into `docs/ledger-format.md`), signatures
//! and keys crafted by a key holder, and the format's limits and bundle reading rules.
//!
//! Everything goes through the crate's public API (`ledger_core::…`); the vector test also recomputes
//! every hash and signature with raw `sha2` and `ed25519_dalek` calls.

#[path = "ledger/common.rs"]
mod common;

#[path = "ledger/sealing.rs"]
mod sealing;

#[path = "ledger/tamper.rs"]
mod tamper;

#[path = "ledger/keys.rs"]
mod keys;

#[path = "ledger/options.rs"]
mod options;

#[path = "ledger/streaming.rs"]
mod streaming;

#[path = "ledger/props.rs"]
mod props;

#[path = "ledger/bundle.rs"]
mod bundle;

#[path = "ledger/vectors.rs"]
mod vectors;

#[path = "ledger/signatures.rs"]
mod signatures;

#[path = "ledger/limits.rs"]
mod limits;

#[path = "ledger/tlog_vectors.rs"]
mod tlog_vectors;
