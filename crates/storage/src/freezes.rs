//! The kill switch's rows: freezes, active until lifted. Which actions a freeze covers is the domain's
//! (`domain::FreezeScope`); this module only keeps them.

use serde::Serialize;

use crate::{Backend, StorageError, Store, with_pool, with_writer};

/// A row of `freezes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FreezeRow {
    /// `frz_…`.
    pub id: String,
    /// The scope as canonical JSON (`domain::FreezeScope`).
    pub scope: String,
    /// Why, as the one who froze said.
    pub reason: String,
    /// Who froze it.
    pub frozen_by: String,
    /// When (RFC 3339 UTC, microseconds).
    pub frozen_at: String,
    /// The `freeze.enabled` entry; `None` only while it is being written.
    pub recorded_entry: Option<String>,
    /// Who lifted it.
    pub lifted_by: Option<String>,
    /// When it was lifted; `None` while it is active.
    pub lifted_at: Option<String>,
    /// Why it was lifted.
    pub lift_reason: Option<String>,
    /// The `freeze.lifted` entry.
    pub lifted_entry: Option<String>,
}

const COLUMNS: &str =
    "id, scope, reason, frozen_by, frozen_at, recorded_entry, lifted_by, lifted_at, lift_reason, lifted_entry";

impl Store {
    /// Adds an active freeze; `Conflict` if the same scope is already frozen.
    pub async fn insert_freeze(&self, row: &FreezeRow) -> Result<(), StorageError> {
        let sql = format!("INSERT INTO freezes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        let inserted = with_writer!(self, pool => sqlx::query(&sql)
            .bind(&row.id)
            .bind(&row.scope)
            .bind(&row.reason)
            .bind(&row.frozen_by)
            .bind(&row.frozen_at)
            .bind(&row.recorded_entry)
            .bind(&row.lifted_by)
            .bind(&row.lifted_at)
            .bind(&row.lift_reason)
            .bind(&row.lifted_entry)
            .execute(pool)
            .await
            .map(|_| ()));
        inserted.map_err(|e| crate::directory::conflict_or(e, "this scope is already frozen".into()))
    }

    /// Notes the `freeze.enabled` entry of a freeze.
    pub async fn mark_freeze_recorded(&self, id: &str, entry_id: &str) -> Result<(), StorageError> {
        let sql = "UPDATE freezes SET recorded_entry = $2 WHERE id = $1";
        Ok(with_writer!(self, pool => sqlx::query(sql).bind(id).bind(entry_id).execute(pool).await.map(|_| ()))?)
    }

    /// Takes back a freeze whose `freeze.enabled` entry could not be written.
    pub async fn remove_unrecorded_freeze(&self, id: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM freezes WHERE id = $1 AND recorded_entry IS NULL";
        Ok(with_writer!(self, pool => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()))?)
    }

    /// The active freezes (not lifted), oldest first. A handful of rows, read through the partial index on
    /// active scopes: what every mutation checks.
    pub async fn active_freezes(&self) -> Result<Vec<FreezeRow>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM freezes WHERE lifted_at IS NULL ORDER BY frozen_at, id");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?)
    }

    /// One freeze, active or lifted.
    pub async fn freeze(&self, id: &str) -> Result<Option<FreezeRow>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM freezes WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Lifts a freeze whose `freeze.lifted` entry (`entry_id`) is written; false if it was lifted already.
    pub async fn lift_freeze(
        &self,
        id: &str,
        by: &str,
        at: &str,
        reason: &str,
        entry_id: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE freezes SET lifted_by = $2, lifted_at = $3, lift_reason = $4, lifted_entry = $5 \
                   WHERE id = $1 AND lifted_at IS NULL";
        let lifted = with_writer!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(by)
            .bind(at)
            .bind(reason)
            .bind(entry_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(lifted == 1)
    }

    /// Active freezes whose `freeze.enabled` entry was never noted (the gateway stopped in between), made
    /// before `before`: recovery records them.
    pub async fn unrecorded_freezes(&self, before: &str) -> Result<Vec<FreezeRow>, StorageError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM freezes WHERE lifted_at IS NULL AND recorded_entry IS NULL AND frozen_at < $1"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(before).fetch_all(pool).await)?)
    }
}
