//! Receipts: a C2SP `tlog-proof` file whose `extra` line carries the entry itself (its bundle line,
//! base64), so the receipt is checked offline with nothing but trusted keys:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the entry's bundle line>
//! index <seq - 1>
//! <inclusion proof, one base64 hash per line>
//!
//! <the signed checkpoint, with any cosignatures>
//! ```
//!
//! Checking one: the entry is self-consistent (canonical payload, event hash, chain hash) and signed by a
//! trusted ledger key; `index` is its seq minus one; the checkpoint is signed by a trusted ledger key
//! (and cosigned by the quorum of trusted witnesses); and the proof puts `SHA-256(0x00 ‖ chain_hash)` at
//! `index` in the checkpoint's tree.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::checkpoint::{self, CheckpointError, OpenedCheckpoint, WitnessKey};
use super::proofs::{ProofError, verify_inclusion};
use super::{Hash, hash_from_base64, hash_to_base64, leaf_hash};
use crate::bundle::{entry_line, parse_entry_line};
use crate::entry::Entry;
use crate::hash::{self, Digest};
use crate::json::{self, Numbers};
use crate::keys::{LedgerPublicKey, signature_from_hex};

/// The first line of a receipt.
pub const RECEIPT_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A receipt, parsed; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// The entry the receipt is for, carried in the `extra` line.
    pub entry: Entry,
    /// The entry's leaf index: its seq minus one.
    pub index: u64,
    /// The inclusion proof: the audit path from the leaf's sibling up.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// Why a receipt cannot be read or does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The text is not a receipt: a line missing or out of place, or an `extra` line that is not a base64 entry line.
    #[error("not a receipt: {0}")]
    Malformed(String),
    /// The entry is not intact: a payload not in canonical form, a hash that does not follow, or a signature
    /// that does not verify.
    #[error("the entry in the receipt is not intact: {0}")]
    Entry(String),
    /// The entry is signed by a key (its id given) that is not among the trusted keys.
    #[error("the entry is signed by {0}, which is not a trusted key")]
    UntrustedEntryKey(String),
    /// The receipt's index is not the entry's seq minus one.
    #[error("the receipt's index {index} is not the entry's position (seq {seq} is leaf {})", seq - 1)]
    WrongIndex {
        /// The receipt's index.
        index: u64,
        /// The entry's seq (1 where the entry says 0).
        seq: u64,
    },
    /// The checkpoint cannot be read, is not signed by a trusted key, or lacks the witness quorum.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof does not place the entry's leaf in the checkpoint's tree.
    #[error("the inclusion proof does not place the entry in the checkpoint's tree: {0}")]
    Proof(#[from] ProofError),
}

impl Receipt {
    /// The receipt as a `tlog-proof` file.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{RECEIPT_HEADER}\nextra {}\nindex {}\n",
            BASE64.encode(entry_line(&self.entry)),
            self.index
        );
        for hash in &self.proof {
            out.push_str(&hash_to_base64(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Reads a receipt file. Checks its form only; [`verify`](Self::verify) checks what it claims.
    pub fn parse(text: &str) -> Result<Self, ReceiptError> {
        let bad = |why: &str| ReceiptError::Malformed(why.to_string());
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(RECEIPT_HEADER) {
            return Err(bad("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let extra = lines
            .next()
            .and_then(|l| l.strip_prefix("extra "))
            .ok_or_else(|| bad("the second line must be `extra` with the entry"))?;
        let line = BASE64.decode(extra).map_err(|_| bad("the extra data is not base64"))?;
        let line = String::from_utf8(line).map_err(|_| bad("the entry is not UTF-8"))?;
        let entry = parse_entry_line(&line).map_err(|e| ReceiptError::Malformed(format!("the entry: {e}")))?;
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .filter(|n| super::witness::is_decimal(n))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("the third line must be `index <n>`"))?;
        let proof = lines
            .map(|l| hash_from_base64(l).ok_or_else(|| bad("a proof line is not a base64 hash")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Receipt {
            entry,
            index,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// Checks the receipt (see the module documentation) and returns the opened checkpoint.
    pub fn verify(
        &self,
        log_keys: &[LedgerPublicKey],
        witnesses: &[WitnessKey],
        quorum: usize,
    ) -> Result<OpenedCheckpoint, ReceiptError> {
        let chain = check_entry(&self.entry, log_keys)?;
        if self.entry.seq == 0 || self.index != self.entry.seq - 1 {
            return Err(ReceiptError::WrongIndex {
                index: self.index,
                seq: self.entry.seq.max(1),
            });
        }
        let opened = checkpoint::open(&self.checkpoint, log_keys, witnesses, quorum)?;
        let cp = &opened.checkpoint;
        verify_inclusion(&self.proof, cp.size, cp.root, self.index, leaf_hash(&chain))?;
        Ok(opened)
    }
}

/// Checks that an entry is intact and signed by one of `keys`; returns its chain hash.
pub fn check_entry(entry: &Entry, keys: &[LedgerPublicKey]) -> Result<Digest, ReceiptError> {
    let bad = |why: &str| ReceiptError::Entry(why.to_string());
    let canonical = json::canonicalize_text(&entry.payload, Numbers::SafeIntegers).map_err(|e| bad(&e.to_string()))?;
    if canonical != entry.payload {
        return Err(bad("the payload is not in canonical form"));
    }
    let event_hash: Digest = entry
        .event_hash
        .parse()
        .map_err(|_| bad("event_hash is not a digest"))?;
    if hash::event_hash(entry.canonical_event().as_bytes()) != event_hash {
        return Err(bad("the event does not hash to event_hash"));
    }
    let prev: Digest = entry
        .prev_chain_hash
        .parse()
        .map_err(|_| bad("prev_chain_hash is not a digest"))?;
    let chain: Digest = entry
        .chain_hash
        .parse()
        .map_err(|_| bad("chain_hash is not a digest"))?;
    if hash::chain_hash(entry.seq, &prev, &event_hash) != chain {
        return Err(bad(
            "chain_hash does not follow from seq, prev_chain_hash and event_hash",
        ));
    }
    let key = keys
        .iter()
        .find(|k| k.key_id == entry.key_id)
        .ok_or_else(|| ReceiptError::UntrustedEntryKey(entry.key_id.clone()))?;
    let signature = signature_from_hex(&entry.signature).ok_or_else(|| bad("the signature is not 128 hex digits"))?;
    if !key.verify(&chain, &signature) {
        return Err(bad("the signature does not verify"));
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::chain::{ChainHead, seal};
    use crate::entry::{NewEvent, PreparedEvent};
    use crate::keys::LedgerSigningKey;
    use crate::tlog::TreeEdge;
    use crate::tlog::checkpoint::{Checkpoint, WitnessSigner};
    use crate::tlog::proofs::{TileSource, inclusion_proof};

    struct Tiles(std::collections::HashMap<(u8, u64), Vec<u8>>);
    impl TileSource for Tiles {
        fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
            self.0.get(&(level, index)).map(Vec::as_slice)
        }
    }

    fn ledger(key: &LedgerSigningKey, n: usize) -> Vec<Entry> {
        let mut events = vec![
            PreparedEvent::prepare(
                NewEvent::genesis(&key.public_key(), "system"),
                OffsetDateTime::now_utc(),
            )
            .unwrap(),
        ];
        for i in 1..n {
            let event = NewEvent::new("ledger.note", "usr_test", json!({"i": i}));
            events.push(PreparedEvent::prepare(event, OffsetDateTime::now_utc()).unwrap());
        }
        seal(&ChainHead::EMPTY, events, key)
    }

    fn receipt_for(entries: &[Entry], key: &LedgerSigningKey, seq: u64) -> (Receipt, Checkpoint) {
        let mut edge = TreeEdge::empty();
        let mut tiles = Tiles(Default::default());
        let leaves = entries.iter().map(|e| leaf_hash(&e.chain_hash.parse().unwrap()));
        for w in edge.append(leaves) {
            tiles.0.insert((w.level, w.index), w.data);
        }
        let cp = Checkpoint {
            origin: "test.example/ledger".into(),
            size: edge.size(),
            root: edge.root(),
        };
        let receipt = Receipt {
            entry: entries[seq as usize - 1].clone(),
            index: seq - 1,
            proof: inclusion_proof(edge.size(), seq - 1, &tiles).unwrap(),
            checkpoint: cp.sign(key).unwrap(),
        };
        (receipt, cp)
    }

    #[test]
    fn a_receipt_round_trips_and_verifies_offline() {
        let key = LedgerSigningKey::from_seed([5; 32]);
        let entries = ledger(&key, 300);
        let witness = WitnessSigner::new("w.example", ed25519_dalek::SigningKey::from_bytes(&[6; 32])).unwrap();
        let (mut receipt, cp) = receipt_for(&entries, &key, 257);
        receipt.checkpoint = checkpoint::add_signature_lines(&receipt.checkpoint, &[witness.cosign(&cp.body(), 42)]);
        let parsed = Receipt::parse(&receipt.to_text()).unwrap();
        assert_eq!(parsed, receipt);
        let opened = parsed
            .verify(&[key.public_key()], &[witness.public().clone()], 1)
            .unwrap();
        assert_eq!(opened.checkpoint.size, 300);
        assert_eq!(opened.cosigned_by, vec![("w.example".to_string(), 42)]);
    }

    #[test]
    fn a_tampered_receipt_is_refused_with_its_reason() {
        let key = LedgerSigningKey::from_seed([5; 32]);
        let entries = ledger(&key, 20);
        let (good, _) = receipt_for(&entries, &key, 7);
        let keys = [key.public_key()];
        good.verify(&keys, &[], 0).unwrap();

        let mut entry = good.clone();
        entry.entry.actor = "usr_someone_else".into();
        assert!(matches!(entry.verify(&keys, &[], 0), Err(ReceiptError::Entry(_))));

        let mut moved = good.clone();
        moved.entry = entries[7].clone();
        assert!(matches!(
            moved.verify(&keys, &[], 0),
            Err(ReceiptError::WrongIndex { .. })
        ));
        moved.index = 7;
        assert!(matches!(moved.verify(&keys, &[], 0), Err(ReceiptError::Proof(_))));

        let other = LedgerSigningKey::from_seed([9; 32]);
        assert!(matches!(
            good.verify(&[other.public_key()], &[], 0),
            Err(ReceiptError::UntrustedEntryKey(_))
        ));
        assert!(matches!(
            good.verify(&keys, &[], 1),
            Err(ReceiptError::Checkpoint(CheckpointError::NoQuorum { .. }))
        ));

        let text = good.to_text();
        for bad in [
            text.replacen("index 6", "index 06", 1),
            text.replacen("tlog-proof@v1", "tlog-proof@v2", 1),
            text.replace("\n\n", "\n"),
        ] {
            assert!(matches!(Receipt::parse(&bad), Err(ReceiptError::Malformed(_))), "{bad}");
        }
    }
}
