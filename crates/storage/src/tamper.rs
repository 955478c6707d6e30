//! Direct edits of stored entries, bypassing the appender and the append-only triggers: what an
//! attacker with database access could do. Only for tests that prove verification catches it
//! (enabled by the `tamper` feature, which no release build turns on).

use ledger_core::Entry;

use crate::{Backend, ENTRY_COLUMNS, StorageError, Store, with_pool};

/// Entry columns that may be overwritten: every field but `seq` (see [`swap`] for that).
pub const COLUMNS: &[&str] = ledger_core::entry::ENTRY_FIELDS.split_first().expect("fields").1;

async fn disable_guards(store: &Store) -> Result<(), StorageError> {
    match store.backend() {
        Backend::Sqlite(pool) => {
            sqlx::query("DROP TRIGGER IF EXISTS ledger_entries_no_update")
                .execute(pool)
                .await?;
            sqlx::query("DROP TRIGGER IF EXISTS ledger_entries_no_delete")
                .execute(pool)
                .await?;
        }
        Backend::Postgres(pool) => {
            sqlx::query("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// `UPDATE ledger_entries SET <column> = value WHERE seq = seq`.
pub async fn set_column(store: &Store, seq: u64, column: &str, value: &str) -> Result<u64, StorageError> {
    assert!(COLUMNS.contains(&column), "not an entry column: {column}");
    disable_guards(store).await?;
    let sql = format!("UPDATE ledger_entries SET {column} = $1 WHERE seq = $2");
    let result = with_pool!(store, pool => sqlx::query(&sql).bind(value).bind(seq as i64).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(result)
}

/// `DELETE FROM ledger_entries WHERE seq = seq`; returns how many rows went (0 or 1).
pub async fn delete(store: &Store, seq: u64) -> Result<u64, StorageError> {
    disable_guards(store).await?;
    let sql = "DELETE FROM ledger_entries WHERE seq = $1";
    Ok(with_pool!(store, pool => sqlx::query(sql).bind(seq as i64).execute(pool).await.map(|r| r.rows_affected()))?)
}

/// Exchanges the seq numbers of two entries (the rows trade places in the ledger's order).
pub async fn swap(store: &Store, a: u64, b: u64) -> Result<(), StorageError> {
    disable_guards(store).await?;
    for (from, to) in [(a as i64, -1i64), (b as i64, a as i64), (-1, b as i64)] {
        let sql = "UPDATE ledger_entries SET seq = $1 WHERE seq = $2";
        with_pool!(store, pool => sqlx::query(sql).bind(to).bind(from).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// Inserts a row as given, without any check.
pub async fn insert(store: &Store, entry: &Entry) -> Result<(), StorageError> {
    let sql = format!(
        "INSERT INTO ledger_entries ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    with_pool!(store, pool => sqlx::query(&sql)
        .bind(entry.seq as i64)
        .bind(&entry.id)
        .bind(&entry.timestamp)
        .bind(&entry.kind)
        .bind(&entry.actor)
        .bind(&entry.action_id)
        .bind(&entry.payload)
        .bind(&entry.prev_chain_hash)
        .bind(&entry.event_hash)
        .bind(&entry.chain_hash)
        .bind(&entry.key_id)
        .bind(&entry.signature)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Whether the append-only guard refuses an UPDATE (for the test that it exists).
pub async fn try_plain_update(store: &Store, seq: u64) -> Result<(), StorageError> {
    let sql = "UPDATE ledger_entries SET actor = actor WHERE seq = $1";
    with_pool!(store, pool => sqlx::query(sql).bind(seq as i64).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Empties `ledger_keys` (to rebuild a ledger from scratch in one database).
pub async fn clear_keys(store: &Store) -> Result<(), StorageError> {
    with_pool!(store, pool => sqlx::query("DELETE FROM ledger_keys").execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Sets the trust tables' state row, as an older release or scoring version would have left it.
pub async fn set_trust_state(store: &Store, folded_seq: u64, version: u32) -> Result<(), StorageError> {
    let sql = "UPDATE trust_state SET folded_seq = $1, version = $2 WHERE id = 1";
    with_pool!(store, pool => sqlx::query(sql).bind(folded_seq as i64).bind(i64::from(version)).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Empties the transparency log's tiles, as a ledger written by an older release leaves them.
pub async fn clear_tiles(store: &Store) -> Result<(), StorageError> {
    with_pool!(store, pool => sqlx::query("DELETE FROM tlog_tiles").execute(pool).await.map(|_| ()))?;
    store.tree_cache.reset();
    Ok(())
}

/// Overwrites a stored tile's bytes.
pub async fn set_tile(store: &Store, level: u8, index: u64, data: &[u8]) -> Result<(), StorageError> {
    let sql = "UPDATE tlog_tiles SET data = $1 WHERE level = $2 AND idx = $3";
    with_pool!(store, pool => sqlx::query(sql)
        .bind(data)
        .bind(i64::from(level))
        .bind(index as i64)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Overwrites a stored checkpoint's root hash.
pub async fn set_checkpoint_root(store: &Store, size: u64, root_hash: &str) -> Result<(), StorageError> {
    let sql = "UPDATE tlog_checkpoints SET root_hash = $1 WHERE size = $2";
    with_pool!(store, pool => sqlx::query(sql).bind(root_hash).bind(size as i64).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Sets the version of the overview's counts, as an older or newer release would have left it.
pub async fn set_activity_version(store: &Store, version: u32) -> Result<(), StorageError> {
    let sql = "UPDATE activity_state SET version = $1 WHERE id = 1";
    with_pool!(store, pool => sqlx::query(sql).bind(i64::from(version)).execute(pool).await.map(|_| ()))?;
    Ok(())
}
