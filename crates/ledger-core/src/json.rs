//! JSON parsing and RFC 8785 (JCS) canonicalization.
//!
//! `serde_json` silently keeps the last of duplicate object keys, and RFC 8785 requires I-JSON input
//! (RFC 7493), which forbids them. So input is parsed through [`parse`], a small visitor that builds a
//! `serde_json::Value` and refuses duplicates; the canonical form itself comes from
//! `serde_json_canonicalizer`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The largest integer magnitude a ledger entry may hold: 2^53 − 1, the last integer an IEEE 754 double
/// (and so every JSON implementation) represents exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Nesting deeper than this is refused (it would only serve to exhaust the stack).
pub const MAX_DEPTH: usize = 64;

/// Which numbers a document may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Any JSON number, as RFC 8785 allows (canonicalized as IEEE 754 doubles).
    Any,
    /// Only integers within ±(2^53 − 1): the rule for ledger entries.
    SafeIntegers,
}

/// Why a JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON (also: trailing text, or a string with an escaped lone surrogate).
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// An object holds the same member name twice, at any depth.
    #[error("duplicate object key {key:?}")]
    DuplicateKey {
        /// The repeated member name.
        key: String,
    },
    /// A number that is not an integer within ±(2^53 − 1), where only those are allowed (ledger payloads).
    #[error(
        "number {number} is not allowed: ledger entries hold only integers within ±(2^53−1); write floats and larger integers as strings"
    )]
    UnsafeNumber {
        /// The refused number.
        number: String,
    },
    /// Arrays and objects nest deeper than [`MAX_DEPTH`] levels.
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The RFC 8785 canonicalizer refused the value.
    #[error("cannot canonicalize: {0}")]
    Canonicalize(String),
}

/// Parses `text` as JSON, refusing duplicate keys, nesting beyond [`MAX_DEPTH`] and, with
/// [`Numbers::SafeIntegers`], floats and integers beyond ±(2^53 − 1).
pub fn parse(text: &str, numbers: Numbers) -> Result<Value, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue { numbers, depth: 0 }
        .deserialize(&mut deserializer)
        .map_err(|e| classify(e, numbers))?;
    deserializer.end().map_err(|e| JsonError::Syntax(e.to_string()))?;
    Ok(value)
}

/// The RFC 8785 canonical form of `value`.
pub fn canonicalize(value: &Value) -> Result<String, JsonError> {
    let mut out = Vec::with_capacity(256);
    if write_safe_integer_document(value, &mut out) {
        return String::from_utf8(out).map_err(|e| JsonError::Canonicalize(e.to_string()));
    }
    serde_json_canonicalizer::to_string(value).map_err(|e| JsonError::Canonicalize(e.to_string()))
}

/// RFC 8785 for documents whose numbers are all integers within ±(2^53 − 1), i.e. every ledger
/// payload; returns false (and the output is to be discarded) on any other number.
///
/// Why by hand: canonicalization is on the hot path of every append and every verified entry, and
/// `serde_json_canonicalizer` spends most of its time on what such documents do not need (re-encoding
/// every key as UTF-16, formatting numbers as doubles). For them JCS reduces to: members sorted by
/// UTF-16 code units, strings escaped as serde_json escapes them (`\"`, `\\`, the short forms and
/// lowercase `\u00xx` for control characters, everything else literal), integers in decimal. A
/// property test checks this writer against `serde_json_canonicalizer` byte for byte.
fn write_safe_integer_document(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match n.as_i64() {
            Some(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) => {
                out.extend_from_slice(i.to_string().as_bytes())
            }
            _ => return false,
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_safe_integer_document(item, out) {
                    return false;
                }
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| utf16_order(a, b));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                if !write_safe_integer_document(item, out) {
                    return false;
                }
            }
            out.push(b'}');
        }
    }
    true
}

/// RFC 8785 §3.2.3: member names sort by their UTF-16 code units. Byte order agrees for ASCII.
fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Parses `text` and returns its canonical form (what `docketops ledger canonicalize` prints).
pub fn canonicalize_text(text: &str, numbers: Numbers) -> Result<String, JsonError> {
    canonicalize(&parse(text, numbers)?)
}

/// The RFC 8785 form of a single string (quotes and escapes included).
pub fn canonical_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(s, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Checks that an in-memory value obeys the ledger's number rule (values built in code never went
/// through [`parse`]).
pub fn check_safe_numbers(value: &Value) -> Result<(), JsonError> {
    check_depth_and_numbers(value, 0)
}

fn check_depth_and_numbers(value: &Value, depth: usize) -> Result<(), JsonError> {
    // The same limit as `parse`: no array or object at depth MAX_DEPTH or deeper.
    if depth >= MAX_DEPTH && (value.is_array() || value.is_object()) {
        return Err(JsonError::TooDeep);
    }
    match value {
        Value::Number(n) => check_number(n),
        Value::Array(items) => items.iter().try_for_each(|v| check_depth_and_numbers(v, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|v| check_depth_and_numbers(v, depth + 1)),
        _ => Ok(()),
    }
}

fn check_number(n: &Number) -> Result<(), JsonError> {
    let safe = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i),
        (None, Some(u)) => u <= MAX_SAFE_INTEGER as u64,
        _ => false,
    };
    if safe {
        Ok(())
    } else {
        Err(JsonError::UnsafeNumber { number: n.to_string() })
    }
}

// The visitor reports its own errors through serde's string channel; these prefixes let `classify`
// turn them back into typed errors.
const DUPLICATE: &str = "\u{1}duplicate:";
const UNSAFE: &str = "\u{1}unsafe:";
const TOO_DEEP: &str = "\u{1}too-deep";

fn classify(error: serde_json::Error, _numbers: Numbers) -> JsonError {
    let message = error.to_string();
    if let Some(rest) = message.strip_prefix(DUPLICATE) {
        return JsonError::DuplicateKey {
            key: strip_position(rest).to_string(),
        };
    }
    if let Some(rest) = message.strip_prefix(UNSAFE) {
        return JsonError::UnsafeNumber {
            number: strip_position(rest).to_string(),
        };
    }
    if message.starts_with(TOO_DEEP) {
        return JsonError::TooDeep;
    }
    JsonError::Syntax(message)
}

/// serde_json appends " at line L column C" to custom errors.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

struct StrictValue {
    numbers: Numbers,
    depth: usize,
}

impl StrictValue {
    fn nested<E: de::Error>(&self) -> Result<StrictValue, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(StrictValue {
            numbers: self.numbers,
            depth: self.depth + 1,
        })
    }

    fn integer<E: de::Error>(&self, n: Number) -> Result<Value, E> {
        if self.numbers == Numbers::SafeIntegers && check_number(&n).is_err() {
            return Err(E::custom(format_args!("{UNSAFE}{n}")));
        }
        Ok(Value::Number(n))
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.integer(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.integer(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if self.numbers == Numbers::SafeIntegers {
            return Err(E::custom(format_args!("{UNSAFE}{v}")));
        }
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // An empty array or object at the limit asks for no nested value: check the container itself.
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(TOO_DEEP));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested()?)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(TOO_DEEP));
        }
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.nested()?)?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE}{key}")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(text: &str) -> String {
        canonicalize_text(text, Numbers::Any).unwrap()
    }

    #[test]
    fn sorts_keys_by_utf16_code_units_and_drops_whitespace() {
        // RFC 8785 §3.2.3: sorting is by UTF-16 code units, so U+1F600 (a surrogate pair starting 0xD83D)
        // sorts before U+FB33 even though its code point is larger.
        assert_eq!(jcs(r#"{ "b": 1, "a": [ true , null ] }"#), r#"{"a":[true,null],"b":1}"#);
        assert_eq!(
            jcs("{\"\u{FB33}\":1,\"\u{1F600}\":2}"),
            "{\"\u{1F600}\":2,\"\u{FB33}\":1}"
        );
    }

    #[test]
    fn rfc8785_number_and_string_examples() {
        // From RFC 8785 §3.2.2.3 and appendix B.
        assert_eq!(
            jcs("[1E30, 4.50, 2e-3, 0.000001, 1e21, -0]"),
            "[1e+30,4.5,0.002,0.000001,1e+21,0]"
        );
        assert_eq!(
            jcs(r#""\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/""#),
            "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\""
        );
    }

    fn arbitrary_document() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        // Keys and strings from a mix of ASCII, control characters, BMP characters above U+E000 and
        // astral ones: where UTF-8 and UTF-16 orders differ, and where escaping matters.
        let text = proptest::collection::vec(
            prop_oneof![
                proptest::char::range('a', 'e'),
                proptest::char::range('\u{0}', '\u{1f}'),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('\u{7f}'),
                Just('\u{2028}'),
                proptest::char::range('\u{e000}', '\u{e002}'),
                proptest::char::range('\u{fb33}', '\u{fb34}'),
                proptest::char::range('\u{1f600}', '\u{1f601}'),
            ],
            0..6,
        )
        .prop_map(|chars| chars.into_iter().collect::<String>());
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(Value::from),
            text.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(text.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_fast_writer_matches_serde_json_canonicalizer(document in arbitrary_document()) {
            let mut fast = Vec::new();
            proptest::prop_assert!(write_safe_integer_document(&document, &mut fast));
            let reference = serde_json_canonicalizer::to_string(&document).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(fast).unwrap(), reference);
        }
    }

    #[test]
    fn floats_and_large_integers_take_the_general_path() {
        for text in ["[1.5]", "[9007199254740993]", "[1e300]"] {
            let value = parse(text, Numbers::Any).unwrap();
            assert!(!write_safe_integer_document(&value, &mut Vec::new()), "{text}");
            assert_eq!(
                canonicalize(&value).unwrap(),
                serde_json_canonicalizer::to_string(&value).unwrap()
            );
        }
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let err = parse(r#"{"a":{"x":1,"x":2}}"#, Numbers::Any).unwrap_err();
        assert_eq!(err, JsonError::DuplicateKey { key: "x".into() });
    }

    #[test]
    fn ledger_numbers_are_safe_integers_only() {
        assert!(parse("[9007199254740991, -9007199254740991]", Numbers::SafeIntegers).is_ok());
        for bad in [
            "9007199254740992",
            "-9007199254740992",
            "1.5",
            "1e3",
            "18446744073709551616",
        ] {
            let err = parse(bad, Numbers::SafeIntegers).unwrap_err();
            assert!(matches!(err, JsonError::UnsafeNumber { .. }), "{bad}: {err:?}");
        }
        assert!(check_safe_numbers(&serde_json::json!({"a": [1.5]})).is_err());
        assert!(check_safe_numbers(&serde_json::json!({"a": [1, "1.5"]})).is_ok());
    }

    #[test]
    fn refuses_trailing_garbage_lone_surrogates_and_deep_nesting() {
        assert!(matches!(parse("{} x", Numbers::Any), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(r#""\ud800""#, Numbers::Any), Err(JsonError::Syntax(_))));
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep, Numbers::Any), Err(JsonError::TooDeep));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        // One level more, with an empty array or object innermost (found by fuzzing).
        for inner in ["[]", "{}"] {
            let nested = "[".repeat(MAX_DEPTH) + inner + &"]".repeat(MAX_DEPTH);
            assert!(parse(&nested, Numbers::SafeIntegers).is_err(), "{inner} at level 65");
            let objects = r#"{"a":"#.repeat(MAX_DEPTH) + inner + &"}".repeat(MAX_DEPTH);
            assert!(
                parse(&objects, Numbers::SafeIntegers).is_err(),
                "{inner} in objects at level 65"
            );
        }
        assert!(parse(&ok, Numbers::Any).is_ok());
    }
}
