//! Ledger storage on SQLite (the zero-setup default) or PostgreSQL (production, several gateways on
//! one database), and the group-commit appender that is the only writer of ledger entries.
//!
//! Architecture invariant: all SQL of the project lives in this crate. Entries are stored exactly as
//! the ledger core sealed them; this crate never computes a hash or a signature itself.

mod appender;
mod audit;
mod cursors;
mod dashboard;
mod directory;
pub mod hot_paths;
mod lineage;
mod ownership;
mod queries;
pub mod seed;
mod seed_rows;
#[cfg(feature = "tamper")]
pub mod tamper;
pub mod tlog;
mod trust;
mod verify;
pub mod witness;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_core::Entry;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};
use tokio::sync::mpsc;

pub use appender::{AppendConfig, AppendError, Ledger, LedgerStats};
pub use cursors::ExportCursor;
pub use dashboard::{LoginRow, SessionRow, TimelineEntry, TimelineFilter};
pub use directory::{ActionFilter, ActionRow, ApiKeyRow, ApprovalRow, IdentityRow, KeyLookup};
pub use lineage::Controller;
pub use tlog::reads::TreeReadError;
pub use tlog::{CheckpointRow, CosignatureRow, TreeProgress};
pub use trust::{MAX_TRUST_PAGE, StoredTrust, TrustProgress};
pub use verify::{ExportError, ExportSummary, PAGE_SIZE, verify_ledger, write_bundle};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The database's disk is full (SQLite SQLITE_FULL, PostgreSQL 53100 disk_full). Reads still work.
    #[error("the database's disk is full; free space for it (reads still work): {0}")]
    Full(#[source] sqlx::Error),
    /// The database refuses writes: a read-only file, directory or file system (SQLite SQLITE_READONLY),
    /// or a PostgreSQL server in read-only mode (25006).
    #[error("the database is read-only; make its file and directory writable (reads still work): {0}")]
    ReadOnly(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row with the same unique name or key exists.
    #[error("{0}")]
    Conflict(String),
    /// The transparency log's tiles do not describe the ledger's entries (a bug or an edited database).
    #[error("the transparency log's tiles are inconsistent: {0}")]
    Tiles(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        match fault_of(&error) {
            Some(WriteFault::Full) => StorageError::Full(error),
            Some(WriteFault::ReadOnly) => StorageError::ReadOnly(error),
            None => StorageError::Database(error),
        }
    }
}

impl StorageError {
    /// Which write fault this is, if it is one.
    pub fn fault(&self) -> Option<WriteFault> {
        match self {
            StorageError::Full(_) => Some(WriteFault::Full),
            StorageError::ReadOnly(_) => Some(WriteFault::ReadOnly),
            _ => None,
        }
    }
}

/// Why writes fail while reads work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteFault {
    Full,
    ReadOnly,
}

/// SQLite reports its extended result code (the primary code in the low byte), PostgreSQL its SQLSTATE.
fn fault_of(error: &sqlx::Error) -> Option<WriteFault> {
    const SQLITE_READONLY: i32 = 8;
    const SQLITE_FULL: i32 = 13;
    match error {
        sqlx::Error::Database(db) => match (db.try_downcast_ref::<sqlx::sqlite::SqliteError>(), db.code()) {
            (Some(_), Some(code)) => match code.parse::<i32>().ok()? & 0xff {
                SQLITE_FULL => Some(WriteFault::Full),
                SQLITE_READONLY => Some(WriteFault::ReadOnly),
                _ => None,
            },
            (None, Some(code)) if code == "53100" => Some(WriteFault::Full),
            (None, Some(code)) if code == "25006" => Some(WriteFault::ReadOnly),
            _ => None,
        },
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull => Some(WriteFault::Full),
            std::io::ErrorKind::ReadOnlyFilesystem => Some(WriteFault::ReadOnly),
            _ => None,
        },
        _ => None,
    }
}

/// Which database a [`Store`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection pool to the ledger database.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite only: the one connection every write goes through (see `with_writer!`).
    sqlite_writer: Option<SqlitePool>,
    /// The last write fault seen and not yet cleared by a successful write.
    fault: Arc<Mutex<Option<(WriteFault, String)>>>,
    /// The transparency log's tiles and size, as far as they are known (they only grow).
    tree_cache: Arc<tlog::reads::TreeCache>,
}

/// Runs `$body` (a `Result<_, sqlx::Error>`) with `$pool` bound to the concrete pool; the body is compiled
/// once per backend. A write fault it ends in is noted for readiness.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        $store.observe(match &$store.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        })
    };
}
#[cfg_attr(not(feature = "tamper"), allow(unused_imports))]
pub(crate) use with_pool;

/// [`with_pool!`] for statements that write. On SQLite they all go through one connection: SQLite takes one
/// writer at a time, and a second connection that asks meanwhile is answered by sleeping in the busy handler
/// (1, 2, 5, 10, … ms), which under concurrent actions cost more than the writes themselves. Queued on one
/// connection they wait in the pool's fair queue instead. Readers keep their own connections (WAL).
/// Writers in other processes still meet the busy timeout.
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        $store.observe(match &$store.writer() {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        })
    };
}
pub(crate) use with_writer;

/// A stored row; turned into an [`Entry`] without judging it (the verifier does that).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EntryRow {
    seq: i64,
    id: String,
    timestamp: String,
    kind: String,
    actor: String,
    action_id: Option<String>,
    payload: String,
    prev_chain_hash: String,
    event_hash: String,
    chain_hash: String,
    key_id: String,
    signature: String,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Entry {
        Entry {
            // A negative seq can only come from tampering; 0 makes the verifier report it.
            seq: u64::try_from(row.seq).unwrap_or(0),
            id: row.id,
            timestamp: row.timestamp,
            kind: row.kind,
            actor: row.actor,
            action_id: row.action_id,
            payload: row.payload,
            prev_chain_hash: row.prev_chain_hash,
            event_hash: row.event_hash,
            chain_hash: row.chain_hash,
            key_id: row.key_id,
            signature: row.signature,
        }
    }
}

pub(crate) const ENTRY_COLUMNS: &str =
    "seq, id, timestamp, kind, actor, action_id, payload, prev_chain_hash, event_hash, chain_hash, key_id, signature";

/// A public key row of `ledger_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct KeyRecord {
    pub key_id: String,
    pub algorithm: String,
    pub public_key: String,
    pub introduced_seq: i64,
}

/// The migrations of each backend. A database migrated by a newer release has migrations this one does not
/// know; they only add, so this release ignores them instead of refusing to start (rollbacks, rolling upgrades).
fn migrator(backend: BackendKind) -> sqlx::migrate::Migrator {
    let mut migrator = match backend {
        BackendKind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        BackendKind::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.set_ignore_missing(true);
    migrator
}

/// A connection that comes back to the pool still inside a transaction was interrupted by an error (a
/// failed COMMIT, SQLite's automatic rollback on SQLITE_FULL that left sqlx's depth counter behind, a
/// cancelled request). It may hold the database's write lock or refuse the next BEGIN, so it is closed
/// (closing rolls back) instead of being reused.
fn discard_if_in_transaction<C: Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    let reusable = !conn.is_in_transaction();
    if !reusable {
        tracing::warn!("closing a database connection returned inside a transaction (an error interrupted it)");
    }
    Box::pin(std::future::ready(Ok(reusable)))
}

impl Store {
    /// Connects to `sqlite://PATH` (created if missing; WAL, synchronous=FULL) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Every acknowledged append survives a power loss: the WAL is fsynced at each commit.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let readers = sqlite_pool(options.clone(), 4).await?;
            let writer = sqlite_pool(options, 1).await?;
            return Ok(Store {
                sqlite_writer: Some(writer),
                ..Store::new(Backend::Sqlite(readers))
            });
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?.application_name("docketops");
            Backend::Postgres(postgres_pool(options, 8).await?)
        } else {
            return Err(StorageError::UnsupportedUrl(redact(url)));
        };
        Ok(Store::new(backend))
    }

    /// Connects for reading only (`verify`, `export`): no file, directory, WAL or -shm is created, no
    /// migration runs and no checkpoint writes, so a copy on a read-only file system can be checked.
    /// A SQLite database without a write-ahead log beside it (closed cleanly) opens as immutable when
    /// its directory is read-only, since SQLite could not create the -shm file it otherwise needs.
    pub async fn connect_read_only(url: &str) -> Result<Store, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite_read_only(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?
                .application_name("docketops")
                .options([("default_transaction_read_only", "on")]);
            Backend::Postgres(postgres_pool(options, 2).await?)
        } else {
            return Err(StorageError::UnsupportedUrl(redact(url)));
        };
        Ok(Store::new(backend))
    }

    fn new(backend: Backend) -> Store {
        Store {
            backend,
            sqlite_writer: None,
            fault: Arc::default(),
            tree_cache: Arc::new(tlog::reads::TreeCache::new()),
        }
    }

    /// The pool writes go through: SQLite's one writer connection, or the pool itself.
    pub(crate) fn writer(&self) -> Backend {
        match (&self.backend, &self.sqlite_writer) {
            (Backend::Sqlite(_), Some(writer)) => Backend::Sqlite(writer.clone()),
            (backend, _) => backend.clone(),
        }
    }

    /// Notes a write fault `result` ends in.
    pub(crate) fn observe<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(error) = &result
            && let Some(fault) = fault_of(error)
        {
            *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some((fault, error.to_string()));
        }
        result
    }

    /// Notes `error` if it is a write fault.
    pub(crate) fn note_fault(&self, error: &StorageError) {
        if let Some(fault) = error.fault() {
            *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some((fault, error.to_string()));
        }
    }

    /// Forgets the last write fault: a write just succeeded.
    pub(crate) fn clear_fault(&self) {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Why writes fail, for readiness: None while no write fault was seen since the last successful write.
    /// After a fault, probes decide, so readiness returns by itself once space is back: on SQLite a
    /// scratch file of [`SPACE_PROBE_BYTES`] beside the database (a database write could still fit into
    /// the log space a failed write left behind), then a small write to the database.
    pub async fn write_fault(&self) -> Option<(WriteFault, String)> {
        let recorded = self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        if let Backend::Sqlite(pool) = &self.backend {
            let db = pool.connect_options().get_filename().to_path_buf();
            if let Some(fault) = space_probe(db).await {
                return Some(fault);
            }
        }
        let sql = "INSERT INTO settings (name, value) VALUES ('write_probe', $1) \
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        match with_writer!(self, pool => sqlx::query(sql).bind(&now).execute(pool).await.map(|_| ())) {
            Ok(()) => {
                self.clear_fault();
                None
            }
            Err(error) => Some(fault_of(&error).map_or(recorded, |kind| (kind, error.to_string()))),
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Applies pending migrations. Migrations only ever add (expand/contract), so the previous release
    /// keeps running against a migrated database during a rolling upgrade.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Sqlite(pool) => migrator(BackendKind::Sqlite).run(pool).await?,
            Backend::Postgres(pool) => migrator(BackendKind::Postgres).run(pool).await?,
        }
        Ok(())
    }

    /// For readiness probes.
    pub async fn ping(&self) -> Result<(), StorageError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// SQLite: copies the write-ahead log into the database file and empties it (`wal_checkpoint(TRUNCATE)`),
    /// so the file alone holds every committed entry (e.g. before copying it). PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        if let Backend::Sqlite(pool) = &self.writer() {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// The entry with the highest seq.
    pub async fn head(&self) -> Result<Option<Entry>, StorageError> {
        let sql = queries::head();
        let row: Option<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql).fetch_optional(pool).await)?;
        Ok(row.map(Entry::from))
    }

    /// Up to `limit` entries with seq greater than `after_seq`, in seq order.
    pub async fn entries_after(&self, after_seq: i64, limit: u32) -> Result<Vec<Entry>, StorageError> {
        let sql = queries::entries_after();
        let rows: Vec<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }

    async fn entries_between(&self, after_seq: i64, until_seq: i64, limit: u32) -> Result<Vec<Entry>, StorageError> {
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3");
        let rows: Vec<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(after_seq)
            .bind(until_seq)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }

    /// The payload sizes (in characters) of the next `limit` entries after `after_seq`, in order.
    async fn payload_sizes_between(
        &self,
        after_seq: i64,
        until_seq: i64,
        limit: u32,
    ) -> Result<Vec<i64>, StorageError> {
        let sql = "SELECT CAST(length(payload) AS BIGINT) FROM ledger_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(after_seq)
            .bind(until_seq)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    pub async fn entry_by_id(&self, id: &str) -> Result<Option<Entry>, StorageError> {
        let sql = queries::entry_by_id();
        let row: Option<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Entry::from))
    }

    pub async fn entry_count(&self) -> Result<u64, StorageError> {
        let count: i64 =
            with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries").fetch_one(pool).await)?;
        Ok(count.max(0) as u64)
    }

    /// Streams the ledger in seq order (up to `until_seq` if given), `page_size` entries and at most
    /// [`PAGE_BYTES`] of payload at a time. The next page is read while the caller works on the current
    /// one; at most two pages are held, so memory stays flat whatever the size of the entries.
    pub fn scan(&self, page_size: u32, until_seq: Option<i64>) -> mpsc::Receiver<Result<Vec<Entry>, StorageError>> {
        let (sender, receiver) = mpsc::channel(1);
        let store = self.clone();
        tokio::spawn(async move {
            let mut after = i64::MIN;
            let until = until_seq.unwrap_or(i64::MAX);
            loop {
                // A page is at most `page_size` entries and at most PAGE_BYTES of payload (at least one
                // entry): memory stays bounded however large the entries are.
                let page = match store.payload_sizes_between(after, until, page_size).await {
                    Ok(sizes) if sizes.is_empty() => break,
                    Ok(sizes) => {
                        let fits = entries_within(&sizes, PAGE_BYTES);
                        let last = sizes.len() < page_size as usize && fits == sizes.len();
                        store
                            .entries_between(after, until, fits as u32)
                            .await
                            .map(|page| (page, last))
                    }
                    Err(e) => Err(e),
                };
                match page {
                    Ok((page, _)) if page.is_empty() => break,
                    Ok((page, last_page)) => {
                        // A tampered row may carry a seq that does not fit u64; page by the raw order.
                        after = page.last().map_or(after, |e| i64::try_from(e.seq).unwrap_or(after));
                        if sender.send(Ok(page)).await.is_err() || last_page {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        break;
                    }
                }
            }
        });
        receiver
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StorageError> {
        let sql = "SELECT key_id, algorithm, public_key, introduced_seq FROM ledger_keys ORDER BY introduced_seq";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        let sql = "SELECT value FROM settings WHERE name = $1";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql).bind(name).fetch_optional(pool).await)?)
    }

    /// Stores `value` under `name`, replacing what was there.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StorageError> {
        let sql = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        with_writer!(self, pool => sqlx::query(sql).bind(name).bind(value).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The key id that must sign the next entry (None for an empty ledger).
    pub async fn next_signing_key_id(&self) -> Result<Option<String>, StorageError> {
        Ok(self
            .head()
            .await?
            .and_then(|head| ledger_core::entry::next_signing_key_id(&head).ok()))
    }

    /// Stores `value` under `name` unless a value is there already; true if this call stored it.
    pub async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool, StorageError> {
        let sql = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        let inserted = with_writer!(self, pool => sqlx::query(sql)
            .bind(name)
            .bind(value)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }
}

async fn sqlite_pool(options: SqliteConnectOptions, size: u32) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(size)
        .after_release(discard_if_in_transaction)
        .connect_with(options)
        .await
}

async fn postgres_pool(options: PgConnectOptions, size: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_release(discard_if_in_transaction)
        .connect_with(options)
        .await
}

/// How much room the SQLite readiness probe asks of the database's file system after a write fault.
pub const SPACE_PROBE_BYTES: usize = 1 << 20;

/// Writes and removes a scratch file of [`SPACE_PROBE_BYTES`] beside `db`; the fault if that fails.
async fn space_probe(db: std::path::PathBuf) -> Option<(WriteFault, String)> {
    let mut path = db.into_os_string();
    path.push("-space-probe");
    let path = std::path::PathBuf::from(path);
    let written = tokio::task::spawn_blocking(move || {
        let result = std::fs::write(&path, vec![0u8; SPACE_PROBE_BYTES]);
        let _ = std::fs::remove_file(&path);
        result.map_err(|e| (e, path))
    })
    .await
    .ok()?;
    let (error, path) = written.err()?;
    let fault = match error.kind() {
        std::io::ErrorKind::StorageFull => WriteFault::Full,
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => WriteFault::ReadOnly,
        _ => return None,
    };
    let room = SPACE_PROBE_BYTES >> 20;
    Some((
        fault,
        format!(
            "cannot write {room} MiB beside the database ({}): {error}",
            path.display()
        ),
    ))
}

/// A read-only pool, tried with a first read (SQLite opens the file lazily). A WAL-mode database needs its
/// -shm file, which a read-only directory cannot get; without a -wal file the database file holds every
/// commit, so it is then opened immutable.
async fn sqlite_read_only(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .read_only(true)
        .busy_timeout(Duration::from_secs(30));
    let first_read = |pool: SqlitePool| async move {
        sqlx::query("SELECT count(*) FROM sqlite_master").execute(&pool).await?;
        Ok::<_, sqlx::Error>(pool)
    };
    let error = match first_read(sqlite_pool(options.clone(), 2).await?).await {
        Ok(pool) => return Ok(pool),
        Err(error) => error,
    };
    if wal_exists(options.get_filename()) {
        return Err(error);
    }
    tracing::debug!(%error, "read-only open failed; opening immutable (no write-ahead log beside the file)");
    let immutable = SqliteConnectOptions::from_str(&immutable_url(url))?.read_only(true);
    first_read(sqlite_pool(immutable, 2).await?).await.map_err(|_| error)
}

fn wal_exists(db: &std::path::Path) -> bool {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::path::Path::new(&wal).exists()
}

fn immutable_url(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}immutable=true")
}

/// A database URL without its password (user info or `password` parameter), for messages and logs.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable database URL>".to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(name, _)| name.eq_ignore_ascii_case("password")) {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (name, value) in &pairs {
            let value = if name.eq_ignore_ascii_case("password") {
                "****"
            } else {
                value.as_str()
            };
            query.append_pair(name, value);
        }
    }
    parsed.to_string()
}

/// Creates PostgreSQL database `name` through `admin_url` (a database the role can connect to) and
/// returns the URL of the new database. For tests and benchmarks that each want a database of their own.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StorageError> {
    check_database_name(name)?;
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    admin.close().await;
    let mut url = url::Url::parse(admin_url).map_err(|_| StorageError::UnsupportedUrl(redact(admin_url)))?;
    url.set_path(name);
    Ok(url.to_string())
}

/// Drops a database made by [`create_postgres_database`].
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), StorageError> {
    check_database_name(name)?;
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

fn check_database_name(name: &str) -> Result<(), StorageError> {
    // The name is spliced into DDL (which takes no bind parameters), so only plain identifiers pass.
    if !name.is_empty()
        && name.len() < 60
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(StorageError::UnsupportedUrl(format!("invalid database name {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_passwords_wherever_they_are() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:****@h/db");
        assert_eq!(
            super::redact("postgres://h/db?password=secret&sslmode=require"),
            "postgres://h/db?password=****&sslmode=require"
        );
        assert_eq!(super::redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert!(!super::redact("not a url with secret").contains("secret"));
    }
}

/// The most payload text one page of a scan holds (verification and export keep two pages in memory).
pub const PAGE_BYTES: i64 = 32 << 20;

/// How many of the leading `sizes` fit in `budget` (at least one).
fn entries_within(sizes: &[i64], budget: i64) -> usize {
    let mut total = 0;
    let fitting = sizes
        .iter()
        .take_while(|size| {
            total += **size;
            total <= budget
        })
        .count();
    fitting.max(1).min(sizes.len())
}

#[cfg(test)]
mod paging_tests {
    #[test]
    fn a_page_holds_what_fits_and_at_least_one_entry() {
        assert_eq!(super::entries_within(&[10, 10, 10], 25), 2);
        assert_eq!(super::entries_within(&[100, 1], 25), 1);
        assert_eq!(super::entries_within(&[1, 1, 1], 25), 3);
    }
}
