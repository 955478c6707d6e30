//! `VerifyOptions`: pinned genesis keys, the gateway's required key and the expected head.

use ledger_core::verify::{Reason, verify_entries};
use ledger_core::{Digest, NewEvent, VerifyOptions};

use crate::common::*;

fn trusting(keys: &[u8]) -> VerifyOptions {
    VerifyOptions {
        trusted_genesis_keys: keys.iter().map(|&n| key(n).public_key()).collect(),
        ..Default::default()
    }
}

#[test]
fn a_pinned_genesis_key_must_match() {
    let chain = chain_of(&key(1), 5);
    assert_valid(&verify_entries(&chain, trusting(&[1])), &chain);
    assert_valid(&verify_entries(&chain, trusting(&[2, 1])), &chain);
    let report = verify_entries(&chain, trusting(&[2]));
    assert_invalid(&report, 1, Reason::UntrustedKey, 0);
    assert_eq!(report.keys, vec![]);
    assert_eq!(report.head, None);
    for batch in [1, 1000] {
        let options = VerifyOptions {
            strict_signatures: true,
            ..trusting(&[2, 3])
        };
        assert_eq!(verify_in_batches(&chain, options, batch), report);
    }
}

#[test]
fn a_pinned_key_still_allows_its_rotations() {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 2);
    extend(
        &mut chain,
        vec![NewEvent::key_rotation(k1.key_id(), &k2.public_key(), ACTOR)],
        &k1,
    );
    extend(&mut chain, notes(5, 6), &k2);
    assert_valid(&verify_entries(&chain, trusting(&[1])), &chain);
    // Pinning the later key is not enough: the genesis key is what is pinned.
    assert_invalid(
        &verify_entries(&chain, trusting(&[2])),
        1,
        Reason::UntrustedKey,
        0,
    );
}

#[test]
fn a_chain_rewritten_under_another_key_fails_the_required_key() {
    let (gateway, attacker) = (key(1), key(9));
    let honest = chain_of(&gateway, 6);
    let required = |n: u8| VerifyOptions {
        required_key: Some(key(n).public_key()),
        ..Default::default()
    };
    assert_valid(&verify_entries(&honest, required(1)), &honest);

    // Internally consistent, so valid on its own, but not the gateway's ledger.
    let rewritten = chain_of(&attacker, 6);
    assert_valid(&verify(&rewritten), &rewritten);
    let report = verify_entries(&rewritten, required(1));
    assert_invalid(&report, 1, Reason::UntrustedKey, 7);
    assert_eq!(report.head.as_ref().map(|h| h.seq), Some(7));
    for batch in [1, 3, 1000] {
        assert_eq!(verify_in_batches(&rewritten, required(1), batch), report);
    }
    // A ledger with no entries has nothing to check the key against.
    assert!(verify_entries(&[], required(1)).valid);
}

#[test]
fn the_required_key_may_be_a_rotated_in_key() {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 2);
    extend(
        &mut chain,
        vec![NewEvent::key_rotation(k1.key_id(), &k2.public_key(), ACTOR)],
        &k1,
    );
    extend(&mut chain, notes(5, 6), &k2);
    let options = VerifyOptions {
        required_key: Some(k2.public_key()),
        ..Default::default()
    };
    assert_valid(&verify_entries(&chain, options), &chain);
}

/// An attacker without the gateway's private key rewrites the ledger under their own key and ends it
/// with a rotation that introduces the gateway's public key (which anyone can copy). No entry needs
/// the gateway's private key, yet `required_key` only asks that the key appear in the chain.
/// Ignored until the verifier requires more (see the report of the test author); run with
/// `cargo test -p docketops-ledger-core -- --ignored` to see it fail.
#[test]
#[ignore = "known gap: required_key is satisfied by a dangling rotation to the gateway's public key"]
fn a_rewritten_chain_ending_in_a_rotation_to_the_gateway_key_fails_the_required_key() {
    let (gateway, attacker) = (key(1), key(9));
    let mut forged = chain_of(&attacker, 6);
    extend(
        &mut forged,
        vec![NewEvent::key_rotation(
            attacker.key_id(),
            &gateway.public_key(),
            ACTOR,
        )],
        &attacker,
    );
    let options = VerifyOptions {
        required_key: Some(gateway.public_key()),
        ..Default::default()
    };
    let report = verify_entries(&forged, options);
    assert!(
        !report.valid,
        "a ledger the gateway never signed must not satisfy required_key"
    );
}

#[test]
fn an_expected_head_detects_truncation() {
    let chain = chain_of(&key(1), 9);
    let head =
        |seq: usize| -> (u64, Digest) { (seq as u64, chain[seq - 1].chain_hash.parse().unwrap()) };
    let expecting = |seq: usize| VerifyOptions {
        expected_head: Some(head(seq)),
        ..Default::default()
    };

    assert_valid(&verify_entries(&chain, expecting(10)), &chain);

    let truncated = &chain[..7];
    let report = verify_entries(truncated, expecting(10));
    assert_invalid(&report, 8, Reason::Truncated, 7);
    assert_eq!(report.head.as_ref().map(|h| h.seq), Some(7));
    for batch in [1, 7, 1000] {
        let options = VerifyOptions {
            strict_signatures: true,
            ..expecting(10)
        };
        assert_eq!(verify_in_batches(truncated, options, batch), report);
    }
    // Every entry gone.
    assert_invalid(&verify_entries(&[], expecting(10)), 1, Reason::Truncated, 0);
    // More entries than announced are refused as well (reported with the same reason).
    assert_invalid(
        &verify_entries(&chain, expecting(7)),
        11,
        Reason::Truncated,
        10,
    );
    // The right length but another head: a different ledger (reported with the same reason).
    let mut wrong_hash = head(10);
    wrong_hash.1 = Digest::of(b"another ledger");
    let options = VerifyOptions {
        expected_head: Some(wrong_hash),
        ..Default::default()
    };
    assert_invalid(&verify_entries(&chain, options), 11, Reason::Truncated, 10);
}

#[test]
fn an_earlier_invalid_entry_wins_over_truncation_and_the_required_key() {
    let mut chain = chain_of(&key(1), 9);
    chain[3].payload = chain[3].payload.replace("12345", "54321");
    let options = VerifyOptions {
        expected_head: Some((10, chain[9].chain_hash.parse().unwrap())),
        required_key: Some(key(2).public_key()),
        ..Default::default()
    };
    assert_invalid(
        &verify_entries(&chain[..6], options),
        4,
        Reason::PayloadChanged,
        3,
    );
}
