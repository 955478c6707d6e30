//! Reading the tree: tiles (cached, see [`TreeCache`]), entry bundles, roots and proofs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ledger_core::Digest;
use ledger_core::tlog::proofs::{self, ProofError, TileNeed, TileSource};
use ledger_core::tlog::{Hash, RecordProof, TILE_WIDTH, TreeProof, entry_bundle};

use super::tiles_error;
use crate::{Backend, StorageError, Store, queries, with_pool};

/// Full tiles kept in memory: 8 KiB each, so at most 64 MiB.
const TILE_CACHE_CAPACITY: usize = 8_192;

/// Partial tiles kept: the tree's right edge has one per level; older ones are dropped once full.
const PARTIAL_CACHE_CAPACITY: usize = 64;

/// Roots kept.
const ROOT_CACHE_CAPACITY: usize = 64;

/// Tiles by (level, index).
type Tiles = HashMap<(u8, u64), Arc<Vec<u8>>>;

/// What proofs read without a query, as the tree only grows: full tiles (they never change), the longest
/// version seen of each partial tile (a proof at a smaller size reads a prefix of it), and a size the tree
/// is known to have reached (a proof up to it needs no size query).
#[derive(Debug)]
pub(crate) struct TreeCache {
    full: quick_cache::sync::Cache<(u8, u64), Arc<Vec<u8>>>,
    partial: Mutex<Tiles>,
    known_size: AtomicU64,
    /// Roots by size (a size's root never changes): the latest checkpoint's is asked for with every proof.
    roots: quick_cache::sync::Cache<u64, Hash>,
}

impl TreeCache {
    pub(crate) fn new() -> TreeCache {
        TreeCache {
            full: quick_cache::sync::Cache::new(TILE_CACHE_CAPACITY),
            partial: Mutex::default(),
            known_size: AtomicU64::new(0),
            roots: quick_cache::sync::Cache::new(ROOT_CACHE_CAPACITY),
        }
    }

    /// Forgets everything (the tiles were deleted or the database went back).
    pub(crate) fn reset(&self) {
        self.full.clear();
        self.partial.lock().expect("tile cache lock").clear();
        self.known_size.store(0, Ordering::Relaxed);
        self.roots.clear();
    }

    fn partial_of(&self, level: u8, index: u64, width: usize) -> Option<Arc<Vec<u8>>> {
        let partial = self.partial.lock().expect("tile cache lock");
        partial.get(&(level, index)).filter(|t| t.len() >= width * 32).cloned()
    }

    fn keep(&self, level: u8, index: u64, data: &Arc<Vec<u8>>) {
        let mut partial = self.partial.lock().expect("tile cache lock");
        if data.len() == TILE_WIDTH * 32 {
            partial.remove(&(level, index));
            self.full.insert((level, index), Arc::clone(data));
            return;
        }
        if partial.len() >= PARTIAL_CACHE_CAPACITY {
            partial.clear();
        }
        let kept = partial.entry((level, index)).or_insert_with(|| Arc::clone(data));
        if kept.len() < data.len() {
            *kept = Arc::clone(data);
        }
    }
}

/// Tiles fetched for one proof.
struct Fetched(Tiles);

impl TileSource for Fetched {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.0.get(&(level, index)).map(|t| t.as_slice())
    }
}

/// A proof problem: the request's (4xx) or the storage's (5xx).
#[derive(Debug, thiserror::Error)]
pub enum TreeReadError {
    /// The proof cannot be made: a size or index the tree does not hold, a bad range, or a missing tile.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// Reading the tiles failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Store {
    /// The number of entries the tree holds (committed tiles).
    pub async fn tree_size(&self) -> Result<u64, StorageError> {
        let sql = queries::TLOG_LAST_TILE_LENGTH;
        let last: Option<(i64, i64)> = with_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await)?;
        let size = last.map_or(0, |(idx, len)| idx as u64 * TILE_WIDTH as u64 + len as u64 / 32);
        let known = self.tree_cache.known_size.fetch_max(size, Ordering::Relaxed);
        if size < known {
            // The database lost its tail (a failover to a lagging replica, a restore): what is kept in
            // memory may be of a history it no longer holds.
            tracing::error!(
                size,
                known,
                "the transparency log's tree shrank; its cached tiles are dropped"
            );
            self.tree_cache.reset();
            self.tree_cache.known_size.store(size, Ordering::Relaxed);
        }
        Ok(size)
    }

    /// Whether the tree holds at least `size` entries (a query only beyond the size known to be reached).
    async fn tree_holds(&self, size: u64) -> Result<bool, StorageError> {
        if size <= self.tree_cache.known_size.load(Ordering::Relaxed) {
            return Ok(true);
        }
        Ok(size <= self.tree_size().await?)
    }

    /// The stored bytes of tile `(level, index)`: full (256 hashes) or the partial tile as it stands.
    pub async fn tile(&self, level: u8, index: u64) -> Result<Option<Arc<Vec<u8>>>, StorageError> {
        if index > i64::MAX as u64 {
            return Ok(None);
        }
        if let Some(tile) = self.tree_cache.full.get(&(level, index)) {
            return Ok(Some(tile));
        }
        let sql = queries::TLOG_TILE;
        let data: Option<Vec<u8>> = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(i64::from(level))
            .bind(index as i64)
            .fetch_optional(pool)
            .await)?;
        let Some(data) = data.map(Arc::new) else {
            return Ok(None);
        };
        self.tree_cache.keep(level, index, &data);
        Ok(Some(data))
    }

    /// The tiles a proof needs, from memory where a kept version is long enough.
    async fn fetch_tiles(&self, wanted: &[TileNeed]) -> Result<Fetched, StorageError> {
        let mut tiles = HashMap::new();
        for need in wanted {
            let kept = self.tree_cache.partial_of(need.level, need.index, need.width);
            let tile = match kept {
                Some(tile) => Some(tile),
                None => self.tile(need.level, need.index).await?,
            };
            if let Some(tile) = tile {
                tiles.insert((need.level, need.index), tile);
            }
        }
        Ok(Fetched(tiles))
    }

    /// The entry bundle `index` of `width` entries (C2SP): their chain hashes, length-prefixed. None if the
    /// tree does not hold that many entries there yet.
    pub async fn entry_bundle(&self, index: u64, width: usize) -> Result<Option<Vec<u8>>, StorageError> {
        // Beyond any tree this storage can hold (seq is a BIGINT); also keeps the arithmetic below in range.
        if index > (i64::MAX as u64) / TILE_WIDTH as u64 {
            return Ok(None);
        }
        let first = index * TILE_WIDTH as u64 + 1;
        let last = first + width as u64 - 1;
        if !self.tree_holds(last).await? {
            return Ok(None);
        }
        let sql = queries::TLOG_BUNDLE_HASHES;
        let rows: Vec<String> = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(first as i64)
            .bind(last as i64)
            .fetch_all(pool)
            .await)?;
        let hashes = rows
            .iter()
            .map(|h| h.parse::<Digest>().map_err(|_| tiles_error("an unreadable chain_hash")))
            .collect::<Result<Vec<_>, _>>()?;
        if hashes.len() != width {
            return Err(tiles_error(format!("entries {first}..={last} have gaps")));
        }
        Ok(Some(entry_bundle(&hashes)))
    }

    /// The root of the tree's first `size` entries.
    pub async fn tree_root(&self, size: u64) -> Result<Hash, TreeReadError> {
        if let Some(root) = self.tree_cache.roots.get(&size) {
            return Ok(root);
        }
        let tiles = self.fetch_tiles(&proofs::tiles_for_root(size)).await?;
        let root = proofs::root_at(size, &tiles)?;
        self.tree_cache.roots.insert(size, root);
        Ok(root)
    }

    /// The root of the first `size` entries from the tiles as the database holds them now, past every cache:
    /// the checkpointer's check that the stored tiles still give a signed root.
    pub async fn tree_root_from_database(&self, size: u64) -> Result<Hash, TreeReadError> {
        let mut tiles = HashMap::new();
        for need in proofs::tiles_for_root(size) {
            let sql = queries::TLOG_TILE;
            let data: Result<Option<Vec<u8>>, sqlx::Error> = with_pool!(self, pool => sqlx::query_scalar(sql)
                .bind(i64::from(need.level))
                .bind(need.index as i64)
                .fetch_optional(pool)
                .await);
            if let Some(data) = data.map_err(StorageError::from)? {
                tiles.insert((need.level, need.index), Arc::new(data));
            }
        }
        Ok(proofs::root_at(size, &Fetched(tiles))?)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` (which must not exceed the stored tree).
    pub async fn inclusion_proof(&self, size: u64, index: u64) -> Result<RecordProof, TreeReadError> {
        self.check_size(size).await?;
        let tiles = self.fetch_tiles(&proofs::tiles_for_inclusion(size, index)?).await?;
        Ok(proofs::inclusion_proof(size, index, &tiles)?)
    }

    /// The consistency proof from `from` to `to`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<TreeProof, TreeReadError> {
        self.check_size(to).await?;
        let tiles = self.fetch_tiles(&proofs::tiles_for_consistency(from, to)?).await?;
        Ok(proofs::consistency_proof(from, to, &tiles)?)
    }

    async fn check_size(&self, size: u64) -> Result<(), TreeReadError> {
        if !self.tree_holds(size).await? {
            let stored = self.tree_size().await?;
            return Err(ProofError::NotInTree {
                index: size - 1,
                size: stored,
            }
            .into());
        }
        Ok(())
    }
}
