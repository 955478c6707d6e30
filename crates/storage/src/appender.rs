//! The only writer of ledger entries: one task per process that groups concurrent appends into one
//! transaction (group commit).
//!
//! Each batch: begin; take the ledger-wide write lock (PostgreSQL advisory lock, SQLite `BEGIN
//! IMMEDIATE`), so gateways in other processes queue behind it; read the head; link and sign the
//! batch; insert it; commit; only then answer the callers. A crash before the commit leaves nothing;
//! the primary key on `seq` makes a fork impossible even if the lock were bypassed.

use std::sync::Arc;

use ledger_core::{ChainHead, Digest, Entry, EntryError, LedgerPublicKey, LedgerSigningKey, NewEvent, PreparedEvent};
use sqlx::{Postgres, QueryBuilder, Sqlite};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{Backend, ENTRY_COLUMNS, EntryRow, StorageError, Store};

/// Arbitrary constant naming the ledger's PostgreSQL advisory lock ("dktledgr").
const POSTGRES_LOCK_KEY: i64 = 0x646b_746c_6564_6772;

/// SQLite allows 32,766 bound parameters per statement; 12 per row.
const SQLITE_ROWS_PER_INSERT: usize = 2_000;

// Macros rather than generic functions: sqlx's executor traits over `&mut Connection` defeat the
// `Send` inference of the writer task when abstracted over the backend.
macro_rules! read_head {
    ($conn:expr) => {{
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq DESC LIMIT 1");
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

#[derive(Debug, Clone)]
pub struct AppendConfig {
    /// Most entries one transaction takes.
    pub max_batch: usize,
    /// Appends that may wait for the writer before callers are slowed down.
    pub queue_depth: usize,
    /// The actor recorded on the genesis entry.
    pub system_actor: String,
}

impl Default for AppendConfig {
    fn default() -> Self {
        Self { max_batch: 1024, queue_depth: 16_384, system_actor: "system".into() }
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
        StorageError::Database(e).into()
    }
}

type Reply = oneshot::Sender<Result<Vec<Entry>, AppendError>>;

enum Command {
    Append { events: Vec<PreparedEvent>, reply: Reply },
    Rotate { next: LedgerSigningKey, actor: String, reply: Reply },
}

/// A handle to the ledger writer. Cheap to clone; all clones feed the same writer task.
#[derive(Debug, Clone)]
pub struct Ledger {
    commands: mpsc::Sender<Command>,
    store: Store,
}

impl Ledger {
    /// Starts the writer task for `store`, signing with `key`.
    pub fn start(store: Store, key: LedgerSigningKey, config: AppendConfig) -> Ledger {
        let (commands, receiver) = mpsc::channel(config.queue_depth);
        let writer = Writer { store: store.clone(), key: Arc::new(key), config };
        tokio::spawn(writer.run(receiver));
        Ledger { commands, store }
    }

    pub fn store(&self) -> &Store {
        &self.store
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
        self.request(|reply| Command::Append { events: Vec::new(), reply }).await.map(|_| ())
    }

    /// Appends a `ledger.key_rotated` entry signed by the current key that introduces `next`, and
    /// signs everything after it with `next`.
    pub async fn rotate(&self, next: LedgerSigningKey, actor: &str) -> Result<Entry, AppendError> {
        let actor = actor.to_string();
        let mut entries = self.request(|reply| Command::Rotate { next, actor, reply }).await?;
        entries.pop().ok_or(AppendError::Closed)
    }

    async fn request(&self, command: impl FnOnce(Reply) -> Command) -> Result<Vec<Entry>, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }
}

struct Writer {
    store: Store,
    key: Arc<LedgerSigningKey>,
    config: AppendConfig,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        let mut pending: Option<Command> = None;
        loop {
            let first = match pending.take() {
                Some(command) => command,
                None => match receiver.recv().await {
                    Some(command) => command,
                    None => return,
                },
            };
            match first {
                Command::Rotate { next, actor, reply } => {
                    let result = self.rotate(next, &actor).await;
                    let _ = reply.send(result);
                }
                Command::Append { events, reply } => {
                    let mut batch = vec![(events, reply)];
                    let mut size = batch[0].0.len();
                    // Take whatever else is already waiting, up to the batch limit.
                    while size < self.config.max_batch {
                        match receiver.try_recv() {
                            Ok(Command::Append { events, reply }) => {
                                size += events.len();
                                batch.push((events, reply));
                            }
                            Ok(rotate) => {
                                pending = Some(rotate);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append_batch(batch).await;
                }
            }
        }
    }

    async fn append_batch(&self, batch: Vec<(Vec<PreparedEvent>, Reply)>) {
        let (events, replies): (Vec<Vec<PreparedEvent>>, Vec<Reply>) = batch.into_iter().unzip();
        let sizes: Vec<usize> = events.iter().map(Vec::len).collect();
        let events: Vec<PreparedEvent> = events.into_iter().flatten().collect();
        match self.write(events, Extra::None).await {
            Ok(entries) => {
                let mut entries = entries.into_iter();
                for (reply, size) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(entries.by_ref().take(size).collect()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "ledger append failed; nothing of this batch was written");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    async fn rotate(&mut self, next: LedgerSigningKey, actor: &str) -> Result<Vec<Entry>, AppendError> {
        let entries = self.write(Vec::new(), Extra::Rotation { next: &next, actor }).await?;
        tracing::info!(from = self.key.key_id(), to = next.key_id(), "ledger signing key rotated");
        self.key = Arc::new(next);
        Ok(entries)
    }

    /// One transaction: lock, read head, seal, insert, commit. Returns the entries of `events` (and the
    /// rotation entry, for a rotation), not a genesis entry written on the way.
    async fn write(&self, events: Vec<PreparedEvent>, extra: Extra<'_>) -> Result<Vec<Entry>, AppendError> {
        match self.store.backend() {
            Backend::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let head = read_head!(&mut *tx);
                let (sealed, skip, new_keys) = self.seal(head, events, extra).await?;
                insert_sqlite(&mut tx, &sealed).await?;
                for (seq, key) in &new_keys {
                    insert_key!(&mut *tx, *seq, key);
                }
                tx.commit().await?;
                Ok(sealed.into_iter().skip(skip).collect())
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(POSTGRES_LOCK_KEY).execute(&mut *tx).await?;
                let head = read_head!(&mut *tx);
                let (sealed, skip, new_keys) = self.seal(head, events, extra).await?;
                insert_postgres(&mut tx, &sealed).await?;
                for (seq, key) in &new_keys {
                    insert_key!(&mut *tx, *seq, key);
                }
                tx.commit().await?;
                Ok(sealed.into_iter().skip(skip).collect())
            }
        }
    }

    /// Builds the entries of one transaction on top of `head`: a genesis entry first if the ledger is
    /// empty, then `events`, then the rotation entry if asked. Returns the entries, how many of them
    /// (the genesis entry) the caller does not get back, and the keys they introduce.
    async fn seal(
        &self,
        head: Option<Entry>,
        mut events: Vec<PreparedEvent>,
        extra: Extra<'_>,
    ) -> Result<(Vec<Entry>, usize, Vec<(u64, LedgerPublicKey)>), AppendError> {
        let now = OffsetDateTime::now_utc();
        let mut new_keys = Vec::new();
        let skip = usize::from(head.is_none());
        let chain_head = match &head {
            None => {
                let genesis = NewEvent::genesis(&self.key.public_key(), &self.config.system_actor);
                events.insert(0, PreparedEvent::prepare(genesis, now)?);
                new_keys.push((1, self.key.public_key()));
                ChainHead::EMPTY
            }
            Some(head) => {
                let active = ledger_core::entry::next_signing_key_id(head).map_err(AppendError::CorruptHead)?;
                if active != self.key.key_id() {
                    return Err(AppendError::KeyNotActive { ours: self.key.key_id().to_string(), active });
                }
                ChainHead {
                    seq: head.seq,
                    chain_hash: head
                        .chain_hash
                        .parse::<Digest>()
                        .map_err(|e| AppendError::CorruptHead(format!("seq {}: {e}", head.seq)))?,
                }
            }
        };
        if let Extra::Rotation { next, actor } = extra {
            let rotation = NewEvent::key_rotation(self.key.key_id(), &next.public_key(), actor);
            events.push(PreparedEvent::prepare(rotation, now)?);
            new_keys.push((chain_head.seq + events.len() as u64, next.public_key()));
        }
        if events.is_empty() {
            return Ok((Vec::new(), skip, new_keys));
        }
        let key = Arc::clone(&self.key);
        // Signing is CPU work on all cores; keep it off the async workers.
        let sealed = tokio::task::spawn_blocking(move || ledger_core::seal(&chain_head, events, &key))
            .await
            .map_err(|_| AppendError::Closed)?;
        Ok((sealed, skip, new_keys))
    }
}

enum Extra<'a> {
    None,
    Rotation { next: &'a LedgerSigningKey, actor: &'a str },
}

async fn insert_sqlite(tx: &mut sqlx::Transaction<'_, Sqlite>, entries: &[Entry]) -> Result<(), AppendError> {
    for chunk in entries.chunks(SQLITE_ROWS_PER_INSERT) {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new(format!("INSERT INTO ledger_entries ({ENTRY_COLUMNS}) "));
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
        query.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_postgres(tx: &mut sqlx::Transaction<'_, Postgres>, entries: &[Entry]) -> Result<(), AppendError> {
    // One statement per batch whatever its size: columns as arrays, UNNEST back into rows.
    let column = |f: fn(&Entry) -> &String| entries.iter().map(f).cloned().collect::<Vec<String>>();
    sqlx::query(&format!(
        "INSERT INTO ledger_entries ({ENTRY_COLUMNS}) SELECT * FROM UNNEST(\
         $1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])"
    ))
    .bind(entries.iter().map(|e| e.seq as i64).collect::<Vec<i64>>())
    .bind(column(|e| &e.id))
    .bind(column(|e| &e.timestamp))
    .bind(column(|e| &e.kind))
    .bind(column(|e| &e.actor))
    .bind(entries.iter().map(|e| e.action_id.clone()).collect::<Vec<Option<String>>>())
    .bind(column(|e| &e.payload))
    .bind(column(|e| &e.prev_chain_hash))
    .bind(column(|e| &e.event_hash))
    .bind(column(|e| &e.chain_hash))
    .bind(column(|e| &e.key_id))
    .bind(column(|e| &e.signature))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

