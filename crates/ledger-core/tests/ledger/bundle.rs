//! Export bundle lines: the header and one JSON object per entry.

use ledger_core::bundle::{BUNDLE_FORMAT, BundleHead, BundleHeader, entry_line, parse_entry_line};
use ledger_core::verify::{Reason, verify_entries};
use ledger_core::{Digest, Entry, NewEvent, VerifyOptions};
use serde_json::json;

use crate::common::*;

fn chain() -> Vec<Entry> {
    let key = key(1);
    let mut chain = chain_of(&key, 3);
    let unicode = NewEvent::new(
        "ledger.note",
        "usr_ünïcødé",
        json!({"€": "\u{1F600}", "\u{FB33}": ["\u{0}", "\t\"\\"], "n": -9007199254740991_i64}),
    );
    extend(&mut chain, vec![unicode], &key);
    chain
}

fn header_for(chain: &[Entry]) -> BundleHeader {
    let key = key(1);
    BundleHeader {
        format: BUNDLE_FORMAT.to_string(),
        created_at: "2026-01-02T03:04:05.000000Z".to_string(),
        entries: chain.len() as u64,
        head: chain.last().map(|e| BundleHead {
            seq: e.seq,
            chain_hash: e.chain_hash.parse().unwrap(),
        }),
        keys: vec![key.public_key().info()],
    }
}

#[test]
fn entry_lines_round_trip() {
    let chain = chain();
    assert_eq!(chain[4].action_id, None);
    for entry in &chain {
        let line = entry_line(entry);
        assert!(!line.contains('\n'), "one line per entry: {line}");
        assert_eq!(parse_entry_line(&line).as_ref(), Ok(entry));
    }
}

#[test]
fn an_entry_line_has_the_fields_in_order_and_the_payload_as_an_object() {
    let chain = chain();
    let line = entry_line(&chain[1]);
    let expected = format!(
        r#"{{"seq":2,"id":"{}","timestamp":"{}","kind":"ledger.note","actor":"{ACTOR}","action_id":"act_2","payload":{},"prev_chain_hash":"{}","event_hash":"{}","chain_hash":"{}","key_id":"{}","signature":"{}"}}"#,
        entry_id(2),
        timestamp(2),
        chain[1].payload,
        chain[1].prev_chain_hash,
        chain[1].event_hash,
        chain[1].chain_hash,
        chain[1].key_id,
        chain[1].signature,
    );
    assert_eq!(line, expected);
    assert!(entry_line(&chain[4]).contains(r#""action_id":null,"#));
}

#[test]
fn a_payload_that_is_not_json_is_written_as_a_string_and_refused_on_reading() {
    let mut entry = chain()[1].clone();
    entry.payload = "{not json".into();
    let line = entry_line(&entry);
    assert!(line.contains(r#""payload":"{not json""#), "{line}");
    assert_eq!(
        parse_entry_line(&line),
        Err("field \"payload\" must be a JSON object".to_string())
    );
}

#[test]
fn entry_lines_with_unknown_missing_or_duplicate_fields_are_refused() {
    let entry = chain()[1].clone();
    let line = entry_line(&entry);
    let unknown = line.replacen("{\"seq\"", "{\"admin\":true,\"seq\"", 1);
    assert_eq!(
        parse_entry_line(&unknown),
        Err("unknown entry field \"admin\"".to_string())
    );

    let missing = line.replacen(&format!(",\"key_id\":\"{}\"", entry.key_id), "", 1);
    assert_ne!(missing, line);
    assert_eq!(
        parse_entry_line(&missing),
        Err("missing field \"key_id\"".to_string())
    );

    let duplicate = line.replacen("{\"seq\":2,", "{\"seq\":2,\"seq\":2,", 1);
    let error = parse_entry_line(&duplicate).unwrap_err();
    assert!(error.contains("duplicate object key \"seq\""), "{error}");

    let duplicate_in_payload =
        line.replacen("\"amount\":12345,", "\"amount\":12345,\"amount\":12345,", 1);
    assert_ne!(duplicate_in_payload, line);
    let error = parse_entry_line(&duplicate_in_payload).unwrap_err();
    assert!(error.contains("duplicate object key \"amount\""), "{error}");

    let float = line.replacen("\"amount\":12345,", "\"amount\":1.5,", 1);
    assert!(
        parse_entry_line(&float)
            .unwrap_err()
            .contains("number 1.5 is not allowed")
    );

    let wrong_type = line.replacen("\"seq\":2,", "\"seq\":\"2\",", 1);
    assert!(parse_entry_line(&wrong_type).unwrap_err().contains("seq"));

    assert!(
        parse_entry_line("[1]")
            .unwrap_err()
            .contains("must be a JSON object")
    );
    assert!(
        parse_entry_line(&format!("{line} x"))
            .unwrap_err()
            .contains("invalid JSON")
    );
}

#[test]
fn a_reformatted_payload_in_a_line_is_read_back_canonical_and_verifies() {
    let chain = chain();
    let mut reformatted: Vec<Entry> = chain.clone();
    let line = entry_line(&chain[1]).replacen(
        "\"payload\":{\"amount\":12345,",
        "\"payload\":{ \"text\" : \"note 2\", \"amount\":12345,",
        1,
    );
    // The payload now has "text" twice; drop the canonical one so the member order alone differs.
    let line = line.replacen(",\"text\":\"note 2\"}", "}", 1);
    reformatted[1] = parse_entry_line(&line).unwrap();
    assert_eq!(reformatted[1], chain[1]);
    assert!(verify(&reformatted).valid);
}

#[test]
fn headers_round_trip_and_are_checked() {
    let chain = chain();
    let header = header_for(&chain);
    let line = header.to_line();
    assert!(line.starts_with(r#"{"format":"docketops-ledger-bundle/v1","created_at":"2026-01-02T03:04:05.000000Z","entries":5,"head":{"seq":5,"chain_hash":"sha256:"#), "{line}");
    assert_eq!(BundleHeader::parse(&line), Ok(header.clone()));

    let empty = BundleHeader {
        entries: 0,
        head: None,
        keys: vec![],
        ..header.clone()
    };
    assert_eq!(BundleHeader::parse(&empty.to_line()), Ok(empty));

    let wrong_format = BundleHeader {
        format: "docketops-ledger-bundle/v2".into(),
        ..header.clone()
    };
    assert!(BundleHeader::parse(&wrong_format.to_line()).is_err());
    let disagreeing = BundleHeader {
        entries: 4,
        ..header.clone()
    };
    assert!(BundleHeader::parse(&disagreeing.to_line()).is_err());

    let unknown = line.replacen("{\"format\"", "{\"extra\":1,\"format\"", 1);
    assert!(BundleHeader::parse(&unknown).is_err());
    let unknown_in_key = line.replacen("\"algorithm\":", "\"comment\":\"x\",\"algorithm\":", 1);
    assert_ne!(unknown_in_key, line);
    assert!(BundleHeader::parse(&unknown_in_key).is_err());
    let duplicate = line.replacen("\"entries\":5,", "\"entries\":5,\"entries\":5,", 1);
    assert!(BundleHeader::parse(&duplicate).is_err());
    let bad_digest = line.replacen("\"chain_hash\":\"sha256:", "\"chain_hash\":\"sha512:", 1);
    assert!(BundleHeader::parse(&bad_digest).is_err());
    assert!(BundleHeader::parse(&entry_line(&chain[0])).is_err());
}

/// A whole bundle the way `docketops verify --bundle` reads it: the header's head becomes the expected
/// head, each line an entry.
fn verify_bundle(text: &str) -> ledger_core::VerifyReport {
    let mut lines = text.lines();
    let header = BundleHeader::parse(lines.next().unwrap()).unwrap();
    let entries: Vec<Entry> = lines.map(|l| parse_entry_line(l).unwrap()).collect();
    let options = VerifyOptions {
        expected_head: header.head.as_ref().map(|h| (h.seq, h.chain_hash)),
        ..VerifyOptions::default()
    };
    verify_entries(&entries, options)
}

#[test]
fn a_bundle_verifies_and_its_truncation_is_found() {
    let chain = chain();
    let mut text = header_for(&chain).to_line() + "\n";
    for entry in &chain {
        text += &entry_line(entry);
        text += "\n";
    }
    assert_valid(&verify_bundle(&text), &chain);

    let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    assert_invalid(&verify_bundle(&cut), 4, Reason::Truncated, 3);

    let head_hash: Digest = chain[4].chain_hash.parse().unwrap();
    assert!(text.starts_with(&header_for(&chain).to_line()));
    assert!(text.contains(&head_hash.to_string()));
}

/// A payload object holding arrays nested so that the payload has `levels` levels in all.
fn nested_payload(levels: usize) -> serde_json::Value {
    let mut value = json!([]);
    for _ in 2..levels {
        value = json!([value]);
    }
    json!({ "deep": value })
}

fn sealed_with(payload: serde_json::Value) -> Result<Vec<Entry>, ledger_core::EntryError> {
    let key = key(1);
    let mut chain = chain_of(&key, 1);
    let prepared = ledger_core::PreparedEvent::prepare_with_id(
        NewEvent::new("ledger.note", ACTOR, payload),
        entry_id(3),
        timestamp(3),
    )?;
    chain.extend(ledger_core::seal(&head(&chain), vec![prepared], &key));
    Ok(chain)
}

#[test]
fn a_payload_nested_63_levels_deep_verifies_and_survives_its_bundle_line() {
    let chain = sealed_with(nested_payload(63)).unwrap();
    assert_valid(&verify(&chain), &chain);
    assert_eq!(
        parse_entry_line(&entry_line(&chain[2])).as_ref(),
        Ok(&chain[2])
    );
}

#[test]
fn a_payload_nested_64_levels_deep_verifies() {
    let chain = sealed_with(nested_payload(64)).unwrap();
    assert_valid(&verify(&chain), &chain);
}

/// Known gap: the entry object adds one level in a bundle line, so a payload nested 64 levels deep
/// verifies from storage but its bundle line is refused ("JSON nested deeper than 64 levels").
#[test]
#[ignore = "known gap: parse_entry_line counts the entry object towards the payload's depth limit"]
fn a_payload_nested_64_levels_deep_survives_its_bundle_line() {
    let chain = sealed_with(nested_payload(64)).unwrap();
    assert_eq!(
        parse_entry_line(&entry_line(&chain[2])).as_ref(),
        Ok(&chain[2])
    );
}

/// Known gap: the writer's depth check lets an empty container through at the 65th level, which the
/// verifier's parser refuses, so an honestly written entry is reported `malformed`.
#[test]
#[ignore = "known gap: json::check_safe_numbers allows one more level than json::parse"]
fn the_writer_refuses_what_the_verifier_refuses() {
    match sealed_with(nested_payload(65)) {
        Err(error) => assert!(error.to_string().contains("nested deeper"), "{error}"),
        Ok(chain) => assert_valid(&verify(&chain), &chain),
    }
}
