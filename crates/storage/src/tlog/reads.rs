//! Reading the tree: tiles (full ones cached, as they never change), entry bundles, roots and proofs.

use std::collections::HashMap;
use std::sync::Arc;

use ledger_core::Digest;
use ledger_core::tlog::proofs::{self, ProofError, TileSource};
use ledger_core::tlog::{Hash, RecordProof, TILE_WIDTH, TreeProof, entry_bundle};

use super::tiles_error;
use crate::{Backend, StorageError, Store, with_pool};

/// Full tiles kept in memory: 8 KiB each, so at most 64 MiB.
pub(crate) const TILE_CACHE_CAPACITY: usize = 8_192;

pub(crate) type TileCache = Arc<quick_cache::sync::Cache<(u8, u64), Arc<Vec<u8>>>>;

/// Tiles fetched for one proof.
struct Fetched(HashMap<(u8, u64), Arc<Vec<u8>>>);

impl TileSource for Fetched {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.0.get(&(level, index)).map(|t| t.as_slice())
    }
}

/// A proof problem: the request's (4xx) or the storage's (5xx).
#[derive(Debug, thiserror::Error)]
pub enum TreeReadError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Store {
    /// The number of entries the tree holds (committed tiles).
    pub async fn tree_size(&self) -> Result<u64, StorageError> {
        let sql = "SELECT idx, CAST(length(data) AS BIGINT) FROM tlog_tiles WHERE level = 0 ORDER BY idx DESC LIMIT 1";
        let last: Option<(i64, i64)> = with_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await)?;
        Ok(last.map_or(0, |(idx, len)| idx as u64 * TILE_WIDTH as u64 + len as u64 / 32))
    }

    /// The stored bytes of tile `(level, index)`: full (256 hashes) or the partial tile as it stands.
    pub async fn tile(&self, level: u8, index: u64) -> Result<Option<Arc<Vec<u8>>>, StorageError> {
        if index > i64::MAX as u64 {
            return Ok(None);
        }
        if let Some(tile) = self.tile_cache.get(&(level, index)) {
            return Ok(Some(tile));
        }
        let sql = "SELECT data FROM tlog_tiles WHERE level = $1 AND idx = $2";
        let data: Option<Vec<u8>> = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(i64::from(level))
            .bind(index as i64)
            .fetch_optional(pool)
            .await)?;
        let Some(data) = data.map(Arc::new) else {
            return Ok(None);
        };
        if data.len() == TILE_WIDTH * 32 {
            self.tile_cache.insert((level, index), Arc::clone(&data));
        }
        Ok(Some(data))
    }

    async fn fetch_tiles(&self, wanted: &[(u8, u64)]) -> Result<Fetched, StorageError> {
        let mut tiles = HashMap::new();
        for &(level, index) in wanted {
            if let Some(tile) = self.tile(level, index).await? {
                tiles.insert((level, index), tile);
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
        if self.tree_size().await? < last {
            return Ok(None);
        }
        let sql = "SELECT chain_hash FROM ledger_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq";
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
        let tiles = self.fetch_tiles(&proofs::tiles_for_root(size)).await?;
        Ok(proofs::root_at(size, &tiles)?)
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
        let stored = self.tree_size().await?;
        if size > stored {
            return Err(ProofError::NotInTree {
                index: size - 1,
                size: stored,
            }
            .into());
        }
        Ok(())
    }
}
