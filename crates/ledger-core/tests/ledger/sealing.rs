//! Sealing a chain and verifying an untampered one.

use ledger_core::entry::{KIND_INITIALIZED, KIND_NOTE};
use ledger_core::hash::{chain_hash, event_hash};
use ledger_core::json::{self, JsonError, Numbers};
use ledger_core::keys::signature_from_hex;
use ledger_core::verify::KeyReport;
use ledger_core::{ChainHead, Digest, NewEvent, VerifyReport, seal};
use serde_json::json;

use crate::common::*;

#[test]
fn seal_links_hashes_and_signs_every_entry() {
    let key = key(1);
    let chain = chain_of(&key, 9);
    assert_eq!(chain.len(), 10);
    let public = key.public_key();
    let mut prev = Digest::GENESIS;
    for (entry, seq) in chain.iter().zip(1u64..) {
        assert_eq!(entry.seq, seq);
        assert_eq!(entry.id, entry_id(seq));
        assert_eq!(entry.timestamp, timestamp(seq));
        assert_eq!(entry.kind, if seq == 1 { KIND_INITIALIZED } else { KIND_NOTE });
        assert_eq!(entry.action_id, (seq > 1).then(|| format!("act_{seq}")));
        assert_eq!(entry.key_id, key.key_id());
        assert_eq!(entry.prev_chain_hash, prev.to_string());
        let event = event_hash(entry.canonical_event().as_bytes());
        assert_eq!(entry.event_hash, event.to_string());
        let chain_digest = chain_hash(seq, &prev, &event);
        assert_eq!(entry.chain_hash, chain_digest.to_string());
        let signature = signature_from_hex(&entry.signature).expect("128 hex digits");
        assert!(public.verify(&chain_digest, &signature), "seq {seq} signature");
        prev = chain_digest;
    }
    assert_eq!(chain[0].prev_chain_hash, format!("sha256:{}", "0".repeat(64)));
    assert_eq!(
        chain[0].payload,
        format!(
            r#"{{"algorithm":"ed25519","format":"docketops-ledger/v1","key_id":"{}","public_key":"{}"}}"#,
            key.key_id(),
            public.hex()
        )
    );
    assert_eq!(
        chain[1].payload,
        r#"{"amount":12345,"nested":{"list":[1,"two",null],"ok":true},"text":"note 2"}"#
    );
}

#[test]
fn a_sealed_chain_verifies_and_reports_its_head_and_key() {
    let key = key(1);
    let chain = chain_of(&key, 11);
    let report = verify(&chain);
    assert_valid(&report, &chain);
    assert_eq!(report.entries_checked, 12);
    assert_eq!(report.head.as_ref().map(|h| h.seq), Some(12));
    assert_eq!(
        report.keys,
        vec![KeyReport {
            info: key.public_key().info(),
            introduced_seq: 1,
            retired_seq: None,
            entries_signed: 12
        }]
    );
    assert_eq!(verify_in_batches(&chain, strict(), 5), report);
}

#[test]
fn the_report_serializes_in_the_api_shape() {
    let key = key(1);
    let chain = chain_of(&key, 2);
    let value = serde_json::to_value(verify(&chain)).unwrap();
    assert_eq!(
        value,
        json!({
            "valid": true,
            "entries_checked": 3,
            "head": {"seq": 3, "chain_hash": chain[2].chain_hash},
            "first_invalid": null,
            "keys": [{
                "key_id": key.key_id(), "algorithm": "ed25519", "public_key": key.public_key().hex(),
                "introduced_seq": 1, "retired_seq": null, "entries_signed": 3,
            }],
        })
    );
    let mut tampered = chain.clone();
    tampered[1].payload = tampered[1].payload.replace("12345", "12346");
    let value = serde_json::to_value(verify(&tampered)).unwrap();
    assert_eq!(value["first_invalid"]["seq"], 2);
    assert_eq!(value["first_invalid"]["reason"], "payload_changed");
    assert_eq!(value["first_invalid"]["entry_id"], entry_id(2));
}

#[test]
fn an_empty_ledger_is_valid_and_has_no_head() {
    let report = verify(&[]);
    assert_eq!(
        report,
        VerifyReport {
            valid: true,
            entries_checked: 0,
            head: None,
            first_invalid: None,
            keys: vec![]
        }
    );
}

#[test]
fn sealing_in_steps_or_in_parallel_gives_the_same_entries() {
    let key = key(1);
    // 40 at once takes the parallel signing path; one at a time the sequential one.
    let at_once = chain_of(&key, 39);
    let mut one_by_one = Vec::new();
    extend(&mut one_by_one, vec![NewEvent::genesis(&key.public_key(), ACTOR)], &key);
    for seq in 2..=40 {
        extend(&mut one_by_one, vec![note(seq)], &key);
    }
    assert_eq!(at_once, one_by_one);
    assert_valid(&verify(&at_once), &at_once);
}

#[test]
fn seal_continues_from_the_given_head() {
    let key = key(1);
    let chain = chain_of(&key, 4);
    let head = head(&chain);
    assert_eq!(
        head,
        ChainHead {
            seq: 5,
            chain_hash: chain[4].chain_hash.parse().unwrap()
        }
    );
    let next = seal(&head, vec![prepare(note(6), 6)], &key);
    assert_eq!(next[0].seq, 6);
    assert_eq!(next[0].prev_chain_hash, chain[4].chain_hash);
    assert!(seal(&head, vec![], &key).is_empty());
}

#[test]
fn prepare_canonicalizes_the_payload() {
    let event = NewEvent::new(
        "ledger.note",
        ACTOR,
        json!({"b": [true, {"z": 1, "y": -2}], "a": "é\n"}),
    );
    let prepared = prepare(event, 2);
    assert_eq!(prepared.payload, "{\"a\":\"é\\n\",\"b\":[true,{\"y\":-2,\"z\":1}]}");
    let canonical_event = format!(
        r#"{{"action_id":null,"actor":"{ACTOR}","id":"{}","kind":"ledger.note","payload":{},"timestamp":"{}"}}"#,
        entry_id(2),
        prepared.payload,
        timestamp(2)
    );
    assert_eq!(prepared.event_hash, Digest::of(canonical_event.as_bytes()));
}

#[test]
fn ledger_json_refuses_duplicates_and_unsafe_numbers() {
    assert_eq!(
        json::parse(r#"{"a":1,"b":{"c":1,"c":2}}"#, Numbers::SafeIntegers),
        Err(JsonError::DuplicateKey { key: "c".into() })
    );
    for (text, number) in [
        ("[9007199254740992]", "9007199254740992"),
        ("[1.5]", "1.5"),
        ("[-9007199254740992]", "-9007199254740992"),
    ] {
        assert_eq!(
            json::parse(text, Numbers::SafeIntegers),
            Err(JsonError::UnsafeNumber { number: number.into() })
        );
    }
    assert_eq!(
        json::canonicalize_text(
            r#"{ "b" : 9007199254740991, "a" : -9007199254740991 }"#,
            Numbers::SafeIntegers
        ),
        Ok(r#"{"a":-9007199254740991,"b":9007199254740991}"#.to_string())
    );
}
