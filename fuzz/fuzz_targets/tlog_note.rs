//! Arbitrary bytes through the transparency log's text readers (docs/transparency.md):
//! `checkpoint::open`, `Checkpoint::parse_body`, `WitnessKey::parse`, `parse_log_verifier_key` and
//! `TilePath::parse`.
//!
//! Invariants:
//! - nothing panics, whatever the text;
//! - **no forgery**: a note that `open`s with the fixed log key (quorum 0, and quorum 1 of the fixed
//!   witness) carries one of the bodies the harness signed itself (sizes 1..=4 of a fixed tree), and with
//!   quorum 1 it was cosigned by the fixed witness;
//! - `parse_body` accepts only the canonical body (`body()` gives the text back);
//! - a witness key / log verifier key that parses writes back to a key that parses to the same value;
//! - a tile path that parses prints back (`to_path`) to exactly the same text.
#![no_main]

#[path = "common/tlog.rs"]
mod fixture;

use std::sync::OnceLock;

use ledger_core::LedgerPublicKey;
use ledger_core::tlog::TilePath;
use ledger_core::tlog::checkpoint::{self, Checkpoint, WitnessKey, log_verifier_key, parse_log_verifier_key};

struct Fixture {
    log: LedgerPublicKey,
    witness: WitnessKey,
    bodies: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tree = fixture::Tree::synthetic(4, 0);
        let fx = Fixture {
            log: fixture::log_key().public_key(),
            witness: fixture::witness().public().clone(),
            bodies: (1..=4).map(|n| tree.checkpoint(n).body()).collect(),
        };
        // The oracle is only meaningful if the fixture's own notes open.
        let (note, cosigned) = fixture::signed_notes(&tree, 2);
        checkpoint::open(&note, &[fx.log.clone()], &[fx.witness.clone()], 0).expect("the fixture note opens");
        checkpoint::open(&cosigned, &[fx.log.clone()], &[fx.witness.clone()], 1).expect("the cosigned note opens");
        fx
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fx = fixture();
    // `FUZZ_PRINT_SEEDS=1` with an empty input prints the seeds (how the corpus was seeded).
    if text.is_empty() && std::env::var_os("FUZZ_PRINT_SEEDS").is_some() {
        let tree = fixture::Tree::synthetic(4, 0);
        for size in 1..=4 {
            let (note, cosigned) = fixture::signed_notes(&tree, size);
            println!("{note}\u{0}{cosigned}\u{0}{}\u{0}", tree.checkpoint(size).body());
        }
        println!(
            "{}\u{0}{}\u{0}",
            fx.witness.to_vkey(),
            log_verifier_key(fixture::ORIGIN, &fx.log)
        );
        for path in [
            "tile/0/000",
            "tile/1/x001/x234/067.p/5",
            "tile/entries/000.p/1",
            "tile/entries/x001/000",
        ] {
            println!("{path}\u{0}");
        }
    }

    for quorum in [0, 1] {
        if let Ok(opened) = checkpoint::open(text, &[fx.log.clone()], &[fx.witness.clone()], quorum) {
            let body = opened.checkpoint.body();
            if !fx.bodies.contains(&body) {
                panic!("forgery: a note opened with the fixed log key carries the unsigned body {body:?}");
            }
            assert_eq!(opened.log_keys, vec![fx.log.key_id.clone()]);
            assert!(
                opened.cosigned_by.len() >= quorum,
                "quorum {quorum} met by {:?}",
                opened.cosigned_by
            );
            for (name, _) in &opened.cosigned_by {
                assert_eq!(name, &fx.witness.name);
            }
        }
    }

    if let Ok(cp) = Checkpoint::parse_body(text) {
        assert_eq!(cp.body(), text, "parse_body accepted a non-canonical body");
    }

    if let Ok(key) = WitnessKey::parse(text) {
        let vkey = key.to_vkey();
        let again = WitnessKey::parse(&vkey).expect("a written witness key parses");
        assert_eq!(again, key);
        assert_eq!(again.to_vkey(), vkey);
    }

    if let Ok((origin, key)) = parse_log_verifier_key(text) {
        let vkey = log_verifier_key(&origin, &key);
        let again = parse_log_verifier_key(&vkey).expect("a written log verifier key parses");
        assert_eq!(again, (origin, key));
    }

    if let Ok(path) = TilePath::parse(text) {
        assert_eq!(
            path.to_path(),
            text,
            "TilePath::parse accepted a non-canonical path ({path:?})"
        );
        assert!((1..=256).contains(&path.width));
        assert_eq!(TilePath::parse(&path.to_path()).unwrap(), path);
    }
});
