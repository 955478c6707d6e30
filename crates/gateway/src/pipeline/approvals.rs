//! Approvals: the queue of waiting actions, their expiry, and an approver's verdict carried through to
//! execution.

use super::*;
use domain::payload;
use domain::{ActionStatus, FreezeTarget, IdentityKind};

/// What an approval still holds after the target was read again.
struct Reconfirmed {
    executor: Arc<dyn Cluster>,
    context: CallContext,
    preview: executor::Preview,
}

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// One approval of the action as previewed; it runs once enough approvals name its current digest.
    Approve,
    /// Refuse it: the action ends `REJECTED` and never runs.
    Reject,
}

impl Verdict {
    /// `approve` or `reject`, as the routes spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

impl Pipeline {
    /// Actions waiting for an approval (approvers and auditors), oldest first; expired ones are marked so.
    pub async fn pending_approvals(&self, caller: &Caller) -> Result<Value, GatewayError> {
        if !caller.identity.has_role(Role::Approver) && !caller.identity.has_role(Role::Auditor) {
            caller.require(Role::Approver)?;
        }
        let filter = ActionFilter {
            before: None,
            status: Some(ActionStatus::PendingApproval.as_str().into()),
            limit: 1000,
            ..ActionFilter::default()
        };
        let mut pending = Vec::new();
        for row in self.parts.store.actions(&filter).await?.into_iter().rev() {
            if self.expire_if_due(&row).await? {
                continue;
            }
            let groups: Vec<String> = row
                .approval_groups
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            pending.push(json!({"action": action_view(&row), "digest": row.approval_digest,
                                "approvals_required": row.approvals_required, "approval_groups": groups,
                                "expires_at": row.expires_at}));
        }
        Ok(json!({"approvals": pending}))
    }

    /// Marks every pending action whose window has passed EXPIRED; returns how many. The server runs this
    /// periodically, so an action expires on time even when nobody looks at it.
    pub async fn expire_due_approvals(&self) -> Result<usize, GatewayError> {
        let mut expired = 0;
        for row in self.parts.store.due_approvals(&now(), 1000).await? {
            if self.expire_if_due(&row).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Marks a pending action EXPIRED (with an `approval.expired` entry) once its window has passed.
    pub(super) async fn expire_if_due(&self, row: &ActionRow) -> Result<bool, GatewayError> {
        let due = row.expires_at.as_deref().is_some_and(|at| at <= now().as_str());
        if !due
            || !self
                .parts
                .store
                .claim_action(&row.id, ActionStatus::PendingApproval, ActionStatus::Expired, &now())
                .await?
        {
            return Ok(false);
        }
        let mut trail = Trail {
            action_id: row.id.clone(),
            cluster: row.cluster.clone(),
            entries: Vec::new(),
        };
        self.record(
            &mut trail,
            "system",
            &payload::ApprovalExpired {
                expires_at: row.expires_at.clone(),
            },
        )
        .await?;
        self.parts.metrics.action_resolved(ActionStatus::Expired.as_str());
        let mut row = row.clone();
        row.status = ActionStatus::Expired;
        row.request = None;
        row.updated_at = now();
        row.last_entry_id = trail.entries.last().map(|e| e.id.clone());
        self.parts.store.update_action(&row).await?;
        Ok(true)
    }

    /// Records a refused approval attempt and returns the error for the caller.
    pub(super) async fn refuse(&self, trail: &mut Trail, caller: &Caller, error: GatewayError) -> GatewayError {
        let refused = payload::ApprovalRefused {
            approver: caller.identity.id.clone(),
            reason: error.to_string(),
        };
        match self.record(trail, caller.actor(), &refused).await {
            Ok(()) => error,
            Err(record_error) => record_error,
        }
    }

    /// An approver approves or rejects a pending action. Approval checks, in order: the approver role, the
    /// action is pending and not expired, the approver is not the requester nor anyone the requester could act
    /// as (`duties`), has not decided already, and the action and its target are still what was previewed
    /// (else a fresh approval is requested). Once enough approvals name the current digest, exactly one
    /// gateway replica executes the action, in a task of the gateway (a caller that hangs up stops nothing).
    pub async fn decide_approval(
        self: &Arc<Self>,
        caller: &Caller,
        action_id: &str,
        verdict: Verdict,
        comment: Option<String>,
        digest_named: Option<String>,
    ) -> Result<ActionResponse, GatewayError> {
        let (this, caller, action_id) = (self.clone(), caller.clone(), action_id.to_owned());
        // The approver's span (a child of their request): an approval that completes the action executes and
        // verifies it here, so those steps and their commits land in the approver's trace.
        let span = tracing::info_span!(
            "approval",
            action.id = action_id.as_str(),
            approval.verdict = verdict.as_str(),
            identity.id = caller.identity.id.as_str(),
        );
        self.owner
            .run(
                async move {
                    this.decide_approval_here(&caller, &action_id, verdict, comment, digest_named)
                        .await
                }
                .instrument(span),
            )
            .await
    }

    pub(super) async fn decide_approval_here(
        &self,
        caller: &Caller,
        action_id: &str,
        verdict: Verdict,
        comment: Option<String>,
        digest_named: Option<String>,
    ) -> Result<ActionResponse, GatewayError> {
        let not_approver = !caller.identity.has_role(Role::Approver);
        let row = match self.parts.store.action(action_id).await? {
            Some(row) => row,
            None if not_approver => {
                return Err(GatewayError::Forbidden(format!(
                    "{} is not an approver",
                    caller.identity.name
                )));
            }
            None => return Err(GatewayError::NotFound(format!("no action {action_id:?}"))),
        };
        let mut trail = Trail {
            action_id: row.id.clone(),
            cluster: row.cluster.clone(),
            entries: self.parts.store.entries_of_action(&row.id).await?,
        };
        let digest = self.check_decider(caller, &row, &mut trail, not_approver).await?;
        if verdict == Verdict::Reject {
            return self.reject(caller, &row, &mut trail, comment, digest).await;
        }
        let confirmed = self
            .reconfirm(caller, &row, &mut trail, &digest, digest_named.as_deref())
            .await?;
        // A frozen action cannot be approved into execution: the approval is refused (recorded) and the
        // action keeps waiting, to be approved once the freeze is lifted (or to expire).
        let target = FreezeTarget {
            cluster: confirmed.executor.name(),
            namespace: row.namespace.as_deref(),
            identity_id: &row.identity_id,
            identity_kind: IdentityKind::of_id(&row.identity_id),
        };
        if let Some(freeze) = self.freeze_covering(&target).await? {
            let error = GatewayError::Conflict(format!("{action_id} cannot be approved now: {}", freeze.refusal()));
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        let granted = self.grant(caller, &row, &mut trail, comment, &digest).await?;
        let risk = row.risk.clone().unwrap_or_default();
        let decision = DecisionView {
            outcome: "require_approval".into(),
            mode: self.parts.mode.as_str().into(),
            policy: String::new(),
            reasons: vec![granted.summary(&caller.identity.name)],
        };
        if !granted.complete {
            return self.respond(
                &trail,
                ActionStatus::PendingApproval,
                Some(risk),
                Some(decision),
                None,
                None,
            );
        }
        self.execute_approved(caller, &row, trail, confirmed, risk, decision)
            .await
    }

    /// Executes an action whose approvals are complete: exactly once, whatever the number of gateways (only
    /// the one that moves the status executes; a task of this process may already hold it).
    async fn execute_approved(
        &self,
        caller: &Caller,
        row: &ActionRow,
        mut trail: Trail,
        confirmed: Reconfirmed,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        let running = self.hold_soon(&row.id).await;
        let claimed = match running {
            Some(_) => {
                self.parts
                    .store
                    .claim_for_execution(&row.id, &now(), self.owner.instance())
                    .await?
            }
            None => false,
        };
        let (true, Some(running)) = (claimed, running) else {
            let current = self.parts.store.action(&row.id).await?.map_or(row.status, |r| r.status);
            return self.respond(&trail, current, Some(risk), Some(decision), None, None);
        };
        let Reconfirmed {
            executor,
            context,
            preview,
        } = confirmed;
        let owned = match self.store_intent(&row.id, &preview).await {
            Ok(owned) => owned,
            Err(error) => return Err(self.interrupted(&row.id, running, error)),
        };
        let executed = self
            .execute_and_verify(
                &*executor,
                &context,
                &preview,
                owned,
                &mut trail,
                caller.actor(),
                risk,
                decision,
            )
            .await;
        let response = match executed {
            Ok(response) => response,
            Err(error) => return Err(self.interrupted(&row.id, running, error)),
        };
        if let Err(error) = self.finish(row, response.status, &trail).await {
            return Err(self.interrupted(&row.id, running, error));
        }
        drop(running);
        Ok(response)
    }

    /// Whether `caller` may decide on this action now; every refusal is recorded. Returns the digest the
    /// action waits for.
    async fn check_decider(
        &self,
        caller: &Caller,
        row: &ActionRow,
        trail: &mut Trail,
        not_approver: bool,
    ) -> Result<String, GatewayError> {
        let action_id = row.id.as_str();
        if not_approver {
            let error = GatewayError::Forbidden(format!("{} is not an approver", caller.identity.name));
            return Err(self.refuse(trail, caller, error).await);
        }
        if self.expire_if_due(row).await? {
            let error = GatewayError::Conflict(format!("the approval window of {action_id} has passed; it is EXPIRED"));
            return Err(self.refuse(trail, caller, error).await);
        }
        if row.status != ActionStatus::PendingApproval {
            let error = GatewayError::Conflict(format!("{action_id} is {}, not waiting for an approval", row.status));
            return Err(self.refuse(trail, caller, error).await);
        }
        if row.identity_id == caller.identity.id {
            let error = GatewayError::Forbidden("an identity cannot approve or reject its own action".into());
            return Err(self.refuse(trail, caller, error).await);
        }
        // Separation of duties (crate::duties): the requester must not be able to act as this approver.
        if let Some(why) = crate::duties::could_act_as(&self.parts.store, &row.identity_id, &caller.identity.id).await?
        {
            let error = GatewayError::Forbidden(format!(
                "separation of duties: {} cannot decide on {action_id}, its requester could act as it: {why}",
                caller.identity.name
            ));
            return Err(self.refuse(trail, caller, error).await);
        }
        let digest = row.approval_digest.clone().unwrap_or_default();
        if self
            .parts
            .store
            .approvals_of(&row.id, &digest)
            .await?
            .iter()
            .any(|a| a.approver_id == caller.identity.id)
        {
            let error = GatewayError::Conflict(format!("{} has already decided on {action_id}", caller.identity.name));
            return Err(self.refuse(trail, caller, error).await);
        }
        Ok(digest)
    }

    /// An approver's rejection: the action ends REJECTED (only if it still waits).
    async fn reject(
        &self,
        caller: &Caller,
        row: &ActionRow,
        trail: &mut Trail,
        comment: Option<String>,
        digest: String,
    ) -> Result<ActionResponse, GatewayError> {
        let action_id = row.id.as_str();
        if !self
            .parts
            .store
            .claim_action(&row.id, ActionStatus::PendingApproval, ActionStatus::Rejected, &now())
            .await?
        {
            return Err(GatewayError::Conflict(format!(
                "{action_id} is no longer waiting for an approval"
            )));
        }
        self.record(
            trail,
            caller.actor(),
            &payload::ApprovalDenied {
                approver: caller.identity.id.clone(),
                comment,
                digest,
            },
        )
        .await?;
        self.finish(row, ActionStatus::Rejected, trail).await?;
        self.respond(trail, ActionStatus::Rejected, row.risk.clone(), None, None, None)
    }

    /// The action and its target must still be what was previewed when the approval was requested;
    /// otherwise a fresh approval is requested and this one refused. (In traces: the approval's `preview`.)
    #[tracing::instrument(name = "preview", skip_all, fields(action.id = row.id.as_str()))]
    async fn reconfirm(
        &self,
        caller: &Caller,
        row: &ActionRow,
        trail: &mut Trail,
        digest: &str,
        digest_named: Option<&str>,
    ) -> Result<Reconfirmed, GatewayError> {
        let action_id = row.id.as_str();
        let executor = match self.parts.clusters.resolve(row.cluster.as_deref()) {
            Ok(executor) => executor,
            Err(Err(unavailable)) => return Err(unavailable),
            Err(Ok(message)) => {
                let error = GatewayError::Conflict(format!("{action_id} cannot run here: {message}"));
                return Err(self.refuse(trail, caller, error).await);
            }
        };
        let request: ActionRequest = serde_json::from_str(row.request.as_deref().unwrap_or("null")).map_err(|e| {
            GatewayError::Conflict(format!("{action_id} cannot be executed: its request is gone ({e})"))
        })?;
        let action = Action::from_request(&request).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        let requester = crate::Directory::new(self.parts.store.clone(), self.parts.ledger.clone())
            .get(&row.identity_id)
            .await?;
        if requester.status != crate::IdentityStatus::Active {
            let error = GatewayError::Conflict(format!(
                "the requester {} is {}; its actions no longer run",
                requester.name,
                requester.status.as_str()
            ));
            return Err(self.refuse(trail, caller, error).await);
        }
        let context = CallContext {
            identity: requester.id.clone(),
            action_id: row.id.clone(),
            audit_id: trail.entries.first().map(|e| e.id.clone()).unwrap_or_default(),
        };
        let preview = match executor.preview(&context, &action, &requester.scopes).await {
            Ok(preview) => preview,
            Err(error) => {
                let error = GatewayError::Conflict(format!("the target cannot be previewed again: {error}"));
                return Err(self.refuse(trail, caller, error).await);
            }
        };
        let current = approval_digest(executor.name(), &action, &preview.diff, preview.live.as_ref());
        if current != digest {
            let expires_at = crate::now_plus(self.parts.approval_window);
            // Only while the action is still pending with the old digest (another gateway may have moved on).
            if !self
                .parts
                .store
                .renew_approval_request(&row.id, digest, &current, &expires_at, &now())
                .await?
            {
                return Err(GatewayError::Conflict(format!(
                    "{action_id} is no longer waiting for this approval"
                )));
            }
            let error = GatewayError::Conflict(format!(
                "{action_id} or its target changed since the approval was requested; a fresh approval is requested"
            ));
            let error = self.refuse(trail, caller, error).await;
            self.record(
                trail,
                "system",
                &payload::ApprovalRequested {
                    digest: current,
                    approvals_required: row.approvals_required,
                    approval_groups: row
                        .approval_groups
                        .as_deref()
                        .and_then(|text| serde_json::from_str(text).ok())
                        .unwrap_or_default(),
                    expires_at,
                    diff: json!(preview.diff),
                    replaces: Some(digest.to_owned()),
                },
            )
            .await?;
            return Err(error);
        }
        if let Some(named) = digest_named
            && named != digest
        {
            let error = GatewayError::Conflict(format!(
                "the approval names digest {named}, but {action_id} now waits for an approval of {digest}"
            ));
            return Err(self.refuse(trail, caller, error).await);
        }

        Ok(Reconfirmed {
            executor,
            context,
            preview,
        })
    }

    /// Holds the action as running here; the submitting task may still hold it for a moment after it
    /// stored PENDING_APPROVAL. `None` if it stays held (then it is being executed here).
    pub(super) async fn hold_soon(&self, action_id: &str) -> Option<crate::ownership::Running> {
        for _ in 0..50 {
            if let Some(running) = self.owner.try_hold(action_id) {
                return Some(running);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }

    /// The final status of an action that waited, and its request forgotten.
    pub(crate) async fn finish(
        &self,
        row: &ActionRow,
        status: ActionStatus,
        trail: &Trail,
    ) -> Result<(), GatewayError> {
        self.parts.metrics.action_resolved(status.as_str());
        let mut row = row.clone();
        row.status = status;
        row.request = None;
        row.updated_at = now();
        row.last_entry_id = trail.entries.last().map(|e| e.id.clone());
        self.parts.store.update_action(&row).await?;
        Ok(())
    }
}

/// What an approval approves: the cluster, the exact action and the preview (diff and the live object's identity), as
/// `sha256:<hex>` of its JSON (serde_json sorts object keys, so the text is deterministic).
pub(super) fn approval_digest(
    cluster: &str,
    action: &Action,
    diff: &[executor::diff::Change],
    live: Option<&executor::executor::LiveObject>,
) -> String {
    let document = json!({"cluster": cluster, "action": action, "diff": diff, "live": live});
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(document.to_string().as_bytes()))
    )
}

/// The entry's signature checked against the gateway's public key, now.
pub(super) fn signature_verifies(key: &LedgerPublicKey, entry: &Entry) -> bool {
    let Ok(chain_hash) = Digest::from_str(&entry.chain_hash) else {
        return false;
    };
    let Some(signature) = ledger_core::keys::signature_from_hex(&entry.signature) else {
        return false;
    };
    key.verify(&chain_hash, &signature)
}
