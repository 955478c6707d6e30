//! Fixtures shared by the `tlog_*` targets: a tree built with `TreeEdge`, its tiles in memory, its root at
//! every size, and checkpoints of it signed by a fixed log key (cosigned by a fixed witness).
#![allow(dead_code)]

use std::collections::HashMap;

use ledger_core::LedgerSigningKey;
use ledger_core::hash::Digest;
use ledger_core::tlog::checkpoint::{Checkpoint, WitnessSigner, add_signature_lines};
use ledger_core::tlog::proofs::TileSource;
use ledger_core::tlog::{Hash, TreeEdge, leaf_hash};

pub const ORIGIN: &str = "log.example/fuzz";
pub const LOG_SEED: [u8; 32] = [11; 32];
pub const WITNESS_SEED: [u8; 32] = [12; 32];
pub const WITNESS_NAME: &str = "witness.example/w1";

/// A tree held in memory: its leaf hashes, its tiles, and `roots[n]`, the root of its first n leaves.
pub struct Tree {
    pub leaves: Vec<Hash>,
    pub tiles: HashMap<(u8, u64), Vec<u8>>,
    pub roots: Vec<Hash>,
}

impl TileSource for Tree {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.tiles.get(&(level, index)).map(Vec::as_slice)
    }
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Tree {
        let mut edge = TreeEdge::empty();
        let mut tiles = HashMap::new();
        let mut roots = vec![Hash(*Digest::of(&[]).as_bytes())];
        for leaf in &leaves {
            for w in edge.append([*leaf]) {
                tiles.insert((w.level, w.index), w.data);
            }
            roots.push(edge.root());
        }
        Tree { leaves, tiles, roots }
    }

    /// Leaves `leaf_hash(SHA-256(salt ‖ i))`, i < n.
    pub fn synthetic(n: u64, salt: u8) -> Tree {
        Tree::new(
            (0..n)
                .map(|i| {
                    let mut data = vec![salt];
                    data.extend_from_slice(&i.to_le_bytes());
                    leaf_hash(&Digest::of(&data))
                })
                .collect(),
        )
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    pub fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_string(),
            size,
            root: self.roots[size as usize],
        }
    }
}

pub fn log_key() -> LedgerSigningKey {
    LedgerSigningKey::from_seed(LOG_SEED)
}

pub fn witness() -> WitnessSigner {
    WitnessSigner::new(WITNESS_NAME, ed25519_dalek::SigningKey::from_bytes(&WITNESS_SEED)).expect("a valid name")
}

/// The checkpoint at `size` signed by the log key, and the same note cosigned by the fixed witness.
pub fn signed_notes(tree: &Tree, size: u64) -> (String, String) {
    let cp = tree.checkpoint(size);
    let note = cp.sign(&log_key()).expect("a valid origin");
    let cosigned = add_signature_lines(&note, &[witness().cosign(&cp.body(), 1_700_000_000 + size)]);
    (note, cosigned)
}
