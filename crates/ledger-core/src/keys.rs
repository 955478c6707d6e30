//! Ed25519 signing keys, key ids, the signed message and the keys that genesis and rotation payloads
//! introduce (docs/ledger-format.md §4).

use std::fmt;

use ed25519_dalek::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, EncodePublicKey, KeypairBytes, spki::der::pem::LineEnding,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::entry::{Entry, FORMAT, KIND_INITIALIZED};
use crate::hash::Digest;

/// Domain separation for entry signatures.
pub const SIGNATURE_DOMAIN: &[u8] = b"docketops-ledger/v1/entry-signature\0";

/// Domain separation for a rotated-in key's proof of possession.
pub const KEY_PROOF_DOMAIN: &[u8] = b"docketops-ledger/v1/key-proof\0";

/// The one algorithm the format knows today; the field exists so another can be added.
pub const ALGORITHM: &str = "ed25519";

/// Why a key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is not an Ed25519 private key in PKCS#8 form.
    #[error("not an Ed25519 private key in PKCS#8 PEM form: {0}")]
    BadPrivateKey(String),
    /// The public key text is not exactly 64 lowercase hex digits.
    #[error("not an Ed25519 public key: expected 64 lowercase hex digits")]
    BadPublicKey,
    /// The 32 bytes are not the canonical RFC 8032 encoding of a curve point.
    #[error("not an Ed25519 public key: the 32 bytes are not the canonical RFC 8032 encoding of a curve point")]
    NotAPoint,
    /// The point is of small order: any signature would verify under it.
    #[error("a weak Ed25519 public key: the point is of small order, so any signature would verify under it")]
    WeakPublicKey,
    /// The private key could not be encoded as PKCS#8 PEM.
    #[error("cannot encode the private key: {0}")]
    Encode(String),
}

/// `key_id = "ed25519:" ‖ first 16 hex digits of SHA-256(public key bytes)`.
pub fn key_id_of(public_key: &VerifyingKey) -> String {
    let digest = Digest::of(public_key.as_bytes());
    format!("{ALGORITHM}:{}", &hex::encode(digest.0)[..16])
}

/// `message = SIGNATURE_DOMAIN ‖ key_id (UTF-8) ‖ 0x00 ‖ chain_hash (32 bytes)`.
pub fn signature_message(key_id: &str, chain_hash: &Digest) -> Vec<u8> {
    domain_message(SIGNATURE_DOMAIN, key_id, chain_hash)
}

/// `domain ‖ key_id (UTF-8) ‖ 0x00 ‖ digest (32 bytes)`: the shape of every message this format signs.
fn domain_message(domain: &[u8], key_id: &str, digest: &Digest) -> Vec<u8> {
    let mut message = Vec::with_capacity(domain.len() + key_id.len() + 1 + 32);
    message.extend_from_slice(domain);
    message.extend_from_slice(key_id.as_bytes());
    message.push(0);
    message.extend_from_slice(&digest.0);
    message
}

/// `message = KEY_PROOF_DOMAIN ‖ new key_id (UTF-8) ‖ 0x00 ‖ prev_chain_hash (32 bytes)`: what the
/// incoming key signs in a rotation entry, bound to the rotation's place in the chain so that a proof
/// cannot be replayed into another ledger.
pub fn key_proof_message(key_id: &str, prev_chain_hash: &Digest) -> Vec<u8> {
    domain_message(KEY_PROOF_DOMAIN, key_id, prev_chain_hash)
}

/// The gateway's private signing key together with its key id.
pub struct LedgerSigningKey {
    key: SigningKey,
    key_id: String,
}

impl fmt::Debug for LedgerSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("LedgerSigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl LedgerSigningKey {
    /// A new key from the OS random source.
    pub fn generate() -> Self {
        Self::from_dalek(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key whose 32-byte RFC 8032 secret key is `seed`: the same seed always gives the same key.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_dalek(SigningKey::from_bytes(&seed))
    }

    fn from_dalek(key: SigningKey) -> Self {
        let key_id = key_id_of(&key.verifying_key());
        Self { key, key_id }
    }

    /// Reads an Ed25519 private key in PKCS#8 PEM form, v1 (RFC 5208) or v2 with the public key (RFC 5958);
    /// surrounding whitespace ignored.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::from_dalek)
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))
    }

    /// The private key in PKCS#8 v1 PEM form (RFC 8410's `PRIVATE KEY`, without the optional public key),
    /// with LF line endings: the form OpenSSL (`openssl pkey`) and Python's `cryptography` load. v2, which
    /// adds the public key, is refused by both.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let v1 = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        v1.to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// This key's id: `ed25519:` and 16 lowercase hex digits.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, with the same key id.
    pub fn public_key(&self) -> LedgerPublicKey {
        LedgerPublicKey {
            key_id: self.key_id.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Proves possession of this key for a rotation sealed after `prev_chain_hash`.
    pub fn sign_key_proof(&self, prev_chain_hash: &Digest) -> Signature {
        self.key.sign(&key_proof_message(&self.key_id, prev_chain_hash))
    }

    /// Signs the entry whose chain hash is `chain_hash`.
    pub fn sign_chain_hash(&self, chain_hash: &Digest) -> Signature {
        self.key.sign(&signature_message(&self.key_id, chain_hash))
    }

    /// Signs the text of a C2SP signed note (a checkpoint, docs/ledger-format.md §8). Note text is UTF-8
    /// without control characters other than newline, while every other message this key signs has a
    /// NUL byte right after its domain string, so a note can never be mistaken for an entry signature.
    pub fn sign_note_text(&self, text: &[u8]) -> Signature {
        debug_assert!(!text.contains(&0), "note text never holds NUL");
        self.key.sign(text)
    }
}

/// A public key as the ledger knows it.
#[derive(Clone, PartialEq, Eq)]
pub struct LedgerPublicKey {
    /// The key's id, derived from `key` (see [`key_id_of`]).
    pub key_id: String,
    /// The Ed25519 public key; canonical and not weak when read with [`from_hex`](Self::from_hex).
    pub key: VerifyingKey,
}

impl fmt::Debug for LedgerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerPublicKey({}, {})", self.key_id, self.hex())
    }
}

impl LedgerPublicKey {
    /// Parses 64 lowercase hex digits (docs/ledger-format.md §4.1). Refuses non-canonical encodings and
    /// weak (small-order) keys, which would make signatures meaningless.
    pub fn from_hex(public_key_hex: &str) -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        if public_key_hex.len() != 64 || public_key_hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(KeyError::BadPublicKey);
        }
        hex::decode_to_slice(public_key_hex, &mut bytes).map_err(|_| KeyError::BadPublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPoint)?;
        // dalek accepts y >= p (reducing it), which would give one point several encodings and key ids;
        // RFC 8032 decoding refuses it. Re-encoding and comparing refuses every non-canonical form.
        if key.to_edwards().compress().as_bytes() != &bytes {
            return Err(KeyError::NotAPoint);
        }
        if key.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        Ok(Self {
            key_id: key_id_of(&key),
            key,
        })
    }

    /// The 32-byte public key as 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    /// The public key as a PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo, RFC 8410), the form `openssl pkeyutl
    /// -verify -pubin` and other tools read.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Strict single verification (RFC 8032 with the stricter checks of `verify_strict`).
    pub fn verify(&self, chain_hash: &Digest, signature: &Signature) -> bool {
        self.key
            .verify_strict(&signature_message(&self.key_id, chain_hash), signature)
            .is_ok()
    }

    /// Checks a rotation's proof of possession (strictly).
    pub fn verify_key_proof(&self, prev_chain_hash: &Digest, proof: &Signature) -> bool {
        self.key
            .verify_strict(&key_proof_message(&self.key_id, prev_chain_hash), proof)
            .is_ok()
    }

    /// The key in its JSON shape, for the API, bundles and genesis or rotation payloads.
    pub fn info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM.to_string(),
            public_key: self.hex(),
        }
    }
}

/// The JSON shape of a public key in the API and in export bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyInfo {
    /// `ed25519:` and 16 lowercase hex digits (see [`key_id_of`]).
    pub key_id: String,
    /// The key's algorithm: [`ALGORITHM`] (`ed25519`).
    pub algorithm: String,
    /// The 32-byte public key as 64 lowercase hex digits.
    pub public_key: String,
}

/// Signatures are written as 128 lowercase hex digits.
pub fn signature_to_hex(signature: &Signature) -> String {
    hex::encode(signature.to_bytes())
}

/// Reads a signature from 128 lowercase hex digits; None for any other text. Whether the bytes make a
/// valid signature is left to verification.
pub fn signature_from_hex(s: &str) -> Option<Signature> {
    if s.len() != 128 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(s, &mut bytes).ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// The members of a genesis payload (§4.4) and of a rotation payload (§4.5); any other is refused.
const GENESIS_MEMBERS: [&str; 4] = ["algorithm", "format", "key_id", "public_key"];
const ROTATION_MEMBERS: [&str; 5] = ["algorithm", "key_id", "previous_key_id", "proof", "public_key"];

/// The key a genesis or rotation entry introduces (§4.4, §4.5), checked against its stated key id,
/// and the payload, for a rotation's further members.
pub(crate) fn introduced_key(entry: &Entry) -> Result<(LedgerPublicKey, Map<String, Value>), String> {
    let kind = entry.kind.as_str();
    let Ok(Value::Object(payload)) = entry.payload_value() else {
        return Err(format!("{kind}: the payload is not a JSON object"));
    };
    let members: &[&str] = if kind == KIND_INITIALIZED {
        &GENESIS_MEMBERS
    } else {
        &ROTATION_MEMBERS
    };
    // Refused, not ignored: a member this verifier does not know may carry a meaning it would miss.
    if let Some(extra) = payload.keys().find(|name| !members.contains(&name.as_str())) {
        return Err(format!(
            "{kind}: unexpected payload member {extra:?} (the payload has exactly {members:?})"
        ));
    }
    if kind == KIND_INITIALIZED && payload_text(&payload, "format") != Some(FORMAT) {
        return Err(format!("{kind}: format must be {FORMAT:?}"));
    }
    if payload_text(&payload, "algorithm") != Some(ALGORITHM) {
        return Err(format!("{kind}: algorithm must be {ALGORITHM:?}"));
    }
    let key = LedgerPublicKey::from_hex(payload_text(&payload, "public_key").unwrap_or_default())
        .map_err(|e| format!("{kind}: public_key: {e}"))?;
    if payload_text(&payload, "key_id") != Some(key.key_id.as_str()) {
        return Err(format!(
            "{kind}: key_id does not match the public key (expected {})",
            key.key_id
        ));
    }
    Ok((key, payload))
}

/// A string member of a payload; None if it is absent or not a string.
pub(crate) fn payload_text<'a>(payload: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    payload.get(name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_written_as_pkcs8_v1_and_v2_is_still_read() {
        let key = LedgerSigningKey::from_seed([7; 32]);
        let pem = key.to_pkcs8_pem().unwrap();
        let (label, der) = ed25519_dalek::pkcs8::spki::der::pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        // SEQUENCE { INTEGER 0 (v1), AlgorithmIdentifier, OCTET STRING }: 48 bytes, no public key.
        assert_eq!(der.len(), 48, "{pem}");
        assert_eq!(&der[2..5], &[0x02, 0x01, 0x00], "version 0 (v1)");
        let v2 = key.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let again = LedgerSigningKey::from_pkcs8_pem(&v2).unwrap();
        assert_eq!(
            again.key_id(),
            key.key_id(),
            "a v2 key file of an earlier release still loads"
        );
        assert!(
            key.public_key()
                .to_pem()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }

    #[test]
    fn pem_round_trip_keeps_the_key_id() {
        let key = LedgerSigningKey::from_seed([7; 32]);
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = LedgerSigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert!(key.key_id().starts_with("ed25519:") && key.key_id().len() == 24);
    }

    #[test]
    fn signatures_bind_the_key_id_and_chain_hash() {
        let key = LedgerSigningKey::from_seed([1; 32]);
        let public = key.public_key();
        let h = Digest::of(b"entry");
        let sig = key.sign_chain_hash(&h);
        assert!(public.verify(&h, &sig));
        assert!(!public.verify(&Digest::of(b"other"), &sig));
        let renamed = LedgerPublicKey {
            key_id: "ed25519:0000000000000000".into(),
            key: public.key,
        };
        assert!(!renamed.verify(&h, &sig));
        assert_eq!(signature_from_hex(&signature_to_hex(&sig)), Some(sig));
    }

    #[test]
    fn refuses_weak_and_malformed_public_keys() {
        // The identity point is a small-order (weak) key.
        let identity = format!("01{}", "00".repeat(31));
        assert!(matches!(
            LedgerPublicKey::from_hex(&identity),
            Err(KeyError::WeakPublicKey)
        ));
        assert!(matches!(LedgerPublicKey::from_hex("abcd"), Err(KeyError::BadPublicKey)));
        let good = LedgerSigningKey::from_seed([2; 32]).public_key();
        assert_eq!(LedgerPublicKey::from_hex(&good.hex()).unwrap(), good);
        assert!(matches!(
            LedgerPublicKey::from_hex(&good.hex().to_uppercase()),
            Err(KeyError::BadPublicKey)
        ));
    }

    #[test]
    fn refuses_a_non_canonical_encoding_of_a_valid_point() {
        // y + p for a small y still fits in 255 bits: the same point as y, written differently.
        let p_minus_1 = {
            let mut b = [0xff; 32];
            b[0] = 0xec;
            b[31] = 0x7f;
            b
        };
        let mut found = 0;
        for y in 2u8..=18 {
            let mut non_canonical = p_minus_1;
            non_canonical[0] += y + 1;
            let Ok(point) = VerifyingKey::from_bytes(&non_canonical) else {
                continue;
            };
            assert!(!point.is_weak(), "y = {y}");
            assert!(matches!(
                LedgerPublicKey::from_hex(&hex::encode(non_canonical)),
                Err(KeyError::NotAPoint)
            ));
            let canonical = hex::encode(point.to_edwards().compress().as_bytes());
            assert!(canonical.starts_with(&format!("{y:02x}")), "{canonical}");
            assert!(LedgerPublicKey::from_hex(&canonical).is_ok());
            found += 1;
        }
        assert!(found > 0, "some y in 2..=18 is on the curve");
    }
}
