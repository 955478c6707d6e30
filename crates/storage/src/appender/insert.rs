//! Inserting a batch's entry rows: one statement per batch on PostgreSQL, per chunk of
//! [`SQLITE_ROWS_PER_INSERT`] rows on SQLite; with a guard, only on top of the expected head.

use ledger_core::Entry;
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::AppendError;
use crate::ENTRY_COLUMNS;

/// SQLite allows 32,766 bound parameters per statement; 12 per row.
const SQLITE_ROWS_PER_INSERT: usize = 2_000;

/// Inserts `entries`; with `guard`, only if the head's chain hash is `guard` (else nothing). Returns the
/// number of rows inserted.
pub(super) async fn insert_sqlite(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    entries: &[Entry],
    guard: Option<&str>,
) -> Result<u64, AppendError> {
    let mut inserted = 0;
    for (i, chunk) in entries.chunks(SQLITE_ROWS_PER_INSERT).enumerate() {
        let mut query: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new(format!("INSERT INTO ledger_entries ({ENTRY_COLUMNS}) SELECT * FROM ("));
        query.push_values(chunk, |mut row, e| {
            row.push_bind(e.seq as i64)
                .push_bind(&e.id)
                .push_bind(&e.timestamp)
                .push_bind(&e.kind)
                .push_bind(&e.actor)
                .push_bind(&e.action_id)
                .push_bind(&e.payload)
                .push_bind(&e.prev_chain_hash)
                .push_bind(&e.event_hash)
                .push_bind(&e.chain_hash)
                .push_bind(&e.key_id)
                .push_bind(&e.signature);
        });
        query.push(")");
        // Later chunks follow the first inside the same transaction: only the first needs the guard.
        if let (Some(guard), 0) = (guard, i) {
            query.push(" WHERE (SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1) = ");
            query.push_bind(guard);
        }
        let rows = query
            .build()
            .persistent(false)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if rows == 0 {
            break;
        }
        inserted += rows;
    }
    Ok(inserted)
}

pub(super) async fn insert_postgres(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    entries: &[Entry],
    guard: Option<&str>,
) -> Result<u64, AppendError> {
    // One statement per batch whatever its size: columns as arrays, UNNEST back into rows.
    let column = |f: fn(&Entry) -> &String| entries.iter().map(f).cloned().collect::<Vec<String>>();
    let condition = match guard {
        Some(_) => " WHERE (SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1) = $13",
        None => "",
    };
    let sql = format!(
        "INSERT INTO ledger_entries ({ENTRY_COLUMNS}) SELECT * FROM UNNEST(\
         $1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]){condition}"
    );
    let mut query = sqlx::query(&sql)
        .bind(entries.iter().map(|e| e.seq as i64).collect::<Vec<i64>>())
        .bind(column(|e| &e.id))
        .bind(column(|e| &e.timestamp))
        .bind(column(|e| &e.kind))
        .bind(column(|e| &e.actor))
        .bind(
            entries
                .iter()
                .map(|e| e.action_id.clone())
                .collect::<Vec<Option<String>>>(),
        )
        .bind(column(|e| &e.payload))
        .bind(column(|e| &e.prev_chain_hash))
        .bind(column(|e| &e.event_hash))
        .bind(column(|e| &e.chain_hash))
        .bind(column(|e| &e.key_id))
        .bind(column(|e| &e.signature));
    if let Some(guard) = guard {
        query = query.bind(guard);
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}
