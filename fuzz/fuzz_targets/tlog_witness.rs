//! The witness protocol (`tlog::witness`): arbitrary bytes through `AddCheckpoint::parse`, then `decide`
//! with the fixed log key, for a fixed latest cosigned state (size 3 of the fixture's 8-leaf tree) and
//! for no state.
//!
//! Invariants: no panic; a request that parses writes back (`to_body`) to one that parses to the same
//! value; **no forgery**: when `decide` accepts, the checkpoint it returns is one the harness signed
//! (a body of the fixture tree), of a size ≥ the state's, and its root extends the state (same root at
//! equal size; the tree of the state is a prefix, as every fixture checkpoint is of the same tree).
#![no_main]

#[path = "common/tlog.rs"]
mod fixture;

use std::sync::OnceLock;

use ledger_core::LedgerPublicKey;
use ledger_core::tlog::witness::{AddCheckpoint, Cosigned, decide};

const N: u64 = 8;
const LATEST: u64 = 3;

struct Fixture {
    key: LedgerPublicKey,
    tree: fixture::Tree,
    bodies: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tree = fixture::Tree::synthetic(N, 3);
        let bodies = (1..=N).map(|n| tree.checkpoint(n).body()).collect();
        // The oracle is only meaningful if a valid request is accepted.
        let request = AddCheckpoint {
            old_size: LATEST,
            proof: ledger_core::tlog::proofs::consistency_proof(LATEST, 6, &tree).expect("in the tree"),
            checkpoint: fixture::signed_notes(&tree, 6).0,
        };
        let key = fixture::log_key().public_key();
        let state = Cosigned {
            size: LATEST,
            root: tree.roots[LATEST as usize],
        };
        decide(&request, &[key.clone()], Some(state)).expect("the fixture request is accepted");
        Fixture { key, tree, bodies }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fx = fixture();
    if text.is_empty() && std::env::var_os("FUZZ_PRINT_SEEDS").is_some() {
        use ledger_core::tlog::proofs::consistency_proof;
        for (old, new) in [(0, 3), (3, 3), (3, 4), (3, 8), (0, 8)] {
            let (note, cosigned) = fixture::signed_notes(&fx.tree, new);
            let request = AddCheckpoint {
                old_size: old,
                proof: if old == 0 {
                    vec![]
                } else {
                    consistency_proof(old, new, &fx.tree).unwrap()
                },
                checkpoint: if new == 8 { cosigned } else { note },
            };
            println!("{}\u{0}", request.to_body());
        }
    }
    let Ok(request) = AddCheckpoint::parse(text) else {
        return;
    };
    let again = AddCheckpoint::parse(&request.to_body()).expect("a written request parses");
    assert_eq!(again, request, "to_body does not round-trip");

    let latest = Cosigned {
        size: LATEST,
        root: fx.tree.roots[LATEST as usize],
    };
    for state in [Some(latest), None] {
        let Ok(cp) = decide(&request, &[fx.key.clone()], state) else {
            continue;
        };
        let body = cp.body();
        if !fx.bodies.contains(&body) {
            panic!("forgery: decide accepted an unsigned checkpoint {body:?} (state {state:?})");
        }
        if let Some(l) = state {
            if cp.size < l.size {
                panic!("forgery: decide went back from size {} to {}", l.size, cp.size);
            }
            if cp.size == l.size && cp.root != l.root {
                panic!("forgery: decide accepted another root at the state's size");
            }
        }
        if cp.root != fx.tree.roots[cp.size as usize] {
            panic!(
                "forgery: checkpoint of size {} with a root not of the fixture tree",
                cp.size
            );
        }
    }
});
