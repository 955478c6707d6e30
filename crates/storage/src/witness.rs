//! The witness's state (C2SP tlog-witness, docs/witness.md) in a SQLite file of its own: for each log it
//! follows, the latest checkpoint it cosigned and the timestamp of that cosignature.
//!
//! Checking a request and recording the new state are one transaction (`BEGIN IMMEDIATE`): otherwise two
//! concurrent requests could roll the state back (A checks N, B checks N+K, B stores N+K, A stores N).

use std::path::Path;
use std::time::Duration;

use ledger_core::LedgerPublicKey;
use ledger_core::tlog::checkpoint::Checkpoint;
use ledger_core::tlog::witness::{AddCheckpoint, Cosigned, Refusal, decide};
use ledger_core::tlog::{hash_from_base64, hash_to_base64};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use crate::StorageError;

/// Requests kept as evidence are cut to this many bytes.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;
/// Evidence rows kept per log: the newest.
pub const MAX_EVIDENCE_PER_LOG: i64 = 1000;

/// Why the witness did not cosign, or could not read its state.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The request is refused; C2SP gives each refusal its HTTP status.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The witness database failed; the state did not move.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored row this code never writes (an edited database).
    #[error("the witness database holds an unreadable row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for WitnessError {
    fn from(error: sqlx::Error) -> Self {
        WitnessError::Storage(error.into())
    }
}

/// A checkpoint the witness agreed to cosign: its state moved there (committed) before this is returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Cosigning {
    /// The checkpoint, as parsed from the request.
    pub checkpoint: Checkpoint,
    /// The cosignature's timestamp: now, but never lower than the log's previous one.
    pub timestamp: u64,
}

/// What the witness holds for one log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogState {
    /// The tree size of the latest cosigned checkpoint.
    pub size: u64,
    /// Base64, as in checkpoints.
    pub root_hash: String,
    /// The latest cosignature's timestamp (UNIX seconds).
    pub cosigned_at: u64,
    /// When the state last moved (RFC 3339 UTC, microseconds).
    pub updated_at: String,
}

/// The witness's database: one connection, so its writes queue in the pool instead of SQLite's busy loop.
#[derive(Debug, Clone)]
pub struct WitnessStore {
    pool: SqlitePool,
}

impl WitnessStore {
    /// Opens (creating it if missing) and migrates the witness database at `path`.
    pub async fn open(path: &Path) -> Result<WitnessStore, StorageError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A cosignature is only sent after its state is on disk, power loss included.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = crate::sqlite_pool(options, 1).await?;
        let mut migrator = sqlx::migrate!("./migrations/witness");
        // As for the ledger: migrations only add, so an older release runs on a newer database.
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
        Ok(WitnessStore { pool })
    }

    /// Closes the database connection, waiting for a write in progress.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Decides on `request` for the log `origin` (trusting `keys`) and records the new state, atomically.
    /// `now` is the current UNIX time. A refusal that is evidence of log misbehaviour is recorded.
    pub async fn add_checkpoint(
        &self,
        origin: &str,
        keys: &[LedgerPublicKey],
        request: &AddCheckpoint,
        now: u64,
    ) -> Result<Cosigning, WitnessError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let stored = read_state(&mut tx, origin).await?;
        let latest = stored.map(|(c, _)| c);
        let checkpoint = match decide(request, keys, latest) {
            Ok(checkpoint) if checkpoint.origin != origin => {
                return Err(Refusal::BadRequest(format!("the checkpoint is not of the log {origin:?}")).into());
            }
            Ok(checkpoint) => checkpoint,
            Err(refusal) => {
                if is_evidence(&refusal) {
                    record_evidence(&mut tx, origin, &refusal, request).await?;
                    tx.commit().await?;
                }
                return Err(refusal.into());
            }
        };
        let size = i64::try_from(checkpoint.size)
            .map_err(|_| Refusal::BadRequest("the tree size is beyond 2^63 - 1".into()))?;
        let timestamp = now.max(stored.map_or(0, |(_, t)| t));
        let sql = "INSERT INTO witness_logs (origin, size, root_hash, cosigned_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, \
                   root_hash = excluded.root_hash, cosigned_at = excluded.cosigned_at, updated_at = excluded.updated_at";
        sqlx::query(sql)
            .bind(origin)
            .bind(size)
            .bind(hash_to_base64(&checkpoint.root))
            .bind(i64::try_from(timestamp).unwrap_or(i64::MAX))
            .bind(domain::time::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Cosigning { checkpoint, timestamp })
    }

    /// The state of the log `origin`; None if the witness never cosigned one of its checkpoints.
    pub async fn state(&self, origin: &str) -> Result<Option<LogState>, WitnessError> {
        let sql = "SELECT size, root_hash, cosigned_at, updated_at FROM witness_logs WHERE origin = $1";
        let row: Option<(i64, String, i64, String)> =
            sqlx::query_as(sql).bind(origin).fetch_optional(&self.pool).await?;
        let Some((size, root_hash, cosigned_at, updated_at)) = row else {
            return Ok(None);
        };
        Ok(Some(LogState {
            size: unsigned(size, origin)?,
            root_hash,
            cosigned_at: unsigned(cosigned_at, origin)?,
            updated_at,
        }))
    }

    /// How many requests of the log `origin` are kept as evidence.
    pub async fn evidence_count(&self, origin: &str) -> Result<u64, WitnessError> {
        let sql = "SELECT COUNT(*) FROM witness_refusals WHERE origin = $1";
        let count: i64 = sqlx::query_scalar(sql).bind(origin).fetch_one(&self.pool).await?;
        Ok(count.max(0) as u64)
    }
}

/// The log's latest cosigned checkpoint and cosignature timestamp, read inside the transaction.
async fn read_state(tx: &mut Transaction<'_, Sqlite>, origin: &str) -> Result<Option<(Cosigned, u64)>, WitnessError> {
    let sql = "SELECT size, root_hash, cosigned_at FROM witness_logs WHERE origin = $1";
    let row: Option<(i64, String, i64)> = sqlx::query_as(sql).bind(origin).fetch_optional(&mut **tx).await?;
    let Some((size, root, cosigned_at)) = row else {
        return Ok(None);
    };
    let root = hash_from_base64(&root).ok_or_else(|| WitnessError::Corrupt(format!("{origin}: root hash")))?;
    let cosigned = Cosigned {
        size: unsigned(size, origin)?,
        root,
    };
    Ok(Some((cosigned, unsigned(cosigned_at, origin)?)))
}

fn unsigned(value: i64, origin: &str) -> Result<u64, WitnessError> {
    u64::try_from(value).map_err(|_| WitnessError::Corrupt(format!("{origin}: negative number {value}")))
}

/// Refusals of requests the log signed that contradict what the witness cosigned for it: these requests
/// are kept.
pub fn is_evidence(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::RootMismatch { .. } | Refusal::BadProof { .. })
}

/// Keeps the request (cut to [`MAX_EVIDENCE_BYTES`]) and only the newest rows of the log.
async fn record_evidence(
    tx: &mut Transaction<'_, Sqlite>,
    origin: &str,
    refusal: &Refusal,
    request: &AddCheckpoint,
) -> Result<(), sqlx::Error> {
    let body = request.to_body();
    let body = &body[..body.floor_char_boundary(MAX_EVIDENCE_BYTES)];
    let sql = "INSERT INTO witness_refusals (origin, received_at, status, reason, request) VALUES ($1, $2, $3, $4, $5)";
    sqlx::query(sql)
        .bind(origin)
        .bind(domain::time::now())
        .bind(i64::from(refusal.status()))
        .bind(refusal.to_string())
        .bind(body)
        .execute(&mut **tx)
        .await?;
    let sql = "DELETE FROM witness_refusals WHERE origin = $1 AND id <= \
               (SELECT id FROM witness_refusals WHERE origin = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)";
    sqlx::query(sql)
        .bind(origin)
        .bind(MAX_EVIDENCE_PER_LOG)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
