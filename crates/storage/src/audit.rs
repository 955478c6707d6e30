//! Which API server audit events have been recorded in the ledger (bypasses), by cluster and event key.

use crate::{Backend, StorageError, Store, with_writer};

impl Store {
    /// Claims an audit event for recording; false if it was recorded before, or claimed since `stale_before`
    /// by a recording still under way. A claim older than that without an entry (its recorder crashed) is
    /// taken over, so no event is lost.
    pub async fn claim_audit_event(
        &self,
        cluster: &str,
        key: &str,
        at: &str,
        stale_before: &str,
    ) -> Result<bool, StorageError> {
        let sql = crate::queries::AUDIT_CLAIM;
        let claimed = with_writer!(self, pool => sqlx::query(sql)
            .bind(cluster)
            .bind(key)
            .bind(at)
            .bind(stale_before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(claimed == 1)
    }

    /// Notes the ledger entry that recorded a claimed event.
    pub async fn mark_audit_event_recorded(
        &self,
        cluster: &str,
        key: &str,
        entry_id: &str,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE audit_events_recorded SET entry_id = $3 WHERE cluster = $1 AND audit_id = $2";
        with_writer!(self, pool => sqlx::query(sql).bind(cluster).bind(key).bind(entry_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Gives a claim back when its ledger entry could not be written.
    pub async fn release_audit_event(&self, cluster: &str, key: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM audit_events_recorded WHERE cluster = $1 AND audit_id = $2 AND entry_id IS NULL";
        with_writer!(self, pool => sqlx::query(sql).bind(cluster).bind(key).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
