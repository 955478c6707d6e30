//! Actions and their approvals: the rows that say where each submitted action stands, beside the ledger
//! that records how it got there.

use domain::ActionStatus;
use ledger_core::Entry;
use serde::Serialize;

use crate::directory::conflict_or;
use crate::hot_paths::{action_params, bind_all};
use crate::{Backend, EntryRow, StorageError, Store, queries, with_pool, with_writer};

/// A row of `actions`: one submitted action and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ActionRow {
    /// The action's id, also the `action_id` of its ledger entries.
    pub id: String,
    /// The identity that requested it.
    pub identity_id: String,
    /// The action type as the API spells it.
    pub action_type: String,
    /// The target's namespace; `None` when the action names none.
    pub namespace: Option<String>,
    /// The target's resource kind as the API spells it.
    pub resource_kind: String,
    /// The target object's name; `None` when the action names none (a list).
    pub resource_name: Option<String>,
    /// Stored as its spelling; a row holding anything else is an error, not a status nobody matches.
    #[sqlx(try_from = "String")]
    pub status: ActionStatus,
    /// The assessed risk level (`LOW`, `MEDIUM`, `HIGH`); `None` before it was assessed.
    pub risk: Option<String>,
    /// The policy decision as JSON text.
    pub decision: Option<String>,
    /// When the action was submitted (RFC 3339 UTC, microseconds).
    pub created_at: String,
    /// When the row last changed.
    pub updated_at: String,
    /// The newest ledger entry about this action, once one is written.
    pub last_entry_id: Option<String>,
    /// The request as sent (pending approval: to preview and execute it later).
    #[serde(skip)]
    pub request: Option<String>,
    /// The digest an approval must name (action + preview).
    pub approval_digest: Option<String>,
    /// How many approvals the action needs; `None` for an action never held for approval.
    pub approvals_required: Option<i64>,
    /// JSON array of the groups that must each give one of the approvals (two-person rules by group);
    /// `None` when the policy named none.
    pub approval_groups: Option<String>,
    /// When the approval window ends; a pending action not approved by then expires. `None` for an action
    /// never held for approval.
    pub expires_at: Option<String>,
    /// The configured cluster the action is for.
    pub cluster: Option<String>,
    /// The gateway instance running the action while it is RUNNING or EXECUTING (see `ownership`).
    pub owner: Option<String>,
    /// The client's `Idempotency-Key`: a retried submission with the same key gets this action back.
    pub idempotency_key: Option<String>,
}

/// One approver's decision on an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApprovalRow {
    /// The action decided on.
    pub action_id: String,
    /// The identity that decided.
    pub approver_id: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// The action's approval digest the decision names; a decision on an older digest no longer counts.
    pub digest: String,
    /// When the decision was made (RFC 3339 UTC, microseconds).
    pub created_at: String,
    /// The ledger entry that records the decision, when known (the gateway writes the row before the entry
    /// and leaves this `None`).
    pub entry_id: Option<String>,
}

/// Filters of the action list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    /// Only actions this identity requested.
    pub identity_id: Option<String>,
    /// Only actions in this status (as the database spells it).
    pub status: Option<String>,
    /// Only actions on this namespace.
    pub namespace: Option<String>,
    /// Only actions listed after this one (older, or as old with a smaller id): the next page.
    pub before: Option<String>,
    /// Most actions returned (1 to 1,000).
    pub limit: u32,
}

pub(crate) const ACTION_COLUMNS: &str = "id, identity_id, action_type, namespace, resource_kind, resource_name, status, risk, decision, created_at, updated_at, last_entry_id, request, approval_digest, approvals_required, expires_at, cluster, owner, idempotency_key, approval_groups";

impl Store {
    /// Inserts a new action. A second action of the same identity with the same idempotency key is
    /// `StorageError::Conflict`.
    pub async fn insert_action(&self, action: &ActionRow) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO actions ({ACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        );
        with_writer!(self, pool => sqlx::query(&sql)
            .bind(&action.id)
            .bind(&action.identity_id)
            .bind(&action.action_type)
            .bind(&action.namespace)
            .bind(&action.resource_kind)
            .bind(&action.resource_name)
            .bind(action.status.as_str())
            .bind(&action.risk)
            .bind(&action.decision)
            .bind(&action.created_at)
            .bind(&action.updated_at)
            .bind(&action.last_entry_id)
            .bind(&action.request)
            .bind(&action.approval_digest)
            .bind(action.approvals_required)
            .bind(&action.expires_at)
            .bind(&action.cluster)
            .bind(&action.owner)
            .bind(&action.idempotency_key)
            .bind(&action.approval_groups)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| conflict_or(e, "an action with this idempotency key exists".into()))?;
        Ok(())
    }

    /// Updates the mutable fields of an action (status, risk, decision, last entry).
    pub async fn update_action(&self, action: &ActionRow) -> Result<(), StorageError> {
        let sql = queries::UPDATE_ACTION;
        with_writer!(self, pool => sqlx::query(sql)
            .bind(&action.id)
            .bind(action.status.as_str())
            .bind(&action.risk)
            .bind(&action.decision)
            .bind(&action.updated_at)
            .bind(&action.last_entry_id)
            .bind(&action.request)
            .bind(&action.approval_digest)
            .bind(action.approvals_required)
            .bind(&action.expires_at)
            .bind(&action.approval_groups)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The action with this id.
    pub async fn action(&self, id: &str) -> Result<Option<ActionRow>, StorageError> {
        let sql = queries::action_by_id();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Newest first (at most `filter.limit`, 1 to 1000).
    pub async fn actions(&self, filter: &ActionFilter) -> Result<Vec<ActionRow>, StorageError> {
        let sql = queries::actions_list(filter);
        let params = action_params(filter);
        Ok(with_pool!(self, pool => bind_all!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?)
    }

    /// Pending actions whose approval window ended by `now`, oldest first (at most `limit`).
    pub async fn due_approvals(&self, now: &str, limit: u32) -> Result<Vec<ActionRow>, StorageError> {
        let sql = queries::due_approvals();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(now).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    /// Whether an identity row exists, recorded or not (a sign-in may be recording it right now).
    pub async fn identity_row_exists(&self, id: &str) -> Result<bool, StorageError> {
        let found: Option<(String,)> = with_pool!(self, pool => sqlx::query_as("SELECT id FROM identities WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(found.is_some())
    }

    /// Moves an action from `from` to `to` status; true only for the one caller that made the move (this is
    /// how exactly one gateway replica executes an approved action).
    pub async fn claim_action(
        &self,
        id: &str,
        from: ActionStatus,
        to: ActionStatus,
        at: &str,
    ) -> Result<bool, StorageError> {
        let sql = queries::CLAIM_ACTION;
        let changed = with_writer!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Claims a pending action for execution by gateway instance `owner` if its approval window has not
    /// passed at `now`.
    pub async fn claim_for_execution(&self, id: &str, now: &str, owner: &str) -> Result<bool, StorageError> {
        let sql = queries::CLAIM_FOR_EXECUTION;
        let changed = with_writer!(self, pool => sqlx::query(sql).bind(id).bind(now).bind(owner).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Replaces the digest of a still-pending action whose target changed; false if it is no longer pending
    /// with `old_digest` (another gateway moved it on). Approvals of the old digest no longer apply and are
    /// dropped (the ledger keeps them), so their approvers can approve the new digest.
    pub async fn renew_approval_request(
        &self,
        id: &str,
        old_digest: &str,
        new_digest: &str,
        expires_at: &str,
        now: &str,
    ) -> Result<bool, StorageError> {
        let sql = queries::RENEW_APPROVAL;
        let drop_old = "DELETE FROM approvals WHERE action_id = $1 AND digest = $2";
        let changed = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sql)
                .bind(id)
                .bind(old_digest)
                .bind(new_digest)
                .bind(expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                sqlx::query(drop_old).bind(id).bind(old_digest).execute(&mut *tx).await?;
            }
            tx.commit().await.map(|_| changed)
        }.await)?;
        Ok(changed == 1)
    }

    /// Records an approver's decision; a second one by the same approver is `Conflict`.
    pub async fn insert_approval(&self, approval: &ApprovalRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO approvals (action_id, approver_id, decision, digest, created_at, entry_id) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let result = with_writer!(self, pool => sqlx::query(sql)
            .bind(&approval.action_id)
            .bind(&approval.approver_id)
            .bind(&approval.decision)
            .bind(&approval.digest)
            .bind(&approval.created_at)
            .bind(&approval.entry_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        result
            .map(|_| ())
            .map_err(|e| conflict_or(e, "this approver has already decided on this action".into()))
    }

    /// Takes back an approval whose ledger entry could not be written, so the approver can try again.
    pub async fn remove_approval(&self, action_id: &str, approver_id: &str, digest: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM approvals WHERE action_id = $1 AND approver_id = $2 AND digest = $3";
        with_writer!(self, pool => sqlx::query(sql)
            .bind(action_id)
            .bind(approver_id)
            .bind(digest)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The approvals of an action that name `digest`.
    pub async fn approvals_of(&self, action_id: &str, digest: &str) -> Result<Vec<ApprovalRow>, StorageError> {
        let sql = queries::APPROVALS_OF;
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(action_id).bind(digest).fetch_all(pool).await)?)
    }

    /// How many actions `identity_id` asked for since `since` that are now `status` (circuit breakers).
    pub async fn count_recent_actions(
        &self,
        identity_id: &str,
        status: ActionStatus,
        since: &str,
    ) -> Result<i64, StorageError> {
        let sql = crate::queries::RECENT_ACTIONS_WITH_STATUS;
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(identity_id)
            .bind(since)
            .bind(status.as_str())
            .fetch_one(pool)
            .await)?)
    }

    /// Every ledger entry that belongs to an action, in chain order.
    pub async fn entries_of_action(&self, action_id: &str) -> Result<Vec<Entry>, StorageError> {
        let sql = queries::entries_of_action();
        let rows: Vec<EntryRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(action_id).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }
}
