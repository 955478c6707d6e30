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
        assert_eq!(&parse_entry_line(&line).unwrap(), entry);
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

/// `chain()` with entry 2 replaced by what `line` reads back as.
fn with_line(line: &str) -> Vec<Entry> {
    let mut chain = chain();
    chain[1] = parse_entry_line(line).expect("a readable line");
    chain
}

#[test]
fn a_payload_that_is_not_json_is_written_as_a_string_and_reported_malformed() {
    let mut entry = chain()[1].clone();
    entry.payload = "{not json".into();
    let line = entry_line(&entry);
    assert!(line.contains(r#""payload":"{not json""#), "{line}");
    // The line keeps the payload's JSON text as it stands: here a string, which is not an object.
    let read = parse_entry_line(&line).unwrap();
    assert_eq!(read.payload, r#""{not json""#);
    assert_invalid(&verify(&with_line(&line)), 2, Reason::Malformed, 1);
}

#[test]
fn entry_lines_with_unknown_missing_or_repeated_fields_are_refused() {
    let entry = chain()[1].clone();
    let line = entry_line(&entry);
    let error = |line: &str| parse_entry_line(line).unwrap_err().to_string();

    let unknown = line.replacen("{\"seq\"", "{\"admin\":true,\"seq\"", 1);
    assert!(
        error(&unknown).starts_with("unknown field `admin`"),
        "{}",
        error(&unknown)
    );

    let missing = line.replacen(&format!(",\"key_id\":\"{}\"", entry.key_id), "", 1);
    assert_ne!(missing, line);
    assert!(
        error(&missing).starts_with("missing field `key_id`"),
        "{}",
        error(&missing)
    );

    let duplicate = line.replacen("{\"seq\":2,", "{\"seq\":2,\"seq\":2,", 1);
    assert!(
        error(&duplicate).starts_with("duplicate field `seq`"),
        "{}",
        error(&duplicate)
    );

    let wrong_type = line.replacen("\"seq\":2,", "\"seq\":\"2\",", 1);
    assert!(
        error(&wrong_type).starts_with("invalid type: string \"2\""),
        "{}",
        error(&wrong_type)
    );
    let null_id = line.replacen(&format!("\"id\":\"{}\"", entry.id), "\"id\":null", 1);
    assert!(error(&null_id).starts_with("invalid type: null"), "{}", error(&null_id));

    assert!(error(&format!("{line} x")).starts_with("trailing characters"));
    assert!(error("").contains("must be a JSON object"), "{}", error(""));
    assert!(error("{}").starts_with("missing field"));
}

#[test]
fn the_payload_of_a_line_is_judged_by_the_verifier() {
    let line = entry_line(&chain()[1]);
    let reading_of = |from: &str, to: &str| {
        let edited = line.replacen(from, to, 1);
        assert_ne!(edited, line, "{from:?} must occur in the line");
        verify(&with_line(&edited))
    };
    // Repeated keys, floats and unsafe integers inside the payload are read, then refused.
    let report = reading_of("\"amount\":12345,", "\"amount\":12345,\"amount\":12345,");
    assert_invalid(&report, 2, Reason::Malformed, 1);
    assert!(
        report
            .first_invalid
            .unwrap()
            .message
            .contains("duplicate object key \"amount\"")
    );
    assert_invalid(
        &reading_of("\"amount\":12345,", "\"amount\":1.5,"),
        2,
        Reason::Malformed,
        1,
    );
    assert_invalid(
        &reading_of("\"amount\":12345,", "\"amount\":9007199254740992,"),
        2,
        Reason::Malformed,
        1,
    );
    // The same payload, formatted differently, is the stored text changed: not canonical.
    assert_invalid(
        &reading_of("\"payload\":{\"amount\":12345,", "\"payload\":{ \"amount\" : 12345,"),
        2,
        Reason::NotCanonical,
        1,
    );
    assert_invalid(
        &reading_of("\"note 2\"", "\"note\\u00202\""),
        2,
        Reason::NotCanonical,
        1,
    );
    // Whitespace between the members of the line itself is not part of any field.
    let spaced = line.replacen("\"payload\":{", "\"payload\" : {", 1);
    assert_eq!(with_line(&spaced), chain());
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
    assert_eq!(parse_entry_line(&entry_line(&chain[2])).unwrap(), chain[2]);
}

#[test]
fn a_payload_nested_64_levels_deep_verifies() {
    let chain = sealed_with(nested_payload(64)).unwrap();
    assert_valid(&verify(&chain), &chain);
}

/// The entry object around it does not count towards the payload's nesting limit.
#[test]
fn a_payload_nested_64_levels_deep_survives_its_bundle_line() {
    let chain = sealed_with(nested_payload(64)).unwrap();
    assert_eq!(parse_entry_line(&entry_line(&chain[2])).unwrap(), chain[2]);
}

/// The writer's depth limit is the verifier's: what is sealed also verifies.
#[test]
fn the_writer_refuses_what_the_verifier_refuses() {
    match sealed_with(nested_payload(65)) {
        Err(error) => assert!(error.to_string().contains("nested deeper"), "{error}"),
        Ok(chain) => assert_valid(&verify(&chain), &chain),
    }
}

#[test]
fn an_entry_line_is_an_object_with_every_field() {
    let chain = chain_of(&key(1), 2);
    let line = entry_line(&chain[1]);
    let mut value: serde_json::Value = serde_json::from_str(&line).unwrap();
    // `action_id` may be null but not absent.
    value.as_object_mut().unwrap().remove("action_id");
    let error = parse_entry_line(&value.to_string()).unwrap_err().to_string();
    assert!(error.contains("action_id"), "{error}");
    // The same values as an array are not an entry line.
    let fields: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert!(parse_entry_line(&serde_json::Value::Array(fields).to_string()).is_err());
}
