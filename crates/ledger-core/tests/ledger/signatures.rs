//! Signatures and public keys no RFC 8032 signer makes, crafted by a key holder: every mode and batch
//! size must give the strict result (docs/ledger-format.md §4.1, §4.3, §6.2).
//!
//! The crafting needs Ed25519 arithmetic. These tests do not depend on curve25519-dalek: its `Scalar`
//! and `EdwardsPoint` come from ed25519-dalek (`SigningKey::to_scalar`, `VerifyingKey::to_edwards`)
//! and are used through their operators only.

use std::ops::{Add, Mul};

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use ledger_core::keys::{self, key_id_of, signature_to_hex};
use ledger_core::verify::Reason;
use ledger_core::{Digest, Entry, NewEvent, VerifyOptions};
use serde_json::json;
use sha2::{Digest as _, Sha512};

use crate::common::*;

/// The identity point, a small-order point, in its canonical encoding.
const IDENTITY: [u8; 32] = {
    let mut b = [0; 32];
    b[0] = 1;
    b
};

/// The point (0, -1), of order 2: y = p - 1 = 2^255 - 20.
const ORDER_2: [u8; 32] = {
    let mut b = [0xff; 32];
    b[0] = 0xec;
    b[31] = 0x7f;
    b
};

/// The identity in its two non-canonical encodings: the x sign bit set (x = 0 has no sign), and
/// y = 1 + p (2^255 - 18), which still fits in 255 bits.
fn non_canonical_identities() -> [[u8; 32]; 2] {
    let mut signed_zero = IDENTITY;
    signed_zero[31] = 0x80;
    let mut one_plus_p = ORDER_2;
    one_plus_p[0] = 0xee;
    [signed_zero, one_plus_p]
}

/// `bytes` (little-endian) modulo the group order, in the scalar type of `like`.
fn reduce<S>(_like: &S, bytes: &[u8; 64]) -> S
where
    S: From<u8> + Add<Output = S> + Mul<Output = S> + Copy,
{
    let radix = S::from(16) * S::from(16);
    bytes.iter().rev().fold(S::from(0), |acc, &b| acc * radix + S::from(b))
}

/// Signs `message` as `signer`, but with R = [r]B + T for the small-order point `torsion` (T), where r
/// is `nonce`'s scalar, or 0 (then R is `torsion` itself, in the encoding given): S = r + k·a with
/// k = SHA-512(R ‖ A ‖ message). The cofactorless equation [S]B = R + [k]A is then off by exactly T,
/// which a batch's random coefficient z cancels whenever z·T is the identity.
fn sign_with_torsion(signer: &SigningKey, nonce: Option<&SigningKey>, torsion: &[u8; 32], message: &[u8]) -> Signature {
    let a = signer.to_scalar();
    let (r, r_bytes) = match nonce {
        Some(nonce) => {
            let t = VerifyingKey::from_bytes(torsion).expect("a point").to_edwards();
            let point = nonce.verifying_key().to_edwards() + t;
            (nonce.to_scalar(), VerifyingKey::from(point).to_bytes())
        }
        // r = 0.
        None => (reduce(&a, &[0; 64]), *torsion),
    };
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(signer.verifying_key().as_bytes());
    hash.update(message);
    let k = reduce(&a, &hash.finalize().into());
    let mut bytes = [0; 64];
    bytes[..32].copy_from_slice(&r_bytes);
    bytes[32..].copy_from_slice((r + k * a).as_bytes());
    Signature::from_bytes(&bytes)
}

/// Whether one Ed25519 batch (ed25519-dalek's, as the verifier once used) accepts the signature.
fn batch_accepts(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    ed25519_dalek::verify_batch(&[message], &[*signature], &[*key]).is_ok()
}

fn message_of(entry: &Entry) -> Vec<u8> {
    keys::signature_message(&entry.key_id, &entry.chain_hash.parse::<Digest>().unwrap())
}

/// Every mode and batch size reports `reason` at `seq`, with the same report.
#[track_caller]
fn assert_same_everywhere(chain: &[Entry], seq: u64, reason: Reason) {
    let reference = verify_in_batches(chain, strict(), 1);
    assert_invalid(&reference, seq, reason, seq - 1);
    for batch in [1, 2, 3, 7, 1000] {
        for options in [VerifyOptions::default(), strict()] {
            let strict = options.strict_signatures;
            let report = verify_in_batches(chain, options, batch);
            assert_eq!(report, reference, "batch {batch}, strict {strict}");
        }
    }
}

#[test]
fn a_signature_whose_r_is_of_small_order_is_bad_in_every_mode() {
    let signer = SigningKey::from_bytes(&[1; 32]);
    let mut encodings = vec![IDENTITY];
    encodings.extend(non_canonical_identities());
    for r in encodings {
        let mut chain = chain_of(&key(1), 6);
        let message = message_of(&chain[3]);
        // S = k·a: [S]B = [k]A, so R = identity satisfies the cofactorless equation; only the strict
        // check's refusal of a small-order R tells it apart.
        let signature = sign_with_torsion(&signer, None, &r, &message);
        let public = signer.verifying_key();
        assert!(batch_accepts(&public, &message, &signature), "R = {}", hex::encode(r));
        assert!(public.verify_strict(&message, &signature).is_err());
        chain[3].signature = signature_to_hex(&signature);
        assert_same_everywhere(&chain, 4, Reason::BadSignature);
    }
}

#[test]
fn a_signature_whose_r_has_a_small_order_component_is_bad_in_every_mode() {
    let signer = SigningKey::from_bytes(&[1; 32]);
    let public = signer.verifying_key();
    let mut chain = chain_of(&key(1), 6);
    let message = message_of(&chain[3]);
    // R = [r]B + T with T of order 2: a batch accepts when its coefficient for R is even. The
    // coefficients are derived from the inputs, so a key holder tries nonces until one is.
    let signature = (0..64u8)
        .map(|n| sign_with_torsion(&signer, Some(&SigningKey::from_bytes(&[n; 32])), &ORDER_2, &message))
        .find(|signature| batch_accepts(&public, &message, signature))
        .expect("about one nonce in two passes a one-signature batch");
    let r = VerifyingKey::from_bytes(signature.r_bytes()).unwrap();
    assert!(!r.is_weak(), "R itself is not of small order");
    assert_eq!(
        r.to_edwards().compress().as_bytes(),
        signature.r_bytes(),
        "R is canonical"
    );
    assert!(public.verify_strict(&message, &signature).is_err());
    chain[3].signature = signature_to_hex(&signature);
    assert_same_everywhere(&chain, 4, Reason::BadSignature);
}

#[test]
fn an_honest_signature_with_a_chosen_nonce_verifies() {
    // The crafting above with T = identity is ordinary signing: it is the torsion that is refused.
    let signer = SigningKey::from_bytes(&[1; 32]);
    let mut chain = chain_of(&key(1), 6);
    let message = message_of(&chain[3]);
    let signature = sign_with_torsion(&signer, Some(&SigningKey::from_bytes(&[9; 32])), &IDENTITY, &message);
    chain[3].signature = signature_to_hex(&signature);
    assert_valid(&verify(&chain), &chain);
}

/// A genesis entry (signed by `key(1)`) whose payload names `public_key` under `key_id`, and which
/// claims that key id itself.
fn genesis_naming(public_key: &str, key_id: &str) -> Vec<Entry> {
    let mut genesis = NewEvent::genesis(&key(1).public_key(), ACTOR);
    genesis.payload["public_key"] = public_key.into();
    genesis.payload["key_id"] = key_id.into();
    let mut chain = Vec::new();
    extend(&mut chain, vec![genesis], &key(1));
    extend(&mut chain, notes(2, 3), &key(1));
    chain[0].key_id = key_id.to_string();
    chain
}

/// A chain of `key(1)` whose entry 4 rotates to `public_key` under `key_id`.
fn rotation_naming(public_key: &str, key_id: &str) -> Vec<Entry> {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 2);
    let mut rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head(&chain).chain_hash, ACTOR);
    rotation.payload["public_key"] = public_key.into();
    rotation.payload["key_id"] = key_id.into();
    extend(&mut chain, vec![rotation], &k1);
    chain
}

#[test]
fn a_weak_public_key_is_an_invalid_key_entry() {
    for weak in [IDENTITY, ORDER_2] {
        let point = VerifyingKey::from_bytes(&weak).unwrap();
        assert!(point.is_weak());
        let (hex, id) = (hex::encode(weak), key_id_of(&point));
        assert_same_everywhere(&genesis_naming(&hex, &id), 1, Reason::InvalidKeyEntry);
        assert_same_everywhere(&rotation_naming(&hex, &id), 4, Reason::InvalidKeyEntry);
    }
}

#[test]
fn a_public_key_in_a_non_canonical_encoding_is_an_invalid_key_entry() {
    // y + p for a small y on the curve: a point that is not of small order, written with y >= p.
    let non_canonical = (2u8..=18)
        .map(|y| {
            let mut bytes = ORDER_2;
            bytes[0] = 0xed + y;
            bytes
        })
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_ok_and(|p| !p.is_weak()))
        .expect("some y in 2..=18 is on the curve");
    let point = VerifyingKey::from_bytes(&non_canonical).unwrap();
    let (hex, id) = (hex::encode(non_canonical), key_id_of(&point));
    // Before the canonical check this genesis passed the key checks and failed on its signature.
    assert_same_everywhere(&genesis_naming(&hex, &id), 1, Reason::InvalidKeyEntry);
    assert_same_everywhere(&rotation_naming(&hex, &id), 4, Reason::InvalidKeyEntry);
    // Another non-canonical spelling: a good key in uppercase hex.
    let good = key(2).public_key();
    let upper = good.hex().to_uppercase();
    assert_same_everywhere(&genesis_naming(&upper, &good.key_id), 1, Reason::InvalidKeyEntry);
    assert_same_everywhere(&rotation_naming(&upper, &good.key_id), 4, Reason::InvalidKeyEntry);
    // In lowercase the same rotation is valid (its proof was made by key(2)).
    let lowercase = rotation_naming(&good.hex(), &good.key_id);
    assert_valid(&verify(&lowercase), &lowercase);
}

#[test]
fn genesis_and_rotation_payloads_with_an_extra_member_are_refused() {
    let (k1, k2) = (key(1), key(2));
    let mut genesis = NewEvent::genesis(&k1.public_key(), ACTOR);
    genesis.payload["comment"] = "first key".into();
    let mut chain = Vec::new();
    extend(&mut chain, vec![genesis], &k1);
    extend(&mut chain, notes(2, 3), &k1);
    assert_same_everywhere(&chain, 1, Reason::InvalidKeyEntry);

    let mut chain = chain_of(&k1, 2);
    let mut rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head(&chain).chain_hash, ACTOR);
    rotation.payload["reason"] = json!({"ticket": 12});
    extend(&mut chain, vec![rotation], &k1);
    extend(&mut chain, notes(5, 6), &k2);
    let report = verify(&chain);
    assert_invalid(&report, 4, Reason::InvalidKeyEntry, 3);
    let message = report.first_invalid.unwrap().message;
    assert!(message.contains("unexpected payload member \"reason\""), "{message}");
    // A missing member is refused too.
    let mut chain = chain_of(&k1, 2);
    let mut rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head(&chain).chain_hash, ACTOR);
    rotation.payload.as_object_mut().unwrap().remove("algorithm");
    extend(&mut chain, vec![rotation], &k1);
    assert_invalid(&verify(&chain), 4, Reason::InvalidKeyEntry, 3);
}
