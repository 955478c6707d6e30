//! Ledger storage on SQLite (the zero-setup default) or PostgreSQL (production, several gateways on
//! one database), and the group-commit appender that is the only writer of ledger entries.
//!
//! Architecture invariant: all SQL of the project lives in this crate. Entries are stored exactly as
//! the ledger core sealed them; this crate never computes a hash or a signature itself.

#![warn(missing_docs)]

mod actions;
mod activity;
mod appender;
mod audit;
mod breakers;
mod budgets;
mod connect;
mod cursors;
mod dashboard;
mod directory;
mod entries;
mod faults;
mod freezes;
pub mod hot_paths;
mod identity_budgets;
mod lineage;
mod ownership;
mod postgres_databases;
mod queries;
pub mod seed;
mod seed_rows;
mod settings;
#[cfg(feature = "tamper")]
pub mod tamper;
pub mod tlog;
mod trust;
mod verifications;
mod verify;
pub mod witness;

use std::sync::{Arc, Mutex};

use serde::Serialize;
use sqlx::{PgPool, SqlitePool};

pub use activity::{ActivityProgress, ActivitySummary, HourCount, KEPT_DAYS, Ranked, hours_before};
pub use appender::{AppendConfig, AppendError, Ledger, LedgerStats, Reservation, Reserved};
pub use budgets::{Counted, Exceeded, Limits, Metric, ReservationStats, Spend, Usage, Window, WorkloadLimit};
pub use connect::redact;
pub(crate) use connect::sqlite_pool;
pub use cursors::ExportCursor;
pub use dashboard::{LoginRow, SessionRow, TimelineEntry, TimelineFilter};
pub use directory::{ActionFilter, ActionRow, ApiKeyRow, ApprovalRow, GrantsText, IdentityRow, KeyLookup};
pub(crate) use entries::{ENTRY_COLUMNS, EntryRow};
pub use entries::{KeyRecord, PAGE_BYTES};
use faults::fault_of;
pub use faults::{SPACE_PROBE_BYTES, WriteFault};
pub use freezes::FreezeRow;
pub use identity_budgets::{IdentityBudgetRow, NO_ROWS_TTL};
pub use lineage::Controller;
pub use postgres_databases::{create_postgres_database, drop_postgres_database};
pub use tlog::reads::TreeReadError;
pub use tlog::{CheckpointRow, CosignatureRow, TreeProgress};
pub use trust::{MAX_TRUST_PAGE, StoredTrust, TrustProgress};
pub use verifications::VerificationRecord;
pub use verify::{ExportError, ExportSummary, PAGE_SIZE, verify_ledger, write_bundle};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL is neither `sqlite:` nor `postgres://` (`postgresql://`), or a database name to create or drop
    /// is not a plain lowercase identifier. Holds the URL with its password hidden, or the name.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// Any other database error: connecting, a statement, a row that does not decode.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The database's disk is full (SQLite SQLITE_FULL, PostgreSQL 53100 disk_full). Reads still work.
    #[error("the database's disk is full; free space for it (reads still work): {0}")]
    Full(#[source] sqlx::Error),
    /// The database refuses writes: a read-only file, directory or file system (SQLite SQLITE_READONLY),
    /// or a PostgreSQL server in read-only mode (25006).
    #[error("the database is read-only; make its file and directory writable (reads still work): {0}")]
    ReadOnly(#[source] sqlx::Error),
    /// A migration failed to apply, or one already applied differs from this release's copy.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row with the same unique name or key exists.
    #[error("{0}")]
    Conflict(String),
    /// A value the caller passed cannot be used (e.g. a time that is not RFC 3339); nothing was written.
    #[error("invalid input: {0}")]
    Invalid(String),
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

/// Which database a [`Store`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// SQLite (`sqlite://PATH`).
    Sqlite,
    /// PostgreSQL (`postgres://…`).
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
    /// Whether `identity_budgets` had rows, and when that was learnt (see `identity_budgets`).
    identity_budget_rows: Arc<Mutex<Option<(std::time::Instant, bool)>>>,
    /// Budget reservations waiting for their shared transaction (see `budgets::batch`).
    budget_queue: Arc<budgets::Queue>,
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

impl Store {
    /// The pool writes go through: SQLite's one writer connection, or the pool itself.
    pub(crate) fn writer(&self) -> Backend {
        match (&self.backend, &self.sqlite_writer) {
            (Backend::Sqlite(_), Some(writer)) => Backend::Sqlite(writer.clone()),
            (backend, _) => backend.clone(),
        }
    }

    /// Which database this store speaks to.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }
}
