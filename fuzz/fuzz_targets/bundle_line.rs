//! Arbitrary bytes through the export bundle's line readers (docs/ledger-format.md §5):
//! `bundle::parse_entry_line` and `BundleHeader::parse`.
//!
//! The input is cut at its first `\n`, as the bundle reader splits lines: `entry_line` writes a stored
//! payload verbatim, so an entry whose payload text holds a newline (only tampered storage has one)
//! is written as two lines (see fuzz/README.md, findings); a line read from a bundle never holds one.
//!
//! Invariants:
//! - neither reader panics, whatever the line;
//! - a line that reads as an entry writes back (`entry_line`) to a line that reads as the same entry,
//!   and writing that again gives the same line (the writer is a fixed point after one round);
//! - the second entry reader, `Entry::from_json` (API responses), agrees with the line reader on every
//!   line whose payload is canonical ledger JSON;
//! - the helpers the verifier runs on a read entry (`canonical_event`, `next_signing_key_id`,
//!   `chain::head_of`) do not panic;
//! - a header that parses writes back (`to_line`) to a line that parses to the same header, and is a
//!   fixed point after one round.
#![no_main]

use ledger_core::Entry;
use ledger_core::bundle::{self, BundleHeader};
use ledger_core::json::{self, Numbers};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // What a reader is given: one line, as `docketops verify --bundle` splits them (up to the first
    // `\n`, one `\r` before it dropped), and only if it is UTF-8.
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    entry_round_trip(line);
    header_round_trip(line);
});

fn entry_round_trip(line: &str) {
    let Ok(entry) = bundle::parse_entry_line(line) else {
        return;
    };
    // What the verifier computes from a read entry must not panic either.
    let _ = entry.canonical_event();
    let _ = ledger_core::entry::next_signing_key_id(&entry);
    let _ = ledger_core::chain::head_of(&entry);

    let written = bundle::entry_line(&entry);
    assert!(!written.contains('\n'), "an entry line holds no newline: {written:?}");
    let again = bundle::parse_entry_line(&written)
        .unwrap_or_else(|e| panic!("the written line does not read back: {e}\nline: {line:?}\nwritten: {written:?}"));
    assert_eq!(
        again, entry,
        "written line reads as another entry\nline: {line:?}\nwritten: {written:?}"
    );
    assert_eq!(bundle::entry_line(&again), written, "entry_line is not stable");

    // The API's reader re-canonicalizes the payload: on a canonical ledger payload it must agree.
    let canonical_payload = json::parse(&entry.payload, Numbers::SafeIntegers)
        .ok()
        .filter(|v| v.is_object())
        .and_then(|v| json::canonicalize(&v).ok())
        .is_some_and(|c| c == entry.payload);
    if canonical_payload {
        let value: serde_json::Value = serde_json::from_str(&written)
            .unwrap_or_else(|e| panic!("written line is not JSON: {e}\nwritten: {written:?}"));
        let from_json = Entry::from_json(value)
            .unwrap_or_else(|e| panic!("Entry::from_json refuses a readable line: {e}\nwritten: {written:?}"));
        assert_eq!(from_json, entry, "the two entry readers disagree\nwritten: {written:?}");
    }
}

fn header_round_trip(line: &str) {
    let Ok(header) = BundleHeader::parse(line) else {
        return;
    };
    let written = header.to_line();
    assert!(!written.contains('\n'), "a header line holds no newline: {written:?}");
    let again = BundleHeader::parse(&written)
        .unwrap_or_else(|e| panic!("the written header does not read back: {e}\nline: {line:?}\nwritten: {written:?}"));
    assert_eq!(
        again, header,
        "written header reads as another header\nwritten: {written:?}"
    );
    assert_eq!(again.to_line(), written, "BundleHeader::to_line is not stable");
}
