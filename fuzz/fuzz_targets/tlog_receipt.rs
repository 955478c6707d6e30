//! Receipts (`tlog::receipt`): arbitrary text through `Receipt::parse`, and whatever parses through
//! `Receipt::verify` with the fixed ledger key (and the fixed witness, quorum 0 and 1).
//!
//! The fixture is a 5-entry ledger sealed with `ledger_core::seal` and a fixed key, its tree, and
//! checkpoints of every size 1..=5 signed by the same key; the seeds are its valid receipts (each entry in
//! each checkpoint that holds it, some cosigned), which libFuzzer mutates.
//!
//! Invariants: no panic; a receipt that parses writes back (`to_text`) to a receipt that parses to the
//! same value; **no forgery**: a receipt that verifies names one of the fixture's entries (its chain hash)
//! at that entry's index, under one of the checkpoints the harness signed, and its proof is the valid one.
#![no_main]

#[path = "common/tlog.rs"]
mod fixture;

use std::sync::OnceLock;

use ledger_core::tlog::checkpoint::WitnessKey;
use ledger_core::tlog::leaf_hash;
use ledger_core::tlog::proofs::inclusion_proof;
use ledger_core::tlog::receipt::Receipt;
use ledger_core::{ChainHead, Entry, LedgerPublicKey, NewEvent, PreparedEvent, seal};

struct Fixture {
    key: LedgerPublicKey,
    witness: WitnessKey,
    entries: Vec<Entry>,
    tree: fixture::Tree,
    bodies: Vec<String>,
}

fn prepare(event: NewEvent, seq: u64) -> PreparedEvent {
    PreparedEvent::prepare_with_id(
        event,
        format!("evt_{seq:032x}"),
        format!("2026-01-01T00:00:0{seq}.000000Z"),
    )
    .expect("a valid fixture event")
}

fn build() -> Fixture {
    let key = fixture::log_key();
    let mut events = vec![prepare(NewEvent::genesis(&key.public_key(), "usr_admin"), 1)];
    for seq in 2..=5u64 {
        let note = NewEvent::new(
            "ledger.note",
            "usr_fuzz",
            serde_json::json!({"n": seq, "text": "grüße"}),
        );
        events.push(prepare(note, seq));
    }
    let entries = seal(&ChainHead::EMPTY, events, &key);
    let tree = fixture::Tree::new(
        entries
            .iter()
            .map(|e| leaf_hash(&e.chain_hash.parse().expect("a sealed chain hash")))
            .collect(),
    );
    let bodies = (1..=5).map(|n| tree.checkpoint(n).body()).collect();
    Fixture {
        key: key.public_key(),
        witness: fixture::witness().public().clone(),
        entries,
        tree,
        bodies,
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let fx = build();
        // The oracle is only meaningful if the fixture's own receipts verify.
        let (note, _) = fixture::signed_notes(&fx.tree, 5);
        let receipt = Receipt {
            entry: fx.entries[2].clone(),
            index: 2,
            proof: inclusion_proof(5, 2, &fx.tree).expect("in the tree"),
            checkpoint: note,
        };
        receipt
            .verify(&[fx.key.clone()], &[], 0)
            .expect("the fixture receipt verifies");
        fx
    })
}

/// The receipt of entry `seq` in the checkpoint of `size` (the seeds; printed with `FUZZ_PRINT_SEEDS=1`).
#[allow(dead_code)]
pub fn valid_receipt(seq: u64, size: u64, cosigned: bool) -> String {
    let fx = fixture();
    let (note, cosigned_note) = fixture::signed_notes(&fx.tree, size);
    Receipt {
        entry: fx.entries[seq as usize - 1].clone(),
        index: seq - 1,
        proof: inclusion_proof(size, seq - 1, &fx.tree).expect("the entry is in the tree"),
        checkpoint: if cosigned { cosigned_note } else { note },
    }
    .to_text()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `FUZZ_PRINT_SEEDS=1` with an empty input prints the seed receipts (how the corpus was seeded).
    if text.is_empty() && std::env::var_os("FUZZ_PRINT_SEEDS").is_some() {
        for (seq, size, cosigned) in [(1, 1, false), (3, 5, false), (5, 5, true), (2, 4, true)] {
            println!("{}\u{0}", valid_receipt(seq, size, cosigned));
        }
    }
    let Ok(receipt) = Receipt::parse(text) else {
        return;
    };
    let fx = fixture();
    let again = Receipt::parse(&receipt.to_text()).expect("a written receipt parses");
    assert_eq!(again, receipt, "to_text does not round-trip");

    for quorum in [0, 1] {
        let Ok(opened) = receipt.verify(&[fx.key.clone()], &[fx.witness.clone()], quorum) else {
            continue;
        };
        let body = opened.checkpoint.body();
        let size = opened.checkpoint.size;
        let Some(original) = fx.entries.iter().find(|e| e.chain_hash == receipt.entry.chain_hash) else {
            panic!(
                "forgery: a receipt verified for an entry the fixture never sealed: {:?}",
                receipt.entry
            );
        };
        if receipt.index != original.seq - 1 {
            panic!(
                "forgery: entry seq {} verified at index {}",
                original.seq, receipt.index
            );
        }
        if !fx.bodies.contains(&body) {
            panic!("forgery: a receipt verified under an unsigned checkpoint {body:?}");
        }
        let proof = inclusion_proof(size, receipt.index, &fx.tree).expect("in the tree");
        if proof != receipt.proof {
            panic!("forgery: a receipt verified with another proof {:?}", receipt.proof);
        }
    }
});
