//! Catch-up, rebuild and reads of the trust tables.

use ledger_core::Entry;
use ledger_core::trust::{PAYLOAD_KINDS, SCORING_VERSION, TrustChange};

use super::{MAX_TRUST_PAGE, StoredTrust, TrustProgress, fold_postgres, fold_sqlite};
use crate::appender::POSTGRES_BEGIN;
use crate::{Backend, EntryRow, StorageError, Store, queries, with_pool};

/// Entries folded per transaction by a catch-up: the appender waits for each page, so pages stay short.
const PAGE: i64 = 1_000;

/// Empties the tables and starts over from seq 0 with this scoring version.
const RESET: [&str; 4] = [
    "DELETE FROM trust_actions",
    "DELETE FROM trust_scores",
    "DELETE FROM trust_changes",
    "INSERT INTO trust_state (id, folded_seq, version) VALUES (1, 0, $1) \
     ON CONFLICT (id) DO UPDATE SET folded_seq = 0, version = excluded.version",
];

/// A page of entries with what the scoring function reads: payloads only of the kinds it reads them of
/// (an entry can be large), no hashes or signatures.
fn page_sql() -> String {
    let kinds = PAYLOAD_KINDS.map(|kind| format!("'{kind}'")).join(", ");
    format!(
        "SELECT seq, id, '' AS timestamp, kind, actor, action_id, \
         CASE WHEN kind IN ({kinds}) THEN payload ELSE '{{}}' END AS payload, '' AS prev_chain_hash, \
         '' AS event_hash, '' AS chain_hash, '' AS key_id, '' AS signature \
         FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
    )
}

/// One page in its own transaction under the ledger-wide lock, so it cannot interleave with appends:
/// reset first if asked or if the stored state is missing or of another scoring version.
macro_rules! fold_page {
    ($pool:expr, $begin:expr, $fold:ident, $reset:expr) => {{
        let mut tx = $pool.begin_with($begin).await?;
        let state: Option<(i64, i64)> = sqlx::query_as("SELECT folded_seq, version FROM trust_state WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
        let mut folded = match state {
            Some((seq, version)) if !$reset && version == i64::from(SCORING_VERSION) => seq,
            _ => {
                for sql in RESET {
                    sqlx::query(sql)
                        .bind(i64::from(SCORING_VERSION))
                        .execute(&mut *tx)
                        .await?;
                }
                0
            }
        };
        let rows: Vec<EntryRow> = sqlx::query_as(&page_sql())
            .bind(folded)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
        let entries: Vec<Entry> = rows.into_iter().map(Entry::from).collect();
        if let Some(last) = entries.last() {
            $fold(&mut *tx, &entries).await?;
            folded = last.seq as i64;
            sqlx::query("UPDATE trust_state SET folded_seq = $1 WHERE id = 1")
                .bind(folded)
                .execute(&mut *tx)
                .await?;
        }
        let (head,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM ledger_entries")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        TrustProgress {
            folded_seq: folded as u64,
            head_seq: head as u64,
        }
    }};
}

impl Store {
    /// Folds the entries the trust tables are missing (written by an older release, or after a reset),
    /// page by page; recomputes everything if they were made by another scoring version. Cheap when they
    /// are up to date (one lookup). `progress` is told after each page.
    pub async fn trust_catch_up(&self, progress: impl FnMut(TrustProgress)) -> Result<TrustProgress, StorageError> {
        let state: Option<(i64, i64, i64)> =
            with_pool!(self, pool => sqlx::query_as(queries::TRUST_UP_TO_DATE).fetch_optional(pool).await)?;
        // A newer release's scoring version is left alone: resetting it here would make two releases
        // running side by side (a rolling upgrade) refold the whole ledger in turn, every 30 s.
        if let Some((folded, version, head)) = state
            && (version > i64::from(SCORING_VERSION) || (version == i64::from(SCORING_VERSION) && folded >= head))
        {
            return Ok(TrustProgress {
                folded_seq: folded as u64,
                head_seq: head as u64,
            });
        }
        self.fold_pages(false, progress).await
    }

    /// Recomputes the trust tables from the first entry (`docketops trust rebuild`). Scores read while it
    /// runs are those of the entries folded so far.
    pub async fn trust_rebuild(&self, progress: impl FnMut(TrustProgress)) -> Result<TrustProgress, StorageError> {
        self.fold_pages(true, progress).await
    }

    async fn fold_pages(
        &self,
        mut reset: bool,
        mut progress: impl FnMut(TrustProgress),
    ) -> Result<TrustProgress, StorageError> {
        loop {
            let page = match &self.writer() {
                Backend::Sqlite(pool) => fold_page!(pool, "BEGIN IMMEDIATE", fold_sqlite, reset),
                Backend::Postgres(pool) => fold_page!(pool, POSTGRES_BEGIN, fold_postgres, reset),
            };
            reset = false;
            progress(page);
            if page.folded_seq >= page.head_seq {
                return Ok(page);
            }
        }
    }

    /// An identity's stored score: one indexed lookup.
    pub async fn trust_score(&self, identity_id: &str) -> Result<StoredTrust, StorageError> {
        // One statement, so the state and the head are read from one snapshot.
        let sql = queries::TRUST_SCORE;
        type Row = (i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>);
        let row: Option<Row> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(identity_id).fetch_optional(pool).await)?;
        let (as_of, version, head, score, changes, last) = row.unwrap_or((0, 0, None, None, None, None));
        Ok(StoredTrust {
            score: score.unwrap_or(0),
            changes: changes.unwrap_or(0) as u64,
            last_change_seq: last.unwrap_or(0) as u64,
            as_of_seq: as_of as u64,
            current: version == i64::from(SCORING_VERSION) && as_of >= head.unwrap_or(0),
        })
    }

    /// The entries that moved an identity's score, newest first: up to `limit` (at most
    /// [`MAX_TRUST_PAGE`]) before seq `before_seq` (all if None).
    pub async fn trust_changes(
        &self,
        identity_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TrustChange>, StorageError> {
        let sql = queries::TRUST_CHANGES;
        let before = before_seq.map_or(i64::MAX, |seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let limit = i64::from(limit.clamp(1, MAX_TRUST_PAGE));
        type Row = (i64, String, String, String, i64, i64);
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(identity_id).bind(before).bind(limit).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(seq, entry_id, action_id, kind, delta, score)| TrustChange {
                seq: seq as u64,
                entry_id,
                action_id,
                kind,
                delta,
                score,
            })
            .collect())
    }
}
