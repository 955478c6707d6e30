//! Signing batches, on all cores; and signing ahead: the next batch is collected and signed on top of
//! the head the transaction in flight will leave, so signing overlaps the database's round trips and fsync.

use std::sync::Arc;

use ledger_core::{ChainHead, Entry, LedgerSigningKey, PreparedEvent};

use super::{Reply, Reservation};

/// Entries signed ahead of their transaction, on top of `base`.
pub(super) struct Presealed {
    pub(super) base: ChainHead,
    pub(super) entries: Vec<Entry>,
}

impl Presealed {
    pub(super) fn tip(&self) -> ChainHead {
        self.entries
            .last()
            .and_then(ledger_core::chain::head_of)
            .unwrap_or(self.base)
    }
}

/// The next batch, collected (and signed as it grows) while the previous one commits.
pub(super) struct Gathered {
    pub(super) events: Vec<PreparedEvent>,
    pub(super) replies: Vec<Reply>,
    sizes: Vec<usize>,
    reservations: Vec<Option<Reservation>>,
    /// The head the batch is signed on, when known.
    base: Option<ChainHead>,
    /// Entries for `events[..signed.len()]`, chained on `base`.
    signed: Vec<Entry>,
}

impl Gathered {
    pub(super) fn new(base: Option<ChainHead>) -> Self {
        Self {
            events: Vec::new(),
            replies: Vec::new(),
            sizes: Vec::new(),
            reservations: Vec::new(),
            base,
            signed: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, events: Vec<PreparedEvent>, reservation: Option<Reservation>, reply: Reply) {
        self.sizes.push(events.len());
        self.reservations.push(reservation);
        self.replies.push(reply);
        self.events.extend(events);
    }

    /// Signs the events not signed yet, chained on the last signed one.
    pub(super) async fn sign_pending(&mut self, key: &Arc<LedgerSigningKey>) {
        let Some(base) = self.base else { return };
        let todo = &self.events[self.signed.len()..];
        if todo.is_empty() {
            return;
        }
        let tip = self.signed.last().and_then(ledger_core::chain::head_of).unwrap_or(base);
        let entries = sign(tip, todo.to_vec(), Arc::clone(key)).await;
        self.signed.extend(entries);
    }

    /// The previous transaction ended with head `done`: if that is not the head this batch was signed
    /// on (it failed, or nothing was known), sign again on the real one.
    pub(super) async fn previous_committed(&mut self, done: Option<ChainHead>, key: &Arc<LedgerSigningKey>) {
        if done != self.base || done.is_none() {
            self.base = done;
            self.signed.clear();
            self.sign_pending(key).await;
        }
    }

    /// The batch to commit: its events (signed ahead when they could be) and, per command, its reply, its
    /// number of events and its reservation.
    pub(super) fn finish(self) -> (Batch, Vec<Reply>) {
        let presealed = match self.base {
            Some(base) if self.signed.len() == self.events.len() && !self.events.is_empty() => Some(Presealed {
                base,
                entries: self.signed,
            }),
            _ => None,
        };
        let batch = Batch {
            events: self.events,
            presealed,
            sizes: self.sizes,
            reservations: self.reservations,
        };
        (batch, self.replies)
    }
}

/// One transaction's worth of commands.
pub(super) struct Batch {
    pub(super) events: Vec<PreparedEvent>,
    pub(super) presealed: Option<Presealed>,
    /// How many of `events` each command appends, in order.
    pub(super) sizes: Vec<usize>,
    /// Each command's budget reservation, if it has one.
    pub(super) reservations: Vec<Option<Reservation>>,
}

impl Batch {
    /// A batch of one command's events, without a reservation (a key rotation's, an initialization's).
    pub(super) fn plain(events: Vec<PreparedEvent>) -> Batch {
        Batch {
            sizes: vec![events.len()],
            events,
            presealed: None,
            reservations: vec![None],
        }
    }
}

/// Signs on all cores, off the async workers (a handful of entries is signed in place: cheaper than
/// the hand-off).
pub(super) async fn sign(base: ChainHead, events: Vec<PreparedEvent>, key: Arc<LedgerSigningKey>) -> Vec<Entry> {
    if events.len() < 8 {
        return ledger_core::seal(&base, events, &key);
    }
    tokio::task::spawn_blocking(move || ledger_core::seal(&base, events, &key))
        .await
        .expect("sealing does not panic")
}
