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
//! entries; when it finds another (N failed, or another gateway wrote in between) it signs again on
//! the real head inside the transaction. Signing thus overlaps the database's round trips and fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_core::{ChainHead, Entry, EntryError, LedgerPublicKey, LedgerSigningKey, NewEvent, PreparedEvent};
use sqlx::{Postgres, QueryBuilder, Sqlite};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{Backend, ENTRY_COLUMNS, EntryRow, StorageError, Store};

/// Begins a transaction and takes the ledger's PostgreSQL advisory lock in one round trip (sent as a
/// simple query). The lock's key is an arbitrary constant: 0x646b746c65646772, "dktledgr".
/// READ COMMITTED is named because the head read after the lock must see every commit made before it;
/// a server whose default is REPEATABLE READ would take the snapshot before the lock is granted.
pub(crate) const POSTGRES_BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(7236005235207202674)";

/// SQLite allows 32,766 bound parameters per statement; 12 per row.
const SQLITE_ROWS_PER_INSERT: usize = 2_000;

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

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Invalid(#[from] EntryError),
    #[error(
        "this gateway signs with {ours} but the ledger's active key is {active}: load the active key (after `docketops keys rotate`, restart every gateway with the new key)"
    )]
    KeyNotActive { ours: String, active: String },
    #[error("the ledger is empty: start the gateway once to write its genesis entry before rotating keys")]
    NothingToRotate,
    #[error("the ledger's head entry cannot be read ({0}); run `docketops verify`")]
    CorruptHead(String),
    #[error("storage: {0}")]
    Storage(Arc<StorageError>),
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

type Reply = oneshot::Sender<Result<Vec<Entry>, AppendError>>;

enum Command {
    Append {
        events: Vec<PreparedEvent>,
        reply: Reply,
    },
    Rotate {
        next: Box<LedgerSigningKey>,
        actor: String,
        reply: Reply,
    },
}

// Macros rather than generic functions: sqlx's executor traits over `&mut Connection` defeat the
// `Send` inference of the writer task when abstracted over the backend.
macro_rules! read_head {
    ($conn:expr) => {{
        let sql = crate::queries::head();
        let row: Option<EntryRow> = sqlx::query_as(&sql).fetch_optional($conn).await?;
        row.map(Entry::from)
    }};
}

macro_rules! insert_key {
    ($conn:expr, $seq:expr, $key:expr) => {{
        let info = $key.info();
        sqlx::query("INSERT INTO ledger_keys (key_id, algorithm, public_key, introduced_seq) VALUES ($1, $2, $3, $4)")
            .bind(info.key_id)
            .bind(info.algorithm)
            .bind(info.public_key)
            .bind($seq as i64)
            .execute($conn)
            .await?;
    }};
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
    pub transactions: u64,
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
        let writer = Writer {
            shared,
            key: Arc::new(key),
        };
        tokio::spawn(writer.run(receiver));
        Ledger { commands, counters }
    }

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
        let now = OffsetDateTime::now_utc();
        // Validation, canonicalization and hashing happen here, in the caller's task, in parallel with
        // other callers; the writer only links and signs.
        let events = events
            .into_iter()
            .map(|e| PreparedEvent::prepare(e, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.request(|reply| Command::Append { events, reply }).await
    }

    /// Writes the genesis entry if the ledger is empty (otherwise checks that this key is active).
    pub async fn initialize(&self) -> Result<(), AppendError> {
        self.request(|reply| Command::Append {
            events: Vec::new(),
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Appends a `ledger.key_rotated` entry signed by the current key that introduces `next`, and
    /// signs everything after it with `next`.
    pub async fn rotate(&self, next: LedgerSigningKey, actor: &str) -> Result<Entry, AppendError> {
        let actor = actor.to_string();
        let mut entries = self
            .request(|reply| Command::Rotate {
                next: Box::new(next),
                actor,
                reply,
            })
            .await?;
        entries.pop().ok_or(AppendError::Closed)
    }

    async fn request(&self, command: impl FnOnce(Reply) -> Command) -> Result<Vec<Entry>, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }
}

/// What the writer and its commit tasks share.
struct Shared {
    store: Store,
    config: AppendConfig,
    counters: Arc<Counters>,
    /// The transparency log's edge as the last transaction left it.
    edge: crate::tlog::EdgeCache,
}

struct Writer {
    shared: Arc<Shared>,
    key: Arc<LedgerSigningKey>,
}

/// Entries signed ahead of their transaction, on top of `base`.
struct Presealed {
    base: ChainHead,
    entries: Vec<Entry>,
}

impl Presealed {
    fn tip(&self) -> ChainHead {
        self.entries
            .last()
            .and_then(ledger_core::chain::head_of)
            .unwrap_or(self.base)
    }
}

/// The next batch, collected (and signed as it grows) while the previous one commits.
struct Gathered {
    events: Vec<PreparedEvent>,
    replies: Vec<Reply>,
    sizes: Vec<usize>,
    /// The head the batch is signed on, when known.
    base: Option<ChainHead>,
    /// Entries for `events[..signed.len()]`, chained on `base`.
    signed: Vec<Entry>,
}

impl Gathered {
    fn new(base: Option<ChainHead>) -> Self {
        Self {
            events: Vec::new(),
            replies: Vec::new(),
            sizes: Vec::new(),
            base,
            signed: Vec::new(),
        }
    }

    fn push(&mut self, events: Vec<PreparedEvent>, reply: Reply) {
        self.sizes.push(events.len());
        self.replies.push(reply);
        self.events.extend(events);
    }

    /// Signs the events not signed yet, chained on the last signed one.
    async fn sign_pending(&mut self, key: &Arc<LedgerSigningKey>) {
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
    async fn previous_committed(&mut self, done: Option<ChainHead>, key: &Arc<LedgerSigningKey>) {
        if done != self.base || done.is_none() {
            self.base = done;
            self.signed.clear();
            self.sign_pending(key).await;
        }
    }

    fn finish(self) -> (Vec<PreparedEvent>, Option<Presealed>, Vec<Reply>, Vec<usize>) {
        let presealed = match self.base {
            Some(base) if self.signed.len() == self.events.len() && !self.events.is_empty() => Some(Presealed {
                base,
                entries: self.signed,
            }),
            _ => None,
        };
        (self.events, presealed, self.replies, self.sizes)
    }
}

/// A transaction in progress; yields the head it left, or None if it failed.
type InFlight = tokio::task::JoinHandle<Option<ChainHead>>;

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        let mut pending_rotation: Option<Command> = None;
        let mut in_flight: Option<InFlight> = None;
        // The head once every launched transaction has committed, when known.
        let mut expected: Option<ChainHead> = None;
        let mut closed = false;
        while !closed || pending_rotation.is_some() {
            if let Some(Command::Rotate { next, actor, reply }) = pending_rotation.take() {
                finish(&mut in_flight).await;
                expected = None;
                let _ = reply.send(self.rotate(*next, &actor).await);
                continue;
            }
            let mut gathered = Gathered::new(expected);
            // Gather while the previous transaction commits (or, when idle, until the first request).
            loop {
                if gathered.events.len() >= self.shared.config.max_batch || pending_rotation.is_some() || closed {
                    if in_flight.is_some() {
                        let done = finish(&mut in_flight).await;
                        gathered.previous_committed(done, &self.key).await;
                    }
                    break;
                }
                if in_flight.is_none() && !gathered.replies.is_empty() {
                    break;
                }
                let mut previous_done = None;
                tokio::select! {
                    done = wait(&mut in_flight) => previous_done = Some(done),
                    command = receiver.recv() => match command {
                        None => closed = true,
                        Some(rotate @ Command::Rotate { .. }) => pending_rotation = Some(rotate),
                        Some(Command::Append { events, reply }) => {
                            gathered.push(events, reply);
                            while gathered.events.len() < self.shared.config.max_batch {
                                match receiver.try_recv() {
                                    Ok(Command::Append { events, reply }) => gathered.push(events, reply),
                                    Ok(rotate) => {
                                        pending_rotation = Some(rotate);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            // Sign now, while the previous transaction is still committing.
                            gathered.sign_pending(&self.key).await;
                        }
                    },
                }
                if let Some(done) = previous_done {
                    in_flight = None;
                    gathered.previous_committed(done, &self.key).await;
                }
            }
            if gathered.replies.is_empty() {
                continue;
            }
            gathered.sign_pending(&self.key).await;
            let (events, presealed, replies, sizes) = gathered.finish();
            expected = presealed.as_ref().map(Presealed::tip);
            let (shared, key) = (Arc::clone(&self.shared), Arc::clone(&self.key));
            in_flight = Some(tokio::spawn(commit(shared, key, events, presealed, replies, sizes)));
        }
        finish(&mut in_flight).await;
    }

    async fn rotate(&mut self, next: LedgerSigningKey, actor: &str) -> Result<Vec<Entry>, AppendError> {
        let entries = transaction(&self.shared, &self.key, Vec::new(), None, Some((&next, actor))).await?;
        tracing::info!(
            from = self.key.key_id(),
            to = next.key_id(),
            "ledger signing key rotated"
        );
        self.key = Arc::new(next);
        Ok(entries)
    }
}

async fn finish(in_flight: &mut Option<InFlight>) -> Option<ChainHead> {
    match in_flight.take() {
        Some(task) => task.await.ok().flatten(),
        None => None,
    }
}

/// Resolves when the transaction in flight ends; never, if there is none.
async fn wait(in_flight: &mut Option<InFlight>) -> Option<ChainHead> {
    match in_flight {
        Some(task) => task.await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// Signs on all cores, off the async workers (a handful of entries is signed in place: cheaper than
/// the hand-off).
async fn sign(base: ChainHead, events: Vec<PreparedEvent>, key: Arc<LedgerSigningKey>) -> Vec<Entry> {
    if events.len() < 8 {
        return ledger_core::seal(&base, events, &key);
    }
    tokio::task::spawn_blocking(move || ledger_core::seal(&base, events, &key))
        .await
        .expect("sealing does not panic")
}

/// Runs one batch's transaction and answers its callers.
async fn commit(
    shared: Arc<Shared>,
    key: Arc<LedgerSigningKey>,
    events: Vec<PreparedEvent>,
    presealed: Option<Presealed>,
    replies: Vec<Reply>,
    sizes: Vec<usize>,
) -> Option<ChainHead> {
    match transaction(&shared, &key, events, presealed, None).await {
        Ok(entries) => {
            let head = entries.last().and_then(ledger_core::chain::head_of);
            let mut entries = entries.into_iter();
            for (reply, size) in replies.into_iter().zip(sizes) {
                let _ = reply.send(Ok(entries.by_ref().take(size).collect()));
            }
            // None when nothing was appended (an initialize call): the next batch reads the head.
            head
        }
        Err(error) => {
            tracing::error!(%error, "ledger append failed; nothing of this batch was written");
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
            None
        }
    }
}

/// One transaction (see [`write`]); its outcome tells readiness whether writes work.
async fn transaction(
    shared: &Shared,
    key: &Arc<LedgerSigningKey>,
    events: Vec<PreparedEvent>,
    presealed: Option<Presealed>,
    rotation: Option<(&LedgerSigningKey, &str)>,
) -> Result<Vec<Entry>, AppendError> {
    let result = write(shared, key, events, presealed, rotation).await;
    match &result {
        Ok(_) => shared.store.clear_fault(),
        Err(AppendError::Storage(error)) => shared.store.note_fault(error),
        Err(_) => {}
    }
    result
}

/// One transaction: lock, read the head, use the presealed entries if they fit it or sign on it,
/// insert, commit. Returns the caller's entries: those of `events`, or the rotation entry (a genesis
/// entry written on the way is not returned).
async fn write(
    shared: &Shared,
    key: &Arc<LedgerSigningKey>,
    events: Vec<PreparedEvent>,
    presealed: Option<Presealed>,
    rotation: Option<(&LedgerSigningKey, &str)>,
) -> Result<Vec<Entry>, AppendError> {
    // Fast path: insert the presealed entries only if the head is still the one they were signed on
    // (one statement, no separate head read; a head that is ours also means our key is still the
    // active one, as any other writer or a rotation would have moved it). Slow path: read the head,
    // sign on it, insert.
    macro_rules! run {
        ($pool:expr, $begin:expr, $insert:ident, $fold:ident) => {{
            let mut tx = $pool.begin_with($begin).await?;
            let fast = match presealed {
                Some(presealed) => {
                    let guard = presealed.base.chain_hash.to_string();
                    let inserted = $insert(&mut tx, &presealed.entries, Some(&guard)).await?;
                    (inserted == presealed.entries.len() as u64).then_some(presealed.entries)
                }
                None => None,
            };
            let written = match fast {
                Some(sealed) => (sealed, 0),
                None => {
                    let head = read_head!(&mut *tx);
                    let (sealed, skip, new_keys) = build(shared, key, head, events, rotation).await?;
                    $insert(&mut tx, &sealed, None).await?;
                    for (seq, key) in &new_keys {
                        insert_key!(&mut *tx, *seq, key);
                    }
                    (sealed, skip)
                }
            };
            // Trust scores and the transparency log's tree move in the same transaction as the entries.
            crate::trust::$fold(&mut tx, &written.0).await?;
            let edge = match shared.config.integrate_tree {
                true => crate::tlog::integrate!(&mut *tx, shared.edge, &written.0),
                false => None,
            };
            tx.commit().await?;
            *shared.edge.lock().expect("edge cache lock") = edge;
            written
        }};
    }
    let (sealed, skip) = match &shared.store.writer() {
        Backend::Sqlite(pool) => run!(pool, "BEGIN IMMEDIATE", insert_sqlite, fold_batch_sqlite),
        Backend::Postgres(pool) => run!(pool, POSTGRES_BEGIN, insert_postgres, fold_batch_postgres),
    };
    if !sealed.is_empty() {
        shared.counters.transactions.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .entries
            .fetch_add(sealed.len() as u64, Ordering::Relaxed);
    }
    Ok(sealed.into_iter().skip(skip).collect())
}

/// The entries of one transaction on top of `head`: a genesis entry first if the ledger is empty,
/// then `events`, then the rotation entry if asked. Returns them, how many leading entries (the
/// genesis) the caller does not get back, and the keys they introduce.
async fn build(
    shared: &Shared,
    key: &Arc<LedgerSigningKey>,
    head: Option<Entry>,
    mut events: Vec<PreparedEvent>,
    rotation: Option<(&LedgerSigningKey, &str)>,
) -> Result<(Vec<Entry>, usize, Vec<(u64, LedgerPublicKey)>), AppendError> {
    let now = OffsetDateTime::now_utc();
    let mut new_keys = Vec::new();
    let base = match &head {
        None => {
            let genesis = NewEvent::genesis(&key.public_key(), &shared.config.system_actor);
            events.insert(0, PreparedEvent::prepare(genesis, now)?);
            new_keys.push((1, key.public_key()));
            ChainHead::EMPTY
        }
        Some(head) => {
            let active = ledger_core::entry::next_signing_key_id(head).map_err(AppendError::CorruptHead)?;
            if active != key.key_id() {
                return Err(AppendError::KeyNotActive {
                    ours: key.key_id().to_string(),
                    active,
                });
            }
            ledger_core::chain::head_of(head)
                .ok_or_else(|| AppendError::CorruptHead(format!("seq {}: unreadable chain_hash", head.seq)))?
        }
    };
    let skip = usize::from(head.is_none());
    if let Some((next, actor)) = rotation {
        if head.is_none() {
            return Err(AppendError::NothingToRotate);
        }
        // A rotation is a transaction of its own, so it follows the head directly; its proof of
        // possession binds that head's chain hash.
        debug_assert!(events.is_empty(), "a rotation travels alone");
        let event = NewEvent::key_rotation(key.key_id(), next, &base.chain_hash, actor);
        events.push(PreparedEvent::prepare(event, now)?);
        new_keys.push((base.seq + events.len() as u64, next.public_key()));
    }
    if events.is_empty() {
        return Ok((Vec::new(), skip, new_keys));
    }
    Ok((sign(base, events, Arc::clone(key)).await, skip, new_keys))
}

/// Inserts `entries`; with `guard`, only if the head's chain hash is `guard` (else nothing). Returns the
/// number of rows inserted.
async fn insert_sqlite(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    entries: &[Entry],
    guard: Option<&str>,
) -> Result<u64, AppendError> {
    let mut inserted = 0;
    for (i, chunk) in entries.chunks(SQLITE_ROWS_PER_INSERT).enumerate() {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new(format!("INSERT INTO ledger_entries ({ENTRY_COLUMNS}) SELECT * FROM ("));
        query.push_values(chunk, |mut row, e| {
            row.push_bind(e.seq as i64)
                .push_bind(&e.id)
                .push_bind(&e.timestamp)
                .push_bind(&e.kind)
                .push_bind(&e.actor)
                .push_bind(&e.action_id)
                .push_bind(&e.payload)
                .push_bind(&e.prev_chain_hash)
                .push_bind(&e.event_hash)
                .push_bind(&e.chain_hash)
                .push_bind(&e.key_id)
                .push_bind(&e.signature);
        });
        query.push(")");
        // Later chunks follow the first inside the same transaction: only the first needs the guard.
        if let (Some(guard), 0) = (guard, i) {
            query.push(" WHERE (SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1) = ");
            query.push_bind(guard);
        }
        let rows = query
            .build()
            .persistent(false)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if rows == 0 {
            break;
        }
        inserted += rows;
    }
    Ok(inserted)
}

async fn insert_postgres(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    entries: &[Entry],
    guard: Option<&str>,
) -> Result<u64, AppendError> {
    // One statement per batch whatever its size: columns as arrays, UNNEST back into rows.
    let column = |f: fn(&Entry) -> &String| entries.iter().map(f).cloned().collect::<Vec<String>>();
    let condition = match guard {
        Some(_) => " WHERE (SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1) = $13",
        None => "",
    };
    let sql = format!(
        "INSERT INTO ledger_entries ({ENTRY_COLUMNS}) SELECT * FROM UNNEST(\
         $1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]){condition}"
    );
    let mut query = sqlx::query(&sql)
        .bind(entries.iter().map(|e| e.seq as i64).collect::<Vec<i64>>())
        .bind(column(|e| &e.id))
        .bind(column(|e| &e.timestamp))
        .bind(column(|e| &e.kind))
        .bind(column(|e| &e.actor))
        .bind(
            entries
                .iter()
                .map(|e| e.action_id.clone())
                .collect::<Vec<Option<String>>>(),
        )
        .bind(column(|e| &e.payload))
        .bind(column(|e| &e.prev_chain_hash))
        .bind(column(|e| &e.event_hash))
        .bind(column(|e| &e.chain_hash))
        .bind(column(|e| &e.key_id))
        .bind(column(|e| &e.signature));
    if let Some(guard) = guard {
        query = query.bind(guard);
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_begin_statement_takes_the_ledger_lock() {
        let key = i64::from_be_bytes(*b"dktledgr");
        assert!(super::POSTGRES_BEGIN.ends_with(&format!("pg_advisory_xact_lock({key})")));
    }
}
