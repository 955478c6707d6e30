//! SHA-256 digests and the two hashes of an entry (see docs/ledger-format.md §3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Domain separation for the chain hash, so it can never collide with an event hash or a signature
/// message built from the same bytes.
pub const CHAIN_DOMAIN: &[u8] = b"docketops-ledger/v1/chain\0";

/// A SHA-256 digest, written `sha256:<64 lowercase hex>` in JSON and in storage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The `prev_chain_hash` of entry 1: 32 zero bytes.
    pub const GENESIS: Digest = Digest([0; 32]);

    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 32 raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// `event_hash = SHA-256(JCS(event))`.
pub fn event_hash(canonical_event: &[u8]) -> Digest {
    Digest::of(canonical_event)
}

/// `chain_hash = SHA-256(CHAIN_DOMAIN ‖ u64be(seq) ‖ prev_chain_hash ‖ event_hash)`.
pub fn chain_hash(seq: u64, prev_chain_hash: &Digest, event_hash: &Digest) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(CHAIN_DOMAIN);
    hasher.update(seq.to_be_bytes());
    hasher.update(prev_chain_hash.0);
    hasher.update(event_hash.0);
    Digest(hasher.finalize().into())
}

/// A string that is not `sha256:` followed by exactly 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a digest: expected \"sha256:\" followed by 64 lowercase hex digits")]
pub struct DigestParseError;

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.strip_prefix("sha256:").ok_or(DigestParseError)?;
        // Only the lowercase form is valid, so that every digest has exactly one spelling.
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DigestParseError);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| DigestParseError)?;
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_and_has_one_spelling() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!(
            d.to_string()
                .to_uppercase()
                .replace("SHA256", "sha256")
                .parse::<Digest>()
                .is_err()
        );
        assert!("sha256:00".parse::<Digest>().is_err());
        assert!(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn chain_hash_commits_to_every_input() {
        let e = Digest::of(b"event");
        let base = chain_hash(1, &Digest::GENESIS, &e);
        assert_ne!(base, chain_hash(2, &Digest::GENESIS, &e));
        assert_ne!(base, chain_hash(1, &Digest::of(b"x"), &e));
        assert_ne!(base, chain_hash(1, &Digest::GENESIS, &Digest::of(b"other")));
    }
}
