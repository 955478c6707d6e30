//! The transparency log's tables: `tlog_tiles` (the RFC 6962 tree as C2SP hash tiles), `tlog_checkpoints`
//! (every signed checkpoint) and `tlog_cosignatures` (witnesses' cosignature lines).
//!
//! Invariant: the tiles are derived state, a pure function of the entries' chain hashes. The appender
//! extends them in each batch's own transaction when the stored tree ends right before the batch
//! ([`integrate!`]): one to three tile writes per batch, nothing read back while its cached edge is
//! current. When it does not (entries an older release wrote, a new database), the batch is left out and
//! [`Store::tlog_catch_up`] integrates what is missing, page by page under the ledger-wide lock.

mod checkpoints;
pub(crate) mod reads;

use std::sync::{Arc, Mutex};

use ledger_core::tlog::{TreeEdge, leaf_hash};
use ledger_core::{Digest, Entry};
use serde::Serialize;

use crate::appender::POSTGRES_BEGIN;
use crate::{Backend, StorageError, Store, queries};

pub use checkpoints::{CheckpointRow, CosignatureRow};

/// Entries integrated per catch-up transaction: the appender waits for each page.
const CATCH_UP_PAGE: i64 = 20_000;

/// The appender's copy of the stored tree's edge, valid while it equals what is committed.
pub(crate) type EdgeCache = Arc<Mutex<Option<TreeEdge>>>;

/// How far the tree is behind the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TreeProgress {
    /// Entries the tree holds (the first `tree_size` entries of the ledger).
    pub tree_size: u64,
    /// The ledger's highest seq (0 when empty); the tree is caught up once `tree_size` reaches it.
    pub head_seq: u64,
}

pub(crate) fn tiles_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Tiles(e.to_string())
}

/// The leaf hashes of sealed entries (their chain hashes always parse; a tampered row is refused).
pub(crate) fn leaves(entries: &[Entry]) -> Result<Vec<ledger_core::tlog::Hash>, StorageError> {
    entries
        .iter()
        .map(|e| {
            e.chain_hash
                .parse::<Digest>()
                .map(|d| leaf_hash(&d))
                .map_err(|_| tiles_error(format!("seq {}: unreadable chain_hash", e.seq)))
        })
        .collect()
}

/// Reads the stored tree's edge on a connection (inside a transaction that holds the ledger lock).
macro_rules! load_edge {
    ($conn:expr) => {{
        let last: Option<(i64, Vec<u8>)> = sqlx::query_as($crate::queries::TLOG_LAST_TILE)
            .fetch_optional(&mut *$conn)
            .await?;
        let size = last.map_or(0, |(idx, data)| idx as u64 * 256 + (data.len() / 32) as u64);
        let mut tiles = std::collections::HashMap::new();
        for (level, index, _) in ledger_core::tlog::TreeEdge::partial_tiles(size) {
            let data: Option<Vec<u8>> = sqlx::query_scalar($crate::queries::TLOG_TILE)
                .bind(i64::from(level))
                .bind(index as i64)
                .fetch_optional(&mut *$conn)
                .await?;
            if let Some(data) = data {
                tiles.insert((level, index), data);
            }
        }
        ledger_core::tlog::TreeEdge::from_tiles(size, |l, i| tiles.get(&(l, i)).map(Vec::as_slice))
            .map_err($crate::tlog::tiles_error)
    }};
}
pub(crate) use load_edge;

/// Writes tiles over the stored ones.
macro_rules! write_tiles {
    ($conn:expr, $writes:expr) => {{
        for write in $writes {
            let write: &ledger_core::tlog::TileWrite = write;
            sqlx::query($crate::queries::TLOG_WRITE_TILE)
                .bind(i64::from(write.level))
                .bind(write.index as i64)
                .bind(&write.data)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}
pub(crate) use write_tiles;

/// Extends the stored tree with a batch just inserted, in the batch's transaction, if the tree ends right
/// before it. Evaluates to the edge to cache once the transaction commits (None: not integrated; the
/// catch-up will). The cache is emptied first, so a failed transaction leaves nothing stale behind.
macro_rules! integrate {
    ($conn:expr, $cache:expr, $entries:expr) => {{
        let entries: &[ledger_core::Entry] = $entries;
        let cached = $cache.lock().expect("edge cache lock").take();
        'integrate: {
            let Some(first) = entries.first().map(|e| e.seq) else {
                break 'integrate cached;
            };
            let mut edge = match cached {
                Some(edge) if edge.size() + 1 == first => edge,
                _ => match $crate::tlog::load_edge!($conn) {
                    Ok(edge) => edge,
                    // Tiles are derived state: damaged ones never stop an append (the checkpointer reports them).
                    Err($crate::StorageError::Tiles(why)) => {
                        tracing::error!(%why, "the transparency log's tiles are inconsistent; entries are not integrated");
                        break 'integrate None;
                    }
                    Err(other) => return Err(other.into()),
                },
            };
            if edge.size() + 1 != first {
                tracing::debug!(tree = edge.size(), first, "tree behind the ledger; the catch-up integrates");
                break 'integrate None;
            }
            let writes = edge.append($crate::tlog::leaves(entries)?);
            $crate::tlog::write_tiles!($conn, &writes);
            Some(edge)
        }
    }};
}
pub(crate) use integrate;

/// One catch-up page in its own transaction under the ledger lock.
macro_rules! catch_up_page {
    ($pool:expr, $begin:expr) => {{
        let mut tx = $pool.begin_with($begin).await?;
        let mut edge = load_edge!(&mut *tx)?;
        let rows: Vec<(i64, String)> = sqlx::query_as(queries::TLOG_CATCH_UP_PAGE)
            .bind(edge.size() as i64)
            .bind(CATCH_UP_PAGE)
            .fetch_all(&mut *tx)
            .await?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (i, (seq, chain)) in rows.iter().enumerate() {
            if *seq as u64 != edge.size() + 1 + i as u64 {
                return Err(tiles_error(format!(
                    "seq {} follows tree size {} + {i}",
                    seq,
                    edge.size()
                )));
            }
            let chain: Digest = chain
                .parse()
                .map_err(|_| tiles_error(format!("seq {seq}: unreadable chain_hash")))?;
            leaves.push(leaf_hash(&chain));
        }
        let writes = edge.append(leaves);
        write_tiles!(&mut *tx, &writes);
        let (head,): (i64,) = sqlx::query_as(queries::TLOG_HEAD_SEQ).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        TreeProgress {
            tree_size: edge.size(),
            head_seq: head as u64,
        }
    }};
}

impl Store {
    /// Integrates into the tree every entry it is missing, in pages; `progress` hears after each page.
    /// Returns where the tree ended.
    pub async fn tlog_catch_up(&self, mut progress: impl FnMut(TreeProgress)) -> Result<TreeProgress, StorageError> {
        loop {
            let step: Result<TreeProgress, StorageError> = async {
                Ok(match &self.writer() {
                    Backend::Sqlite(pool) => catch_up_page!(pool, "BEGIN IMMEDIATE"),
                    Backend::Postgres(pool) => catch_up_page!(pool, POSTGRES_BEGIN),
                })
            }
            .await;
            let step = step?;
            progress(step);
            if step.tree_size >= step.head_seq {
                return Ok(step);
            }
        }
    }
}
