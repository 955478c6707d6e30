//! One batch's transaction: take the ledger's write lock, insert the presealed entries if the head is
//! still theirs or sign on the head found, fold trust scores and the transparency log's tree, commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ledger_core::{ChainHead, Entry, LedgerPublicKey, LedgerSigningKey, NewEvent, PreparedEvent};
use time::OffsetDateTime;

use super::insert::{insert_postgres, insert_sqlite};
use super::reserving::{PerCommand, Reservations, per_command};
use super::signing::{Batch, sign};
use super::{AppendError, Shared};
use crate::budgets::Serialization;
use crate::{Backend, EntryRow};

/// Begins a transaction and takes the ledger's PostgreSQL advisory lock in one round trip (sent as a
/// simple query). The lock's key is an arbitrary constant: 0x646b746c65646772, "dktledgr".
/// READ COMMITTED is named because the head read after the lock must see every commit made before it;
/// a server whose default is REPEATABLE READ would take the snapshot before the lock is granted.
pub(crate) const POSTGRES_BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(7236005235207202674)";

// Macros rather than generic functions: sqlx's executor traits over `&mut Connection` defeat the
// `Send` inference of the writer task when abstracted over the backend.
macro_rules! read_head {
    ($conn:expr) => {{
        let sql = crate::queries::head();
        let row: Option<EntryRow> = sqlx::query_as(&sql).fetch_optional($conn).await?;
        row.map(Entry::from)
    }};
}

macro_rules! insert_key {
    ($conn:expr, $seq:expr, $key:expr) => {{
        let info = $key.info();
        sqlx::query("INSERT INTO ledger_keys (key_id, algorithm, public_key, introduced_seq) VALUES ($1, $2, $3, $4)")
            .bind(info.key_id)
            .bind(info.algorithm)
            .bind(info.public_key)
            .bind($seq as i64)
            .execute($conn)
            .await?;
    }};
}

/// One transaction (see [`write`]); its outcome tells readiness whether writes work. Answers each command's
/// entries and the head the transaction left (none when it appended nothing).
pub(super) async fn transaction(
    shared: &Shared,
    key: &Arc<LedgerSigningKey>,
    batch: Batch,
    rotation: Option<(&LedgerSigningKey, &str)>,
) -> Result<(PerCommand, Option<ChainHead>), AppendError> {
    let result = write(shared, key, batch, rotation).await;
    match &result {
        Ok(_) => shared.store.clear_fault(),
        Err(AppendError::Storage(error)) => shared.store.note_fault(error),
        Err(_) => {}
    }
    result
}

/// One transaction: lock, decide the batch's budget reservations (a refused one's events become its
/// refusal), read the head, use the presealed entries if they fit it or sign on it, insert, commit. Returns
/// the callers' entries: those of the events, or the rotation entry (a genesis entry written on the way is
/// not returned).
async fn write(
    shared: &Shared,
    key: &Arc<LedgerSigningKey>,
    batch: Batch,
    rotation: Option<(&LedgerSigningKey, &str)>,
) -> Result<(PerCommand, Option<ChainHead>), AppendError> {
    let Batch {
        mut events,
        mut presealed,
        mut sizes,
        reservations,
    } = batch;
    let mut reservations = Reservations::of(reservations);
    let reserving = reservations.count();
    // Fast path: insert the presealed entries only if the head is still the one they were signed on
    // (one statement, no separate head read; a head that is ours also means our key is still the
    // active one, as any other writer or a rotation would have moved it). Slow path: read the head,
    // sign on it, insert.
    macro_rules! run {
        ($pool:expr, $begin:expr, $insert:ident, $fold:ident, $reserve:ident) => {{
            let mut tx = $pool.begin_with($begin).await?;
            if reserving > 0 {
                let verdicts =
                    crate::budgets::$reserve(&mut tx, Serialization::WriteLockHeld, &reservations.asked()).await?;
                if reservations.decided(verdicts) {
                    events = reservations.refuse(events, &mut sizes)?;
                    presealed = None;
                }
            }
            let fast = match presealed {
                Some(presealed) => {
                    let guard = presealed.base.chain_hash.to_string();
                    let inserted = $insert(&mut tx, &presealed.entries, Some(&guard)).await?;
                    (inserted == presealed.entries.len() as u64).then_some(presealed.entries)
                }
                None => None,
            };
            let written = match fast {
                Some(sealed) => (sealed, 0),
                None => {
                    let head = read_head!(&mut *tx);
                    let (sealed, skip, new_keys) = build(shared, key, head, events, rotation).await?;
                    $insert(&mut tx, &sealed, None).await?;
                    for (seq, key) in &new_keys {
                        insert_key!(&mut *tx, *seq, key);
                    }
                    (sealed, skip)
                }
            };
            // Trust scores and the transparency log's tree move in the same transaction as the entries.
            crate::trust::$fold(&mut tx, &written.0).await?;
            let edge = match shared.config.integrate_tree {
                true => crate::tlog::integrate!(&mut *tx, shared.edge, &written.0),
                false => None,
            };
            tx.commit().await?;
            *shared.edge.lock().expect("edge cache lock") = edge;
            written
        }};
    }
    let (sealed, skip) = match &shared.store.writer() {
        Backend::Sqlite(pool) => run!(
            pool,
            "BEGIN IMMEDIATE",
            insert_sqlite,
            fold_batch_sqlite,
            reserve_sqlite
        ),
        Backend::Postgres(pool) => run!(
            pool,
            POSTGRES_BEGIN,
            insert_postgres,
            fold_batch_postgres,
            reserve_postgres
        ),
    };
    if reserving > 0 {
        shared.store.budget_queue.committed(reserving as u64);
    }
    if !sealed.is_empty() {
        shared.counters.transactions.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .entries
            .fetch_add(sealed.len() as u64, Ordering::Relaxed);
    }
    let head = sealed.last().and_then(ledger_core::chain::head_of);
    Ok((per_command(sealed, skip, sizes, reservations.refused), head))
}

/// The entries of one transaction on top of `head`: a genesis entry first if the ledger is empty,
/// then `events`, then the rotation entry if asked. Returns them, how many leading entries (the
/// genesis) the caller does not get back, and the keys they introduce.
async fn build(
    shared: &Shared,
    key: &Arc<LedgerSigningKey>,
    head: Option<Entry>,
    mut events: Vec<PreparedEvent>,
    rotation: Option<(&LedgerSigningKey, &str)>,
) -> Result<(Vec<Entry>, usize, Vec<(u64, LedgerPublicKey)>), AppendError> {
    let now = OffsetDateTime::now_utc();
    let mut new_keys = Vec::new();
    let base = match &head {
        None => {
            let genesis = NewEvent::genesis(&key.public_key(), &shared.config.system_actor);
            events.insert(0, PreparedEvent::prepare(genesis, now)?);
            new_keys.push((1, key.public_key()));
            ChainHead::EMPTY
        }
        Some(head) => {
            let active = ledger_core::entry::next_signing_key_id(head).map_err(AppendError::CorruptHead)?;
            if active != key.key_id() {
                return Err(AppendError::KeyNotActive {
                    ours: key.key_id().to_string(),
                    active,
                });
            }
            ledger_core::chain::head_of(head)
                .ok_or_else(|| AppendError::CorruptHead(format!("seq {}: unreadable chain_hash", head.seq)))?
        }
    };
    let skip = usize::from(head.is_none());
    if let Some((next, actor)) = rotation {
        if head.is_none() {
            return Err(AppendError::NothingToRotate);
        }
        // A rotation is a transaction of its own, so it follows the head directly; its proof of
        // possession binds that head's chain hash.
        debug_assert!(events.is_empty(), "a rotation travels alone");
        let event = NewEvent::key_rotation(key.key_id(), next, &base.chain_hash, actor);
        events.push(PreparedEvent::prepare(event, now)?);
        new_keys.push((base.seq + events.len() as u64, next.public_key()));
    }
    if events.is_empty() {
        return Ok((Vec::new(), skip, new_keys));
    }
    Ok((sign(base, events, Arc::clone(key)).await, skip, new_keys))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_begin_statement_takes_the_ledger_lock() {
        let key = i64::from_be_bytes(*b"dktledgr");
        assert!(super::POSTGRES_BEGIN.ends_with(&format!("pg_advisory_xact_lock({key})")));
    }
}
