//! Property tests over random chains: random payloads (safe integers, any Unicode strings, nesting),
//! random lengths and random batch sizes.

use ledger_core::json::MAX_SAFE_INTEGER;
use ledger_core::verify::Reason;
use ledger_core::{Entry, NewEvent, VerifyOptions};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};

use crate::common::*;

fn config() -> Config {
    // Each case seals and verifies up to 60 entries several times; keep the run short on small machines.
    // Failures are not persisted to a regressions file: proptest prints the minimal input instead.
    Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(|n| json!(n)),
        any::<i16>().prop_map(|n| json!(n)),
        // Any characters, controls and astral planes included.
        "(?s).{0,12}".prop_map(Value::String),
    ]
}

fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec(("(?s).{0,8}", inner), 0..5)
        .prop_map(|members| Value::Object(members.into_iter().collect::<Map<String, Value>>()))
}

fn payload() -> impl Strategy<Value = Value> {
    let value = leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            object(inner)
        ]
    });
    object(value)
}

/// `(payload, action_id)` of each note after the genesis entry.
fn notes_strategy(max: usize) -> impl Strategy<Value = Vec<(Value, Option<String>)>> {
    prop::collection::vec((payload(), proptest::option::of("[A-Za-z0-9_.:-]{1,20}")), 0..max)
}

fn build(notes: Vec<(Value, Option<String>)>) -> Vec<Entry> {
    let key = key(1);
    let events = notes
        .into_iter()
        .map(|(payload, action_id)| {
            let event = NewEvent::new("ledger.note", ACTOR, payload);
            match action_id {
                Some(a) => event.with_action(a),
                None => event,
            }
        })
        .collect();
    let mut chain = Vec::new();
    extend(&mut chain, vec![NewEvent::genesis(&key.public_key(), ACTOR)], &key);
    extend(&mut chain, events, &key);
    chain
}

/// The fields a flip may hit.
#[derive(Debug, Clone, Copy)]
enum Field {
    Payload,
    Signature,
    PrevChainHash,
    EventHash,
    ChainHash,
}

fn field_of(entry: &mut Entry, field: Field) -> &mut String {
    match field {
        Field::Payload => &mut entry.payload,
        Field::Signature => &mut entry.signature,
        Field::PrevChainHash => &mut entry.prev_chain_hash,
        Field::EventHash => &mut entry.event_hash,
        Field::ChainHash => &mut entry.chain_hash,
    }
}

const REPLACEMENTS: [char; 14] = ['0', '7', 'a', 'f', 'A', '"', '{', '}', ' ', ':', ',', '\\', 'x', 'é'];

/// Replaces the character at (char) position `at` with a different one.
fn flip(text: &mut String, at: Index, replacement: Index) {
    let chars: Vec<char> = text.chars().collect();
    let i = at.index(chars.len());
    let mut r = replacement.index(REPLACEMENTS.len());
    if REPLACEMENTS[r] == chars[i] {
        r = (r + 1) % REPLACEMENTS.len();
    }
    let mut flipped = chars;
    flipped[i] = REPLACEMENTS[r];
    let before = std::mem::replace(text, flipped.into_iter().collect());
    assert_ne!(&before, text);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_untampered_random_chain_verifies_in_any_batches(notes in notes_strategy(60), batch in 1usize..70) {
        let chain = build(notes);
        let report = verify(&chain);
        prop_assert!(report.valid, "{:#?}", report.first_invalid);
        prop_assert_eq!(report.entries_checked, chain.len() as u64);
        prop_assert_eq!(report.head.as_ref().map(|h| h.chain_hash.to_string()), chain.last().map(|e| e.chain_hash.clone()));
        prop_assert_eq!(report.keys.len(), 1);
        prop_assert_eq!(report.keys[0].entries_signed, chain.len() as u64);
        prop_assert_eq!(&verify_in_batches(&chain, VerifyOptions::default(), batch), &report);
        // Every entry survives its bundle line.
        for entry in &chain {
            let line = ledger_core::bundle::entry_line(entry);
            prop_assert_eq!(&ledger_core::bundle::parse_entry_line(&line).unwrap(), entry);
        }
    }

    #[test]
    fn flipping_one_character_fails_at_exactly_that_entry(
        notes in notes_strategy(60),
        entry in any::<Index>(),
        field in prop_oneof![
            Just(Field::Payload), Just(Field::Signature), Just(Field::PrevChainHash),
            Just(Field::EventHash), Just(Field::ChainHash),
        ],
        at in any::<Index>(),
        replacement in any::<Index>(),
        batch in 1usize..70,
        strict_signatures in any::<bool>(),
    ) {
        let mut chain = build(notes);
        let i = entry.index(chain.len());
        flip(field_of(&mut chain[i], field), at, replacement);
        let report = verify(&chain);
        let invalid = report.first_invalid.clone().expect("a flipped character is always detected");
        prop_assert_eq!(invalid.seq, i as u64 + 1, "{:?} {:?}", field, invalid);
        prop_assert_eq!(report.entries_checked, i as u64);
        let expected: &[Reason] = match field {
            Field::Payload => &[Reason::Malformed, Reason::NotCanonical, Reason::PayloadChanged],
            Field::Signature => &[Reason::Malformed, Reason::BadSignature],
            Field::PrevChainHash => &[Reason::Malformed, Reason::BrokenLink],
            Field::EventHash => &[Reason::Malformed, Reason::PayloadChanged],
            Field::ChainHash => &[Reason::Malformed, Reason::ChainHashMismatch],
        };
        prop_assert!(expected.contains(&invalid.reason), "{:?}: {:?}", field, invalid);
        let options = VerifyOptions { strict_signatures, ..VerifyOptions::default() };
        prop_assert_eq!(&verify_in_batches(&chain, options, batch), &report);
    }

    #[test]
    fn deleting_one_entry_fails_at_its_seq_unless_it_is_the_last(
        notes in notes_strategy(60),
        entry in any::<Index>(),
        batch in 1usize..70,
    ) {
        let mut chain = build(notes);
        let i = entry.index(chain.len());
        let last = i == chain.len() - 1;
        chain.remove(i);
        let report = verify(&chain);
        if last {
            // Without a known head, a ledger cut at its end is a shorter valid ledger.
            prop_assert!(report.valid);
            prop_assert_eq!(report.entries_checked, i as u64);
        } else {
            let invalid = report.first_invalid.clone().expect("a gap is always detected");
            prop_assert_eq!((invalid.seq, invalid.reason), (i as u64 + 1, Reason::EntryMissing));
            prop_assert_eq!(report.entries_checked, i as u64);
        }
        prop_assert_eq!(&verify_in_batches(&chain, VerifyOptions::default(), batch), &report);
    }
}
