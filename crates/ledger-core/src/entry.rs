//! The ledger entry model (docs/ledger-format.md §2).

use domain::EntryKind;
pub use domain::time::format_timestamp;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;

use crate::hash::{self, Digest};
use crate::json::{self, JsonError, Numbers};
use crate::keys::{self, LedgerPublicKey, LedgerSigningKey};

/// The first entry of every ledger: introduces the first signing key.
pub const KIND_INITIALIZED: &str = EntryKind::LedgerInitialized.as_str();
/// Introduces a new signing key; signed by the outgoing one.
pub const KIND_KEY_ROTATED: &str = EntryKind::LedgerKeyRotated.as_str();
/// A free-form note written by an operator (`docketops ledger append`).
pub const KIND_NOTE: &str = EntryKind::LedgerNote.as_str();

/// The format name written into the genesis entry and export bundles.
pub const FORMAT: &str = "docketops-ledger/v1";

/// Largest canonical payload accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Why an event cannot become an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The kind is not two or more dot-separated words of `[a-z][a-z0-9_]*`, or is longer than 64 bytes.
    #[error("invalid kind {0:?}: expected dot-separated lowercase words such as \"action.requested\"")]
    Kind(String),
    /// The actor is empty, longer than 256 characters, or holds a control character.
    #[error("invalid actor: expected 1 to 256 printable characters")]
    Actor,
    /// The action id is not 1 to 128 characters of `[A-Za-z0-9_.:-]`.
    #[error("invalid action_id {0:?}: expected 1 to 128 characters of [A-Za-z0-9_.:-]")]
    ActionId(String),
    /// The payload is not a JSON object.
    #[error("payload must be a JSON object")]
    PayloadNotObject,
    /// The canonical payload (its size in bytes given) is larger than [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {0} bytes in canonical form; the limit is {MAX_PAYLOAD_BYTES}")]
    PayloadTooLarge(usize),
    /// The payload breaks the ledger's JSON rules (a float, an integer beyond ±(2^53 − 1), nesting deeper than
    /// [`json::MAX_DEPTH`]) or cannot be canonicalized.
    #[error("payload: {0}")]
    Payload(#[from] JsonError),
}

/// Why an entry's JSON (an API answer, a bundle line) cannot be read as an entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryParseError {
    /// Not an object, a field unknown, missing or of the wrong type, a blank line.
    #[error("{0}")]
    Shape(String),
    /// The text is not JSON, or not of the entry's shape (serde's message, with line and column).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The payload breaks the ledger's JSON rules.
    #[error("payload: {0}")]
    Payload(#[from] JsonError),
}

/// What a caller asks to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// What happened, e.g. `action.requested`: two or more dot-separated lowercase words, at most 64 bytes.
    pub kind: String,
    /// Who caused it (`usr_…`, `agt_…`): 1 to 256 characters, no control characters.
    pub actor: String,
    /// The action the event belongs to (1 to 128 characters of `[A-Za-z0-9_.:-]`); None if it belongs to none.
    pub action_id: Option<String>,
    /// The event's data: a JSON object whose numbers are integers within ±(2^53 − 1).
    pub payload: Value,
}

impl NewEvent {
    /// An event that belongs to no action (checked only when prepared).
    pub fn new(kind: impl Into<String>, actor: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            actor: actor.into(),
            action_id: None,
            payload,
        }
    }

    /// An event whose kind and payload are a typed payload's (see `domain::payload`).
    pub fn of(actor: impl Into<String>, payload: &impl domain::payload::Payload) -> Self {
        Self::new(payload.kind().as_str(), actor, payload.to_value())
    }

    /// The same event, belonging to the action `action_id`.
    pub fn with_action(mut self, action_id: impl Into<String>) -> Self {
        self.action_id = Some(action_id.into());
        self
    }

    /// The genesis event that introduces `key`.
    pub fn genesis(key: &LedgerPublicKey, actor: &str) -> Self {
        let info = key.info();
        Self::new(
            KIND_INITIALIZED,
            actor,
            serde_json::json!({
                "format": FORMAT,
                "key_id": info.key_id,
                "algorithm": info.algorithm,
                "public_key": info.public_key,
            }),
        )
    }

    /// The rotation event that hands over from `previous` to `next`, to be sealed right after the
    /// entry whose chain hash is `prev_chain_hash`. It carries `next`'s proof of possession (see
    /// [`keys::key_proof_message`]): nobody can introduce a key they do not hold.
    pub fn key_rotation(previous: &str, next: &LedgerSigningKey, prev_chain_hash: &Digest, actor: &str) -> Self {
        let info = next.public_key().info();
        Self::new(
            KIND_KEY_ROTATED,
            actor,
            serde_json::json!({
                "previous_key_id": previous,
                "key_id": info.key_id,
                "algorithm": info.algorithm,
                "public_key": info.public_key,
                "proof": keys::signature_to_hex(&next.sign_key_proof(prev_chain_hash)),
            }),
        )
    }
}

/// An event checked, given its id and timestamp, canonicalized and hashed: everything but its place in
/// the chain. Preparing happens in the caller's task so the single appender only links and signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedEvent {
    /// The entry's id: from [`new_entry_id`], or as given to [`prepare_with_id`](Self::prepare_with_id).
    pub id: String,
    /// The entry's timestamp, in the ledger's form (`2026-01-01T00:00:01.250000Z`).
    pub timestamp: String,
    /// The event's kind, checked.
    pub kind: String,
    /// The event's actor, checked.
    pub actor: String,
    /// The event's action id, checked; None if it belongs to no action.
    pub action_id: Option<String>,
    /// Canonical (RFC 8785) JSON text of the payload.
    pub payload: String,
    /// `SHA-256(JCS(event))` over the id, timestamp, kind, actor, action id and canonical payload.
    pub event_hash: Digest,
}

impl PreparedEvent {
    /// Checks and canonicalizes `event`, with a new entry id and `now` as its timestamp.
    pub fn prepare(event: NewEvent, now: OffsetDateTime) -> Result<Self, EntryError> {
        Self::prepare_with_id(event, new_entry_id(), format_timestamp(now))
    }

    /// Like [`prepare`](Self::prepare) with a given id and timestamp (test vectors, replays of fixtures).
    pub fn prepare_with_id(event: NewEvent, id: String, timestamp: String) -> Result<Self, EntryError> {
        validate_kind(&event.kind)?;
        validate_actor(&event.actor)?;
        if let Some(action_id) = &event.action_id {
            validate_action_id(action_id)?;
        }
        if !event.payload.is_object() {
            return Err(EntryError::PayloadNotObject);
        }
        json::check_safe_numbers(&event.payload)?;
        let payload = json::canonicalize(&event.payload)?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(EntryError::PayloadTooLarge(payload.len()));
        }
        let event_hash = hash::event_hash(
            canonical_event(
                &id,
                &timestamp,
                &event.kind,
                &event.actor,
                event.action_id.as_deref(),
                &payload,
            )
            .as_bytes(),
        );
        Ok(Self {
            id,
            timestamp,
            kind: event.kind,
            actor: event.actor,
            action_id: event.action_id,
            payload,
            event_hash,
        })
    }
}

/// A sealed ledger entry, as stored, exported and served. Hashes and the signature are kept as their
/// text form so that an entry read back from tampered storage can still be represented and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the ledger: 1 for the first entry, each next entry +1.
    pub seq: u64,
    /// Entry id: `evt_` and a UUIDv7 in 32 lowercase hex digits (as writers make it; not checked by the verifier).
    pub id: String,
    /// When the entry was made: RFC 3339 in UTC with six fractional digits (`2026-01-01T00:00:01.250000Z`).
    pub timestamp: String,
    /// What happened, e.g. `action.requested` or [`KIND_KEY_ROTATED`].
    pub kind: String,
    /// Who caused it (`usr_…`, `agt_…`).
    pub actor: String,
    /// The action the entry belongs to; None (JSON `null`) if none.
    pub action_id: Option<String>,
    /// Canonical JSON text of the payload, exactly the bytes that were hashed.
    pub payload: String,
    /// Digest text of the previous entry's chain hash (32 zero bytes for seq 1).
    pub prev_chain_hash: String,
    /// Digest text of `SHA-256(JCS(event))`.
    pub event_hash: String,
    /// Digest text of the hash that links this entry: over its seq, `prev_chain_hash` and `event_hash`.
    pub chain_hash: String,
    /// The signing key's id: `ed25519:` and 16 lowercase hex digits.
    pub key_id: String,
    /// The Ed25519 signature over the key id and chain hash: 128 lowercase hex digits (`R ‖ S`).
    pub signature: String,
}

/// The entry's fields in the order the API and bundles write them.
pub const ENTRY_FIELDS: [&str; 12] = [
    "seq",
    "id",
    "timestamp",
    "kind",
    "actor",
    "action_id",
    "payload",
    "prev_chain_hash",
    "event_hash",
    "chain_hash",
    "key_id",
    "signature",
];

impl Entry {
    /// The canonical JSON of the event part: `{action_id, actor, id, kind, payload, timestamp}`.
    pub fn canonical_event(&self) -> String {
        canonical_event(
            &self.id,
            &self.timestamp,
            &self.kind,
            &self.actor,
            self.action_id.as_deref(),
            &self.payload,
        )
    }

    /// The payload as a JSON value (entries written by this crate always parse).
    pub fn payload_value(&self) -> Result<Value, JsonError> {
        json::parse(&self.payload, Numbers::SafeIntegers)
    }

    /// Reads an entry from its JSON object form (API responses, bundle lines). Unknown or missing
    /// fields are errors; the payload is re-canonicalized, so the event hash check decides whether it
    /// is the payload that was signed.
    pub fn from_json(value: Value) -> Result<Entry, EntryParseError> {
        let shape = |message: String| EntryParseError::Shape(message);
        let Value::Object(mut map) = value else {
            return Err(shape("an entry must be a JSON object".into()));
        };
        if let Some(unknown) = map.keys().find(|k| !ENTRY_FIELDS.contains(&k.as_str())) {
            return Err(shape(format!("unknown entry field {unknown:?}")));
        }
        let mut text = |name: &str| -> Result<String, EntryParseError> {
            match map.remove(name) {
                Some(Value::String(s)) => Ok(s),
                Some(_) => Err(shape(format!("field {name:?} must be a string"))),
                None => Err(shape(format!("missing field {name:?}"))),
            }
        };
        let id = text("id")?;
        let timestamp = text("timestamp")?;
        let kind = text("kind")?;
        let actor = text("actor")?;
        let prev_chain_hash = text("prev_chain_hash")?;
        let event_hash = text("event_hash")?;
        let chain_hash = text("chain_hash")?;
        let key_id = text("key_id")?;
        let signature = text("signature")?;
        let seq = map
            .remove("seq")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| shape("field \"seq\" must be a non-negative integer".into()))?;
        let action_id = match map.remove("action_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(shape("field \"action_id\" must be a string or null".into())),
        };
        let payload = match map.remove("payload") {
            Some(payload @ Value::Object(_)) => json::canonicalize(&payload)?,
            _ => return Err(shape("field \"payload\" must be a JSON object".into())),
        };
        Ok(Entry {
            seq,
            id,
            timestamp,
            kind,
            actor,
            action_id,
            payload,
            prev_chain_hash,
            event_hash,
            chain_hash,
            key_id,
            signature,
        })
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The payload is embedded as the stored JSON text; storage that was tampered into invalid JSON
        // is served as a string so the entry can still be shown. A line break in valid JSON can only be
        // whitespace (never canonical): it becomes a space, so a bundle line stays one line and its payload
        // stays non-canonical, as in the database.
        let text = self.payload.replace(['\n', '\r'], " ");
        let raw = serde_json::value::RawValue::from_string(text);
        let mut s = serializer.serialize_struct("Entry", ENTRY_FIELDS.len())?;
        s.serialize_field("seq", &self.seq)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("timestamp", &self.timestamp)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("actor", &self.actor)?;
        s.serialize_field("action_id", &self.action_id)?;
        match &raw {
            Ok(raw) => s.serialize_field("payload", raw)?,
            Err(_) => s.serialize_field("payload", &self.payload)?,
        }
        s.serialize_field("prev_chain_hash", &self.prev_chain_hash)?;
        s.serialize_field("event_hash", &self.event_hash)?;
        s.serialize_field("chain_hash", &self.chain_hash)?;
        s.serialize_field("key_id", &self.key_id)?;
        s.serialize_field("signature", &self.signature)?;
        s.end()
    }
}

/// Builds `JCS({action_id, actor, id, kind, payload, timestamp})` directly: the member names are ASCII
/// and already in JCS order, and the payload is canonical already, so this equals canonicalizing the
/// whole object (a test checks that) without re-parsing the payload.
pub fn canonical_event(
    id: &str,
    timestamp: &str,
    kind: &str,
    actor: &str,
    action_id: Option<&str>,
    canonical_payload: &str,
) -> String {
    let mut out = String::with_capacity(96 + id.len() + kind.len() + actor.len() + canonical_payload.len());
    out.push_str("{\"action_id\":");
    match action_id {
        Some(a) => out.push_str(&json::canonical_string(a)),
        None => out.push_str("null"),
    }
    out.push_str(",\"actor\":");
    out.push_str(&json::canonical_string(actor));
    out.push_str(",\"id\":");
    out.push_str(&json::canonical_string(id));
    out.push_str(",\"kind\":");
    out.push_str(&json::canonical_string(kind));
    out.push_str(",\"payload\":");
    out.push_str(canonical_payload);
    out.push_str(",\"timestamp\":");
    out.push_str(&json::canonical_string(timestamp));
    out.push('}');
    out
}

/// The key id that must sign the entry after `head`: the key a genesis or rotation entry introduces,
/// otherwise the key that signed `head`.
pub fn next_signing_key_id(head: &Entry) -> Result<String, String> {
    if head.kind == KIND_KEY_ROTATED || head.kind == KIND_INITIALIZED {
        let payload = head.payload_value().map_err(|e| format!("seq {}: {e}", head.seq))?;
        return payload
            .get("key_id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("seq {}: {} entry without key_id", head.seq, head.kind));
    }
    Ok(head.key_id.clone())
}

/// `evt_` followed by a UUIDv7 in 32 lowercase hex digits (time-ordered, 74 random bits).
pub fn new_entry_id() -> String {
    domain::ids::new(domain::ids::IdKind::Entry)
}

fn validate_kind(kind: &str) -> Result<(), EntryError> {
    let word_ok = |w: &str| {
        let mut chars = w.chars();
        matches!(chars.next(), Some('a'..='z'))
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let words: Vec<&str> = kind.split('.').collect();
    if kind.len() <= 64 && words.len() >= 2 && words.iter().all(|w| word_ok(w)) {
        Ok(())
    } else {
        Err(EntryError::Kind(kind.to_string()))
    }
}

fn validate_actor(actor: &str) -> Result<(), EntryError> {
    let count = actor.chars().count();
    if (1..=256).contains(&count) && !actor.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(EntryError::Actor)
    }
}

fn validate_action_id(action_id: &str) -> Result<(), EntryError> {
    let ok = (1..=128).contains(&action_id.len())
        && action_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(EntryError::ActionId(action_id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_event_equals_canonicalizing_the_whole_object() {
        let payload = json::canonicalize(&json!({"z": "é\u{1F600}", "a": [1, {"c": null, "b": true}]})).unwrap();
        for action_id in [None, Some("act_1")] {
            let built = canonical_event(
                "evt_1",
                "2026-01-01T00:00:00.000000Z",
                "a.b",
                "usr_\"x\"\n",
                action_id,
                &payload,
            );
            let whole = json!({
                "timestamp": "2026-01-01T00:00:00.000000Z", "kind": "a.b", "id": "evt_1",
                "actor": "usr_\"x\"\n", "action_id": action_id,
                "payload": serde_json::from_str::<Value>(&payload).unwrap(),
            });
            assert_eq!(built, json::canonicalize(&whole).unwrap());
        }
    }

    #[test]
    fn a_stored_payload_with_a_line_break_stays_on_one_bundle_line() {
        // Only tampered storage holds such a payload; it must read back as the same non-canonical text.
        let entry = Entry {
            seq: 1,
            id: "evt_1".into(),
            timestamp: "t".into(),
            kind: "a.b".into(),
            actor: "usr_1".into(),
            action_id: None,
            payload: "{\"a\":1\r\n}".into(),
            prev_chain_hash: String::new(),
            event_hash: String::new(),
            chain_hash: String::new(),
            key_id: String::new(),
            signature: String::new(),
        };
        let line = crate::bundle::entry_line(&entry);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let read = crate::bundle::parse_entry_line(&line).unwrap();
        assert_eq!(read.payload, "{\"a\":1  }");
    }

    #[test]
    fn prepare_validates_its_input() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let ok = PreparedEvent::prepare(NewEvent::new("ledger.note", "usr_1", json!({"n": 1})), now).unwrap();
        assert_eq!(ok.timestamp, "1970-01-01T00:00:00.000000Z");
        assert!(ok.id.starts_with("evt_") && ok.id.len() == 36);
        let bad = |e: NewEvent| PreparedEvent::prepare(e, now).unwrap_err();
        assert!(matches!(
            bad(NewEvent::new("Ledger", "a", json!({}))),
            EntryError::Kind(_)
        ));
        assert!(matches!(bad(NewEvent::new("a.b", "", json!({}))), EntryError::Actor));
        assert!(matches!(
            bad(NewEvent::new("a.b", "x", json!([1]))),
            EntryError::PayloadNotObject
        ));
        assert!(matches!(
            bad(NewEvent::new("a.b", "x", json!({"f": 0.5}))),
            EntryError::Payload(_)
        ));
        assert!(matches!(
            bad(NewEvent::new("a.b", "x", json!({})).with_action("act 1; drop table")),
            EntryError::ActionId(_)
        ));
        let huge = json!({"s": "x".repeat(MAX_PAYLOAD_BYTES)});
        assert!(matches!(
            bad(NewEvent::new("a.b", "x", huge)),
            EntryError::PayloadTooLarge(_)
        ));
    }

    #[test]
    fn from_json_refuses_unknown_and_missing_fields() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let key = crate::LedgerSigningKey::from_seed([3; 32]);
        let event = PreparedEvent::prepare(NewEvent::new("ledger.note", "x", json!({"b": 1, "a": 2})), now).unwrap();
        let entry = crate::seal(&crate::ChainHead::EMPTY, vec![event], &key).remove(0);
        let value = serde_json::to_value(&entry).unwrap();
        assert_eq!(Entry::from_json(value.clone()).unwrap(), entry);
        let mut extra = value.clone();
        extra["admin"] = json!(true);
        assert!(
            Entry::from_json(extra)
                .unwrap_err()
                .to_string()
                .contains("unknown entry field")
        );
        let mut missing = value;
        missing.as_object_mut().unwrap().remove("signature");
        assert!(
            Entry::from_json(missing)
                .unwrap_err()
                .to_string()
                .contains("missing field")
        );
    }
}
