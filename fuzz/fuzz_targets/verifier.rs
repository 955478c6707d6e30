//! The verifier against tampered export bundles (docs/ledger-format.md §4–§6).
//!
//! A small valid signed ledger is built once, with fixed-seed keys and the crate's own API: genesis
//! (key A), a rotation A → B, a note signed by B. Its bundle (header + 3 entry lines) is then
//! changed by the operations the fuzz input decodes to (see [`Op`]): byte edits and whole-line
//! replacements, line moves, field edits, signature malleations, and re-sealing by the key holder
//! (honestly, or with deliberately malformed signatures) or by an attacker holding a foreign key C.
//! The bundle is read as `docketops verify --bundle` reads it (lines split on `\n`, a trailing `\r`
//! dropped; the header's head is the expected head; entries up to the first unreadable line are
//! checked, that line is then `malformed`) and verified twice: with batch signatures in one batch, and
//! with strict signatures in batches of a fuzz-chosen size.
//!
//! Invariants (a violation panics, which libFuzzer reports as a crash):
//! - no panic anywhere;
//! - the untouched bundle verifies (checked once at start-up);
//! - no forgery: every entry a report counts as verified is either the original entry at that seq or an
//!   entry the key holder signed during this run; the one exception is the documented wholesale rewrite
//!   from the genesis entry under another key (§6.5) when no pinned key excludes it;
//! - batch and strict verification (and the different batch sizes) agree: same `valid`,
//!   `entries_checked`, `head`, `keys`, and `first_invalid` seq, entry id and reason. (Since the
//!   verifier dropped its batch signature path, `strict_signatures` changes nothing and this compares
//!   batch sizes; it catches a batch path that comes back. Before, it found the small-order R
//!   difference: fuzz/README.md, finding 1.)
#![no_main]

use std::sync::OnceLock;

use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::hazmat::ExpandedSecretKey;
use ledger_core::bundle::{self, BUNDLE_FORMAT, BundleHead, BundleHeader};
use ledger_core::entry::{KIND_INITIALIZED, KIND_KEY_ROTATED};
use ledger_core::hash::{self, Digest};
use ledger_core::json::{self, Numbers};
use ledger_core::keys;
use ledger_core::verify::VerifyReport;
use ledger_core::{
    ChainHead, Entry, LedgerPublicKey, LedgerSigningKey, NewEvent, PreparedEvent, Verifier, VerifyOptions, seal,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use sha2::{Digest as _, Sha512};

const SEED_A: [u8; 32] = [0xa1; 32];
const SEED_B: [u8; 32] = [0xb2; 32];
const SEED_C: [u8; 32] = [0xc3; 32];
/// At most this many operations per input: each costs little, but the verification after them does.
const MAX_OPS: usize = 8;

/// A key with the raw seed kept, for signing with a chosen nonce.
struct Key {
    seed: [u8; 32],
    signing: LedgerSigningKey,
    public: LedgerPublicKey,
}

impl Key {
    fn new(seed: [u8; 32]) -> Self {
        let signing = LedgerSigningKey::from_seed(seed);
        let public = signing.public_key();
        Key { seed, signing, public }
    }

    fn id(&self) -> &str {
        self.signing.key_id()
    }
}

struct Fixture {
    a: Key,
    b: Key,
    c: Key,
    /// The valid ledger.
    entries: Vec<Entry>,
    /// Its bundle: the header line, then one line per entry.
    lines: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn prepare(event: NewEvent, seq: u64) -> PreparedEvent {
    PreparedEvent::prepare_with_id(
        event,
        format!("evt_{seq:032x}"),
        format!("2026-01-01T00:00:0{seq}.000000Z"),
    )
    .expect("a valid fixture event")
}

fn head_of(entries: &[Entry]) -> ChainHead {
    entries.last().map_or(ChainHead::EMPTY, |e| {
        ledger_core::chain::head_of(e).expect("a sealed entry")
    })
}

fn build_fixture() -> Fixture {
    let (a, b, c) = (Key::new(SEED_A), Key::new(SEED_B), Key::new(SEED_C));
    // Three entries, the fewest that hold a genesis, a rotation and an entry signed by the rotated-in
    // key: every signature costs a verification per run and per path, which is what bounds execs/s.
    let mut entries = seal(
        &ChainHead::EMPTY,
        vec![prepare(NewEvent::genesis(&a.public, "usr_admin"), 1)],
        &a.signing,
    );
    let rotation = NewEvent::key_rotation(a.id(), &b.signing, &head_of(&entries).chain_hash, "usr_admin");
    entries.extend(seal(&head_of(&entries), vec![prepare(rotation, 2)], &a.signing));
    let note = NewEvent::new(
        "ledger.note",
        "usr_zoë",
        serde_json::json!({"amount": 12345, "text": "Grüße \u{1F600}\t\"\\", "\u{FB33}": [true, null, -7, {}]}),
    )
    .with_action("act_1");
    entries.extend(seal(&head_of(&entries), vec![prepare(note, 3)], &b.signing));

    let last = entries.last().expect("three entries");
    let header = BundleHeader {
        format: BUNDLE_FORMAT.to_string(),
        created_at: "2026-01-02T03:04:05.000000Z".to_string(),
        entries: last.seq,
        head: Some(BundleHead {
            seq: last.seq,
            chain_hash: last.chain_hash.parse().expect("a digest"),
        }),
        keys: vec![a.public.info(), b.public.info()],
    };
    let mut lines = vec![header.to_line().into_bytes()];
    lines.extend(entries.iter().map(|e| bundle::entry_line(e).into_bytes()));

    let fixture = Fixture {
        a,
        b,
        c,
        entries,
        lines,
    };
    // The untouched bundle verifies, on both paths.
    let read = read_bundle(&join(&fixture.lines));
    for strict in [false, true] {
        let report = verify(&read, options(&fixture, &read, 0, 0, strict), 1).report;
        assert!(report.valid, "the fixture ledger does not verify: {report:#?}");
        assert_eq!(report.entries_checked, 3);
    }
    fixture
}

/// An entry field, in the order of an entry line.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Field {
    Id,
    Timestamp,
    Kind,
    Actor,
    ActionId,
    Payload,
    PrevChainHash,
    EventHash,
    ChainHash,
    KeyId,
    Signature,
}

impl Field {
    fn get(self, e: &Entry) -> Option<String> {
        Some(match self {
            Field::Id => e.id.clone(),
            Field::Timestamp => e.timestamp.clone(),
            Field::Kind => e.kind.clone(),
            Field::Actor => e.actor.clone(),
            Field::ActionId => return e.action_id.clone(),
            Field::Payload => e.payload.clone(),
            Field::PrevChainHash => e.prev_chain_hash.clone(),
            Field::EventHash => e.event_hash.clone(),
            Field::ChainHash => e.chain_hash.clone(),
            Field::KeyId => e.key_id.clone(),
            Field::Signature => e.signature.clone(),
        })
    }

    fn set(self, e: &mut Entry, value: Option<String>) {
        let text = value.clone().unwrap_or_default();
        match self {
            Field::Id => e.id = text,
            Field::Timestamp => e.timestamp = text,
            Field::Kind => e.kind = text,
            Field::Actor => e.actor = text,
            Field::ActionId => e.action_id = value,
            Field::Payload => e.payload = text,
            Field::PrevChainHash => e.prev_chain_hash = text,
            Field::EventHash => e.event_hash = text,
            Field::ChainHash => e.chain_hash = text,
            Field::KeyId => e.key_id = text,
            Field::Signature => e.signature = text,
        }
    }
}

/// One change to the bundle. `line` indexes the bundle's lines (0 is the header, 1.. the entries),
/// taken modulo their number; an operation on a line that does not read as an entry does nothing.
#[derive(Arbitrary, Debug)]
enum Op {
    SetByte {
        line: u8,
        at: u16,
        byte: u8,
    },
    XorByte {
        line: u8,
        at: u16,
        mask: u8,
    },
    Insert {
        line: u8,
        at: u16,
        bytes: Vec<u8>,
    },
    Remove {
        line: u8,
        at: u16,
        len: u8,
    },
    ReplaceLine {
        line: u8,
        bytes: Vec<u8>,
    },
    DeleteLine {
        line: u8,
    },
    DuplicateLine {
        line: u8,
        to: u8,
    },
    SwapLines {
        a: u8,
        b: u8,
    },
    Truncate {
        lines: u8,
    },
    /// Sets an entry field (`None`: `action_id` null, other fields empty) and rewrites the line.
    SetField {
        line: u8,
        field: Field,
        value: Option<String>,
    },
    /// Copies a field from another entry line.
    CopyField {
        from: u8,
        to: u8,
        field: Field,
    },
    /// Moves an entry's seq.
    AddSeq {
        line: u8,
        delta: i8,
    },
    /// Sets one member of the payload object (re-canonicalized, so not a `not_canonical` trivially).
    SetPayloadMember {
        line: u8,
        name: String,
        value: i32,
    },
    /// Replaces the signature's S with S + L, the same scalar out of range (malleability without a key).
    SignatureAddL {
        line: u8,
    },
    /// Sets the header's head (and entry count) to a line's entry.
    HeaderHeadFrom {
        line: u8,
    },
    /// The key holder re-seals the entries from this line on: event and chain hashes, rotation proofs,
    /// signatures with the key each entry names (A or B; A for any other key id).
    Reseal {
        line: u8,
    },
    /// An attacker holding the foreign key C re-seals the entries from this line on, signing with C
    /// under C's own key id (and making a genesis entry introduce C) or under the key id the entry names.
    AttackerReseal {
        line: u8,
        own_key_id: bool,
    },
    /// The key holder re-signs one entry with a chosen nonce `r` and `R = [r]B + T`, `T` one of the
    /// eight torsion points (T = identity: an ordinary signature with an unusual nonce).
    HolderNonceSignature {
        line: u8,
        nonce: [u8; 32],
        torsion: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Trusted genesis keys: none, [A], [C], [A, C].
    trusted: u8,
    /// Required key: none, A, B, C.
    required: u8,
    /// The strict run's batch size, 1 + chunk % 5.
    chunk: u8,
    ops: Vec<Op>,
}

/// What the run did that the oracles must know.
#[derive(Default)]
struct Log {
    /// Entries the key holder signed (besides the fixture's).
    holder_signed: Vec<Entry>,
}

impl Log {
    /// Whether the key holder signed exactly this entry (in the fixture or during this run).
    fn legit(&self, fx: &Fixture, entry: &Entry) -> bool {
        fx.entries.contains(entry) || self.holder_signed.contains(entry)
    }
}

libfuzzer_sys::fuzz_target!(
    init: {
        // The verifier's rayon parallelism runs on this thread: a pool of one, this thread itself (no
        // hand-off to another thread per parallel call, and one core per fuzzing worker).
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .use_current_thread()
            .build_global();
        fixture();
    },
    |input: Input| run(input)
);

fn run(input: Input) {
    let fx = fixture();
    let mut lines = fx.lines.clone();
    let mut log = Log::default();
    for op in input.ops.iter().take(MAX_OPS) {
        apply(fx, &mut lines, op, &mut log);
    }
    let bundle = join(&lines);
    let (trusted, required, chunk) = (input.trusted % 4, input.required % 4, 1 + input.chunk % 5);
    // Batch signatures in one batch, as the CLI verifies a bundle of fewer than 4096 entries; strict
    // signatures in batches of 1 to 5.
    let batch = memo(&bundle, [trusted, required, 0], || {
        let read = read_bundle(&bundle);
        verify(&read, options(fx, &read, trusted, required, false), usize::MAX)
    });
    let strict = memo(&bundle, [trusted, required, chunk], || {
        let read = read_bundle(&bundle);
        verify(&read, options(fx, &read, trusted, required, true), usize::from(chunk))
    });
    for outcome in [&batch, &strict] {
        check_no_forgery(fx, outcome, &log, trusted, required);
    }
    let (batch, strict) = (&batch.report, &strict.report);
    if summary(batch) != summary(strict) {
        panic!("batch and strict verification disagree\nbatch:  {batch:#?}\nstrict: {strict:#?}");
    }
}

/// A verification of one bundle, and the entries it counted as checked.
#[derive(Clone)]
struct Outcome {
    report: VerifyReport,
    accepted: Vec<Entry>,
}

/// Verification is a pure function of the bundle and the options, and signatures are what it spends its
/// time on (an Ed25519 verification takes ~0.1 ms here): a bundle the fuzzer produced before (most
/// mutations of an input lead to a bundle already seen) is not read and verified again. `key`: trusted,
/// required, batch size (0: one batch, batch signatures; 1-5: strict signatures).
fn memo(bundle: &[u8], key: [u8; 3], verify: impl FnOnce() -> Outcome) -> Outcome {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashMap<[u8; 32], Outcome>>> = Mutex::new(None);
    let mut hasher = sha2::Sha256::new();
    hasher.update(key);
    hasher.update(bundle);
    let digest: [u8; 32] = hasher.finalize().into();
    if let Some(outcome) = SEEN.lock().unwrap().get_or_insert_with(HashMap::new).get(&digest) {
        return outcome.clone();
    }
    let outcome = verify();
    let mut seen = SEEN.lock().unwrap();
    let seen = seen.get_or_insert_with(HashMap::new);
    if seen.len() >= 100_000 {
        seen.clear();
    }
    seen.insert(digest, outcome.clone());
    outcome
}

// ---- The bundle as the CLI reads it --------------------------------------------------------------------

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

struct Read {
    /// The header, if line 1 reads as one.
    header: Option<BundleHeader>,
    /// The entries before the first unreadable line.
    entries: Vec<Entry>,
    /// Why that line is unreadable.
    unreadable: Option<String>,
}

/// Splits like `docketops verify --bundle` (`next_line`): on `\n`, dropping one `\r` before it; a line
/// that is not UTF-8 is unreadable.
fn read_bundle(bytes: &[u8]) -> Read {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &rest[..i];
                (line.strip_suffix(b"\r").unwrap_or(line), &rest[i + 1..])
            }
            None => (rest, &rest[rest.len()..]),
        };
        lines.push(std::str::from_utf8(line).map_err(|_| "is not UTF-8 text".to_string()));
        rest = next;
    }
    let mut lines = lines.into_iter();
    let header = lines
        .next()
        .and_then(|l| l.ok())
        .and_then(|l| BundleHeader::parse(l).ok());
    let mut entries = Vec::new();
    let mut unreadable = None;
    for line in lines {
        match line.and_then(bundle::parse_entry_line) {
            Ok(entry) => entries.push(entry),
            Err(message) => {
                unreadable = Some(message);
                break;
            }
        }
    }
    Read {
        header,
        entries,
        unreadable,
    }
}

fn options(fx: &Fixture, read: &Read, trusted: u8, required: u8, strict: bool) -> VerifyOptions {
    let trusted_genesis_keys = match trusted % 4 {
        0 => vec![],
        1 => vec![fx.a.public.clone()],
        2 => vec![fx.c.public.clone()],
        _ => vec![fx.a.public.clone(), fx.c.public.clone()],
    };
    let required_key = match required % 4 {
        0 => None,
        1 => Some(fx.a.public.clone()),
        2 => Some(fx.b.public.clone()),
        _ => Some(fx.c.public.clone()),
    };
    VerifyOptions {
        trusted_genesis_keys,
        required_key,
        strict_signatures: strict,
        // A bundle whose header does not read is refused by the CLI; here it is verified without an
        // expected head instead (as a database is).
        expected_head: read
            .header
            .as_ref()
            .map(|h| h.head.as_ref().map_or((0, Digest::GENESIS), |h| (h.seq, h.chain_hash))),
    }
}

/// Verifies `batch_size` entries at a time, then the unreadable line, as the CLI does.
fn verify(read: &Read, options: VerifyOptions, batch_size: usize) -> Outcome {
    let mut verifier = Verifier::new(options);
    for chunk in read.entries.chunks(batch_size.max(1)) {
        let before = verifier.entries_checked();
        let ok = verifier.check(chunk);
        assert_eq!(ok, !verifier.is_invalid(), "check's result and is_invalid disagree");
        if !ok {
            // Later batches must do nothing.
            assert!(!verifier.check(chunk), "check after a failure returned true");
            assert!(verifier.entries_checked() >= before);
            break;
        }
    }
    if !verifier.is_invalid()
        && let Some(message) = &read.unreadable
    {
        let line = verifier.entries_checked() + 2;
        verifier.fail_unreadable(format!("line {line}: {message}"));
    }
    let report = verifier.finish();
    assert_eq!(
        report.valid,
        report.first_invalid.is_none(),
        "valid and first_invalid disagree"
    );
    assert!(report.entries_checked <= read.entries.len() as u64);
    Outcome {
        accepted: read.entries[..report.entries_checked as usize].to_vec(),
        report,
    }
}

/// What batch and strict verification must agree on (messages are not stable).
fn summary(report: &VerifyReport) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        report.valid,
        report.entries_checked,
        &report.head,
        report.first_invalid.as_ref().map(|i| (i.seq, &i.entry_id, i.reason)),
        &report.keys,
    )
}

fn check_no_forgery(fx: &Fixture, outcome: &Outcome, log: &Log, trusted: u8, required: u8) {
    let Outcome { report, accepted } = outcome;
    let Some(forged) = accepted.iter().position(|e| !log.legit(fx, e)) else {
        return;
    };
    // §6.5: a ledger rewritten wholesale from its genesis entry under another key is internally
    // consistent; only a pinned genesis key or a required key refuses it. C is the attacker's key, so
    // pinning or requiring C does not. The required key is an end-of-ledger check (§6.2 step 10): in a
    // report that is invalid for another reason the rewritten prefix still counts as checked.
    let rewrite_allowed = matches!(trusted, 0 | 2 | 3) && (matches!(required, 0 | 3) || !report.valid);
    if forged == 0 && rewrite_allowed {
        return;
    }
    panic!(
        "FORGERY: entry {} was verified but neither the fixture nor the key holder signed it\n\
         entry: {:#?}\nreport: {report:#?}",
        forged + 1,
        accepted[forged]
    );
}

// ---- Operations ----------------------------------------------------------------------------------------

fn index(line: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| usize::from(line) % len)
}

/// An entry line's index (1..) among `lines`.
fn entry_index(line: u8, lines: &[Vec<u8>]) -> Option<usize> {
    (lines.len() > 1).then(|| 1 + usize::from(line) % (lines.len() - 1))
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    bundle::parse_entry_line(std::str::from_utf8(line).ok()?).ok()
}

fn apply(fx: &Fixture, lines: &mut Vec<Vec<u8>>, op: &Op, log: &mut Log) {
    match op {
        Op::SetByte { line, at, byte } => {
            if let Some(l) = index(*line, lines.len()).map(|i| &mut lines[i])
                && !l.is_empty()
            {
                let at = usize::from(*at) % l.len();
                l[at] = *byte;
            }
        }
        Op::XorByte { line, at, mask } => {
            if let Some(l) = index(*line, lines.len()).map(|i| &mut lines[i])
                && !l.is_empty()
            {
                let at = usize::from(*at) % l.len();
                l[at] ^= mask.max(&1);
            }
        }
        Op::Insert { line, at, bytes } => {
            if let Some(l) = index(*line, lines.len()).map(|i| &mut lines[i]) {
                let at = usize::from(*at) % (l.len() + 1);
                l.splice(at..at, bytes.iter().copied().take(256));
            }
        }
        Op::Remove { line, at, len } => {
            if let Some(l) = index(*line, lines.len()).map(|i| &mut lines[i])
                && !l.is_empty()
            {
                let at = usize::from(*at) % l.len();
                let end = (at + usize::from(*len) + 1).min(l.len());
                l.drain(at..end);
            }
        }
        Op::ReplaceLine { line, bytes } => {
            if let Some(i) = index(*line, lines.len()) {
                lines[i] = bytes.clone();
            }
        }
        Op::DeleteLine { line } => {
            if let Some(i) = index(*line, lines.len()) {
                lines.remove(i);
            }
        }
        Op::DuplicateLine { line, to } => {
            if let Some(i) = index(*line, lines.len()) {
                let copy = lines[i].clone();
                lines.insert(usize::from(*to) % (lines.len() + 1), copy);
            }
        }
        Op::SwapLines { a, b } => {
            if let (Some(a), Some(b)) = (index(*a, lines.len()), index(*b, lines.len())) {
                lines.swap(a, b);
            }
        }
        Op::Truncate { lines: keep } => lines.truncate(usize::from(*keep) % (lines.len() + 1)),
        Op::SetField { line, field, value } => edit_entry(lines, *line, |e| field.set(e, value.clone())),
        Op::CopyField { from, to, field } => {
            let Some(from) = entry_index(*from, lines).and_then(|i| parse_line(&lines[i])) else {
                return;
            };
            edit_entry(lines, *to, |e| field.set(e, field.get(&from)));
        }
        Op::AddSeq { line, delta } => edit_entry(lines, *line, |e| {
            e.seq = e.seq.wrapping_add_signed(i64::from(*delta));
        }),
        Op::SetPayloadMember { line, name, value } => edit_entry(lines, *line, |e| {
            if let Ok(serde_json::Value::Object(mut map)) = json::parse(&e.payload, Numbers::SafeIntegers) {
                map.insert(name.clone(), (*value).into());
                if let Ok(text) = json::canonicalize(&serde_json::Value::Object(map)) {
                    e.payload = text;
                }
            }
        }),
        Op::SignatureAddL { line } => edit_entry(lines, *line, |e| {
            if let Some(sig) = keys::signature_from_hex(&e.signature) {
                let mut bytes = sig.to_bytes();
                add_group_order(&mut bytes[32..]);
                e.signature = hex_encode(&bytes);
            }
        }),
        Op::HeaderHeadFrom { line } => {
            let Some(entry) = entry_index(*line, lines).and_then(|i| parse_line(&lines[i])) else {
                return;
            };
            let Ok(chain_hash) = entry.chain_hash.parse() else {
                return;
            };
            if let Some(mut header) = lines
                .first()
                .and_then(|l| std::str::from_utf8(l).ok())
                .and_then(|l| BundleHeader::parse(l).ok())
            {
                header.entries = entry.seq;
                header.head = Some(BundleHead {
                    seq: entry.seq,
                    chain_hash,
                });
                lines[0] = header.to_line().into_bytes();
            }
        }
        Op::Reseal { line } => reseal(fx, lines, *line, Signer::Holder, log),
        Op::AttackerReseal { line, own_key_id } => reseal(
            fx,
            lines,
            *line,
            Signer::Attacker {
                own_key_id: *own_key_id,
            },
            log,
        ),
        Op::HolderNonceSignature { line, nonce, torsion } => {
            let Some(i) = entry_index(*line, lines) else {
                return;
            };
            let Some(mut entry) = parse_line(&lines[i]) else {
                return;
            };
            // The holder re-signs only an entry it signed (whatever its signature now is).
            let unsigned = |e: &Entry| Entry {
                signature: String::new(),
                ..e.clone()
            };
            let mine = fx
                .entries
                .iter()
                .chain(&log.holder_signed)
                .any(|e| unsigned(e) == unsigned(&entry));
            if !mine {
                return;
            }
            let Some(key) = [&fx.a, &fx.b].into_iter().find(|k| k.id() == entry.key_id) else {
                return;
            };
            let Ok(chain) = entry.chain_hash.parse::<Digest>() else {
                return;
            };
            let torsion = usize::from(*torsion % 8);
            let message = keys::signature_message(&entry.key_id, &chain);
            entry.signature = signed(&[&[b'n', key.seed[0], torsion as u8], &message[..], nonce], || {
                sign_with_nonce(key, &message, nonce, torsion)
            });
            log.holder_signed.push(entry.clone());
            lines[i] = bundle::entry_line(&entry).into_bytes();
        }
    }
}

/// Reads the entry on an entry line, edits it and writes the line back (nothing if it does not read).
fn edit_entry(lines: &mut [Vec<u8>], line: u8, edit: impl FnOnce(&mut Entry)) {
    let Some(i) = entry_index(line, lines) else {
        return;
    };
    if let Some(mut entry) = parse_line(&lines[i]) {
        edit(&mut entry);
        lines[i] = bundle::entry_line(&entry).into_bytes();
    }
}

#[derive(Clone, Copy)]
enum Signer {
    Holder,
    Attacker { own_key_id: bool },
}

/// Recomputes the hashes and signatures of the entries from `line` on, linking each to the line before
/// it; stops at the first line that does not read as an entry.
fn reseal(fx: &Fixture, lines: &mut [Vec<u8>], line: u8, signer: Signer, log: &mut Log) {
    let Some(start) = entry_index(line, lines) else {
        return;
    };
    let mut prev: Option<Digest> = if start == 1 {
        Some(Digest::GENESIS)
    } else {
        let before = parse_line(&lines[start - 1]);
        // The honest key holder only links to an entry it signed: it never lends a signature (or a
        // rotation's proof of possession) to a chain an attacker made.
        if let Signer::Holder = signer
            && !before.as_ref().is_some_and(|e| log.legit(fx, e))
        {
            return;
        }
        before.and_then(|e| e.chain_hash.parse().ok())
    };
    for line in &mut lines[start..] {
        let Some(mut entry) = parse_line(line) else {
            return;
        };
        let prev_hash = match prev {
            Some(p) => p,
            None => match entry.prev_chain_hash.parse() {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let key = match signer {
            Signer::Holder => {
                if entry.key_id != fx.b.id() {
                    entry.key_id = fx.a.id().to_string();
                }
                if entry.key_id == fx.a.id() { &fx.a } else { &fx.b }
            }
            Signer::Attacker { own_key_id } => {
                if own_key_id {
                    entry.key_id = fx.c.id().to_string();
                    if entry.kind == KIND_INITIALIZED {
                        // The genesis entry introduces the attacker's key.
                        let genesis = NewEvent::genesis(&fx.c.public, &entry.actor);
                        if let Ok(payload) = json::canonicalize(&genesis.payload) {
                            entry.payload = payload;
                        }
                    }
                }
                &fx.c
            }
        };
        if let Signer::Holder = signer
            && entry.kind == KIND_KEY_ROTATED
        {
            // The incoming key's proof of possession, bound to the new place in the chain.
            if let Ok(serde_json::Value::Object(mut payload)) = json::parse(&entry.payload, Numbers::SafeIntegers)
                && let Some(incoming) = [&fx.a, &fx.b]
                    .into_iter()
                    .find(|k| payload.get("key_id").and_then(|v| v.as_str()) == Some(k.id()))
            {
                payload.insert(
                    "proof".into(),
                    signed(&[&[b'p', incoming.seed[0]], prev_hash.as_bytes()], || {
                        incoming.signing.sign_key_proof(&prev_hash).to_bytes()
                    })
                    .into(),
                );
                if let Ok(text) = json::canonicalize(&serde_json::Value::Object(payload)) {
                    entry.payload = text;
                }
            }
        }
        let event_hash = hash::event_hash(entry.canonical_event().as_bytes());
        let chain = hash::chain_hash(entry.seq, &prev_hash, &event_hash);
        entry.prev_chain_hash = prev_hash.to_string();
        entry.event_hash = event_hash.to_string();
        entry.chain_hash = chain.to_string();
        entry.signature = signed(
            &[&[b'c', key.seed[0]], entry.key_id.as_bytes(), chain.as_bytes()],
            || key.signing.sign_chain_hash(&chain).to_bytes(),
        );
        if let Signer::Holder = signer {
            log.holder_signed.push(entry.clone());
        }
        *line = bundle::entry_line(&entry).into_bytes();
        prev = Some(chain);
    }
}

/// `sign()`'s signature in hex, remembered by `what` (Ed25519 signing is deterministic, and at ~0.05 ms
/// per signature re-sealing would otherwise cost more than the rest of a run).
fn signed(what: &[&[u8]], sign: impl FnOnce() -> [u8; 64]) -> String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SIGNED: Mutex<Option<HashMap<Vec<u8>, String>>> = Mutex::new(None);
    let key = what.join(&[0xff][..]);
    let mut cache = SIGNED.lock().unwrap();
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(signature) = cache.get(&key) {
        return signature.clone();
    }
    if cache.len() >= 100_000 {
        cache.clear();
    }
    let signature = hex_encode(&sign());
    cache.insert(key, signature.clone());
    signature
}

/// An Ed25519 signature of `message` by `key` with the nonce `r` (from `nonce`) and
/// `R = [r]B + EIGHT_TORSION[torsion]`: `S = r + H(R ‖ A ‖ M)·a`. With torsion 0 this is an ordinary
/// valid signature; otherwise R carries a small-order component that no RFC 8032 signer produces.
fn sign_with_nonce(key: &Key, message: &[u8], nonce: &[u8; 32], torsion: usize) -> [u8; 64] {
    let expanded = ExpandedSecretKey::from(&key.seed);
    let r = Scalar::from_bytes_mod_order(*nonce);
    let big_r = (&r * ED25519_BASEPOINT_TABLE + EIGHT_TORSION[torsion]).compress();
    let mut h = Sha512::new();
    h.update(big_r.as_bytes());
    h.update(key.public.key.as_bytes());
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * expanded.scalar;
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(big_r.as_bytes());
    out[32..].copy_from_slice(s.as_bytes());
    out
}

/// Adds the group order L = 2^252 + 27742317777372353535851937790883648493 to a little-endian 32-byte
/// scalar (S < L, so S + L < 2^256 always fits).
fn add_group_order(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (byte, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
