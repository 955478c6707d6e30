//! Streaming: the verifier fed a batch at a time reaches the same report as one pass over everything.

use ledger_core::verify::Reason;
use ledger_core::{Entry, NewEvent, Verifier, VerifyOptions};

use crate::common::*;

fn long_chain() -> Vec<Entry> {
    let (k1, k2) = (key(1), key(2));
    let mut chain = chain_of(&k1, 16);
    let rotation = NewEvent::key_rotation(k1.key_id(), &k2, &head(&chain).chain_hash, ACTOR);
    extend(&mut chain, vec![rotation], &k1);
    extend(&mut chain, notes(19, 40), &k2);
    chain
}

#[test]
fn batches_of_1_7_and_1000_give_identical_reports() {
    let chain = long_chain();
    let whole = verify(&chain);
    assert_valid(&whole, &chain);
    assert_eq!(
        whole.keys.iter().map(|k| k.entries_signed).collect::<Vec<_>>(),
        vec![18, 22]
    );
    for batch in [1, 7, 1000] {
        assert_eq!(
            verify_in_batches(&chain, VerifyOptions::default(), batch),
            whole,
            "batch {batch}"
        );
    }
}

#[test]
fn a_bad_entry_in_a_later_batch_is_found_there() {
    let mut chain = long_chain();
    chain[19].payload = chain[19].payload.replace("12345", "12344");
    let mut verifier = Verifier::new(VerifyOptions::default());
    let results: Vec<(bool, u64)> = chain
        .chunks(7)
        .map(|batch| {
            let ok = verifier.check(batch);
            (ok, verifier.entries_checked())
        })
        .collect();
    // Seq 20 is in the third batch (seqs 15..=21).
    assert_eq!(
        results,
        vec![
            (true, 7),
            (true, 14),
            (false, 19),
            (false, 19),
            (false, 19),
            (false, 19)
        ]
    );
    let report = verifier.finish();
    assert_invalid(&report, 20, Reason::PayloadChanged, 19);
    for batch in [1, 7, 1000] {
        for options in [VerifyOptions::default(), strict()] {
            assert_eq!(verify_in_batches(&chain, options, batch), report, "batch {batch}");
        }
    }
}

/// Entries at indexes `a` and `b` (seqs a+1 and b+1) tampered: a signature at one, an ordered check at
/// the other.
fn signature_and_link_failures(signature_at: usize, payload_at: usize) -> Vec<Entry> {
    let mut chain = long_chain();
    chain[signature_at].signature = chain[signature_at + 1].signature.clone();
    chain[payload_at].payload = chain[payload_at].payload.replace("12345", "12344");
    chain
}

#[test]
fn in_one_batch_an_earlier_signature_failure_wins_over_a_later_ordered_failure() {
    // Indexes 2 and 5 are in the same batch for every batch size tested except 1.
    let chain = signature_and_link_failures(2, 5);
    let reference = verify(&chain);
    assert_invalid(&reference, 3, Reason::BadSignature, 2);
    for batch in [1, 7, 1000] {
        for options in [VerifyOptions::default(), strict()] {
            assert_eq!(verify_in_batches(&chain, options, batch), reference, "batch {batch}");
        }
    }
}

#[test]
fn in_one_batch_an_earlier_ordered_failure_wins_over_a_later_signature_failure() {
    let chain = signature_and_link_failures(5, 2);
    let reference = verify(&chain);
    assert_invalid(&reference, 3, Reason::PayloadChanged, 2);
    for batch in [1, 7, 1000] {
        for options in [VerifyOptions::default(), strict()] {
            assert_eq!(verify_in_batches(&chain, options, batch), reference, "batch {batch}");
        }
    }
}

#[test]
fn the_first_of_many_bad_signatures_is_named_across_signature_chunks() {
    // Signatures are batch-verified in chunks of 64: bad ones in two different chunks.
    let k1 = key(1);
    let mut chain = chain_of(&k1, 149);
    chain[130].signature = chain[131].signature.clone();
    chain[70].signature = chain[71].signature.clone();
    let reference = verify(&chain);
    assert_invalid(&reference, 71, Reason::BadSignature, 70);
    assert_eq!(reference.keys[0].entries_signed, 70);
    for batch in [1, 7, 64, 65, 1000] {
        assert_eq!(
            verify_in_batches(&chain, VerifyOptions::default(), batch),
            reference,
            "batch {batch}"
        );
    }
    assert_eq!(verify_in_batches(&chain, strict(), 7), reference, "strict");
}

#[test]
fn an_entry_that_cannot_be_read_is_reported_at_the_next_seq() {
    let chain = long_chain();
    let mut verifier = Verifier::new(VerifyOptions::default());
    assert!(verifier.check(&chain[..10]));
    verifier.fail_unreadable("line 12: not JSON");
    assert!(verifier.is_invalid());
    assert!(!verifier.check(&chain[10..]));
    // A second unreadable line does not replace the first failure.
    verifier.fail_unreadable("line 13: not JSON either");
    let report = verifier.finish();
    assert_invalid(&report, 11, Reason::Malformed, 10);
    let invalid = report.first_invalid.unwrap();
    assert_eq!(
        (invalid.entry_id, invalid.message.as_str()),
        (None, "line 12: not JSON")
    );
}
