//! The right edge of the tree, kept as tiles: for each tile level, the hashes of its last tile that is not
//! yet full. It is everything the appender needs to add leaves and to compute the root, and it is rebuilt
//! from the stored tiles in a few reads.
//!
//! Tile level `L` holds the tree's hashes at height `8·L`: level 0 the leaf hashes, level 1 the roots of
//! full level-0 tiles, and so on. A tree of `size` leaves has `size >> 8L` hashes at tile level `L`, the
//! last `(size >> 8L) % 256` of them in its partial tile.

use std::collections::BTreeMap;

use tlog_tiles::{Hash, Tile, node_hash};

use super::{HASH_SIZE, TILE_HEIGHT, TILE_WIDTH, hashes_from_bytes, hashes_to_bytes};

/// The bytes of one tile after a batch: write them over the stored tile `(level, index)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileWrite {
    /// The tile level (0: leaf hashes).
    pub level: u8,
    /// The tile's index within its level, from 0.
    pub index: u64,
    /// Whole tile, `32 × width` bytes; 256 hashes when full.
    pub data: Vec<u8>,
}

/// Why the stored tiles cannot rebuild the edge of a tree ([`TreeEdge::from_tiles`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// A partial tile the tree needs is not stored.
    #[error("tile {level}/{index} is missing: the tree of size {size} needs it")]
    MissingTile {
        /// The missing tile's level.
        level: u8,
        /// The missing tile's index within its level.
        index: u64,
        /// The tree size (leaves) being rebuilt.
        size: u64,
    },
    /// A stored partial tile holds another number of hashes than the tree needs: the tiles describe
    /// another tree.
    #[error("tile {level}/{index} holds {found} bytes where the tree of size {size} needs {needed}")]
    TileSize {
        /// The tile's level.
        level: u8,
        /// The tile's index within its level.
        index: u64,
        /// The tree size (leaves) being rebuilt.
        size: u64,
        /// The stored tile's length in bytes.
        found: usize,
        /// The length the tree needs, in bytes (32 per hash).
        needed: usize,
    },
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEdge {
    size: u64,
    /// `partial[L]`: the hashes of tile level L's last, not yet full tile.
    partial: Vec<Vec<Hash>>,
}

impl TreeEdge {
    /// The edge of the empty tree (no leaves).
    pub fn empty() -> Self {
        TreeEdge {
            size: 0,
            partial: Vec::new(),
        }
    }

    /// The tree's size (leaves).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The partial tiles a tree of `size` leaves has: `(level, index, width)`, width 1 to 255.
    pub fn partial_tiles(size: u64) -> Vec<(u8, u64, usize)> {
        (0..)
            .map(|level: u8| {
                (
                    level,
                    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT)).unwrap_or(0),
                )
            })
            .take_while(|&(_, hashes)| hashes > 0)
            .filter(|&(_, hashes)| hashes % TILE_WIDTH as u64 != 0)
            .map(|(level, hashes)| (level, hashes / TILE_WIDTH as u64, (hashes % TILE_WIDTH as u64) as usize))
            .collect()
    }

    /// Rebuilds the edge of a tree of `size` leaves from its partial tiles (see [`Self::partial_tiles`]):
    /// `tile(level, index)` returns the stored bytes of that tile. A stored tile must hold exactly the
    /// width the tree needs: a wider one means the tiles describe another tree.
    pub fn from_tiles<'a>(size: u64, tile: impl Fn(u8, u64) -> Option<&'a [u8]>) -> Result<Self, EdgeError> {
        let mut partial = Vec::new();
        for (level, index, width) in Self::partial_tiles(size) {
            let data = tile(level, index).ok_or(EdgeError::MissingTile { level, index, size })?;
            if data.len() != width * HASH_SIZE {
                return Err(EdgeError::TileSize {
                    level,
                    index,
                    size,
                    found: data.len(),
                    needed: width * HASH_SIZE,
                });
            }
            let level = usize::from(level);
            partial.resize(level + 1, Vec::new());
            partial[level] = hashes_from_bytes(data).expect("length checked above");
        }
        Ok(TreeEdge { size, partial })
    }

    /// Adds leaves and returns every tile they changed, full or partial, with its new bytes.
    pub fn append(&mut self, leaves: impl IntoIterator<Item = Hash>) -> Vec<TileWrite> {
        let mut writes: BTreeMap<(u8, u64), Option<Vec<u8>>> = BTreeMap::new();
        for leaf in leaves {
            self.push_leaf(leaf, &mut writes);
        }
        writes
            .into_iter()
            .map(|((level, index), full)| TileWrite {
                level,
                index,
                data: full.unwrap_or_else(|| hashes_to_bytes(&self.partial[usize::from(level)])),
            })
            .collect()
    }

    /// Adds one leaf. A tile that fills up is recorded in `writes` with its bytes (it leaves the edge); a
    /// tile that only grew is recorded without bytes, taken from the edge at the end of the batch.
    fn push_leaf(&mut self, leaf: Hash, writes: &mut BTreeMap<(u8, u64), Option<Vec<u8>>>) {
        let size = self.size + 1;
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            if self.partial.len() == level {
                self.partial.push(Vec::with_capacity(TILE_WIDTH));
            }
            let hashes_at_level = size >> (level as u32 * u32::from(TILE_HEIGHT));
            let key = (level as u8, (hashes_at_level - 1) / TILE_WIDTH as u64);
            self.partial[level].push(hash);
            if self.partial[level].len() < TILE_WIDTH {
                writes.entry(key).or_insert(None);
                break;
            }
            let full = std::mem::take(&mut self.partial[level]);
            hash = Tile::subtree_hash(&hashes_to_bytes(&full));
            writes.insert(key, Some(hashes_to_bytes(&full)));
            level += 1;
        }
        self.size = size;
    }

    /// The tree's root hash (RFC 6962 MTH); for an empty tree, SHA-256 of nothing.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtree_roots();
        let Some(mut root) = subtrees.pop() else {
            return Hash(*crate::hash::Digest::of(&[]).as_bytes());
        };
        // Perfect subtrees from the largest (leftmost) to the smallest; the root folds them from the right.
        while let Some(left) = subtrees.pop() {
            root = node_hash(left, root);
        }
        root
    }

    /// The roots of the perfect subtrees the tree splits into, one per set bit of its size, largest first.
    /// The subtree of `2^b` leaves for bit `b = 8L + r` is the hash of `2^r` consecutive hashes of tile
    /// level L, all in its partial tile (bit r of the level's hash count is set, so they lie after the
    /// last multiple of 256).
    fn subtree_roots(&self) -> Vec<Hash> {
        let mut roots = Vec::new();
        for bit in (0..64u32).rev().filter(|b| self.size >> b & 1 == 1) {
            let level = (bit / u32::from(TILE_HEIGHT)) as usize;
            let r = bit % u32::from(TILE_HEIGHT);
            let width = self.partial[level].len();
            let end = width & !((1usize << r) - 1);
            let start = end - (1usize << r);
            roots.push(Tile::subtree_hash(&hashes_to_bytes(&self.partial[level][start..end])));
        }
        roots
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::tlog::proofs::{TileSource, root_at};

    fn leaf(i: u64) -> Hash {
        tlog_tiles::record_hash(&i.to_be_bytes())
    }

    /// RFC 6962's recursive definition, straight from the text.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Hash(*crate::hash::Digest::of(&[]).as_bytes()),
            1 => leaves[0],
            n => {
                // The largest power of two smaller than n.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(reference_root(&leaves[..k]), reference_root(&leaves[k..]))
            }
        }
    }

    #[derive(Default)]
    struct Store(HashMap<(u8, u64), Vec<u8>>);

    impl TileSource for Store {
        fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
            self.0.get(&(level, index)).map(Vec::as_slice)
        }
    }

    #[test]
    fn the_root_matches_rfc6962_at_every_size_and_batching() {
        let leaves: Vec<Hash> = (0..70_000).map(leaf).collect();
        for batch in [1usize, 7, 256, 1000] {
            let mut edge = TreeEdge::empty();
            let mut store = Store::default();
            let mut done = 0;
            for chunk in leaves.chunks(batch) {
                for w in edge.append(chunk.iter().copied()) {
                    store.0.insert((w.level, w.index), w.data);
                }
                done += chunk.len();
                let check = [1usize, 2, 3, 255, 256, 257, 65_535, 65_536, 65_537];
                if done % 4093 < batch || check.contains(&done) || done == leaves.len() {
                    assert_eq!(
                        edge.root(),
                        reference_root(&leaves[..done]),
                        "size {done}, batch {batch}"
                    );
                    assert_eq!(
                        root_at(done as u64, &store).unwrap(),
                        edge.root(),
                        "size {done} from tiles"
                    );
                    let rebuilt = TreeEdge::from_tiles(done as u64, |l, i| store.tile(l, i)).unwrap();
                    assert_eq!(rebuilt, edge, "edge rebuilt from tiles at {done}");
                }
            }
        }
    }

    #[test]
    fn a_tile_wider_than_the_tree_is_refused() {
        let mut edge = TreeEdge::empty();
        let mut store = Store::default();
        for w in edge.append((0..10).map(leaf)) {
            store.0.insert((w.level, w.index), w.data);
        }
        let err = TreeEdge::from_tiles(9, |l, i| store.tile(l, i)).unwrap_err();
        assert!(
            matches!(
                err,
                EdgeError::TileSize {
                    found: 320,
                    needed: 288,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = TreeEdge::from_tiles(300, |l, i| store.tile(l, i)).unwrap_err();
        assert!(
            matches!(err, EdgeError::MissingTile { level: 0, index: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn partial_tiles_list_each_level_with_a_remainder() {
        assert_eq!(TreeEdge::partial_tiles(0), vec![]);
        assert_eq!(TreeEdge::partial_tiles(256), vec![(1, 0, 1)]);
        assert_eq!(
            TreeEdge::partial_tiles(65_536 + 513),
            vec![(0, 258, 1), (1, 258 / 256, 2), (2, 0, 1)]
        );
    }
}
