//! Which API server audit events have been recorded in the ledger (bypasses), by cluster and audit id.

use crate::{Backend, StorageError, Store, with_pool};

impl Store {
    /// Claims an audit event for recording; false if it was claimed before.
    pub async fn claim_audit_event(&self, cluster: &str, audit_id: &str, at: &str) -> Result<bool, StorageError> {
        let sql = "INSERT INTO audit_events_recorded (cluster, audit_id, recorded_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (cluster, audit_id) DO NOTHING";
        let inserted = with_pool!(self, pool => sqlx::query(sql)
            .bind(cluster)
            .bind(audit_id)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// Gives a claim back when its ledger entry could not be written.
    pub async fn release_audit_event(&self, cluster: &str, audit_id: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM audit_events_recorded WHERE cluster = $1 AND audit_id = $2";
        with_pool!(self, pool => sqlx::query(sql).bind(cluster).bind(audit_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
