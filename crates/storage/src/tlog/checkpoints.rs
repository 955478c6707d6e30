//! Signed checkpoints and the cosignatures witnesses returned for them.

use serde::Serialize;

use crate::{Backend, StorageError, Store, queries, with_pool, with_writer};

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CheckpointRow {
    /// The tree size the checkpoint commits to (entries 1 to `size`); the row's key.
    pub size: i64,
    /// Base64, as in the note.
    pub root_hash: String,
    /// The signed note as the log signed it (cosignatures are kept apart, in `tlog_cosignatures`).
    pub note: String,
    /// The ledger key that signed the note.
    pub key_id: String,
    /// When the checkpoint was signed (RFC 3339 UTC, microseconds).
    pub created_at: String,
}

/// A witness's cosignature line on a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CosignatureRow {
    /// The size of the checkpoint cosigned.
    pub size: i64,
    /// The witness's name (its key name in the signed note).
    pub witness: String,
    /// The cosignature line as the witness returned it.
    pub line: String,
    /// When the gateway received it (RFC 3339 UTC, microseconds).
    pub received_at: String,
}

impl Store {
    /// Stores a signed checkpoint. Returns the stored row of that size: this one, or the one another
    /// gateway stored first (the caller compares roots: a different one is a fork and must be refused).
    pub async fn insert_checkpoint(&self, row: &CheckpointRow) -> Result<CheckpointRow, StorageError> {
        let sql = queries::INSERT_CHECKPOINT;
        with_writer!(self, pool => sqlx::query(sql)
            .bind(row.size)
            .bind(&row.root_hash)
            .bind(&row.note)
            .bind(&row.key_id)
            .bind(&row.created_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        self.checkpoint_at(row.size as u64)
            .await?
            .ok_or_else(|| StorageError::Conflict("the checkpoint just stored is gone".into()))
    }

    /// The checkpoint with the largest size.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StorageError> {
        let sql = queries::latest_checkpoint();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).fetch_optional(pool).await)?)
    }

    /// The checkpoint of exactly `size` entries.
    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<CheckpointRow>, StorageError> {
        let sql = queries::checkpoint_at();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(size as i64).fetch_optional(pool).await)?)
    }

    /// The smallest checkpoint of at least `size` entries (the first that covers entry `size`).
    pub async fn checkpoint_covering(&self, size: u64) -> Result<Option<CheckpointRow>, StorageError> {
        let sql = queries::checkpoint_covering();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(size as i64).fetch_optional(pool).await)?)
    }

    /// Up to `limit` checkpoints smaller than `before` (all, if None), largest first.
    pub async fn checkpoints_before(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<CheckpointRow>, StorageError> {
        let sql = queries::checkpoints_before();
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// Stores a witness's cosignature on the checkpoint of `size` (a repeat replaces the line).
    pub async fn insert_cosignature(&self, row: &CosignatureRow) -> Result<(), StorageError> {
        let sql = queries::INSERT_COSIGNATURE;
        with_writer!(self, pool => sqlx::query(sql)
            .bind(row.size)
            .bind(&row.witness)
            .bind(&row.line)
            .bind(&row.received_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The cosignatures on the checkpoint of `size`.
    pub async fn cosignatures(&self, size: u64) -> Result<Vec<CosignatureRow>, StorageError> {
        let sql = queries::COSIGNATURES_OF;
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(size as i64).fetch_all(pool).await)?)
    }

    /// The largest checkpoint `witness` cosigned (0 if none).
    pub async fn witness_size(&self, witness: &str) -> Result<u64, StorageError> {
        let sql = queries::WITNESS_SIZE;
        let size: i64 = with_pool!(self, pool => sqlx::query_scalar(sql).bind(witness).fetch_one(pool).await)?;
        Ok(size as u64)
    }

    /// The largest checkpoint that at least `quorum` of `witnesses` cosigned, looking only at each witness's
    /// latest cosigned size (a few indexed reads, however long the history): the gateway sends every
    /// checkpoint to every witness, so a quorum forms on a witness's latest size.
    pub async fn latest_cosigned_checkpoint(
        &self,
        witnesses: &[String],
        quorum: usize,
    ) -> Result<Option<CheckpointRow>, StorageError> {
        let mut sizes = Vec::new();
        for witness in witnesses {
            sizes.push(self.witness_size(witness).await?);
        }
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        for size in sizes.into_iter().filter(|&s| s > 0) {
            let cosigned = self.cosignatures(size).await?;
            if cosigned.iter().filter(|c| witnesses.contains(&c.witness)).count() >= quorum {
                return self.checkpoint_at(size).await;
            }
        }
        Ok(None)
    }
}
