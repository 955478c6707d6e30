//! API key format (SPEC §2): `dkt_<kind>_<random><checksum>`.
//!
//! The random part is 24 bytes (192 bits) in base62, fixed at 33 characters; the checksum is the
//! CRC-32 of everything before it, in base62, fixed at 6 characters, so a typo or a truncated paste is
//! caught before any lookup (the same idea as GitHub's token format). Base62 is a dozen lines, written
//! here rather than pulling in a crate for it.

use rand::RngCore;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_BYTES: usize = 24;
const RANDOM_CHARS: usize = 33; // ceil(192 / log2(62))
const CHECKSUM_CHARS: usize = 6; // ceil(32 / log2(62))

/// Whom a key is for, spelt in its prefix (`dkt_agent_…`, `dkt_human_…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An automated caller: a key starting `dkt_agent_`.
    Agent,
    /// A person: a key starting `dkt_human_`.
    Human,
}

impl KeyKind {
    /// The kind as the key's prefix spells it: `agent` or `human`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Agent => "agent",
            KeyKind::Human => "human",
        }
    }
}

/// An identity's keys carry its kind, so a key tells at a glance whom it belongs to.
impl From<domain::IdentityKind> for KeyKind {
    fn from(kind: domain::IdentityKind) -> Self {
        match kind {
            domain::IdentityKind::Agent => KeyKind::Agent,
            domain::IdentityKind::Human => KeyKind::Human,
        }
    }
}

/// Why a string is not a well-formed API key (found by [`parse`], before any lookup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// The key starts with neither `dkt_agent_` nor `dkt_human_`.
    #[error("not a DocketOps API key: expected dkt_agent_… or dkt_human_…")]
    Prefix,
    /// After the prefix, the key is not 39 ASCII letters and digits.
    #[error("malformed API key: wrong length or characters")]
    Shape,
    /// The last 6 characters are not the CRC-32 of the rest: a typo or a truncated paste.
    #[error("API key checksum does not match: the key was mistyped or cut short")]
    Checksum,
}

/// A fresh key of `kind`.
pub fn generate(kind: KeyKind) -> String {
    let mut random = [0u8; RANDOM_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let body = format!("dkt_{}_{}", kind.as_str(), base62(&random, RANDOM_CHARS));
    let checksum = base62(&crc32fast::hash(body.as_bytes()).to_be_bytes(), CHECKSUM_CHARS);
    format!("{body}{checksum}")
}

/// Checks the shape and checksum of `key` and returns its kind.
pub fn parse(key: &str) -> Result<KeyKind, ApiKeyError> {
    let (kind, rest) = if let Some(rest) = key.strip_prefix("dkt_agent_") {
        (KeyKind::Agent, rest)
    } else if let Some(rest) = key.strip_prefix("dkt_human_") {
        (KeyKind::Human, rest)
    } else {
        return Err(ApiKeyError::Prefix);
    };
    if rest.len() != RANDOM_CHARS + CHECKSUM_CHARS || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiKeyError::Shape);
    }
    let (body, checksum) = key.split_at(key.len() - CHECKSUM_CHARS);
    if base62(&crc32fast::hash(body.as_bytes()).to_be_bytes(), CHECKSUM_CHARS) != checksum {
        return Err(ApiKeyError::Checksum);
    }
    Ok(kind)
}

/// The stored form of a key: `sha256:<hex>` of its bytes. Keys are never stored in the clear.
pub fn digest(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Big-endian base62 of `bytes`, left-padded with '0' to `width` characters.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut digits = bytes.to_vec();
    let mut out = Vec::with_capacity(width);
    while digits.iter().any(|&d| d != 0) {
        let mut remainder = 0u32;
        for d in digits.iter_mut() {
            let value = (remainder << 8) | u32::from(*d);
            *d = (value / 62) as u8;
            remainder = value % 62;
        }
        out.push(ALPHABET[remainder as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base62 alphabet is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_typos_are_caught() {
        for kind in [KeyKind::Agent, KeyKind::Human] {
            let key = generate(kind);
            assert_eq!(parse(&key), Ok(kind));
            assert_eq!(
                key.len(),
                "dkt_".len() + kind.as_str().len() + 1 + RANDOM_CHARS + CHECKSUM_CHARS
            );
            let mut typo = key.clone().into_bytes();
            let i = typo.len() - 10;
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            assert_eq!(parse(&String::from_utf8(typo).unwrap()), Err(ApiKeyError::Checksum));
            assert_eq!(parse(&key[..key.len() - 1]), Err(ApiKeyError::Shape));
        }
        assert_eq!(parse("Bearer xyz"), Err(ApiKeyError::Prefix));
        assert_ne!(generate(KeyKind::Agent), generate(KeyKind::Agent));
    }

    #[test]
    fn base62_is_fixed_width_and_exact() {
        assert_eq!(base62(&[0, 0], 3), "000");
        assert_eq!(base62(&[0, 62], 3), "010");
        assert_eq!(base62(&[0xff; 24], RANDOM_CHARS).len(), RANDOM_CHARS);
        assert_eq!(base62(&[0xff; 4], CHECKSUM_CHARS).len(), CHECKSUM_CHARS);
    }
}
