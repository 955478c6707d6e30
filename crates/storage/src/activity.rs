//! The console overview's counts per hour (`activity_*` tables): what [`ledger_core::activity`] makes of
//! each entry, summed by hour, by requester and by denial cause.
//!
//! Invariant: derived state, a pure function of the entries, folded by [`Store::activity_catch_up`] off the
//! request path (a background task of the gateway) page by page: each page read and counted without a lock,
//! then written in one short transaction with the state row that says how far it got, if that is still where
//! the page started. Reads are bounded by hours and rows, never by the ledger's size; rows
//! older than [`KEPT_DAYS`] days are pruned as the fold goes.

use std::collections::HashMap;

use ledger_core::Entry;
use ledger_core::activity::{ACTIVITY_VERSION, DenialSource, PAYLOAD_KINDS, Tally, activity};
use time::macros::format_description;
use time::{Duration, PrimitiveDateTime};

use crate::{Backend, EntryRow, StorageError, Store, with_pool};

pub(crate) mod queries;

/// Entries counted per page (read without a lock; only their few upserted rows are written under it).
const PAGE: i64 = 2_000;

/// How long the hourly counts are kept.
pub const KEPT_DAYS: i64 = 31;

/// How far the counts are folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityProgress {
    /// Every entry up to this seq is counted.
    pub folded_seq: u64,
    /// The ledger's highest seq (0 when empty).
    pub head_seq: u64,
}

/// One hour's count of one tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// `YYYY-MM-DDTHH` (UTC).
    pub hour: String,
    /// What was counted.
    pub tally: Tally,
    /// How many.
    pub count: u64,
}

/// A count by key over the hours asked for (a requester, or a denial's source and reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked<K> {
    /// What was counted.
    pub key: K,
    /// How many.
    pub count: u64,
}

/// The counts since an hour, for the overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitySummary {
    /// Every hour's counts since the hour asked for, oldest first (hours without any are absent).
    pub hours: Vec<HourCount>,
    /// The identities that requested the most actions, most first.
    pub requesters: Vec<Ranked<String>>,
    /// The most frequent denial causes, most first.
    pub denials: Vec<Ranked<(DenialSource, String)>>,
    /// How far the counts are folded; behind the head while a catch-up is under way.
    pub progress: ActivityProgress,
}

/// One page's counts, summed in memory before they are written.
#[derive(Debug, Default)]
struct Fold {
    hours: HashMap<(String, Tally), i64>,
    requesters: HashMap<(String, String), i64>,
    denials: HashMap<(String, DenialSource, String), i64>,
    /// The first seq of each hour in the page.
    marks: HashMap<String, i64>,
    newest_hour: Option<String>,
}

impl Fold {
    fn of(entries: &[Entry]) -> Fold {
        let mut fold = Fold::default();
        for entry in entries {
            let Some(counted) = activity(entry) else {
                if let Some(hour) = ledger_core::activity::hour_of(&entry.timestamp) {
                    fold.mark(hour, entry.seq);
                }
                continue;
            };
            fold.mark(&counted.hour, entry.seq);
            *fold.hours.entry((counted.hour.clone(), counted.tally)).or_default() += 1;
            if let Some(requester) = counted.requester {
                *fold.requesters.entry((counted.hour.clone(), requester)).or_default() += 1;
            }
            if let Some(denial) = counted.denial {
                *fold
                    .denials
                    .entry((counted.hour, denial.source, denial.reason))
                    .or_default() += 1;
            }
        }
        fold
    }

    fn mark(&mut self, hour: &str, seq: u64) {
        self.marks.entry(hour.to_owned()).or_insert(seq as i64);
        if self.newest_hour.as_deref().is_none_or(|newest| newest < hour) {
            self.newest_hour = Some(hour.to_owned());
        }
    }
}

/// The hour `hours` hours before `hour` (`YYYY-MM-DDTHH`); None if `hour` is not one.
pub fn hours_before(hour: &str, hours: i64) -> Option<String> {
    let format = format_description!("[year]-[month]-[day]T[hour]");
    let at = PrimitiveDateTime::parse(hour, format).ok()?;
    (at - Duration::hours(hours)).format(format).ok()
}

/// One page's counts written in one short transaction with the state row. The page was read and counted
/// before, outside the transaction (entries never change), after seq `$expected`: it is written only if the
/// state is still there, else another fold got there first and the page is dropped (the loop reads on from
/// the new state). Counts of an older version are emptied first (a newer release's are left alone).
macro_rules! write_page {
    ($pool:expr, $begin:expr, $lock:expr, $expected:expr, $page:expr) => {{
        let mut tx = $pool.begin_with($begin).await?;
        sqlx::query(queries::ENSURE_STATE)
            .bind(i64::from(ACTIVITY_VERSION))
            .execute(&mut *tx)
            .await?;
        let (mut folded, version): (i64, i64) = sqlx::query_as($lock).fetch_one(&mut *tx).await?;
        if version > i64::from(ACTIVITY_VERSION) {
            tx.rollback().await?;
            return Ok(None);
        }
        if version < i64::from(ACTIVITY_VERSION) {
            for sql in queries::RESET {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            sqlx::query(queries::RESET_STATE)
                .bind(i64::from(ACTIVITY_VERSION))
                .execute(&mut *tx)
                .await?;
            folded = 0;
        } else if let (true, Some((fold, last_seq))) = (folded == $expected, $page) {
            write_fold!(tx, fold);
            folded = last_seq;
            sqlx::query(queries::SET_FOLDED).bind(folded).execute(&mut *tx).await?;
        }
        let (head,): (i64,) = sqlx::query_as(queries::HEAD).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Some(ActivityProgress {
            folded_seq: folded as u64,
            head_seq: head as u64,
        })
    }};
}

/// The upserts of one page's counts, and the pruning of what is older than [`KEPT_DAYS`].
macro_rules! write_fold {
    ($tx:ident, $fold:expr) => {{
        let fold: &Fold = $fold;
        for ((hour, tally), count) in &fold.hours {
            sqlx::query(queries::ADD_HOUR)
                .bind(hour)
                .bind(tally.as_str())
                .bind(count)
                .execute(&mut *$tx)
                .await?;
        }
        for ((hour, identity), count) in &fold.requesters {
            sqlx::query(queries::ADD_REQUESTER)
                .bind(hour)
                .bind(identity)
                .bind(count)
                .execute(&mut *$tx)
                .await?;
        }
        for ((hour, source, reason), count) in &fold.denials {
            sqlx::query(queries::ADD_DENIAL)
                .bind(hour)
                .bind(source.as_str())
                .bind(reason)
                .bind(count)
                .execute(&mut *$tx)
                .await?;
        }
        for (hour, seq) in &fold.marks {
            sqlx::query(queries::ADD_MARK)
                .bind(hour)
                .bind(seq)
                .execute(&mut *$tx)
                .await?;
        }
        // From the newest hour, but never past now: one entry from a clock far ahead must not prune today.
        let now = domain::time::now();
        let newest = fold
            .newest_hour
            .as_deref()
            .map_or(&now[..13], |hour| hour.min(&now[..13]));
        if let Some(cutoff) = hours_before(newest, KEPT_DAYS * 24) {
            for sql in queries::PRUNE {
                sqlx::query(sql).bind(&cutoff).execute(&mut *$tx).await?;
            }
        }
    }};
}

impl Store {
    /// Counts the entries the activity tables are missing, page by page (all of them the first time, or
    /// after this release changed what is counted); `progress` is told after each page. Cheap when they
    /// are up to date (one lookup). Several gateways may run it at once: the state row serializes them.
    pub async fn activity_catch_up(
        &self,
        mut progress: impl FnMut(ActivityProgress),
    ) -> Result<ActivityProgress, StorageError> {
        let state: Option<(i64, i64, i64)> =
            with_pool!(self, pool => sqlx::query_as(queries::UP_TO_DATE).fetch_optional(pool).await)?;
        if let Some((folded, version, head)) = state
            && (version > i64::from(ACTIVITY_VERSION) || (version == i64::from(ACTIVITY_VERSION) && folded >= head))
        {
            return Ok(ActivityProgress {
                folded_seq: folded as u64,
                head_seq: head as u64,
            });
        }
        loop {
            // Read and count the page without the write lock: appends go on meanwhile.
            let state: Option<(i64, i64)> =
                with_pool!(self, pool => sqlx::query_as(queries::STATE).fetch_optional(pool).await)?;
            let (expected, version) = state.unwrap_or((0, i64::from(ACTIVITY_VERSION)));
            let page = match version == i64::from(ACTIVITY_VERSION) {
                true => self.activity_page_after(expected).await?,
                false => None,
            };
            let page = page.as_ref().map(|(fold, last)| (fold, *last));
            let written = match &self.writer() {
                Backend::Sqlite(pool) => self.observe(Self::write_sqlite(pool, expected, page).await),
                Backend::Postgres(pool) => self.observe(Self::write_postgres(pool, expected, page).await),
            }?;
            let Some(written) = written else {
                return self.activity_progress().await;
            };
            progress(written);
            if written.folded_seq >= written.head_seq {
                return Ok(written);
            }
        }
    }

    /// The counts of the entries after `seq` (one page), and the page's last seq; None if there are none.
    async fn activity_page_after(&self, seq: i64) -> Result<Option<(Fold, i64)>, StorageError> {
        let sql = queries::page_sql(&PAYLOAD_KINDS);
        let rows: Vec<EntryRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(seq).bind(PAGE).fetch_all(pool).await)?;
        let entries: Vec<Entry> = rows.into_iter().map(Entry::from).collect();
        Ok(entries.last().map(|last| (Fold::of(&entries), last.seq as i64)))
    }

    async fn write_sqlite(
        pool: &sqlx::SqlitePool,
        expected: i64,
        page: Option<(&Fold, i64)>,
    ) -> Result<Option<ActivityProgress>, sqlx::Error> {
        Ok(write_page!(pool, "BEGIN IMMEDIATE", queries::STATE, expected, page))
    }

    async fn write_postgres(
        pool: &sqlx::PgPool,
        expected: i64,
        page: Option<(&Fold, i64)>,
    ) -> Result<Option<ActivityProgress>, sqlx::Error> {
        // No ledger lock: the page was read from committed entries, which never change; the state row's lock
        // keeps two folds apart.
        Ok(write_page!(
            pool,
            "BEGIN ISOLATION LEVEL READ COMMITTED",
            queries::STATE_FOR_UPDATE,
            expected,
            page
        ))
    }

    /// How far the counts are folded, and the head.
    pub async fn activity_progress(&self) -> Result<ActivityProgress, StorageError> {
        let row: Option<(i64, i64)> =
            with_pool!(self, pool => sqlx::query_as(queries::PROGRESS).fetch_optional(pool).await)?;
        let (folded, head) = row.unwrap_or((0, 0));
        Ok(ActivityProgress {
            folded_seq: folded as u64,
            head_seq: head as u64,
        })
    }

    /// The counts of every hour from `since_hour` (`YYYY-MM-DDTHH`) on, with the `top` requesters and denial
    /// causes of those hours: a few indexed range reads of at most hours × (tallies + keys) rows.
    pub async fn activity_since(&self, since_hour: &str, top: u32) -> Result<ActivitySummary, StorageError> {
        let top = i64::from(top.clamp(1, 100));
        let hours: Vec<(String, String, i64)> =
            with_pool!(self, pool => sqlx::query_as(queries::HOURS).bind(since_hour).fetch_all(pool).await)?;
        let requesters: Vec<(String, i64)> = with_pool!(self, pool => sqlx::query_as(queries::TOP_REQUESTERS)
            .bind(since_hour).bind(top).fetch_all(pool).await)?;
        let denials: Vec<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as(queries::TOP_DENIALS)
            .bind(since_hour).bind(top).fetch_all(pool).await)?;
        Ok(ActivitySummary {
            hours: hours
                .into_iter()
                .filter_map(|(hour, tally, count)| {
                    Some(HourCount {
                        tally: Tally::parse(&tally)?,
                        hour,
                        count: count as u64,
                    })
                })
                .collect(),
            requesters: requesters
                .into_iter()
                .map(|(key, count)| Ranked {
                    key,
                    count: count as u64,
                })
                .collect(),
            denials: denials
                .into_iter()
                .filter_map(|(source, reason, count)| {
                    Some(Ranked {
                        key: (DenialSource::parse(&source)?, reason),
                        count: count as u64,
                    })
                })
                .collect(),
            progress: self.activity_progress().await?,
        })
    }

    /// The first seq written in `hour` or later, if the counts have one (where "since then" starts).
    pub async fn first_seq_since(&self, hour: &str) -> Result<Option<u64>, StorageError> {
        let seq: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(queries::FIRST_SEQ_SINCE).bind(hour).fetch_optional(pool).await)?;
        Ok(seq.map(|seq| seq as u64))
    }

    /// How many actions wait for an approval, and when the oldest of them was requested: one range of
    /// the `(status, created_at)` index.
    pub async fn pending_approvals_summary(&self) -> Result<(u64, Option<String>), StorageError> {
        let pending = domain::ActionStatus::PendingApproval.as_str();
        let (count, oldest): (i64, Option<String>) =
            with_pool!(self, pool => sqlx::query_as(queries::PENDING).bind(pending).fetch_one(pool).await)?;
        Ok((count as u64, oldest))
    }

    /// An identity's trust score just before entry `seq` (0 if nothing had moved it): one indexed lookup.
    pub async fn trust_score_before(&self, identity_id: &str, seq: u64) -> Result<i64, StorageError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let score: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(queries::TRUST_BEFORE)
            .bind(identity_id).bind(seq).fetch_optional(pool).await)?;
        Ok(score.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_before_crosses_days_and_months() {
        assert_eq!(hours_before("2026-03-01T01", 2).as_deref(), Some("2026-02-28T23"));
        assert_eq!(hours_before("2026-03-01T01", 31 * 24).as_deref(), Some("2026-01-29T01"));
        assert_eq!(hours_before("yesterday", 1), None);
    }
}
