//! Reading the ledger: entries as stored (one at a time, by page, or streamed in bounded pages) and the
//! signing keys the chain introduced.

use ledger_core::Entry;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{Backend, StorageError, Store, queries, with_pool};

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
    /// The key's id, `ed25519:` and the first 16 hex digits of the public key's SHA-256.
    pub key_id: String,
    /// The signature algorithm, `ed25519`.
    pub algorithm: String,
    /// The public key's 32 bytes in hex.
    pub public_key: String,
    /// The seq of the entry that introduced the key (the genesis or a key rotation).
    pub introduced_seq: i64,
}

impl Store {
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

    /// The entry with this id.
    pub async fn entry_by_id(&self, id: &str) -> Result<Option<Entry>, StorageError> {
        let sql = queries::entry_by_id();
        let row: Option<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Entry::from))
    }

    /// How many entries the ledger holds.
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

    /// Every signing key the chain introduced, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StorageError> {
        let sql = "SELECT key_id, algorithm, public_key, introduced_seq FROM ledger_keys ORDER BY introduced_seq";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// The key id that must sign the next entry (None for an empty ledger).
    pub async fn next_signing_key_id(&self) -> Result<Option<String>, StorageError> {
        Ok(self
            .head()
            .await?
            .and_then(|head| ledger_core::entry::next_signing_key_id(&head).ok()))
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
