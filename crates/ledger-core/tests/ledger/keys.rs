//! Key rotation: the outgoing key signs the rotation entry, the incoming key everything after it.

use ledger_core::verify::{KeyReport, Reason};
use ledger_core::{Entry, LedgerSigningKey, NewEvent, VerifyOptions};
use serde_json::json;

use crate::common::*;

/// A rotation from `from` to `to`, to be sealed right after `chain`'s last entry.
fn rotation(chain: &[Entry], from: &LedgerSigningKey, to: &LedgerSigningKey) -> NewEvent {
    NewEvent::key_rotation(from.key_id(), to, &head(chain).chain_hash, "usr_admin")
}

/// Genesis with k1, notes 2..=5 (k1), rotation to k2 at 6 (signed by k1), notes 7..=10 (k2), rotation to
/// k3 at 11 (signed by k2), notes 12..=14 (k3).
fn rotated_chain() -> (Vec<Entry>, [LedgerSigningKey; 3]) {
    let [k1, k2, k3] = [key(1), key(2), key(3)];
    let mut chain = chain_of(&k1, 4);
    let r = rotation(&chain, &k1, &k2);
    extend(&mut chain, vec![r], &k1);
    extend(&mut chain, notes(7, 10), &k2);
    let r = rotation(&chain, &k2, &k3);
    extend(&mut chain, vec![r], &k2);
    extend(&mut chain, notes(12, 14), &k3);
    (chain, [k1, k2, k3])
}

#[test]
fn rotation_entries_have_the_documented_payload() {
    let (chain, [k1, k2, _]) = rotated_chain();
    assert_eq!(chain[5].kind, "ledger.key_rotated");
    assert_eq!(chain[5].key_id, k1.key_id());
    assert_eq!(
        chain[5].payload_value().unwrap(),
        json!({
            "algorithm": "ed25519",
            "key_id": k2.key_id(),
            "previous_key_id": k1.key_id(),
            "public_key": k2.public_key().hex(),
            "proof": ledger_core::keys::signature_to_hex(&k2.sign_key_proof(&chain[4].chain_hash.parse().unwrap())),
        })
    );
    assert_eq!(chain[6].key_id, k2.key_id());
}

#[test]
fn a_rotated_chain_verifies_and_reports_every_key() {
    let (chain, [k1, k2, k3]) = rotated_chain();
    let report = verify(&chain);
    assert_valid(&report, &chain);
    assert_eq!(
        report.keys,
        vec![
            // Genesis, notes 2..=5 and the rotation at 6.
            KeyReport {
                info: k1.public_key().info(),
                introduced_seq: 1,
                retired_seq: Some(6),
                entries_signed: 6
            },
            // Notes 7..=10 and the rotation at 11.
            KeyReport {
                info: k2.public_key().info(),
                introduced_seq: 6,
                retired_seq: Some(11),
                entries_signed: 5
            },
            KeyReport {
                info: k3.public_key().info(),
                introduced_seq: 11,
                retired_seq: None,
                entries_signed: 3
            },
        ]
    );
    // The key history comes out the same however the entries are fed.
    for batch in [1, 2, 5, 6, 7, 11, 1000] {
        for options in [VerifyOptions::default(), strict()] {
            assert_eq!(verify_in_batches(&chain, options, batch), report, "batch {batch}");
        }
    }
}

#[test]
fn a_rotation_as_the_last_entry_introduces_a_key_that_has_signed_nothing_yet() {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 2);
    let r = rotation(&chain, &k1, &k2);
    extend(&mut chain, vec![r], &k1);
    let report = verify(&chain);
    assert_valid(&report, &chain);
    assert_eq!(report.keys[0].retired_seq, Some(4));
    assert_eq!(report.keys[0].entries_signed, 4);
    assert_eq!((report.keys[1].introduced_seq, report.keys[1].entries_signed), (4, 0));
}

#[test]
fn the_old_key_after_a_rotation_is_not_active() {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 4);
    let r = rotation(&chain, &k1, &k2);
    extend(&mut chain, vec![r], &k1);
    extend(&mut chain, notes(7, 8), &k2);
    extend(&mut chain, notes(9, 9), &k1);
    let report = verify(&chain);
    assert_invalid(&report, 9, Reason::KeyNotActive, 8);
    // The key history is reported as far as it verified.
    assert_eq!(report.keys.len(), 2);
    assert_eq!(report.keys[1].entries_signed, 2);
    for batch in [1, 3, 1000] {
        assert_eq!(verify_in_batches(&chain, strict(), batch), report);
    }
}

#[test]
fn the_new_key_cannot_sign_its_own_rotation() {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 4);
    let r = rotation(&chain, &k1, &k2);
    extend(&mut chain, vec![r], &k2);
    assert_invalid(&verify(&chain), 6, Reason::UnknownKey, 5);
}

#[test]
fn a_rotation_must_name_its_signer_as_the_previous_key() {
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let mut chain = chain_of(&k1, 4);
    let rotation = NewEvent::key_rotation(k3.key_id(), &k2, &head(&chain).chain_hash, "usr_admin");
    extend(&mut chain, vec![rotation], &k1);
    extend(&mut chain, notes(7, 8), &k2);
    assert_invalid(&verify(&chain), 6, Reason::InvalidKeyEntry, 5);
}

#[test]
fn a_rotation_to_an_already_introduced_key_is_refused() {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 2);
    let r = rotation(&chain, &k1, &k2);
    extend(&mut chain, vec![r], &k1);
    let r = rotation(&chain, &k2, &k1);
    extend(&mut chain, vec![r], &k2);
    assert_invalid(&verify(&chain), 5, Reason::InvalidKeyEntry, 4);
    // Rotating to itself is refused the same way.
    let mut chain = chain_of(&k1, 2);
    let r = rotation(&chain, &k1, &k1);
    extend(&mut chain, vec![r], &k1);
    assert_invalid(&verify(&chain), 4, Reason::InvalidKeyEntry, 3);
}

#[test]
fn a_rotation_whose_key_id_does_not_match_its_public_key_is_refused() {
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let mut chain = chain_of(&k1, 2);
    let mut event = rotation(&chain, &k1, &k2);
    event.payload["key_id"] = k3.key_id().into();
    extend(&mut chain, vec![event], &k1);
    assert_invalid(&verify(&chain), 4, Reason::InvalidKeyEntry, 3);
}

#[test]
fn a_bad_signature_before_a_rotation_in_the_same_batch_leaves_the_key_history_unchanged() {
    let (mut chain, [k1, ..]) = rotated_chain();
    chain[3].signature = chain[2].signature.clone();
    let report = verify(&chain);
    assert_invalid(&report, 4, Reason::BadSignature, 3);
    assert_eq!(
        report.keys,
        vec![KeyReport {
            info: k1.public_key().info(),
            introduced_seq: 1,
            retired_seq: None,
            entries_signed: 3
        }]
    );
    for batch in [1, 4, 7, 1000] {
        assert_eq!(
            verify_in_batches(&chain, VerifyOptions::default(), batch),
            report,
            "batch {batch}"
        );
    }
}

#[test]
fn a_bad_rotation_signature_does_not_introduce_the_new_key() {
    let (mut chain, [k1, ..]) = rotated_chain();
    chain[5].signature = chain[4].signature.clone();
    let report = verify(&chain);
    assert_invalid(&report, 6, Reason::BadSignature, 5);
    assert_eq!(report.keys.len(), 1);
    assert_eq!(report.keys[0].info.key_id, k1.key_id());
    assert_eq!((report.keys[0].retired_seq, report.keys[0].entries_signed), (None, 5));
    for batch in [1, 6, 1000] {
        assert_eq!(verify_in_batches(&chain, strict(), batch), report, "batch {batch}");
    }
}
