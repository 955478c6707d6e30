//! The `settings` table: named values the gateway keeps beside the ledger.

use crate::{Backend, StorageError, Store, with_pool, with_writer};

impl Store {
    /// The value stored under `name`, if any.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        let sql = "SELECT value FROM settings WHERE name = $1";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql).bind(name).fetch_optional(pool).await)?)
    }

    /// Stores `value` under `name`, replacing what was there.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StorageError> {
        let sql = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        with_writer!(self, pool => sqlx::query(sql).bind(name).bind(value).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Stores `value` under `name` unless a value is there already; true if this call stored it.
    pub async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool, StorageError> {
        let sql = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        let inserted = with_writer!(self, pool => sqlx::query(sql)
            .bind(name)
            .bind(value)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }
}
