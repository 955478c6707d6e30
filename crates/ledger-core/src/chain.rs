//! Linking prepared events into the chain and signing them.

use rayon::prelude::*;

use crate::entry::{Entry, PreparedEvent};
use crate::hash::{self, Digest};
use crate::keys::{LedgerSigningKey, signature_to_hex};

/// The last entry of a chain: what the next entry links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The last entry's seq; 0 for an empty ledger.
    pub seq: u64,
    /// The last entry's chain hash; [`Digest::GENESIS`] for an empty ledger.
    pub chain_hash: Digest,
}

impl ChainHead {
    /// The head of an empty ledger: the next entry is seq 1 and links to 32 zero bytes.
    pub const EMPTY: ChainHead = ChainHead {
        seq: 0,
        chain_hash: Digest::GENESIS,
    };
}

/// Below this many entries, signing on one thread beats handing work to the pool.
const PARALLEL_SIGNING_THRESHOLD: usize = 16;

/// Gives `events` the next sequence numbers after `head`, links them and signs them with `key`.
/// The chain pass is a cheap sequential SHA-256 per entry; the signatures, the expensive part, are
/// independent once the chain hashes are fixed and run on all cores.
pub fn seal(head: &ChainHead, events: Vec<PreparedEvent>, key: &LedgerSigningKey) -> Vec<Entry> {
    let mut prev = head.chain_hash;
    let linked: Vec<(u64, Digest, Digest, PreparedEvent)> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let seq = head.seq + 1 + i as u64;
            let chain = hash::chain_hash(seq, &prev, &event.event_hash);
            let link = (seq, prev, chain, event);
            prev = chain;
            link
        })
        .collect();
    let sign = |(seq, prev, chain, event): (u64, Digest, Digest, PreparedEvent)| Entry {
        seq,
        id: event.id,
        timestamp: event.timestamp,
        kind: event.kind,
        actor: event.actor,
        action_id: event.action_id,
        payload: event.payload,
        prev_chain_hash: prev.to_string(),
        event_hash: event.event_hash.to_string(),
        chain_hash: chain.to_string(),
        key_id: key.key_id().to_string(),
        signature: signature_to_hex(&key.sign_chain_hash(&chain)),
    };
    if linked.len() < PARALLEL_SIGNING_THRESHOLD {
        linked.into_iter().map(sign).collect()
    } else {
        linked.into_par_iter().map(sign).collect()
    }
}

/// The head a sealed entry leaves: its seq and chain hash (None if the chain hash does not parse).
pub fn head_of(entry: &Entry) -> Option<ChainHead> {
    Some(ChainHead {
        seq: entry.seq,
        chain_hash: entry.chain_hash.parse().ok()?,
    })
}
