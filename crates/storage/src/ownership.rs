//! Who runs an unfinished action, and finding the ones nobody runs any more.
//!
//! Every gateway process registers an instance row and refreshes its heartbeat; an action that is
//! `RUNNING` or `EXECUTING` names its owner instance. An action whose owner stopped heartbeating (crash,
//! kill -9, a lost host) is an orphan: another instance takes it over with a compare-and-swap on the owner
//! and resolves it against the cluster (the gateway's `recovery`).

use crate::{ActionRow, Backend, StorageError, Store, queries, with_pool, with_writer};

impl Store {
    /// Registers (or refreshes) a gateway instance's heartbeat.
    pub async fn heartbeat(&self, instance: &str, now: &str) -> Result<(), StorageError> {
        let sql = "INSERT INTO gateway_instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
                   ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
        with_writer!(self, pool => sqlx::query(sql).bind(instance).bind(now).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Removes instances that have not heartbeated since `before` (their actions are orphans by then).
    pub async fn forget_instances(&self, before: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM gateway_instances WHERE heartbeat_at < $1";
        Ok(with_writer!(self, pool => sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// Unfinished actions (`RUNNING`, `EXECUTING`) that may need recovery, oldest first: those of
    /// `instance` itself (the caller checks which of them it still runs), those whose owner has not
    /// heartbeated since `alive_since`, and ownerless ones (written by a release without owners) not updated
    /// since `ownerless_before`.
    pub async fn unfinished_actions(
        &self,
        instance: &str,
        alive_since: &str,
        ownerless_before: &str,
        limit: u32,
    ) -> Result<Vec<ActionRow>, StorageError> {
        let sql = queries::unfinished_actions();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(instance)
            .bind(alive_since)
            .bind(ownerless_before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// Makes `instance` the owner of an unfinished action if its owner is still `previous`; true only for
    /// the one instance that made the move (so exactly one recovers it).
    pub async fn take_over_action(
        &self,
        id: &str,
        previous: Option<&str>,
        instance: &str,
        now: &str,
    ) -> Result<bool, StorageError> {
        let sql = queries::TAKE_OVER_ACTION;
        let changed = with_writer!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(previous)
            .bind(instance)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Stores what an action is about to send to the cluster, before it is sent (intent before effect);
    /// false if `owner` no longer owns the unfinished action (another instance took it over: do not send).
    pub async fn record_intent(&self, id: &str, owner: &str, intent: &str) -> Result<bool, StorageError> {
        let sql = queries::RECORD_INTENT;
        let changed = with_writer!(self, pool => sqlx::query(sql).bind(id).bind(intent).bind(owner).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// The intent stored by [`Store::record_intent`], if any.
    pub async fn intent(&self, id: &str) -> Result<Option<String>, StorageError> {
        let sql = "SELECT intent FROM actions WHERE id = $1";
        let row: Option<(Option<String>,)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.and_then(|(intent,)| intent))
    }

    /// The action a client submitted before with this idempotency key, if any.
    pub async fn action_by_idempotency_key(
        &self,
        identity_id: &str,
        key: &str,
    ) -> Result<Option<ActionRow>, StorageError> {
        let sql = queries::action_by_idempotency_key();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(identity_id).bind(key).fetch_optional(pool).await)?)
    }
}
