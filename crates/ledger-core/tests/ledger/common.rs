//! Helpers shared by the test modules: deterministic keys, ids and timestamps, chain building, and
//! verification in batches.

use ed25519_dalek::Signer as _;
use ledger_core::chain::head_of;
use ledger_core::keys::{self, signature_to_hex};
use ledger_core::verify::{Reason, verify_entries};
use ledger_core::{
    ChainHead, Digest, Entry, LedgerSigningKey, NewEvent, PreparedEvent, Verifier, VerifyOptions, VerifyReport, seal,
};
use serde_json::json;

pub const ACTOR: &str = "usr_tests";

/// A signing key from a seed of 32 equal bytes.
pub fn key(n: u8) -> LedgerSigningKey {
    LedgerSigningKey::from_seed([n; 32])
}

/// The entry id used for `seq` in these tests: `evt_` + 32 hex digits.
pub fn entry_id(seq: u64) -> String {
    format!("evt_{seq:032x}")
}

/// A timestamp `seq` seconds after 2026-01-01T00:00:00Z, in the crate's format.
pub fn timestamp(seq: u64) -> String {
    let (h, m, s) = (seq / 3600, (seq / 60) % 60, seq % 60);
    assert!(h < 24, "tests stay within one day");
    format!("2026-01-01T{h:02}:{m:02}:{s:02}.000000Z")
}

pub fn prepare(event: NewEvent, seq: u64) -> PreparedEvent {
    PreparedEvent::prepare_with_id(event, entry_id(seq), timestamp(seq)).expect("a valid test event")
}

/// A note whose canonical payload holds the digits `12345` exactly once (at `"amount":12345`).
pub fn note(seq: u64) -> NewEvent {
    NewEvent::new(
        "ledger.note",
        ACTOR,
        json!({"text": format!("note {seq}"), "amount": 12345, "nested": {"ok": true, "list": [1, "two", null]}}),
    )
    .with_action(format!("act_{seq}"))
}

/// The head a chain ends at.
pub fn head(chain: &[Entry]) -> ChainHead {
    chain
        .last()
        .map_or(ChainHead::EMPTY, |e| head_of(e).expect("a sealed entry"))
}

/// Seals `events` after the end of `chain`, signed with `key`, and appends them.
pub fn extend(chain: &mut Vec<Entry>, events: Vec<NewEvent>, key: &LedgerSigningKey) {
    let head = head(chain);
    let prepared = events
        .into_iter()
        .zip(head.seq + 1..)
        .map(|(event, seq)| prepare(event, seq))
        .collect();
    chain.extend(seal(&head, prepared, key));
}

/// Notes for seqs `from..=to`.
pub fn notes(from: u64, to: u64) -> Vec<NewEvent> {
    (from..=to).map(note).collect()
}

/// A genesis entry for `key` followed by `notes` notes, all signed with `key`.
pub fn chain_of(key: &LedgerSigningKey, notes_after_genesis: u64) -> Vec<Entry> {
    let mut chain = Vec::new();
    extend(&mut chain, vec![NewEvent::genesis(&key.public_key(), ACTOR)], key);
    extend(&mut chain, notes(2, notes_after_genesis + 1), key);
    chain
}

/// Signs `entry`'s chain hash with `signer`, but in the name of `key_id` (which is also written into
/// the entry): a re-signature by someone holding the wrong key.
pub fn resign_as(entry: &mut Entry, signer: &LedgerSigningKey, seed: [u8; 32], key_id: &str) {
    let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
    assert_eq!(
        keys::key_id_of(&dalek.verifying_key()),
        signer.key_id(),
        "seed and signer must agree"
    );
    let chain: Digest = entry.chain_hash.parse().expect("a valid chain hash");
    entry.key_id = key_id.to_string();
    entry.signature = signature_to_hex(&dalek.sign(&keys::signature_message(key_id, &chain)));
}

pub fn verify(entries: &[Entry]) -> VerifyReport {
    verify_entries(entries, VerifyOptions::default())
}

/// Feeds `entries` to one verifier `batch` at a time. Batches after a failure are still fed: the
/// verifier must ignore them.
pub fn verify_in_batches(entries: &[Entry], options: VerifyOptions, batch: usize) -> VerifyReport {
    let mut verifier = Verifier::new(options);
    let mut failed = false;
    for chunk in entries.chunks(batch.max(1)) {
        let before = verifier.entries_checked();
        let ok = verifier.check(chunk);
        if failed {
            assert!(!ok, "check after a failure must keep returning false");
            assert_eq!(
                verifier.entries_checked(),
                before,
                "check after a failure must do nothing"
            );
        }
        assert_eq!(ok, !verifier.is_invalid());
        failed |= !ok;
    }
    verifier.finish()
}

pub fn strict() -> VerifyOptions {
    VerifyOptions {
        strict_signatures: true,
        ..VerifyOptions::default()
    }
}

/// Asserts that `report` names `seq` as the first invalid entry for `reason`, with `checked` entries
/// verified before it.
#[track_caller]
pub fn assert_invalid(report: &VerifyReport, seq: u64, reason: Reason, checked: u64) {
    assert!(
        !report.valid,
        "expected invalid at seq {seq} ({reason:?}), got a valid report: {report:#?}"
    );
    let invalid = report
        .first_invalid
        .as_ref()
        .expect("an invalid report names the entry");
    assert_eq!(
        (invalid.seq, invalid.reason),
        (seq, reason),
        "wrong first_invalid: {invalid:#?}"
    );
    assert_eq!(report.entries_checked, checked, "entries_checked");
}

/// Asserts that `report` says valid for a chain ending at `chain`'s last entry.
#[track_caller]
pub fn assert_valid(report: &VerifyReport, chain: &[Entry]) {
    assert!(report.valid, "expected valid, got {:#?}", report.first_invalid);
    assert_eq!(report.first_invalid, None);
    assert_eq!(report.entries_checked, chain.len() as u64);
    let head = report.head.as_ref().expect("a non-empty ledger has a head");
    let last = chain.last().expect("non-empty");
    assert_eq!(head.seq, last.seq);
    assert_eq!(head.chain_hash.to_string(), last.chain_hash);
}
