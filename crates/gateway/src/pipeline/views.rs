//! What callers see of actions: the answer to a submission, one action with its entries, and pages of actions.

use domain::ActionStatus;

use super::*;

impl Pipeline {
    pub(crate) fn respond(
        &self,
        trail: &Trail,
        status: ActionStatus,
        risk: Option<String>,
        decision: Option<DecisionView>,
        result: Option<Value>,
        error: Option<Value>,
    ) -> Result<ActionResponse, GatewayError> {
        let last = trail
            .entries
            .last()
            .expect("the first entry is written before any response");
        Ok(ActionResponse {
            action_id: trail.action_id.clone(),
            status,
            risk,
            decision,
            ledger_entry_id: last.id.clone(),
            event_hash: last.event_hash.clone(),
            chain_hash: last.chain_hash.clone(),
            signature_verified: signature_verifies(&self.parts.signing_key, last),
            entries: trail.entries.iter().map(|e| e.id.clone()).collect(),
            receipt_url: crate::transparency::receipt_url(&last.id),
            result,
            error,
        })
    }

    /// An action, its status and every ledger entry that belongs to it.
    /// With `wait`, answers as soon as the action has a final status, or when `wait` has passed (a long
    /// poll: a requester waiting for an approval and its execution needs no loop of its own).
    pub async fn get(
        &self,
        caller: &Caller,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Value, GatewayError> {
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        let row = loop {
            let row = self
                .parts
                .store
                .action(id)
                .await?
                .ok_or_else(|| GatewayError::NotFound(format!("no action {id:?}")))?;
            // Auditors see every action; operators their own.
            if !caller.identity.has_role(Role::Auditor) && row.identity_id != caller.identity.id {
                return Err(GatewayError::NotFound(format!("no action {id:?}")));
            }
            let waiting = row.status.is_waiting();
            match deadline {
                Some(deadline) if waiting && std::time::Instant::now() < deadline => {
                    // Also marks an action whose approval window passed meanwhile.
                    if !self.expire_if_due(&row).await? {
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                }
                _ => break row,
            }
        };
        let entries = self.parts.store.entries_of_action(id).await?;
        Ok(json!({"action": action_view(&row), "entries": entries}))
    }

    /// A page of actions matching `filter`, newest first, with the cursor of the next page (`next_before`,
    /// null on the last). Auditors see every action; anyone else only their own.
    pub async fn list(&self, caller: &Caller, filter: ActionFilter) -> Result<Value, GatewayError> {
        let (rows, next_before) = self.list_rows(caller, filter).await?;
        Ok(json!({"actions": rows.iter().map(action_view).collect::<Vec<_>>(), "next_before": next_before}))
    }

    /// What [`Pipeline::list`] answers, as rows: a page of actions matching `filter`, newest first, and the
    /// id to pass as `before` for the next page (`None` on the last). Auditors see every action; anyone
    /// else only their own (whatever `filter.identity_id` says).
    pub async fn list_rows(
        &self,
        caller: &Caller,
        mut filter: ActionFilter,
    ) -> Result<(Vec<ActionRow>, Option<String>), GatewayError> {
        if !caller.identity.has_role(Role::Auditor) {
            filter.identity_id = Some(caller.identity.id.clone());
        }
        if let Some(before) = &filter.before {
            // A cursor the caller could not have been given is not found (as the action itself would not be),
            // rather than answered with an empty page.
            let visible =
                self.parts.store.action(before).await?.is_some_and(|row| {
                    caller.identity.has_role(Role::Auditor) || row.identity_id == caller.identity.id
                });
            if !visible {
                return Err(GatewayError::NotFound(format!("before: no action {before:?}")));
            }
        }
        let rows = self.parts.store.actions(&filter).await?;
        let next_before = (rows.len() == filter.limit as usize)
            .then(|| rows.last().map(|row| row.id.clone()))
            .flatten();
        Ok((rows, next_before))
    }
}

pub(super) fn action_view(row: &ActionRow) -> Value {
    json!({"action_id": row.id, "cluster": row.cluster, "identity_id": row.identity_id, "action_type": row.action_type,
           "namespace": row.namespace, "resource_kind": row.resource_kind, "resource_name": row.resource_name,
           "status": row.status, "risk": row.risk,
           "decision": row.decision.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
           "created_at": row.created_at, "updated_at": row.updated_at, "last_entry_id": row.last_entry_id})
}
