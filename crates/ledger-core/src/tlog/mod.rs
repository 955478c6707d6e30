//! The transparency log over the ledger (docs/ledger-format.md §8, docs/transparency.md).
//!
//! - An RFC 6962 Merkle tree whose leaf `i` is the entry with `seq = i + 1`. The leaf data is the entry's
//!   32-byte `chain_hash`, which commits to the entry's seq, its event and, through `prev_chain_hash`, to
//!   every entry before it: `leaf_hash = SHA-256(0x00 ‖ chain_hash)`.
//! - The tree is stored as C2SP `tlog-tiles` hash tiles of height 8 ([`TreeEdge`] extends it batch by
//!   batch; [`proofs`] reads it back).
//! - Signed checkpoints (C2SP `tlog-checkpoint` in a C2SP `signed-note`), witness cosignatures (C2SP
//!   `tlog-cosignature`, `cosignature/v1`) and the witness protocol's request ([`checkpoint`], [`witness`]).
//! - Receipts: C2SP `tlog-proof` files that carry the entry itself ([`receipt`]).
//!
//! The tree math, proofs and note format come from `tlog_tiles` and `signed_note` (Cloudflare's ports of
//! Go's `golang.org/x/mod/sumdb`). Written here: what those crates do not do — the C2SP tile paths (the
//! crate speaks the Go checksum database's `tile/8/…` form), the incremental edge, `cosignature/v1`, the
//! witness request and the receipt.

pub mod checkpoint;
mod edge;
pub mod offline;
pub mod proofs;
pub mod receipt;
mod tiles;
pub mod witness;

pub use edge::{EdgeError, TileWrite, TreeEdge};
pub use tiles::{TilePath, TilePathError};
pub use tlog_tiles::{Hash, RecordProof, TreeProof};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::hash::Digest;

/// Tile height (C2SP tlog-tiles fixes it at 8): a full tile holds 256 hashes.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;
/// Bytes of one hash in a tile.
pub const HASH_SIZE: usize = 32;

/// The leaf hash of the entry whose chain hash is `chain_hash`: `SHA-256(0x00 ‖ chain_hash)`.
pub fn leaf_hash(chain_hash: &Digest) -> Hash {
    tlog_tiles::record_hash(chain_hash.as_bytes())
}

/// A hash in the base64 form of checkpoints, proofs and the JSON API.
pub fn hash_to_base64(hash: &Hash) -> String {
    BASE64.encode(hash.0)
}

/// Reads a base64 hash (exactly 32 bytes, standard alphabet with padding).
pub fn hash_from_base64(text: &str) -> Option<Hash> {
    let bytes = BASE64.decode(text).ok()?;
    Some(Hash(bytes.try_into().ok()?))
}

/// Hashes as tile bytes: their 32-byte values back to back.
pub fn hashes_to_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// Tile bytes as hashes; None unless the length is a multiple of 32.
pub fn hashes_from_bytes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if !bytes.len().is_multiple_of(HASH_SIZE) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(HASH_SIZE)
            .map(|c| Hash(c.try_into().expect("chunks are 32 bytes")))
            .collect(),
    )
}

/// A C2SP entry bundle: each leaf's data (the 32-byte chain hash) behind a big-endian u16 length.
pub fn entry_bundle(chain_hashes: &[Digest]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chain_hashes.len() * (2 + HASH_SIZE));
    for hash in chain_hashes {
        out.extend_from_slice(&(HASH_SIZE as u16).to_be_bytes());
        out.extend_from_slice(hash.as_bytes());
    }
    out
}

/// The root of a tree whose leaves are `leaves` (all in memory): for tests, fuzzing and small bundles.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut edge = TreeEdge::empty();
    edge.append(leaves.iter().copied());
    edge.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_is_rfc6962_over_the_chain_hash() {
        let chain = Digest([7; 32]);
        let mut input = vec![0u8];
        input.extend_from_slice(&[7; 32]);
        assert_eq!(leaf_hash(&chain).0, *Digest::of(&input).as_bytes());
    }

    #[test]
    fn entry_bundles_prefix_each_leaf_with_its_length() {
        let bundle = entry_bundle(&[Digest([1; 32]), Digest([2; 32])]);
        assert_eq!(bundle.len(), 68);
        assert_eq!(&bundle[..2], &[0, 32]);
        assert_eq!(&bundle[34..36], &[0, 32]);
        assert_eq!(bundle[36], 2);
    }

    #[test]
    fn base64_hashes_round_trip_and_refuse_other_lengths() {
        let h = Hash([9; 32]);
        assert_eq!(hash_from_base64(&hash_to_base64(&h)), Some(h));
        assert_eq!(hash_from_base64("AAAA"), None);
        assert_eq!(hashes_from_bytes(&[0; 33]), None);
    }
}
