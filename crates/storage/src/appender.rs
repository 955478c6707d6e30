//! The only writer of ledger entries: one task per process that groups concurrent appends into one
//! transaction (group commit).
//!
//! Each batch: begin; take the ledger-wide write lock (PostgreSQL advisory lock, SQLite `BEGIN
//! IMMEDIATE`), so gateways in other processes queue behind it; read the head; link and sign the
//! batch; insert it; commit; only then answer the callers. A crash before the commit leaves nothing;
//! the primary key on `seq` makes a fork impossible even if the lock were bypassed.
//!
//! Pipelining: while batch N commits, batch N+1 is collected and signed on top of the head that N
//! will leave. When N+1's transaction finds that head (the usual case) it inserts the pre-signed
//! entries; when it finds another (N failed, a budget refused one of N's or N+1's reservations, or another
//! gateway wrote in between) it signs again on the real head inside the transaction. Signing thus overlaps the database's round trips and fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_core::{Entry, EntryError, LedgerSigningKey, NewEvent, PreparedEvent};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{Exceeded, Spend, StorageError, Store, Window};

mod insert;
mod reserving;
mod signing;
mod transaction;
mod writer;

pub(crate) use transaction::POSTGRES_BEGIN;
use writer::Writer;

/// How the ledger writer batches and what it records on a new ledger.
#[derive(Debug, Clone)]
pub struct AppendConfig {
    /// Most entries one transaction takes.
    pub max_batch: usize,
    /// Appends that may wait for the writer before callers are slowed down.
    pub queue_depth: usize,
    /// The actor recorded on the genesis entry.
    pub system_actor: String,
    /// Extend the transparency log's tree in each batch's transaction. Off only to measure what it costs
    /// (`docketops bench`): the catch-up then integrates the entries later.
    pub integrate_tree: bool,
}

impl Default for AppendConfig {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue_depth: 16_384,
            system_actor: "system".into(),
            integrate_tree: true,
        }
    }
}

/// Why an append, an initialization or a key rotation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// An event is not a valid entry (kind, actor, action id or payload); nothing was written.
    #[error(transparent)]
    Invalid(#[from] EntryError),
    /// The ledger's head names another active key than the one this gateway signs with (a rotation by
    /// another gateway, or the wrong key loaded).
    #[error(
        "this gateway signs with {ours} but the ledger's active key is {active}: load the active key (after `docketops keys rotate`, restart every gateway with the new key)"
    )]
    KeyNotActive {
        /// The key id this gateway signs with.
        ours: String,
        /// The key id the ledger expects the next entry to be signed with.
        active: String,
    },
    /// A key rotation was asked for on an empty ledger (no genesis entry yet).
    #[error("the ledger is empty: start the gateway once to write its genesis entry before rotating keys")]
    NothingToRotate,
    /// The head entry's chain hash or active key id cannot be read (an edited or damaged database).
    #[error("the ledger's head entry cannot be read ({0}); run `docketops verify`")]
    CorruptHead(String),
    /// The database failed during the batch's transaction.
    #[error("storage: {0}")]
    Storage(Arc<StorageError>),
    /// The writer task has stopped (the process is shutting down, or the task ended), so no answer came.
    #[error("the ledger writer has stopped")]
    Closed,
}

impl From<StorageError> for AppendError {
    fn from(e: StorageError) -> Self {
        AppendError::Storage(Arc::new(e))
    }
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::from(e).into()
    }
}

type Reply = oneshot::Sender<Result<Appended, AppendError>>;

/// What one command appended: its entries, and for a reservation that a budget refused, why (the entries are
/// then the refusal's).
struct Appended {
    entries: Vec<Entry>,
    refused: Option<Exceeded>,
}

/// What a reservation appends when a budget refuses it: its refusal's event, told the window exceeded.
pub type Refusal = Box<dyn FnOnce(&Exceeded) -> NewEvent + Send>;

/// A budget reservation that decides what a command appends (`Ledger::append_reserving`).
pub struct Reservation {
    /// The windows of every budget that applies.
    pub windows: Vec<Window>,
    /// What the mutation spends.
    pub spend: Spend,
    /// The entry appended instead of the command's events when a window would be exceeded.
    pub refusal: Refusal,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("windows", &self.windows)
            .field("spend", &self.spend)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`Ledger::append_reserving`].
#[derive(Debug, Clone)]
pub enum Reserved {
    /// Every budget admitted the mutation: it is recorded against them, and the events are appended.
    Admitted(Vec<Entry>),
    /// A window would be exceeded: nothing was recorded against any budget, and only the refusal's entry
    /// was appended.
    Refused {
        /// The first window exceeded.
        exceeded: Box<Exceeded>,
        /// The refusal's entry.
        entry: Box<Entry>,
    },
}

enum Command {
    Append {
        events: Vec<PreparedEvent>,
        reservation: Option<Reservation>,
        reply: Reply,
    },
    Rotate {
        next: Box<LedgerSigningKey>,
        actor: String,
        reply: Reply,
    },
}

/// A handle to the ledger writer. Cheap to clone; all clones feed the same writer task.
#[derive(Debug, Clone)]
pub struct Ledger {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    entries: AtomicU64,
}

/// What this process's writer has committed since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Entries committed (genesis and rotation entries included).
    pub entries: u64,
}

impl Ledger {
    /// Starts the writer task for `store`, signing with `key`.
    pub fn start(store: Store, key: LedgerSigningKey, config: AppendConfig) -> Ledger {
        let (commands, receiver) = mpsc::channel(config.queue_depth);
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            store,
            config,
            counters: Arc::clone(&counters),
            edge: Default::default(),
        });
        tokio::spawn(Writer::new(shared, key).run(receiver));
        Ledger { commands, counters }
    }

    /// What this process's writer has committed so far.
    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            entries: self.counters.entries.load(Ordering::Relaxed),
        }
    }

    /// Appends one event and returns its entry once it is durable.
    pub async fn append(&self, event: NewEvent) -> Result<Entry, AppendError> {
        let mut entries = self.append_all(vec![event]).await?;
        entries.pop().ok_or(AppendError::Closed)
    }

    /// Appends events as consecutive entries, all or none, and returns them once durable.
    pub async fn append_all(&self, events: Vec<NewEvent>) -> Result<Vec<Entry>, AppendError> {
        let events = prepare(events)?;
        let appended = self
            .request(|reply| Command::Append {
                events,
                reservation: None,
                reply,
            })
            .await?;
        Ok(appended.entries)
    }

    /// Appends `events` if every budget of `reservation` admits the mutation, recording it against them in
    /// the same transaction (so a reservation costs the action no transaction of its own); otherwise appends
    /// only the refusal's entry and records nothing against any budget. Concurrent reservations are decided
    /// one after the other, in the order of their batch (limits stay exact).
    pub async fn append_reserving(
        &self,
        events: Vec<NewEvent>,
        reservation: Reservation,
    ) -> Result<Reserved, AppendError> {
        let events = prepare(events)?;
        let appended = self
            .request(|reply| Command::Append {
                events,
                reservation: Some(reservation),
                reply,
            })
            .await?;
        Ok(match appended.refused {
            None => Reserved::Admitted(appended.entries),
            Some(exceeded) => {
                let entry = appended.entries.into_iter().next().ok_or(AppendError::Closed)?;
                Reserved::Refused {
                    exceeded: Box::new(exceeded),
                    entry: Box::new(entry),
                }
            }
        })
    }

    /// Writes the genesis entry if the ledger is empty (otherwise checks that this key is active).
    pub async fn initialize(&self) -> Result<(), AppendError> {
        self.request(|reply| Command::Append {
            events: Vec::new(),
            reservation: None,
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Appends a `ledger.key_rotated` entry signed by the current key that introduces `next`, and
    /// signs everything after it with `next`.
    pub async fn rotate(&self, next: LedgerSigningKey, actor: &str) -> Result<Entry, AppendError> {
        let actor = actor.to_string();
        let mut appended = self
            .request(|reply| Command::Rotate {
                next: Box::new(next),
                actor,
                reply,
            })
            .await?;
        appended.entries.pop().ok_or(AppendError::Closed)
    }

    async fn request(&self, command: impl FnOnce(Reply) -> Command) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }
}

/// Validates, canonicalizes and hashes `events` in the caller's task, in parallel with other callers; the
/// writer only links and signs.
fn prepare(events: Vec<NewEvent>) -> Result<Vec<PreparedEvent>, AppendError> {
    let now = OffsetDateTime::now_utc();
    Ok(events
        .into_iter()
        .map(|e| PreparedEvent::prepare(e, now))
        .collect::<Result<Vec<_>, _>>()?)
}

/// What the writer and its commit tasks share.
struct Shared {
    store: Store,
    config: AppendConfig,
    counters: Arc<Counters>,
    /// The transparency log's edge as the last transaction left it.
    edge: crate::tlog::EdgeCache,
}
