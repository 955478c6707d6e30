//! Trust scores kept up to date beside the ledger: `trust_actions` (each action's owner and risk level),
//! `trust_scores` (each identity's score), `trust_changes` (every entry that moved a score) and
//! `trust_state` (how far, and by which scoring version, entries are folded in).
//!
//! Invariant: these tables are derived state, a pure function of the entries ([`ledger_core::trust`]).
//! The appender folds each batch in the batch's own transaction when the state is right behind it
//! ([`fold_batch_sqlite`], [`fold_batch_postgres`]): a few statements per batch, no entry read back.
//! When it is not (entries written by an older release, a scoring version change, a rebuild), the
//! batch is left unfolded and [`Store::trust_catch_up`] folds the missing entries page by page, each
//! page under the ledger-wide lock (`catch_up`); `docketops trust rebuild` recomputes everything.

use domain::EntryKind;
use std::collections::{BTreeSet, HashMap};

use ledger_core::Entry;
use ledger_core::trust::{self, SCORING_VERSION, TrustAction, TrustChange};
use serde::Serialize;
use sqlx::{PgConnection, QueryBuilder, Sqlite, SqliteConnection};

use crate::queries;

mod catch_up;

/// SQLite allows 32,766 bound parameters per statement; at most 7 per row here.
const SQLITE_ROWS: usize = 1_000;

/// The most trust changes one page returns.
pub const MAX_TRUST_PAGE: u32 = 200;

/// An identity's stored score, without its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoredTrust {
    /// The score, 0 to 100 (0 for an identity no entry moved yet).
    pub score: i64,
    /// How many entries moved the score.
    pub changes: u64,
    /// The seq of the last entry that moved it (0: none).
    pub last_change_seq: u64,
    /// Every entry up to this seq is folded in; a later one is not yet (a catch-up is pending).
    pub as_of_seq: u64,
    /// Whether every entry of the ledger was folded in, by this release's scoring version, when the score
    /// was read. A score that is behind may be too high (later denials missing): gates must not trust it.
    pub current: bool,
}

/// How far a catch-up or rebuild got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrustProgress {
    /// Every entry up to this seq is folded into the trust tables.
    pub folded_seq: u64,
    /// The ledger's highest seq (0 when empty); the scores are current once `folded_seq` reaches it.
    pub head_seq: u64,
}

/// A score's running state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
struct ScoreRow {
    score: i64,
    changes: i64,
    last_seq: i64,
}

/// One batch's effect on the tables, computed in memory from the rows it touches.
#[derive(Debug, Default)]
struct Fold {
    actions: HashMap<String, TrustAction>,
    dirty_actions: BTreeSet<String>,
    scores: HashMap<String, ScoreRow>,
    dirty_scores: BTreeSet<String>,
    changes: Vec<(String, TrustChange)>,
}

/// Stored score rows by identity.
fn score_map(rows: Vec<(String, i64, i64, i64)>) -> HashMap<String, ScoreRow> {
    let row = |(id, score, changes, last_seq)| {
        (
            id,
            ScoreRow {
                score,
                changes,
                last_seq,
            },
        )
    };
    rows.into_iter().map(row).collect()
}

/// The action ids of `entries` whose stored row the fold may need.
fn action_ids(entries: &[Entry]) -> Vec<String> {
    let ids: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::RiskClassified || trust::may_move(&e.kind))
        .filter_map(|e| e.action_id.as_deref())
        .collect();
    ids.into_iter().map(str::to_owned).collect()
}

impl Fold {
    fn new(actions: Vec<(String, String, String)>) -> Fold {
        let actions = actions
            .into_iter()
            .map(|(id, owner, risk)| (id, TrustAction { owner, risk }))
            .collect();
        Fold {
            actions,
            ..Fold::default()
        }
    }

    /// Every identity whose score the batch may move: owners of known actions and requesters in it.
    fn owners(&self, entries: &[Entry]) -> Vec<String> {
        let mut owners: BTreeSet<&str> = self.actions.values().map(|a| a.owner.as_str()).collect();
        owners.extend(
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::ActionRequested && e.action_id.is_some())
                .map(|e| e.actor.as_str()),
        );
        owners.into_iter().map(str::to_owned).collect()
    }

    fn run(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.feed(entry);
        }
    }

    fn feed(&mut self, entry: &Entry) {
        if let Some(update) = trust::action_update(entry) {
            trust::apply_update(&mut self.actions, update);
            if let Some(id) = entry.action_id.as_deref().filter(|id| self.actions.contains_key(*id)) {
                self.dirty_actions.insert(id.to_owned());
            }
            return;
        }
        let Some(action) = entry.action_id.as_deref().and_then(|id| self.actions.get(id)) else {
            return;
        };
        let row = self.scores.entry(action.owner.clone()).or_default();
        if let Some(change) = trust::step(row.score, &action.risk, entry) {
            row.score = change.score;
            row.changes += 1;
            row.last_seq = change.seq as i64;
            self.dirty_scores.insert(action.owner.clone());
            self.changes.push((action.owner.clone(), change));
        }
    }

    fn action_rows(&self) -> Vec<(&str, &TrustAction)> {
        self.dirty_actions
            .iter()
            .filter_map(|id| self.actions.get(id).map(|a| (id.as_str(), a)))
            .collect()
    }

    fn score_rows(&self) -> Vec<(&str, ScoreRow)> {
        self.dirty_scores
            .iter()
            .filter_map(|id| self.scores.get(id).map(|s| (id.as_str(), *s)))
            .collect()
    }
}

const UPSERT_ACTIONS: &str =
    " ON CONFLICT (action_id) DO UPDATE SET identity_id = excluded.identity_id, risk = excluded.risk";
const UPSERT_SCORES: &str = " ON CONFLICT (identity_id) DO UPDATE SET score = excluded.score, \
                             changes = excluded.changes, last_seq = excluded.last_seq";

/// The appender's step, inside its transaction after the batch's insert: if every entry before the batch
/// is folded by this scoring version, folds the batch too; otherwise leaves it to a catch-up.
pub(crate) async fn fold_batch_sqlite(conn: &mut SqliteConnection, entries: &[Entry]) -> Result<(), sqlx::Error> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(());
    };
    let advanced = sqlx::query(queries::TRUST_ADVANCE)
        .bind(last.seq as i64)
        .bind(first.seq as i64 - 1)
        .bind(i64::from(SCORING_VERSION))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if advanced == 1 {
        fold_sqlite(conn, entries).await?;
    }
    Ok(())
}

/// [`fold_batch_sqlite`] on PostgreSQL.
pub(crate) async fn fold_batch_postgres(conn: &mut PgConnection, entries: &[Entry]) -> Result<(), sqlx::Error> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(());
    };
    let advanced = sqlx::query(queries::TRUST_ADVANCE)
        .bind(last.seq as i64)
        .bind(first.seq as i64 - 1)
        .bind(i64::from(SCORING_VERSION))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if advanced == 1 {
        fold_postgres(conn, entries).await?;
    }
    Ok(())
}

/// Folds `entries` (consecutive, right after the folded ones) into the tables; the caller moves the state.
async fn fold_sqlite(conn: &mut SqliteConnection, entries: &[Entry]) -> Result<(), sqlx::Error> {
    let actions = select_in_sqlite(conn, queries::trust_actions_in, &action_ids(entries)).await?;
    let mut fold = Fold::new(actions);
    let owners = fold.owners(entries);
    let scores: Vec<(String, i64, i64, i64)> = select_in_sqlite(conn, queries::trust_scores_in, &owners).await?;
    fold.scores = score_map(scores);
    fold.run(entries);
    write_sqlite(conn, &fold).await
}

/// Rows whose key is among `keys`, in chunks of `IN (…)` (`select` makes the statement of a chunk).
async fn select_in_sqlite<T>(
    conn: &mut SqliteConnection,
    select: fn(usize) -> String,
    keys: &[String],
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(SQLITE_ROWS) {
        let sql = select(chunk.len());
        let mut query = sqlx::query_as::<_, T>(&sql).persistent(false);
        for key in chunk {
            query = query.bind(key);
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

async fn write_sqlite(conn: &mut SqliteConnection, fold: &Fold) -> Result<(), sqlx::Error> {
    for chunk in fold.action_rows().chunks(SQLITE_ROWS) {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("INSERT INTO trust_actions (action_id, identity_id, risk) ");
        query.push_values(chunk, |mut row, (id, action)| {
            row.push_bind(*id).push_bind(&action.owner).push_bind(&action.risk);
        });
        query.push(UPSERT_ACTIONS);
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    for chunk in fold.score_rows().chunks(SQLITE_ROWS) {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("INSERT INTO trust_scores (identity_id, score, changes, last_seq) ");
        query.push_values(chunk, |mut row, (id, s)| {
            row.push_bind(*id)
                .push_bind(s.score)
                .push_bind(s.changes)
                .push_bind(s.last_seq);
        });
        query.push(UPSERT_SCORES);
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    for chunk in fold.changes.chunks(SQLITE_ROWS) {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("INSERT INTO trust_changes (identity_id, seq, entry_id, action_id, kind, delta, score) ");
        query.push_values(chunk, |mut row, (id, c)| {
            row.push_bind(id)
                .push_bind(c.seq as i64)
                .push_bind(&c.entry_id)
                .push_bind(&c.action_id)
                .push_bind(&c.kind)
                .push_bind(c.delta)
                .push_bind(c.score);
        });
        // Derived state must never stop the ledger: a change already stored (a restored database) is kept.
        query.push(" ON CONFLICT DO NOTHING");
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn fold_postgres(conn: &mut PgConnection, entries: &[Entry]) -> Result<(), sqlx::Error> {
    // A batch of entries that cannot move a score (notes, identity changes) needs no lookup.
    let ids = action_ids(entries);
    let actions: Vec<(String, String, String)> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(queries::TRUST_ACTIONS_ANY)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?
    };
    let mut fold = Fold::new(actions);
    let owners = fold.owners(entries);
    let scores: Vec<(String, i64, i64, i64)> = if owners.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(queries::TRUST_SCORES_ANY)
            .bind(owners)
            .fetch_all(&mut *conn)
            .await?
    };
    fold.scores = score_map(scores);
    fold.run(entries);
    write_postgres(conn, &fold).await
}

/// One statement per table whatever the batch's size: columns as arrays, UNNEST back into rows.
async fn write_postgres(conn: &mut PgConnection, fold: &Fold) -> Result<(), sqlx::Error> {
    let actions = fold.action_rows();
    if !actions.is_empty() {
        let column = |f: fn(&(&str, &TrustAction)) -> String| actions.iter().map(f).collect::<Vec<_>>();
        let sql = format!(
            "INSERT INTO trust_actions (action_id, identity_id, risk) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]){UPSERT_ACTIONS}"
        );
        sqlx::query(&sql)
            .bind(column(|(id, _)| (*id).to_owned()))
            .bind(column(|(_, a)| a.owner.clone()))
            .bind(column(|(_, a)| a.risk.clone()))
            .execute(&mut *conn)
            .await?;
    }
    let scores = fold.score_rows();
    if !scores.is_empty() {
        let number = |f: fn(&ScoreRow) -> i64| scores.iter().map(|(_, s)| f(s)).collect::<Vec<i64>>();
        let sql = format!(
            "INSERT INTO trust_scores (identity_id, score, changes, last_seq) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[]){UPSERT_SCORES}"
        );
        sqlx::query(&sql)
            .bind(scores.iter().map(|(id, _)| (*id).to_owned()).collect::<Vec<_>>())
            .bind(number(|s| s.score))
            .bind(number(|s| s.changes))
            .bind(number(|s| s.last_seq))
            .execute(&mut *conn)
            .await?;
    }
    if !fold.changes.is_empty() {
        insert_changes_postgres(conn, &fold.changes).await?;
    }
    Ok(())
}

async fn insert_changes_postgres(
    conn: &mut PgConnection,
    changes: &[(String, TrustChange)],
) -> Result<(), sqlx::Error> {
    let text = |f: fn(&(String, TrustChange)) -> &String| changes.iter().map(f).cloned().collect::<Vec<_>>();
    let number = |f: fn(&TrustChange) -> i64| changes.iter().map(|(_, c)| f(c)).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO trust_changes (identity_id, seq, entry_id, action_id, kind, delta, score) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(text(|(id, _)| id))
    .bind(number(|c| c.seq as i64))
    .bind(text(|(_, c)| &c.entry_id))
    .bind(text(|(_, c)| &c.action_id))
    .bind(text(|(_, c)| &c.kind))
    .bind(number(|c| c.delta))
    .bind(number(|c| c.score))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
