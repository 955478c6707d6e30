//! The format's limits and the bundle's reading rules, each a decision of docs/ledger-format.md §5-§6:
//! the payload size, the header's members, the range of `seq` and blank lines.

use ledger_core::bundle::{BUNDLE_FORMAT, BundleHeader, entry_line, parse_entry_line};
use ledger_core::entry::{MAX_PAYLOAD_BYTES, canonical_event};
use ledger_core::verify::Reason;
use ledger_core::{Digest, Entry, NewEvent, PreparedEvent, Verifier, VerifyOptions, VerifyReport, hash, seal};
use serde_json::{Value, json};

use crate::common::*;

/// A chain whose entry 3 holds `payload` as its stored text, sealed and signed correctly whatever its
/// size or form (as a forger holding the key could), followed by a note.
fn chain_with_payload(payload: String) -> Vec<Entry> {
    let key = key(1);
    let mut chain = chain_of(&key, 1);
    let (id, timestamp) = (entry_id(3), timestamp(3));
    let event = canonical_event(&id, &timestamp, "ledger.note", ACTOR, None, &payload);
    let prepared = PreparedEvent {
        id,
        timestamp,
        kind: "ledger.note".into(),
        actor: ACTOR.into(),
        action_id: None,
        payload,
        event_hash: hash::event_hash(event.as_bytes()),
    };
    chain.extend(seal(&head(&chain), vec![prepared], &key));
    extend(&mut chain, notes(4, 4), &key);
    chain
}

/// `{"s":"xx…"}` of exactly `bytes` bytes.
fn payload_of(bytes: usize) -> String {
    let payload = format!("{{\"s\":\"{}\"}}", "x".repeat(bytes - 8));
    assert_eq!(payload.len(), bytes);
    payload
}

#[test]
fn a_payload_over_one_mib_is_malformed() {
    // At the limit: what the writer accepts verifies.
    let at_limit = chain_with_payload(payload_of(MAX_PAYLOAD_BYTES));
    let written = PreparedEvent::prepare_with_id(
        NewEvent::new(
            "ledger.note",
            ACTOR,
            serde_json::from_str(&at_limit[2].payload).unwrap(),
        ),
        entry_id(3),
        timestamp(3),
    )
    .expect("the writer accepts 1 MiB");
    assert_eq!(written.payload, at_limit[2].payload);
    assert_valid(&verify(&at_limit), &at_limit);

    // One byte more is malformed, although canonical, hashed and signed.
    let over = chain_with_payload(payload_of(MAX_PAYLOAD_BYTES + 1));
    let report = verify(&over);
    assert_invalid(&report, 3, Reason::Malformed, 2);
    let message = report.first_invalid.unwrap().message;
    assert!(message.contains("1048577 bytes"), "{message}");
    for batch in [1, 1000] {
        assert_eq!(
            verify_in_batches(&over, strict(), batch).first_invalid.unwrap().reason,
            Reason::Malformed
        );
    }
    // The size is checked before the form: an oversized payload that is not canonical either is
    // malformed, not not_canonical.
    let spaced = format!("{{\"s\": \"{}\"}}", "x".repeat(MAX_PAYLOAD_BYTES - 8));
    assert_invalid(&verify(&chain_with_payload(spaced)), 3, Reason::Malformed, 2);
    let spaced_small = "{\"s\": \"x\"}".to_string();
    assert_invalid(&verify(&chain_with_payload(spaced_small)), 3, Reason::NotCanonical, 2);
}

fn header_value() -> Value {
    json!({
        "format": BUNDLE_FORMAT,
        "created_at": "2026-01-02T03:04:05.000000Z",
        "entries": 2,
        "head": {"seq": 2, "chain_hash": Digest::of(b"head").to_string()},
        "keys": [key(1).public_key().info()],
    })
}

fn parses(header: &Value) -> bool {
    BundleHeader::parse(&header.to_string()).is_ok()
}

#[test]
fn every_header_member_is_required_with_its_type() {
    let good = header_value();
    assert!(parses(&good));
    for member in ["format", "created_at", "entries", "head", "keys"] {
        let mut header = good.clone();
        header.as_object_mut().unwrap().remove(member);
        assert!(!parses(&header), "without {member}");
    }
    for member in ["seq", "chain_hash"] {
        let mut header = good.clone();
        header["head"].as_object_mut().unwrap().remove(member);
        assert!(!parses(&header), "without head.{member}");
    }
    let wrong_types = [
        ("/format", json!(null)),
        ("/created_at", json!(null)),
        ("/created_at", json!(20260102)),
        ("/entries", json!(2.0)),
        ("/entries", json!("2")),
        ("/entries", json!(-2)),
        ("/head", json!([2, "sha256:"])),
        ("/head/seq", json!("2")),
        (
            "/head/chain_hash",
            json!(Digest::of(b"head").to_string().to_uppercase()),
        ),
        ("/keys", json!(null)),
        ("/keys", json!({})),
        ("/keys/0/public_key", json!(null)),
    ];
    for (pointer, value) in wrong_types {
        let mut header = good.clone();
        *header.pointer_mut(pointer).unwrap() = value.clone();
        assert!(!parses(&header), "{pointer} = {value}");
    }
    // Members inside `head` are as closed as the header's own.
    let mut header = good.clone();
    header["head"]["entries"] = json!(2);
    assert!(!parses(&header));
    // `created_at` is informational: any string; `keys` may be empty.
    let mut header = good.clone();
    header["created_at"] = json!("yesterday");
    header["keys"] = json!([]);
    assert!(parses(&header));
}

#[test]
fn head_is_required_null_for_an_empty_ledger_and_never_seq_0() {
    let empty = json!({
        "format": BUNDLE_FORMAT, "created_at": "2026-01-02T03:04:05.000000Z",
        "entries": 0, "head": null, "keys": [],
    });
    assert!(parses(&empty));
    // `head` must be there even then: a header without it does not announce an empty ledger.
    let mut headless = empty.clone();
    headless.as_object_mut().unwrap().remove("head");
    assert!(!parses(&headless));
    let mut zero = empty.clone();
    zero["head"] = json!({"seq": 0, "chain_hash": Digest::GENESIS.to_string()});
    assert!(!parses(&zero));
}

/// `chain` as a bundle: a header announcing its head, then one line per entry, each ended by `\n`.
fn bundle_text(chain: &[Entry]) -> String {
    let mut header = header_value();
    header["entries"] = json!(chain.len());
    header["head"] = json!({"seq": chain.len(), "chain_hash": chain.last().unwrap().chain_hash});
    let mut text = header.to_string() + "\n";
    for entry in chain {
        text += &entry_line(entry);
        text.push('\n');
    }
    text
}

/// Verifies a bundle the way `docketops verify --bundle` reads it (§5): lines end at `\n` (a `\r`
/// before it is dropped), the header's head is the expected head, and the first line that cannot be
/// read is `malformed` at the next expected seq.
fn verify_bundle_text(text: &str) -> VerifyReport {
    let mut lines = text.lines();
    let header = BundleHeader::parse(lines.next().expect("a header line")).expect("a valid header");
    let expected_head = header.head.map_or((0, Digest::GENESIS), |h| (h.seq, h.chain_hash));
    let mut verifier = Verifier::new(VerifyOptions {
        expected_head: Some(expected_head),
        ..VerifyOptions::default()
    });
    for line in lines {
        match parse_entry_line(line) {
            Ok(entry) if verifier.check(std::slice::from_ref(&entry)) => {}
            Ok(_) => break,
            Err(message) => {
                verifier.fail_unreadable(message.to_string());
                break;
            }
        }
    }
    verifier.finish()
}

/// `text` with its line `index` (0 is the header) replaced by `line`.
fn replace_line(text: &str, index: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[index] = line;
    lines.join("\n") + "\n"
}

#[test]
fn a_seq_beyond_u64_makes_the_line_unreadable() {
    let chain = chain_of(&key(1), 3);
    let text = bundle_text(&chain);
    assert_valid(&verify_bundle_text(&text), &chain);
    let line = entry_line(&chain[1]);
    let with_seq = |seq: &str| line.replacen("\"seq\":2,", &format!("\"seq\":{seq},"), 1);
    // 2^64, far beyond, and spellings of 2 that are not plain digits.
    for seq in [
        "18446744073709551616",
        "99999999999999999999999",
        "2.0",
        "2e0",
        "-2",
        "-0",
    ] {
        assert!(parse_entry_line(&with_seq(seq)).is_err(), "seq {seq}");
        let report = verify_bundle_text(&replace_line(&text, 2, &with_seq(seq)));
        assert_invalid(&report, 2, Reason::Malformed, 1);
        assert_eq!(report.first_invalid.unwrap().entry_id, None, "seq {seq}");
    }
    // 2^64 - 1 is a seq: the line is read, and the sequence jumps.
    assert_eq!(
        parse_entry_line(&with_seq("18446744073709551615")).unwrap().seq,
        u64::MAX
    );
    let report = verify_bundle_text(&replace_line(&text, 2, &with_seq("18446744073709551615")));
    assert_invalid(&report, 2, Reason::EntryMissing, 1);
}

#[test]
fn a_blank_line_makes_a_bundle_invalid_even_at_its_end() {
    let chain = chain_of(&key(1), 3);
    let text = bundle_text(&chain);
    assert_valid(&verify_bundle_text(&text), &chain);
    // The last line's `\n` may be missing, and `\r\n` ends lines too.
    assert_valid(&verify_bundle_text(text.trim_end_matches('\n')), &chain);
    assert_valid(&verify_bundle_text(&text.replace('\n', "\r\n")), &chain);

    // A file ending in "\n\n" has an empty last line: malformed at the seq after the head.
    for end in ["\n", "\r\n", " \n"] {
        let report = verify_bundle_text(&format!("{text}{end}"));
        assert_invalid(&report, 5, Reason::Malformed, 4);
        assert_eq!(report.first_invalid.unwrap().entry_id, None);
    }
    assert!(parse_entry_line("").unwrap_err().to_string().contains("empty line"));
    // A blank line between entries: malformed where the next entry was expected.
    let lines: Vec<&str> = text.lines().collect();
    let gap = [&lines[..3], &[""], &lines[3..]].concat().join("\n") + "\n";
    assert_invalid(&verify_bundle_text(&gap), 3, Reason::Malformed, 2);
}
