//! Positions of the SIEM exports (`docketops siem`): per named export, the last entry its sink
//! acknowledged. An exporter resumes after that entry, so a restart sends nothing twice beyond the
//! batch that was in flight.

use serde::Serialize;

use crate::{Backend, StorageError, Store, with_pool, with_writer};

/// A row of `export_cursors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ExportCursor {
    /// The export's name, as given to `docketops siem run`.
    pub name: String,
    /// The last entry delivered; 0 before the first.
    pub last_seq: i64,
    /// That entry's id, to notice a ledger replaced under the export.
    pub last_entry_id: Option<String>,
    /// When the cursor was last written (RFC 3339 UTC, microseconds).
    pub updated_at: String,
}

const CURSOR_COLUMNS: &str = "name, last_seq, last_entry_id, updated_at";

impl Store {
    /// The position of the export `name`; `None` before its first batch (or reset).
    pub async fn export_cursor(&self, name: &str) -> Result<Option<ExportCursor>, StorageError> {
        let sql = crate::queries::EXPORT_CURSOR;
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?)
    }

    /// Every export's position, by name.
    pub async fn export_cursors(&self) -> Result<Vec<ExportCursor>, StorageError> {
        let sql = format!("SELECT {CURSOR_COLUMNS} FROM export_cursors ORDER BY name");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?)
    }

    /// Moves the cursor `name` forward to `last_seq` (creating it if missing). It never moves back: when
    /// two exporters share a name by mistake, the slower one cannot rewind the faster one's position.
    /// Returns whether the cursor moved.
    pub async fn advance_export_cursor(
        &self,
        name: &str,
        last_seq: i64,
        last_entry_id: &str,
    ) -> Result<bool, StorageError> {
        let sql = "INSERT INTO export_cursors (name, last_seq, last_entry_id, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, \
                   last_entry_id = excluded.last_entry_id, updated_at = excluded.updated_at \
                   WHERE export_cursors.last_seq < excluded.last_seq";
        let moved = with_writer!(self, pool => sqlx::query(sql)
            .bind(name)
            .bind(last_seq)
            .bind(last_entry_id)
            .bind(domain::time::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(moved == 1)
    }

    /// Sets the cursor `name` to `last_seq` in either direction (an operator's reset: resend from there).
    pub async fn set_export_cursor(
        &self,
        name: &str,
        last_seq: i64,
        last_entry_id: Option<&str>,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO export_cursors (name, last_seq, last_entry_id, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, \
                   last_entry_id = excluded.last_entry_id, updated_at = excluded.updated_at";
        with_writer!(self, pool => sqlx::query(sql)
            .bind(name)
            .bind(last_seq)
            .bind(last_entry_id)
            .bind(domain::time::now())
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
