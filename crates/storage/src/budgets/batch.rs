//! The stand-alone reservation (`Store::reserve_budget`: tools and tests; the gateway reserves inside the ledger
//! writer's transaction instead, `Ledger::append_reserving`), group-committed. Each reservation alone would be a transaction of its own, and on
//! SQLite's single writer (synchronous=FULL) a commit and its fsync per mutation, queued with the ledger's own
//! writes. So concurrent reservations wait in a queue, and whoever gets the turn next runs every waiting one
//! in one transaction, one after the other (each sees the rows of those before it, so limits stay exact), and
//! answers them all. Leader and followers, not a task of its own: a store needs no runtime to be created and
//! is shared freely between runtimes (tests).
//!
//! If the transaction fails, each reservation of the batch runs again alone, in its own caller, so each gets
//! its own answer, one bad reservation cannot fail the others, and a database that is down costs each caller one
//! timeout (not the leader one per reservation). A leader whose future is dropped mid-batch rolls the
//! transaction back; its followers see their answer gone and queue again. A reservation whose caller was
//! dropped while it waited is still counted when a later batch runs, at that batch's time (the usage errs on the
//! safe side).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

use super::within::{self, Serialization};
use super::{Exceeded, Spend, Window};
use crate::{Backend, StorageError, Store};

/// Most reservations one transaction takes.
const MAX_BATCH: usize = 256;

type Answer = Result<Option<Exceeded>, StorageError>;

/// What a batch tells a reservation: its answer, or that the batch failed and it runs alone.
enum Reply {
    Answered(Option<Exceeded>),
    RunAlone,
}

/// A reservation waiting for its batch.
struct Waiting {
    windows: Vec<Window>,
    spend: Spend,
    reply: oneshot::Sender<Reply>,
}

/// The reservations waiting for the next batch, and the turn to run one.
#[derive(Default)]
pub(crate) struct Queue {
    waiting: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
    /// Reservations answered and transactions committed, and batches that failed (each of their reservations
    /// then ran alone), since the store was created.
    reservations: AtomicU64,
    transactions: AtomicU64,
    failed_batches: AtomicU64,
}

/// What this store's budget reservations have cost so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationStats {
    /// Reservations answered from a committed transaction (the ledger writer's or a stand-alone one).
    pub reservations: u64,
    /// Transactions committed for them (fewer when concurrent reservations shared one): the ledger writer's
    /// batches that carried any, and stand-alone ones.
    pub transactions: u64,
    /// Stand-alone batches whose transaction failed, so that each of their reservations ran alone (a failed
    /// batch of the ledger writer fails its appends, and is counted with them).
    pub failed_batches: u64,
}

impl Store {
    /// What this store's budget reservations have cost so far.
    pub fn budget_reservation_stats(&self) -> ReservationStats {
        ReservationStats {
            reservations: self.budget_queue.reservations.load(Ordering::Relaxed),
            transactions: self.budget_queue.transactions.load(Ordering::Relaxed),
            failed_batches: self.budget_queue.failed_batches.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Queue {
    /// Counts `reservations` decided in one committed transaction of the ledger writer.
    pub(crate) fn committed(&self, reservations: u64) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.reservations.fetch_add(reservations, Ordering::Relaxed);
    }

    fn push(&self, waiting: Waiting) {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(waiting);
    }

    /// The oldest waiting reservations, up to `MAX_BATCH`.
    fn take(&self) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = waiting.len().min(MAX_BATCH);
        let rest = waiting.split_off(first);
        std::mem::replace(&mut *waiting, rest)
    }
}

/// Queues the reservation and waits for its answer, running the next batch whenever it gets the turn first.
pub(super) async fn reserve(store: &Store, windows: Vec<Window>, spend: Spend) -> Answer {
    let queue = &store.budget_queue;
    'queued: loop {
        let (reply, mut answer) = oneshot::channel();
        queue.push(Waiting {
            windows: windows.clone(),
            spend: spend.clone(),
            reply,
        });
        loop {
            let received = match answer.try_recv() {
                Err(TryRecvError::Empty) => {
                    let _turn = queue.turn.lock().await;
                    match answer.try_recv() {
                        // Only the turn's holder takes from the queue, so it is still queued: run the next batch.
                        Err(TryRecvError::Empty) => {
                            run(store, queue.take()).await;
                            continue;
                        }
                        received => received,
                    }
                }
                received => received,
            };
            match received {
                Ok(Reply::Answered(verdict)) => return Ok(verdict),
                Ok(Reply::RunAlone) => return alone(store, &windows, &spend).await,
                // Its batch was abandoned and rolled back: queue it again.
                Err(TryRecvError::Closed) => continue 'queued,
                Err(TryRecvError::Empty) => continue,
            }
        }
    }
}

/// One reservation in a transaction of its own.
async fn alone(store: &Store, windows: &[Window], spend: &Spend) -> Answer {
    let answer = transaction(store, &[(windows, spend)]).await?.remove(0);
    let queue = &store.budget_queue;
    queue.transactions.fetch_add(1, Ordering::Relaxed);
    queue.reservations.fetch_add(1, Ordering::Relaxed);
    Ok(answer)
}

/// Runs `batch` in one transaction and answers each reservation; if that fails, tells each to run alone.
async fn run(store: &Store, batch: Vec<Waiting>) {
    let requests: Vec<(&[Window], &Spend)> = batch.iter().map(|w| (w.windows.as_slice(), &w.spend)).collect();
    match transaction(store, &requests).await {
        Ok(answers) => {
            let queue = &store.budget_queue;
            queue.transactions.fetch_add(1, Ordering::Relaxed);
            queue.reservations.fetch_add(answers.len() as u64, Ordering::Relaxed);
            for (waiting, answer) in batch.into_iter().zip(answers) {
                let _ = waiting.reply.send(Reply::Answered(answer));
            }
        }
        Err(error) => {
            tracing::warn!(%error, reservations = batch.len(), "a batch of budget reservations failed; each runs alone");
            store.budget_queue.failed_batches.fetch_add(1, Ordering::Relaxed);
            for waiting in batch {
                let _ = waiting.reply.send(Reply::RunAlone);
            }
        }
    }
}

/// Each reservation of `requests` in order, in one transaction of its own (see [`super::within`]).
async fn transaction(store: &Store, requests: &[(&[Window], &Spend)]) -> Result<Vec<Option<Exceeded>>, StorageError> {
    let answers = match &store.writer() {
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let answers = within::reserve_sqlite(&mut tx, Serialization::Here, requests).await?;
            tx.commit().await?;
            answers
        }
        Backend::Postgres(pool) => {
            // READ COMMITTED named: the read after the lock must see every commit made before it.
            let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
            let answers = within::reserve_postgres(&mut tx, Serialization::Here, requests).await?;
            tx.commit().await?;
            answers
        }
    };
    Ok(answers)
}
