//! Group commit for budget reservations. Each reservation alone would be a transaction of its own, and on
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

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

use super::snapshot::Plan;
use super::{Exceeded, Spend, Window, first_exceeded};
use crate::{Backend, StorageError, Store, with_writer};

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
    /// Reservations answered from a committed transaction.
    pub reservations: u64,
    /// Transactions committed for them (fewer when concurrent reservations shared one).
    pub transactions: u64,
    /// Batches whose transaction failed, so that each of their reservations ran alone.
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

/// The PostgreSQL advisory lock every reservation takes (one number for the whole database).
const BUDGET_LOCK: i64 = 0x646b_745f_6275_6467; // "dkt_budg"

/// Most rows one INSERT carries (ten parameters each: within SQLite's and PostgreSQL's limits).
const ROWS_PER_INSERT: usize = 1000;

/// Each reservation of `requests` in order, in one serialized transaction, counted at the latest of their
/// times: counts its windows and records it against every subject unless it passes a limit. What the batch
/// needs is read once at its start (`snapshot`); the admitted rows are written at its end.
async fn transaction(store: &Store, requests: &[(&[Window], &Spend)]) -> Result<Vec<Option<Exceeded>>, StorageError> {
    let at = requests
        .iter()
        .map(|(_, spend)| spend.at.as_str())
        .max()
        .unwrap_or_default();
    let plan = Plan::new(
        at,
        requests
            .iter()
            .map(|(windows, spend)| (*windows, spend.object.as_str())),
    )?;
    Ok(with_writer!(store, pool => async {
        let mut tx = pool.begin().await?;
        // Serialized: PostgreSQL by an advisory lock; SQLite by taking the write lock first (a write
        // statement, waiting in the busy handler), since a read that later upgrades to a write can fail at
        // once with SQLITE_BUSY when another process writes. A statement of the transaction, not part of its
        // begin: sqlx rolls back a transaction whose begin returned, not one whose begin failed or was dropped.
        let serialize = match store.kind() {
            crate::BackendKind::Postgres => "SELECT pg_advisory_xact_lock($1)",
            crate::BackendKind::Sqlite => "DELETE FROM budget_spend WHERE 1 = 0 AND $1 = $1",
        };
        sqlx::query(serialize).bind(BUDGET_LOCK).execute(&mut *tx).await?;
        let mut snapshot = read_snapshot!(tx, plan);
        let mut rows = Vec::new();
        let mut answers = Vec::with_capacity(requests.len());
        for (windows, spend) in requests {
            let counted = windows.iter().map(|window| snapshot.count(window, &spend.object)).collect();
            let verdict = first_exceeded(windows, counted, spend);
            if verdict.is_none() {
                let mut subjects: Vec<&str> = windows.iter().map(|w| w.subject.as_str()).collect();
                subjects.sort_unstable();
                subjects.dedup();
                rows.extend(snapshot.add(&subjects, spend).into_iter().map(|(subject, row)| (subject, row, *spend)));
            }
            answers.push(verdict);
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO budget_spend (subject, seq, at, action_id, object, deletes, replicas, \
                 total_mutations, total_deletes, total_replicas) ",
            );
            insert.push_values(chunk, |mut row, (subject, (seq, at, mutations, deletes, replicas), spend)| {
                row.push_bind(subject.as_str()).push_bind(*seq).push_bind(at.as_str())
                    .push_bind(spend.action_id.as_str()).push_bind(spend.object.as_str())
                    .push_bind(i64::from(spend.delete)).push_bind(spend.replicas)
                    .push_bind(*mutations).push_bind(*deletes).push_bind(*replicas);
            });
            insert.build().execute(&mut *tx).await?;
        }
        // Each (subject, object) once (PostgreSQL refuses to update one row twice in a statement), at its
        // latest time.
        let mut touched: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for (subject, (_, at, ..), spend) in &rows {
            let last = touched.entry((subject.as_str(), spend.object.as_str())).or_default();
            *last = (*last).max(at.as_str());
        }
        let touched: Vec<_> = touched.into_iter().collect();
        for chunk in touched.chunks(ROWS_PER_INSERT) {
            let mut touch = sqlx::QueryBuilder::new("INSERT INTO budget_objects (subject, object, last_at) ");
            touch.push_values(chunk, |mut row, ((subject, object), at)| {
                row.push_bind(*subject).push_bind(*object).push_bind(*at);
            });
            touch.push(" ON CONFLICT (subject, object) DO UPDATE SET last_at = excluded.last_at");
            touch.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(answers)
    }.await)?)
}
