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
    let rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head(&chain).chain_hash, ACTOR);
    extend(&mut chain, vec![rotation], &k1);
    extend(&mut chain, notes(5, 6), &k2);
    assert_valid(&verify_entries(&chain, trusting(&[1])), &chain);
    // Pinning the later key is not enough: the genesis key is what is pinned.
    assert_invalid(&verify_entries(&chain, trusting(&[2])), 1, Reason::UntrustedKey, 0);
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
    let rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head(&chain).chain_hash, ACTOR);
    extend(&mut chain, vec![rotation], &k1);
    extend(&mut chain, notes(5, 6), &k2);
    let options = VerifyOptions {
        required_key: Some(k2.public_key()),
        ..Default::default()
    };
    assert_valid(&verify_entries(&chain, options), &chain);
}

/// An attacker without the gateway's private key rewrites the ledger under their own key and ends it
/// with a rotation that introduces the gateway's public key (which anyone can copy). The rotation
/// cannot carry a valid proof of possession (docs/ledger-format.md §4.5), so it is refused.
#[test]
fn a_rewritten_chain_ending_in_a_rotation_to_the_gateway_key_fails() {
    let (gateway, attacker) = (key(1), key(9));
    let mut forged = chain_of(&attacker, 6);
    let info = gateway.public_key().info();
    let prev = head(&forged).chain_hash;
    // The best the attacker can do: a proof made with a key they hold, or none at all.
    for proof in [
        Some(ledger_core::keys::signature_to_hex(&attacker.sign_key_proof(&prev))),
        None,
    ] {
        let mut payload = serde_json::json!({
            "previous_key_id": attacker.key_id(), "key_id": info.key_id,
            "algorithm": info.algorithm, "public_key": info.public_key,
        });
        if let Some(proof) = proof {
            payload["proof"] = proof.into();
        }
        let mut chain = forged.clone();
        extend(
            &mut chain,
            vec![NewEvent::new("ledger.key_rotated", ACTOR, payload)],
            &attacker,
        );
        let options = VerifyOptions {
            required_key: Some(gateway.public_key()),
            ..Default::default()
        };
        assert_invalid(&verify_entries(&chain, options), 8, Reason::InvalidKeyEntry, 7);
    }
    // With the gateway's own proof (which only its holder can make) the rotation is accepted.
    let rotation = NewEvent::key_rotation(attacker.key_id(), &gateway, &prev, ACTOR);
    extend(&mut forged, vec![rotation], &attacker);
    assert_valid(
        &verify_entries(
            &forged,
            VerifyOptions {
                required_key: Some(gateway.public_key()),
                ..Default::default()
            },
        ),
        &forged,
    );
}

#[test]
fn an_expected_head_detects_truncation() {
    let chain = chain_of(&key(1), 9);
    let head = |seq: usize| -> (u64, Digest) { (seq as u64, chain[seq - 1].chain_hash.parse().unwrap()) };
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
    // More entries than announced: the first entry past the announced head.
    assert_invalid(&verify_entries(&chain, expecting(7)), 8, Reason::HeadMismatch, 10);
    // The right length but another head: a different ledger, reported at the announced head.
    let mut wrong_hash = head(10);
    wrong_hash.1 = Digest::of(b"another ledger");
    let options = VerifyOptions {
        expected_head: Some(wrong_hash),
        ..Default::default()
    };
    assert_invalid(&verify_entries(&chain, options), 10, Reason::HeadMismatch, 10);
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
    assert_invalid(&verify_entries(&chain[..6], options), 4, Reason::PayloadChanged, 3);
}
