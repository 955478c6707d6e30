//! Every kind of tampering, each with the exact entry and reason the verifier must name, checked on
//! the batch and the strict signature paths and in batches of 1, 7 and 1000.

use std::sync::LazyLock;

use ledger_core::verify::Reason;
use ledger_core::{Entry, NewEvent, VerifyOptions};

use crate::common::*;

/// The untampered ledger of these tests: genesis + 11 notes, all signed with `key(1)`.
fn base() -> Vec<Entry> {
    static BASE: LazyLock<Vec<Entry>> = LazyLock::new(|| chain_of(&key(1), 11));
    BASE.clone()
}

#[derive(Debug)]
pub struct Case {
    pub name: &'static str,
    pub entries: Vec<Entry>,
    pub seq: u64,
    pub reason: Reason,
    /// Entries that verified before the first invalid one.
    pub checked: u64,
}

fn case(name: &'static str, seq: u64, reason: Reason, checked: u64, edit: impl FnOnce(&mut Vec<Entry>)) -> Case {
    let mut entries = base();
    edit(&mut entries);
    Case {
        name,
        entries,
        seq,
        reason,
        checked,
    }
}

/// Replaces exactly one occurrence of `from` in `text`.
fn replace_once(text: &mut String, from: &str, to: &str) {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once in {text:?}");
    *text = text.replacen(from, to, 1);
}

pub fn cases() -> Vec<Case> {
    use Reason::*;
    let k1 = key(1);
    let k2 = key(2);
    vec![
        // The payload.
        case("payload digit changed", 6, PayloadChanged, 5, |e| {
            replace_once(&mut e[5].payload, "12345", "12346")
        }),
        case("payload string changed", 6, PayloadChanged, 5, |e| {
            replace_once(&mut e[5].payload, "note 6", "note 7")
        }),
        case("payload not canonical (extra space)", 6, NotCanonical, 5, |e| {
            replace_once(&mut e[5].payload, r#""amount":"#, r#""amount": "#)
        }),
        case("payload not canonical (key order)", 6, NotCanonical, 5, |e| {
            e[5].payload = r#"{"text":"note 6","amount":12345,"nested":{"list":[1,"two",null],"ok":true}}"#.into()
        }),
        case("payload not canonical (escaped slash)", 6, NotCanonical, 5, |e| {
            replace_once(&mut e[5].payload, "note 6", "note\\/6")
        }),
        case("payload invalid JSON", 6, Malformed, 5, |e| {
            e[5].payload.pop();
        }),
        case("payload with a float", 6, Malformed, 5, |e| {
            replace_once(&mut e[5].payload, "12345", "12345.0")
        }),
        case("payload with an unsafe integer", 6, Malformed, 5, |e| {
            replace_once(&mut e[5].payload, "12345", "9007199254740992")
        }),
        case("payload with a duplicate key", 6, Malformed, 5, |e| {
            replace_once(&mut e[5].payload, r#""ok":true"#, r#""ok":true,"ok":true"#)
        }),
        case("payload not an object", 6, Malformed, 5, |e| {
            e[5].payload = "[1,2]".into()
        }),
        // The other hashed fields.
        case("actor changed", 6, PayloadChanged, 5, |e| {
            e[5].actor = "usr_mallory".into()
        }),
        case("timestamp changed", 6, PayloadChanged, 5, |e| {
            e[5].timestamp = timestamp(99)
        }),
        case("action_id removed", 6, PayloadChanged, 5, |e| e[5].action_id = None),
        case("kind changed", 6, PayloadChanged, 5, |e| {
            e[5].kind = "ledger.other".into()
        }),
        case("id changed", 6, PayloadChanged, 5, |e| e[5].id = entry_id(66)),
        // Order and presence.
        case("entry removed in the middle", 6, EntryMissing, 5, |e| {
            e.remove(5);
        }),
        case("genesis removed", 1, EntryMissing, 0, |e| {
            e.remove(0);
        }),
        case("seq values of two adjacent entries swapped", 5, BrokenLink, 4, |e| {
            let (a, b) = (e[4].seq, e[5].seq);
            e[4].seq = b;
            e[5].seq = a;
            e.sort_by_key(|entry| entry.seq);
        }),
        case("two adjacent entries swapped in place", 5, EntryMissing, 4, |e| {
            e.swap(4, 5)
        }),
        case("entry duplicated", 6, OutOfOrder, 6, |e| {
            let copy = e[5].clone();
            e.insert(6, copy);
        }),
        case("seq of the last entry bumped", 12, EntryMissing, 11, |e| e[11].seq = 14),
        case("first entry at seq 0", 0, OutOfOrder, 0, |e| e[0].seq = 0),
        // Hashes.
        case("chain_hash edited", 6, ChainHashMismatch, 5, |e| {
            e[5].chain_hash = e[6].chain_hash.clone()
        }),
        case("event_hash edited", 6, PayloadChanged, 5, |e| {
            e[5].event_hash = e[6].event_hash.clone()
        }),
        case("prev_chain_hash edited", 6, BrokenLink, 5, |e| {
            e[5].prev_chain_hash = e[3].chain_hash.clone()
        }),
        case("genesis prev_chain_hash not zero", 1, BrokenLink, 0, |e| {
            e[0].prev_chain_hash = e[3].chain_hash.clone()
        }),
        case("chain_hash not a digest", 6, Malformed, 5, |e| {
            e[5].chain_hash = e[5].chain_hash.to_uppercase()
        }),
        case("event_hash without prefix", 6, Malformed, 5, |e| {
            e[5].event_hash = e[5].event_hash.trim_start_matches("sha256:").into()
        }),
        // Signatures and keys.
        case("signature copied from another entry", 6, BadSignature, 5, |e| {
            e[5].signature = e[6].signature.clone()
        }),
        case("signature not hex", 6, Malformed, 5, |e| {
            e[5].signature = e[5].signature.to_uppercase()
        }),
        case("signature truncated", 6, Malformed, 5, |e| {
            e[5].signature.truncate(126);
        }),
        case(
            "re-signed with another key keeping the key_id",
            6,
            BadSignature,
            5,
            |e| resign_as(&mut e[5], &k2, [2; 32], k1.key_id()),
        ),
        case("re-signed with another key and its key_id", 6, UnknownKey, 5, |e| {
            resign_as(&mut e[5], &k2, [2; 32], k2.key_id())
        }),
        case("key_id changed to an unknown key", 6, UnknownKey, 5, |e| {
            e[5].key_id = k2.key_id().into()
        }),
        case(
            "forged entry appended, foreign key and its own key_id",
            13,
            UnknownKey,
            12,
            |e| extend(e, vec![note(13)], &k2),
        ),
        case(
            "forged entry appended, foreign key claiming the ledger's key_id",
            13,
            BadSignature,
            12,
            |e| {
                extend(e, vec![note(13)], &k2);
                resign_as(&mut e[12], &k2, [2; 32], k1.key_id());
            },
        ),
        case(
            "forged entry appended, foreign signature renamed to the ledger's key_id",
            13,
            BadSignature,
            12,
            |e| {
                extend(e, vec![note(13)], &k2);
                e[12].key_id = k1.key_id().into();
            },
        ),
        // Genesis.
        case("first entry not genesis", 1, InvalidKeyEntry, 0, |e| {
            e.clear();
            extend(e, notes(1, 5), &k1);
        }),
        case("second genesis", 13, InvalidKeyEntry, 12, |e| {
            extend(e, vec![NewEvent::genesis(&k1.public_key(), ACTOR)], &k1)
        }),
        case(
            "genesis introduces one key and is signed by another",
            1,
            InvalidKeyEntry,
            0,
            |e| {
                e.clear();
                extend(e, vec![NewEvent::genesis(&k2.public_key(), ACTOR)], &k1);
                extend(e, notes(2, 3), &k1);
            },
        ),
        case("genesis payload with a wrong key_id", 1, InvalidKeyEntry, 0, |e| {
            e.clear();
            let mut genesis = NewEvent::genesis(&k1.public_key(), ACTOR);
            genesis.payload["key_id"] = k2.key_id().into();
            extend(e, vec![genesis], &k1);
        }),
        case("genesis payload with another algorithm", 1, InvalidKeyEntry, 0, |e| {
            e.clear();
            let mut genesis = NewEvent::genesis(&k1.public_key(), ACTOR);
            genesis.payload["algorithm"] = "ed448".into();
            extend(e, vec![genesis], &k1);
        }),
        case("genesis payload with a weak public key", 1, InvalidKeyEntry, 0, |e| {
            e.clear();
            let mut genesis = NewEvent::genesis(&k1.public_key(), ACTOR);
            genesis.payload["public_key"] = format!("01{}", "00".repeat(31)).into();
            extend(e, vec![genesis], &k1);
        }),
    ]
}

#[test]
fn every_tampering_is_found_at_the_exact_entry() {
    let cases = cases();
    assert!(cases.len() >= 40);
    for case in &cases {
        let reference = verify(&case.entries);
        let Some(invalid) = &reference.first_invalid else {
            panic!("{}: tampering not detected", case.name);
        };
        assert_eq!(
            (invalid.seq, invalid.reason),
            (case.seq, case.reason),
            "{}: {invalid:#?}",
            case.name
        );
        assert_eq!(
            reference.entries_checked, case.checked,
            "{}: entries_checked",
            case.name
        );
        assert!(!reference.valid, "{}", case.name);
        // The head is the last entry that verified.
        let head_seq = reference.head.as_ref().map(|h| h.seq);
        assert_eq!(
            head_seq,
            (case.checked > 0).then_some(case.checked),
            "{}: head",
            case.name
        );
        if let Some(head) = &reference.head {
            assert_eq!(
                head.chain_hash.to_string(),
                case.entries[head.seq as usize - 1].chain_hash,
                "{}",
                case.name
            );
        }
        // Entries the verifier could attribute carry their id; a missing entry has none.
        let named = invalid.entry_id.is_some();
        assert_eq!(
            named,
            case.reason != Reason::EntryMissing,
            "{}: entry_id {:?}",
            case.name,
            invalid.entry_id
        );
        assert!(!invalid.message.is_empty());
    }
}

#[test]
fn strict_signatures_and_every_batch_size_give_the_same_report_on_every_tampering() {
    for case in cases() {
        let reference = verify(&case.entries);
        // Strict verification costs a full Ed25519 check per entry, so it runs once per case (all
        // entries in one batch); batch sizes are what the default path is exercised with.
        for (options, batch) in [
            (strict(), 1000),
            (VerifyOptions::default(), 1),
            (VerifyOptions::default(), 7),
            (VerifyOptions::default(), 1000),
        ] {
            let report = verify_in_batches(&case.entries, options.clone(), batch);
            assert_eq!(
                report, reference,
                "{}: strict={} batch={batch}",
                case.name, options.strict_signatures
            );
        }
    }
}

#[test]
fn the_untampered_base_is_valid() {
    // Guards the table above: every case starts from a ledger that verifies.
    let entries = base();
    assert_valid(&verify(&entries), &entries);
    assert_valid(&verify_in_batches(&entries, strict(), 7), &entries);
}
