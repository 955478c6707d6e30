//! Inclusion and consistency proofs (`tlog::proofs`) over a fixed tree of 1 000 leaves (built with
//! `TreeEdge`, tiles in memory, a root at every size).
//!
//! The input picks `(size, index)` or `(from, to)`, makes the valid proof from the tiles, then applies a
//! list of mutations (bit flips, dropped/inserted/duplicated/swapped hashes, other index/size/leaf, root
//! bit flips); or it gives a raw proof (32-byte chunks of the input) with arbitrary u64 sizes/indexes.
//! Roots always follow the claimed sizes (`roots[size]` for a size in the tree, a constant no tree node
//! hashes to beyond it), as a verifier holding a signed checkpoint has them.
//!
//! Invariants: no panic; `verify_inclusion` / `verify_consistency` accept **iff** proof, sizes, index,
//! leaf and roots are exactly the valid ones (accepting anything else is a forgery; refusing the valid
//! proof is a completeness bug). Two trivial cases are valid whatever the roots, as RFC 6962 defines
//! them: a tree of size 1 whose root is the leaf (empty proof), and consistency between equal sizes with
//! equal roots (empty proof). (The first run stopped on the second with two identically flipped roots.)
#![no_main]

#[path = "common/tlog.rs"]
mod fixture;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use ledger_core::tlog::Hash;
use ledger_core::tlog::proofs::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
use libfuzzer_sys::arbitrary::{self, Arbitrary};

const N: u64 = 1000;
/// The root claimed for sizes beyond the tree: not the hash of anything.
const FAR_ROOT: Hash = Hash([0xA5; 32]);
const FAR_ROOT_2: Hash = Hash([0x5A; 32]);

fn tree() -> &'static fixture::Tree {
    static TREE: OnceLock<fixture::Tree> = OnceLock::new();
    TREE.get_or_init(|| fixture::Tree::synthetic(N, 7))
}

thread_local! {
    /// Proofs made from the tiles, by (kind, a, b): making one re-hashes tile contents (~0.3 ms), the
    /// rest of a run costs a few µs; the tree is fixed, so they are memoized (at most 2 × 500 500).
    static PROOFS: RefCell<HashMap<(bool, u64, u64), Vec<Hash>>> = RefCell::new(HashMap::new());
}

fn memo(consistency: bool, a: u64, b: u64) -> Vec<Hash> {
    PROOFS.with_borrow_mut(|m| {
        m.entry((consistency, a, b))
            .or_insert_with(|| {
                if consistency {
                    consistency_proof(a, b, tree()).expect("a proof of the tree")
                } else {
                    inclusion_proof(b, a, tree()).expect("a proof of the tree")
                }
            })
            .clone()
    })
}

/// The valid inclusion proof of leaf `index` in the tree of `size`.
fn valid_inclusion(size: u64, index: u64) -> Vec<Hash> {
    memo(false, index, size)
}

/// The valid consistency proof from `from` to `to`.
fn valid_consistency(from: u64, to: u64) -> Vec<Hash> {
    memo(true, from, to)
}

fn root(size: u64, far: Hash) -> Hash {
    if size <= N { tree().roots[size as usize] } else { far }
}

#[derive(Debug, Arbitrary)]
enum Mutation {
    FlipBit {
        hash: u8,
        bit: u8,
    },
    Drop {
        hash: u8,
    },
    Insert {
        at: u8,
        hash: [u8; 32],
    },
    /// Inserts a node of the tree: a leaf or a root of some size (what an attacker has at hand).
    InsertTreeHash {
        at: u8,
        leaf: bool,
        which: u16,
    },
    Duplicate {
        hash: u8,
    },
    Swap {
        a: u8,
        b: u8,
    },
    Reverse,
    Truncate {
        len: u8,
    },
    /// Index (inclusion) or `from` (consistency) += delta.
    ShiftFirst {
        delta: i16,
    },
    /// Size (inclusion) or `to` (consistency) += delta.
    ShiftSecond {
        delta: i16,
    },
    SetFirst {
        value: u64,
    },
    SetSecond {
        value: u64,
    },
    /// Inclusion: the leaf becomes leaf `which` of the tree.
    OtherLeaf {
        which: u16,
    },
    FlipLeafBit {
        bit: u8,
    },
    /// Flips a bit of the first (from) or second (to / inclusion) root.
    FlipRootBit {
        second: bool,
        bit: u8,
    },
}

#[derive(Debug, Arbitrary)]
enum Input {
    Inclusion {
        size: u16,
        index: u16,
        mutations: Vec<Mutation>,
    },
    Consistency {
        from: u16,
        to: u16,
        mutations: Vec<Mutation>,
    },
    RawInclusion {
        size: u64,
        index: u64,
        proof: Vec<u8>,
    },
    RawConsistency {
        from: u64,
        to: u64,
        proof: Vec<u8>,
    },
}

fn idx(i: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| i as usize % len)
}

fn flip(h: &mut Hash, bit: u8) {
    h.0[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
}

/// What the verifier is given after the mutations: the proof, the two numbers (index and size, or from
/// and to), the leaf (None: the one at the index) and the root bit flips.
struct Claim {
    proof: Vec<Hash>,
    first: u64,
    second: u64,
    leaf: Option<Hash>,
    first_root_flip: Option<u8>,
    second_root_flip: Vec<u8>,
}

fn mutate(claim: &mut Claim, mutations: &[Mutation]) {
    let t = tree();
    for m in mutations.iter().take(16) {
        let p = &mut claim.proof;
        match *m {
            Mutation::FlipBit { hash, bit } => {
                if let Some(i) = idx(hash, p.len()) {
                    flip(&mut p[i], bit);
                }
            }
            Mutation::Drop { hash } => {
                if let Some(i) = idx(hash, p.len()) {
                    p.remove(i);
                }
            }
            Mutation::Insert { at, hash } => p.insert(at as usize % (p.len() + 1), Hash(hash)),
            Mutation::InsertTreeHash { at, leaf, which } => {
                let h = if leaf {
                    t.leaves[which as usize % t.leaves.len()]
                } else {
                    t.roots[which as usize % t.roots.len()]
                };
                p.insert(at as usize % (p.len() + 1), h);
            }
            Mutation::Duplicate { hash } => {
                if let Some(i) = idx(hash, p.len()) {
                    let h = p[i];
                    p.insert(i, h);
                }
            }
            Mutation::Swap { a, b } => {
                if let (Some(a), Some(b)) = (idx(a, p.len()), idx(b, p.len())) {
                    p.swap(a, b);
                }
            }
            Mutation::Reverse => p.reverse(),
            Mutation::Truncate { len } => p.truncate(len as usize),
            Mutation::ShiftFirst { delta } => claim.first = claim.first.wrapping_add_signed(delta as i64),
            Mutation::ShiftSecond { delta } => claim.second = claim.second.wrapping_add_signed(delta as i64),
            Mutation::SetFirst { value } => claim.first = value,
            Mutation::SetSecond { value } => claim.second = value,
            Mutation::OtherLeaf { which } => claim.leaf = Some(t.leaves[which as usize % t.leaves.len()]),
            Mutation::FlipLeafBit { bit } => {
                let current = t.leaves.get(claim.first as usize).copied().unwrap_or(Hash([0x3C; 32]));
                let mut leaf = claim.leaf.unwrap_or(current);
                flip(&mut leaf, bit);
                claim.leaf = Some(leaf);
            }
            Mutation::FlipRootBit { second, bit } => {
                if second {
                    claim.second_root_flip.push(bit);
                } else {
                    claim.first_root_flip = Some(bit);
                }
            }
        }
    }
}

fn check_inclusion(proof: &[Hash], size: u64, root: Hash, index: u64, leaf: Hash) {
    let t = tree();
    // A tree of one leaf is its leaf: any (root, leaf) pair that are equal is that tree, authentic or not.
    let trivial = size == 1 && index == 0 && proof.is_empty() && root == leaf;
    let valid = trivial
        || size <= N
            && index < size
            && root == t.roots[size as usize]
            && leaf == t.leaves[index as usize]
            && valid_inclusion(size, index) == proof;
    let accepted = verify_inclusion(proof, size, root, index, leaf).is_ok();
    if accepted && !valid {
        panic!(
            "forgery: inclusion accepted for size {size}, index {index}, proof {proof:?}, root {root:?}, leaf {leaf:?}"
        );
    }
    if valid && !accepted {
        panic!("the valid inclusion proof for size {size}, index {index} was refused");
    }
}

fn check_consistency(proof: &[Hash], from: u64, from_root: Hash, to: u64, to_root: Hash) {
    let t = tree();
    // Equal sizes: a tree is consistent with itself, whichever tree it is (an empty proof, equal roots).
    let trivial = from >= 1 && from == to && proof.is_empty() && from_root == to_root;
    let valid = trivial
        || 1 <= from
            && from <= to
            && to <= N
            && from_root == t.roots[from as usize]
            && to_root == t.roots[to as usize]
            && valid_consistency(from, to) == proof;
    let accepted = verify_consistency(proof, from, from_root, to, to_root).is_ok();
    if accepted && !valid {
        panic!("forgery: consistency accepted from {from} to {to}, proof {proof:?}, roots {from_root:?} {to_root:?}");
    }
    if valid && !accepted {
        panic!("the valid consistency proof from {from} to {to} was refused");
    }
}

fn raw_hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks(32)
        .map(|c| {
            let mut h = [0; 32];
            h[..c.len()].copy_from_slice(c);
            Hash(h)
        })
        .collect()
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let t = tree();
    match input {
        Input::Inclusion { size, index, mutations } => {
            let size = 1 + size as u64 % N;
            let index = index as u64 % size;
            let proof = valid_inclusion(size, index);
            let mut claim = Claim {
                proof,
                first: index,
                second: size,
                leaf: None,
                first_root_flip: None,
                second_root_flip: vec![],
            };
            mutate(&mut claim, &mutations);
            let (index, size) = (claim.first, claim.second);
            // The leaf follows the index unless a mutation chose another one.
            let leaf = claim
                .leaf
                .unwrap_or_else(|| t.leaves.get(index as usize).copied().unwrap_or(Hash([0x3C; 32])));
            let mut root = root(size, FAR_ROOT);
            for bit in claim.second_root_flip {
                flip(&mut root, bit);
            }
            check_inclusion(&claim.proof, size, root, index, leaf);
        }
        Input::Consistency { from, to, mutations } => {
            let to = 1 + to as u64 % N;
            let from = 1 + from as u64 % to;
            let proof = valid_consistency(from, to);
            let mut claim = Claim {
                proof,
                first: from,
                second: to,
                leaf: None,
                first_root_flip: None,
                second_root_flip: vec![],
            };
            mutate(&mut claim, &mutations);
            let (from, to) = (claim.first, claim.second);
            let mut from_root = root(from, FAR_ROOT);
            let mut to_root = root(to, FAR_ROOT_2);
            if let Some(bit) = claim.first_root_flip {
                flip(&mut from_root, bit);
            }
            for bit in claim.second_root_flip {
                flip(&mut to_root, bit);
            }
            check_consistency(&claim.proof, from, from_root, to, to_root);
        }
        Input::RawInclusion { size, index, proof } => {
            let leaf = t.leaves[(index % N) as usize];
            check_inclusion(&raw_hashes(&proof), size, root(size, FAR_ROOT), index, leaf);
        }
        Input::RawConsistency { from, to, proof } => {
            check_consistency(
                &raw_hashes(&proof),
                from,
                root(from, FAR_ROOT),
                to,
                root(to, FAR_ROOT_2),
            );
        }
    }
});
