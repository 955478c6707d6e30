//! Arbitrary bytes through the ledger's JSON parser and RFC 8785 canonicalizer (`ledger_core::json`,
//! docs/ledger-format.md §2.3), under both number rules.
//!
//! Invariants, for `Numbers::SafeIntegers` (ledger entries) and `Numbers::Any`:
//! - `parse`, `canonicalize`, `canonicalize_text` and `check_safe_numbers` never panic;
//! - a parsed value always canonicalizes, and `canonicalize_text` agrees with `parse` + `canonicalize`;
//! - canonicalization is idempotent: the canonical text parses under the same rules and canonicalizes
//!   to itself;
//! - the canonical text parses back to the same value (for `Any`, numbers are compared as the IEEE 754
//!   doubles RFC 8785 writes them as);
//! - the crate's fast canonical writer matches `serde_json_canonicalizer` byte for byte;
//! - the two number rules agree: what `SafeIntegers` accepts, `Any` accepts as the same value; and
//!   the writer's in-memory check (`check_safe_numbers`, run by `PreparedEvent::prepare`) accepts
//!   exactly the values `parse` with `SafeIntegers` accepts (the writer and the verifier must agree
//!   on what ledger JSON is).
#![no_main]

use ledger_core::json::{self, Numbers};
use serde_json::Value;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let safe = check(text, Numbers::SafeIntegers);
    let any = check(text, Numbers::Any);
    match (&safe, &any) {
        (Some(s), Some(a)) => assert_eq!(s, a, "the number rules read {text:?} differently"),
        (Some(_), None) => panic!("SafeIntegers accepts {text:?} but Any refuses it"),
        (None, Some(a)) => {
            // Any accepted it; SafeIntegers refused: the in-memory check must refuse it too.
            assert!(
                json::check_safe_numbers(a).is_err(),
                "parse(SafeIntegers) refuses {text:?} ({:?}) but check_safe_numbers accepts its value",
                json::parse(text, Numbers::SafeIntegers).unwrap_err()
            );
        }
        (None, None) => {}
    }
});

/// Parses `text` under `numbers` and checks the canonicalization invariants; the value if it parsed.
fn check(text: &str, numbers: Numbers) -> Option<Value> {
    let value = json::parse(text, numbers).ok()?;
    let canonical = json::canonicalize(&value)
        .unwrap_or_else(|e| panic!("{numbers:?}: a parsed value does not canonicalize: {e}\ninput: {text:?}"));
    assert_eq!(
        json::canonicalize_text(text, numbers).as_deref(),
        Ok(canonical.as_str()),
        "{numbers:?}: canonicalize_text disagrees with parse + canonicalize"
    );
    let reference = serde_json_canonicalizer::to_string(&value)
        .unwrap_or_else(|e| panic!("{numbers:?}: serde_json_canonicalizer refuses the value: {e}"));
    assert_eq!(
        canonical, reference,
        "{numbers:?}: canonicalize differs from serde_json_canonicalizer\ninput: {text:?}"
    );

    let reparsed = json::parse(&canonical, numbers).unwrap_or_else(|e| {
        panic!("{numbers:?}: the canonical text does not parse: {e}\ninput: {text:?}\ncanonical: {canonical:?}")
    });
    let twice = json::canonicalize(&reparsed).expect("a parsed value canonicalizes");
    assert_eq!(
        twice, canonical,
        "{numbers:?}: canonicalization is not idempotent\ninput: {text:?}"
    );
    match numbers {
        Numbers::SafeIntegers => {
            assert_eq!(
                reparsed, value,
                "canonical text reads as another value\ninput: {text:?}"
            );
            // The writer's check (PreparedEvent::prepare) must accept what the verifier's parser accepts.
            if let Err(e) = json::check_safe_numbers(&value) {
                panic!(
                    "parse(SafeIntegers) accepts {text:?} but check_safe_numbers refuses its value: {e}\n\
                     (the verifier accepts a payload that the writer refuses to write)"
                );
            }
        }
        Numbers::Any => assert!(
            same_as_doubles(&reparsed, &value),
            "canonical text reads as another value\ninput: {text:?}\ncanonical: {canonical:?}"
        ),
    }
    Some(value)
}

/// Structural equality with numbers compared as IEEE 754 doubles (how RFC 8785 writes every number).
fn same_as_doubles(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_as_doubles(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_as_doubles(v, w)))
        }
        _ => a == b,
    }
}
