//! Inclusion and consistency proofs (RFC 6962 §2.1.1 and §2.1.2), made from stored tiles and checked
//! without them.
//!
//! Making a proof reads a handful of tiles. Storage is async and `tlog_tiles` reads hashes through a
//! synchronous callback, so a proof is made in two passes: [`tiles_for_inclusion`] (and friends) runs
//! the crate's index math against a recorder to learn which tiles it will read; the caller fetches them;
//! then [`inclusion_proof`] runs again over those tiles.

use std::cell::RefCell;
use std::collections::BTreeMap;

use tlog_tiles::{Error as TreeError, Hash, HashReader, RecordProof, Tile, TreeProof};

use super::TILE_HEIGHT;

/// Stored tiles, by `(level, index)`: whatever width is stored (it only ever grows).
pub trait TileSource {
    /// The stored bytes of tile `(level, index)`, or None if it is not stored.
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]>;
}

/// Why a proof cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is not in a tree of size {size}")]
    NotInTree {
        /// The leaf asked for, from 0.
        index: u64,
        /// The tree size (leaves).
        size: u64,
    },
    /// A consistency proof between sizes that do not satisfy `1 ≤ from ≤ to`.
    #[error("no consistency proof from size {from} to size {to}: need 1 ≤ from ≤ to")]
    BadRange {
        /// The older tree's size.
        from: u64,
        /// The newer tree's size.
        to: u64,
    },
    /// A tile the proof reads is not in the [`TileSource`], or holds too few hashes.
    #[error("a tile the proof needs is missing or too short ({0})")]
    MissingTile(String),
    /// The proof does not lead to the given root (or is longer than any RFC 6962 proof).
    #[error("the proof does not verify")]
    Invalid,
}

impl From<TreeError> for ProofError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::InvalidProof => ProofError::Invalid,
            other => ProofError::MissingTile(other.to_string()),
        }
    }
}

/// Reads stored hashes (the crate's index space) out of tiles.
struct TileReader<'a, S: ?Sized>(&'a S);

impl<S: TileSource + ?Sized> HashReader for TileReader<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&index| {
                let tile = Tile::from_index(TILE_HEIGHT, index);
                let data = self
                    .0
                    .tile(tile.level(), tile.level_index())
                    .ok_or(TreeError::InvalidTile)?;
                tile.hash_at_index(data, index)
            })
            .collect()
    }
}

/// Records which hashes the crate asks for, answering with zeros (only the index math matters).
#[derive(Default)]
struct Recorder(RefCell<Vec<u64>>);

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![Hash::default(); indexes.len()])
    }
}

/// A tile a proof reads, and how many of its hashes (a partial tile's prefix of at least `width`
/// hashes serves: tiles only grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileNeed {
    /// The tile level (0: leaf hashes).
    pub level: u8,
    /// The tile's index within its level, from 0.
    pub index: u64,
    /// How many of the tile's first hashes the proof reads (1 to 256).
    pub width: usize,
}

impl Recorder {
    fn tiles(self) -> Vec<TileNeed> {
        let mut widths: BTreeMap<(u8, u64), usize> = BTreeMap::new();
        for index in self.0.into_inner() {
            let tile = Tile::from_index(TILE_HEIGHT, index);
            let width = widths.entry((tile.level(), tile.level_index())).or_default();
            *width = (*width).max(tile.width() as usize);
        }
        widths
            .into_iter()
            .map(|((level, index), width)| TileNeed { level, index, width })
            .collect()
    }
}

fn check_index(size: u64, index: u64) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::NotInTree { index, size });
    }
    Ok(())
}

fn check_range(from: u64, to: u64) -> Result<(), ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::BadRange { from, to });
    }
    Ok(())
}

/// The tiles [`inclusion_proof`] reads.
pub fn tiles_for_inclusion(size: u64, index: u64) -> Result<Vec<TileNeed>, ProofError> {
    check_index(size, index)?;
    let recorder = Recorder::default();
    tlog_tiles::prove_record(size, index, &recorder)?;
    Ok(recorder.tiles())
}

/// The tiles [`consistency_proof`] reads.
pub fn tiles_for_consistency(from: u64, to: u64) -> Result<Vec<TileNeed>, ProofError> {
    check_range(from, to)?;
    let recorder = Recorder::default();
    tlog_tiles::prove_tree(to, from, &recorder)?;
    Ok(recorder.tiles())
}

/// The tiles [`root_at`] reads.
pub fn tiles_for_root(size: u64) -> Vec<TileNeed> {
    let recorder = Recorder::default();
    tlog_tiles::tree_hash(size, &recorder).expect("the recorder never fails");
    recorder.tiles()
}

/// The audit path of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof(size: u64, index: u64, tiles: &impl TileSource) -> Result<RecordProof, ProofError> {
    check_index(size, index)?;
    Ok(tlog_tiles::prove_record(size, index, &TileReader(tiles))?)
}

/// The proof that the tree of `to` leaves extends the tree of `from` leaves.
pub fn consistency_proof(from: u64, to: u64, tiles: &impl TileSource) -> Result<TreeProof, ProofError> {
    check_range(from, to)?;
    Ok(tlog_tiles::prove_tree(to, from, &TileReader(tiles))?)
}

/// The root of the tree's first `size` leaves; for 0, SHA-256 of nothing (RFC 6962).
pub fn root_at(size: u64, tiles: &impl TileSource) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(Hash(*crate::hash::Digest::of(&[]).as_bytes()));
    }
    Ok(tlog_tiles::tree_hash(size, &TileReader(tiles))?)
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with root `root`.
pub fn verify_inclusion(proof: &[Hash], size: u64, root: Hash, index: u64, leaf: Hash) -> Result<(), ProofError> {
    check_index(size, index)?;
    // RFC 6962 paths are at most 64 hashes long; refuse longer ones before the recursive check.
    if proof.len() > 64 {
        return Err(ProofError::Invalid);
    }
    Ok(tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf)?)
}

/// Checks that the tree of `to` leaves with root `to_root` extends the one of `from` leaves with root
/// `from_root`. Equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    proof: &[Hash],
    from: u64,
    from_root: Hash,
    to: u64,
    to_root: Hash,
) -> Result<(), ProofError> {
    check_range(from, to)?;
    if proof.len() > 64 {
        return Err(ProofError::Invalid);
    }
    Ok(tlog_tiles::check_tree(&proof.to_vec(), to, to_root, from, from_root)?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::tlog::TreeEdge;

    struct Tiles(HashMap<(u8, u64), Vec<u8>>);

    impl TileSource for Tiles {
        fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
            self.0.get(&(level, index)).map(Vec::as_slice)
        }
    }

    /// Only the tiles `needed`, each cut to its width: a proof made from them shows the widths are what it
    /// reads (a width one short fails).
    fn cut(tiles: &Tiles, needed: &[TileNeed]) -> Tiles {
        let mut cut = Tiles(HashMap::new());
        for n in needed {
            let data = tiles.tile(n.level, n.index).expect("a needed tile");
            cut.0.insert((n.level, n.index), data[..n.width * 32].to_vec());
        }
        cut
    }

    /// A tree of `size` leaves, its tiles, and its root at each of `sizes`.
    fn tree(size: u64, sizes: &[u64]) -> (Tiles, HashMap<u64, Hash>) {
        let mut edge = TreeEdge::empty();
        let mut tiles = HashMap::new();
        let mut roots = HashMap::new();
        for i in 0..size {
            for w in edge.append([tlog_tiles::record_hash(&i.to_le_bytes())]) {
                tiles.insert((w.level, w.index), w.data);
            }
            if sizes.contains(&edge.size()) {
                roots.insert(edge.size(), edge.root());
            }
        }
        (Tiles(tiles), roots)
    }

    #[test]
    fn inclusion_proofs_verify_and_reject_every_single_bit_flip() {
        let cases = [
            (1u64, 0u64),
            (2, 1),
            (257, 256),
            (70_000, 0),
            (70_000, 65_537),
            (70_000, 69_999),
        ];
        let (tiles, roots) = tree(70_000, &cases.map(|(size, _)| size));
        for (size, index) in cases {
            let needed = tiles_for_inclusion(size, index).unwrap();
            let proof = inclusion_proof(size, index, &cut(&tiles, &needed)).unwrap();
            assert_eq!(proof, inclusion_proof(size, index, &tiles).unwrap());
            let leaf = tlog_tiles::record_hash(&index.to_le_bytes());
            let root = roots[&size];
            verify_inclusion(&proof, size, root, index, leaf).unwrap();
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i].0[i % 32] ^= 1;
                assert_eq!(
                    verify_inclusion(&bad, size, root, index, leaf),
                    Err(ProofError::Invalid)
                );
            }
            if size > 1 {
                assert!(verify_inclusion(&proof, size, root, (index + 1) % size, leaf).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_between_any_two_sizes() {
        let cases = [
            (1u64, 1u64),
            (1, 2),
            (255, 256),
            (256, 257),
            (1000, 65_536),
            (65_537, 70_000),
        ];
        let mut sizes: Vec<u64> = cases.iter().flat_map(|&(f, t)| [f, t, t - 1]).collect();
        sizes.push(12_345);
        let (tiles, roots) = tree(70_000, &sizes);
        for (from, to) in cases {
            let needed = tiles_for_consistency(from, to).unwrap();
            let proof = consistency_proof(from, to, &cut(&tiles, &needed)).unwrap();
            assert_eq!(proof, consistency_proof(from, to, &tiles).unwrap());
            verify_consistency(&proof, from, roots[&from], to, roots[&to]).unwrap();
            if to > from {
                let other = roots[&(to - 1)];
                assert!(verify_consistency(&proof, from, roots[&from], to, other).is_err());
            }
            if from > 1 {
                assert!(verify_consistency(&proof, from, roots[&to], to, roots[&to]).is_err());
            }
        }
        for size in [70_000, 12_345, 256, 257] {
            let only = cut(&tiles, &tiles_for_root(size));
            assert_eq!(root_at(size, &only).unwrap(), roots[&size]);
        }
        let (a, b) = (roots[&1], roots[&2]);
        assert_eq!(
            verify_consistency(&[], 0, a, 2, b),
            Err(ProofError::BadRange { from: 0, to: 2 })
        );
    }
}
