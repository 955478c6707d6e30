//! Checkpoints (C2SP `tlog-checkpoint`) signed as C2SP `signed-note`s by the ledger's Ed25519 key, and
//! witness cosignatures (C2SP `tlog-cosignature`, Ed25519 `cosignature/v1`).
//!
//! A checkpoint's note text is exactly three lines — origin, tree size, base64 root — and this log never
//! writes extension lines (a checkpoint with one is refused). The log's signature line is named by the
//! origin, with key id `SHA-256(origin ‖ "\n" ‖ 0x01 ‖ public key)[:4]`. A checkpoint is verified against
//! every key the ledger ever introduced, so rotation leaves old checkpoints verifiable.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, NoteError, Signature, StandardVerifier, Verifier, VerifierList};

use super::{Hash, hash_to_base64};
use crate::keys::{LedgerPublicKey, LedgerSigningKey};

/// The `signed-note` algorithm byte of Ed25519 signatures.
const ALG_ED25519: u8 = 0x01;
/// The `signed-note` algorithm byte of Ed25519 `cosignature/v1` signatures.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The three lines of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The log's name (`--log-origin`, e.g. `ledger.example.com/docketops`), which also names its signature line.
    pub origin: String,
    /// The tree size: how many leaves (entries) the checkpoint covers.
    pub size: u64,
    /// The RFC 6962 root hash of the tree of `size` leaves.
    pub root: Hash,
}

/// Why a checkpoint, a signed note or a verifier key cannot be read, signed or trusted.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The note, its checkpoint text or a log verifier key cannot be read, or is not in the one form this log
    /// writes (three lines, no extension lines).
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    /// No signature by one of the given log keys under the checkpoint's origin verified.
    #[error("the checkpoint is not signed by a key of the log {origin:?}")]
    NotSignedByLog {
        /// The checkpoint's origin.
        origin: String,
    },
    /// A signature line from a key that was given does not verify (or, when signing, cannot be written).
    #[error("a signature on the checkpoint does not verify: {0}")]
    BadSignature(#[source] NoteError),
    /// Fewer trusted witnesses cosigned the checkpoint than the quorum requires.
    #[error("{found} of the trusted witnesses cosigned the checkpoint; the quorum is {quorum}")]
    NoQuorum {
        /// How many trusted witnesses' cosignatures verified.
        found: usize,
        /// How many are required.
        quorum: usize,
    },
    /// The origin (given) cannot name a signed-note key: it is empty, or holds a space, a `+` or a newline.
    #[error("the origin {0:?} cannot name a signed-note key (it must be non-empty, without spaces or '+')")]
    BadOrigin(String),
    /// A witness name or verifier key cannot be used: not `<name>+<hex id>+<base64 key>` with a
    /// `cosignature/v1` Ed25519 key and the id that matches them.
    #[error("not a witness key: {0}")]
    BadWitnessKey(String),
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, hash_to_base64(&self.root))
    }

    /// Parses a note text (no signatures) strictly: three lines, no extension lines.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let parsed = tlog_tiles::Checkpoint::from_bytes(text.as_bytes())
            .map_err(|_| CheckpointError::Malformed("expected origin, size and base64 root lines".into()))?;
        if !parsed.extension().is_empty() {
            return Err(CheckpointError::Malformed("this log writes no extension lines".into()));
        }
        let checkpoint = Checkpoint {
            origin: parsed.origin().to_string(),
            size: parsed.size(),
            root: *parsed.hash(),
        };
        // The crate accepts some spellings this log never writes (e.g. unpadded base64); one spelling only.
        if checkpoint.body() != text {
            return Err(CheckpointError::Malformed("not in canonical form".into()));
        }
        Ok(checkpoint)
    }

    /// Signs the checkpoint with the ledger's key: the whole signed note.
    pub fn sign(&self, key: &LedgerSigningKey) -> Result<String, CheckpointError> {
        check_origin(&self.origin)?;
        let body = self.body();
        let id = log_key_id(&self.origin, &key.public_key());
        let signature = key.sign_note_text(body.as_bytes()).to_bytes().to_vec();
        let line = Signature::new(self.origin.clone(), id, signature).map_err(CheckpointError::BadSignature)?;
        Ok(format!(
            "{body}\n{}",
            String::from_utf8(line.to_bytes()).expect("signature lines are UTF-8")
        ))
    }
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if !signed_note::is_key_name_valid(origin) || origin.contains('\n') {
        return Err(CheckpointError::BadOrigin(origin.to_string()));
    }
    Ok(())
}

/// Whether `origin` can be a log's origin (a signed-note key name).
pub fn is_valid_origin(origin: &str) -> bool {
    check_origin(origin).is_ok()
}

/// The signed-note key id of the log's key `key` under `origin`.
pub fn log_key_id(origin: &str, key: &LedgerPublicKey) -> u32 {
    signed_note::key_id(origin, &[&[ALG_ED25519][..], key.key.as_bytes()].concat())
}

/// The log's key as a signed-note verifier key, `<origin>+<hex id>+<base64(0x01 ‖ key)>`, the form Go's
/// `note.NewVerifier` and other tools read.
pub fn log_verifier_key(origin: &str, key: &LedgerPublicKey) -> String {
    signed_note::new_ed25519_verifier_key(origin, &key.key)
}

/// Reads a log verifier key (`<origin>+<hex id>+<base64(0x01 ‖ key)>`, as [`log_verifier_key`] writes it):
/// the origin and the ledger key.
pub fn parse_log_verifier_key(vkey: &str) -> Result<(String, LedgerPublicKey), CheckpointError> {
    let bad = |why: &str| CheckpointError::Malformed(format!("log verifier key: {why}"));
    let vkey = vkey.trim();
    let verifier = StandardVerifier::new(vkey).map_err(|e| bad(&e.to_string()))?;
    // The key is everything after the second '+': standard base64 has '+' of its own.
    let key64 = vkey.splitn(3, '+').nth(2).unwrap_or_default();
    let bytes = BASE64.decode(key64).map_err(|_| bad("not base64"))?;
    let key = match bytes.split_first() {
        Some((&ALG_ED25519, key)) if key.len() == 32 => key,
        _ => return Err(bad("not an Ed25519 (0x01) key of 32 bytes")),
    };
    let key = LedgerPublicKey::from_hex(&hex::encode(key)).map_err(|e| bad(&e.to_string()))?;
    Ok((verifier.name().to_string(), key))
}

/// A checkpoint whose log signature verified, with the witnesses that cosigned it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedCheckpoint {
    /// The checkpoint's three lines.
    pub checkpoint: Checkpoint,
    /// The ledger key ids (`ed25519:…`) whose signatures verified.
    pub log_keys: Vec<String>,
    /// The trusted witnesses whose cosignatures verified, with their timestamps.
    pub cosigned_by: Vec<(String, u64)>,
    /// Signature lines from keys nobody configured: kept, not trusted.
    pub unknown_signatures: usize,
}

/// Opens a signed checkpoint: the log's signature must verify with one of `log_keys` under the note's
/// origin, every signature from a known key must verify, and at least `quorum` of `witnesses` must have
/// cosigned it. Signatures from unknown keys are ignored (C2SP signed-note).
pub fn open(
    note: &str,
    log_keys: &[LedgerPublicKey],
    witnesses: &[WitnessKey],
    quorum: usize,
) -> Result<OpenedCheckpoint, CheckpointError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    let text = std::str::from_utf8(parsed.text()).expect("notes are UTF-8");
    let checkpoint = Checkpoint::parse_body(text)?;
    check_origin(&checkpoint.origin)?;
    // A key given twice would make the verifier list ambiguous (and a witness key listed under two names
    // would count twice towards the quorum): each public key once.
    let mut log_keys = log_keys.to_vec();
    log_keys.sort_by_key(|k| k.key.to_bytes());
    log_keys.dedup_by(|a, b| a.key == b.key);
    let mut witnesses = witnesses.to_vec();
    witnesses.sort_by_key(|w| w.key.to_bytes());
    witnesses.dedup_by(|a, b| a.key == b.key);
    let mut verifiers: Vec<Box<dyn Verifier>> = Vec::new();
    for key in &log_keys {
        let vkey = log_verifier_key(&checkpoint.origin, key);
        verifiers.push(Box::new(
            StandardVerifier::new(&vkey).expect("a vkey this module wrote parses"),
        ));
    }
    for witness in &witnesses {
        verifiers.push(Box::new(witness.clone()));
    }
    let (verified, unverified) = match parsed.verify(&VerifierList::new(verifiers)) {
        Ok(result) => result,
        Err(NoteError::UnverifiedNote) => {
            return Err(CheckpointError::NotSignedByLog {
                origin: checkpoint.origin,
            });
        }
        Err(e) => return Err(CheckpointError::BadSignature(e)),
    };
    let log_ids: Vec<String> = log_keys
        .iter()
        .filter(|k| {
            let id = log_key_id(&checkpoint.origin, k);
            verified.iter().any(|s| s.name() == checkpoint.origin && s.id() == id)
        })
        .map(|k| k.key_id.clone())
        .collect();
    if log_ids.is_empty() {
        return Err(CheckpointError::NotSignedByLog {
            origin: checkpoint.origin,
        });
    }
    let cosigned_by: Vec<(String, u64)> = witnesses
        .iter()
        .filter_map(|w| {
            let sig = verified.iter().find(|s| s.name() == w.name && s.id() == w.id)?;
            Some((w.name.clone(), cosignature_timestamp(sig.signature())?))
        })
        .collect();
    if cosigned_by.len() < quorum {
        return Err(CheckpointError::NoQuorum {
            found: cosigned_by.len(),
            quorum,
        });
    }
    Ok(OpenedCheckpoint {
        checkpoint,
        log_keys: log_ids,
        cosigned_by,
        unknown_signatures: unverified.len(),
    })
}

fn cosignature_timestamp(sig: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(sig.get(..8)?.try_into().ok()?))
}

/// The message a `cosignature/v1` signs: two header lines, then the checkpoint's note text.
fn cosigned_message(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(body);
    msg
}

/// A witness's public key: its name and Ed25519 key, written as the vkey
/// `<name>+<hex id>+<base64(0x04 ‖ key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    /// The witness's name, which names its cosignature lines.
    pub name: String,
    /// The witness's Ed25519 public key.
    pub key: VerifyingKey,
    id: u32,
}

impl WitnessKey {
    /// The witness `name` with public key `key`; refused if `name` cannot name a signed-note key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, CheckpointError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(CheckpointError::BadWitnessKey(format!("{name:?} cannot name a key")));
        }
        let id = signed_note::key_id(name, &[&[ALG_COSIGNATURE_V1][..], key.as_bytes()].concat());
        Ok(WitnessKey {
            name: name.to_string(),
            key,
            id,
        })
    }

    /// Parses a vkey with algorithm byte 0x04.
    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::BadWitnessKey(format!("{why} (expected <name>+<hex id>+<base64 key>)"));
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three '+'-separated parts"));
        };
        let bytes = BASE64.decode(key64).map_err(|_| bad("the key is not base64"))?;
        let (&alg, key) = bytes.split_first().ok_or_else(|| bad("empty key"))?;
        if alg != ALG_COSIGNATURE_V1 {
            return Err(bad("not a cosignature/v1 (0x04) Ed25519 key"));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| bad("the key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let witness = WitnessKey::new(name, key)?;
        if id_hex.len() != 8 || u32::from_str_radix(id_hex, 16).ok() != Some(witness.id) {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(witness)
    }

    /// The verifier key, `<name>+<hex id>+<base64(0x04 ‖ key)>`, as [`parse`](Self::parse) reads it.
    pub fn to_vkey(&self) -> String {
        let key = [&[ALG_COSIGNATURE_V1][..], self.key.as_bytes()].concat();
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(key))
    }
}

impl Verifier for WitnessKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let (Some(timestamp), Some(signature)) = (cosignature_timestamp(sig), sig.get(8..)) else {
            return false;
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        timestamp < (1 << 63)
            && self
                .key
                .verify_strict(&cosigned_message(timestamp, msg), &signature)
                .is_ok()
    }
}

/// A witness's signing key.
#[derive(Clone)]
pub struct WitnessSigner {
    key: SigningKey,
    public: WitnessKey,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessSigner({})", self.public.to_vkey())
    }
}

impl WitnessSigner {
    /// A signer for the witness `name` with private key `key`; refused if `name` cannot name a signed-note key.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, CheckpointError> {
        let public = WitnessKey::new(name, key.verifying_key())?;
        Ok(WitnessSigner { key, public })
    }

    /// The witness's public key.
    pub fn public(&self) -> &WitnessKey {
        &self.public
    }

    /// A cosignature line (`— <name> <base64(id ‖ timestamp ‖ signature)>\n`) over the note text `body`.
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let signature = self.key.sign(&cosigned_message(timestamp, body.as_bytes()));
        let mut sig = timestamp.to_be_bytes().to_vec();
        sig.extend_from_slice(&signature.to_bytes());
        let line = Signature::new(self.public.name.clone(), self.public.id, sig).expect("the name was checked");
        String::from_utf8(line.to_bytes()).expect("signature lines are UTF-8")
    }
}

/// Appends signature lines (e.g. cosignatures) to a signed note, skipping lines it already holds.
pub fn add_signature_lines(note: &str, lines: &[String]) -> String {
    let mut out = note.to_string();
    for line in lines {
        if !out.lines().any(|l| format!("{l}\n") == *line) {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "ledger.example.com/docketops".into(),
            size: 12,
            root: Hash([3; 32]),
        }
    }

    fn witness(name: &str, seed: u8) -> WitnessSigner {
        WitnessSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_opens_with_the_log_key_and_not_with_another() {
        let key = LedgerSigningKey::from_seed([1; 32]);
        let other = LedgerSigningKey::from_seed([2; 32]);
        let note = checkpoint().sign(&key).unwrap();
        let opened = open(&note, &[other.public_key(), key.public_key()], &[], 0).unwrap();
        assert_eq!(opened.checkpoint, checkpoint());
        assert_eq!(opened.log_keys, vec![key.key_id().to_string()]);
        assert!(matches!(
            open(&note, &[other.public_key()], &[], 0),
            Err(CheckpointError::NotSignedByLog { .. })
        ));
        let forged = note.replacen("\n12\n", "\n13\n", 1);
        assert!(matches!(
            open(&forged, &[key.public_key()], &[], 0),
            Err(CheckpointError::BadSignature(_))
        ));
    }

    #[test]
    fn cosignatures_count_towards_the_quorum_only_from_trusted_witnesses() {
        let key = LedgerSigningKey::from_seed([1; 32]);
        let note = checkpoint().sign(&key).unwrap();
        let (w1, w2, stranger) = (
            witness("w1.example", 7),
            witness("w2.example", 8),
            witness("w3.example", 9),
        );
        let body = checkpoint().body();
        let cosigned = add_signature_lines(
            &note,
            &[
                w1.cosign(&body, 1_700_000_000),
                stranger.cosign(&body, 5),
                w1.cosign(&body, 1_700_000_000),
            ],
        );
        assert_eq!(cosigned.matches("— w1.example").count(), 1);
        let trusted = [w1.public().clone(), w2.public().clone()];
        let opened = open(&cosigned, &[key.public_key()], &trusted, 1).unwrap();
        assert_eq!(opened.cosigned_by, vec![("w1.example".to_string(), 1_700_000_000)]);
        assert_eq!(opened.unknown_signatures, 1);
        assert!(matches!(
            open(&cosigned, &[key.public_key()], &trusted, 2),
            Err(CheckpointError::NoQuorum { found: 1, quorum: 2 })
        ));
        // A cosignature over another tree does not verify, and a bad signature from a known key fails the note.
        let other_body = Checkpoint {
            size: 13,
            ..checkpoint()
        }
        .body();
        let wrong = add_signature_lines(&note, &[w2.cosign(&other_body, 1)]);
        assert!(matches!(
            open(&wrong, &[key.public_key()], &trusted, 0),
            Err(CheckpointError::BadSignature(_))
        ));
    }

    #[test]
    fn log_verifier_keys_round_trip() {
        let key = LedgerSigningKey::from_seed([1; 32]).public_key();
        let vkey = log_verifier_key("log.example/a", &key);
        assert_eq!(
            parse_log_verifier_key(&vkey).unwrap(),
            ("log.example/a".to_string(), key)
        );
        assert!(parse_log_verifier_key(&vkey.replacen("log.example/a", "log.example/b", 1)).is_err());
    }

    #[test]
    fn witness_keys_round_trip_and_refuse_other_algorithms() {
        let w = witness("witness.example/w1", 4);
        let vkey = w.public().to_vkey();
        assert_eq!(WitnessKey::parse(&vkey).unwrap(), *w.public());
        let log_vkey = log_verifier_key("log.example", &LedgerSigningKey::from_seed([1; 32]).public_key());
        assert!(WitnessKey::parse(&log_vkey).is_err());
        assert!(WitnessKey::parse(&vkey.replacen('+', "+0", 1)).is_err());
    }

    #[test]
    fn bodies_parse_strictly() {
        let body = checkpoint().body();
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), checkpoint());
        for bad in [
            body.replace("\n12\n", "\n012\n"),
            format!("{body}ext\n"),
            body.trim_end().to_string(),
            body.replace("ledger.example.com/docketops", ""),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
    }
}
