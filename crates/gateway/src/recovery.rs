//! Recovery of interrupted actions: every action left `RUNNING` or `EXECUTING` by a task that stopped
//! (crash, kill -9, a database error mid-way) is resolved and recorded, never left hanging.
//!
//! An action's entries say how far it got. If they already end it (a verified outcome, a denial), only its
//! row is brought in line. Otherwise the stored intent says whether a change may have been sent: without
//! one, nothing was, and the action fails as interrupted; with one, the object is read and judged
//! (`executor::inspect`): applied → `action.executed` and `outcome.verified` with `recovered: true` and the
//! evidence; not applied or unknown → `action.failed` with the reason.

use domain::payload::{ActionFailed, ErrorReport, Payload, Recovered};
use domain::{ActionStatus, ActionType, EntryKind};
use std::time::Duration;

use executor::inspect::{self, Effect, Intent};
use executor::{Action, ActionRequest, CallContext};
use ledger_core::Entry;
use serde_json::{Value, json};
use storage::ActionRow;

use crate::idempotency::payload;
use crate::payloads::{RecoveredExecuted, RecoveredVerification};
use crate::pipeline::{Pipeline, Trail};
use crate::{GatewayError, now, now_minus};

/// Actions without an owner were written by a release that did not record owners; one may still be
/// running them during a rolling upgrade, so they are left alone this long.
const OWNERLESS_GRACE: Duration = Duration::from_secs(15 * 60);
/// Instances that have not heartbeated for this long are removed from the table.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Actions resolved per pass.
const BATCH: u32 = 100;

impl Pipeline {
    /// Refreshes this instance's heartbeat (its unfinished actions stay its own).
    pub async fn heartbeat(&self) -> Result<(), GatewayError> {
        self.parts.store.heartbeat(self.owner.instance(), &now()).await?;
        self.owner.heartbeat_stored();
        // Instances gone for long are only clutter (their actions count as orphans without a row too).
        let long_gone = now_minus(FORGET_AFTER.max(self.owner.lease() * 10));
        self.parts.store.forget_instances(&long_gone).await?;
        Ok(())
    }

    /// One recovery pass over unfinished actions nobody runs; returns how many were resolved. Actions whose
    /// cluster cannot be read now are left for a later pass.
    pub async fn recover_interrupted(&self) -> Result<usize, GatewayError> {
        // Neither may keep interrupted actions from being recovered: failures are logged and retried next pass.
        if let Err(error) = self.record_unrecorded_freezes().await {
            tracing::warn!(%error, "cannot record freezes left unrecorded yet");
        }
        if let Err(error) = self.prune_budget_usage().await {
            tracing::warn!(%error, "cannot prune budget usage");
        }
        let instance = self.owner.instance().to_owned();
        let alive_since = now_minus(self.owner.lease());
        let rows = self
            .parts
            .store
            .unfinished_actions(&instance, &alive_since, &now_minus(OWNERLESS_GRACE), BATCH)
            .await?;
        let mut resolved = 0;
        for row in rows {
            // This process's own actions are orphans only once no task holds them.
            let Some(running) = self.owner.try_hold(&row.id) else {
                continue;
            };
            if !self
                .parts
                .store
                .take_over_action(&row.id, row.owner.as_deref(), &instance, &now())
                .await?
            {
                continue;
            }
            match self.recover(&row).await {
                Ok(status) => {
                    resolved += 1;
                    tracing::warn!(action = %row.id, previous_owner = ?row.owner, %status, "recovered an interrupted action");
                }
                Err(error) => tracing::warn!(action = %row.id, %error, "cannot recover an interrupted action yet"),
            }
            drop(running);
        }
        Ok(resolved)
    }

    async fn recover(&self, row: &ActionRow) -> Result<ActionStatus, GatewayError> {
        let mut trail = Trail {
            action_id: row.id.clone(),
            cluster: row.cluster.clone(),
            entries: self.parts.store.entries_of_action(&row.id).await?,
        };
        let status = match settled_status(row, &trail.entries) {
            Some(status) => status,
            None => self.resolve(row, &mut trail).await?,
        };
        self.parts.metrics.action_resolved(status.as_str());
        self.finish(row, status, &trail).await?;
        Ok(status)
    }

    /// Records how an action that may have sent a change ended, judged from the cluster.
    async fn resolve(&self, row: &ActionRow, trail: &mut Trail) -> Result<ActionStatus, GatewayError> {
        let recovered_by = self.owner.instance().to_owned();
        // The intent is stored beside the decision's commit, and the change is sent only after both are
        // durable: without a recorded `policy.decided` nothing was sent, whatever the intent says.
        let decided = trail.entries.iter().any(|e| e.kind == EntryKind::PolicyDecided);
        let intent = match decided {
            true => self.parts.store.intent(&row.id).await?,
            false => None,
        };
        let Some(intent_text) = intent else {
            let reason = if trail.entries.iter().any(|e| e.kind == EntryKind::ApprovalRequested)
                && row.status == ActionStatus::Running
            {
                "the gateway stopped while requesting an approval; nothing was sent to the cluster: submit it again"
            } else {
                "the gateway stopped before sending the change; nothing was sent to the cluster"
            };
            let failed = recovered_failure(&recovered_by, "interrupted", ErrorReport::new("interrupted", reason));
            self.record(trail, "system", &failed).await?;
            return Ok(ActionStatus::Failed);
        };
        // What can never be judged is recorded as unknown rather than retried forever; an unreachable
        // cluster is retried (the next pass).
        let intent =
            serde_json::from_str::<Intent>(&intent_text).map_err(|e| format!("the stored intent cannot be read: {e}"));
        let executor = match self.parts.clusters.resolve(row.cluster.as_deref()) {
            Ok(executor) => Ok(executor),
            Err(Err(unavailable)) => return Err(unavailable),
            Err(Ok(message)) => Err(format!("the action's cluster is no longer configured: {message}")),
        };
        let (intent, executor, action) = match (intent, executor, requested_action(&trail.entries)) {
            (Ok(intent), Ok(executor), Ok(action)) => (intent, executor, action),
            (Err(why), ..) | (_, Err(why), _) | (.., Err(why)) => {
                let failed = recovered_failure(&recovered_by, "execute", ErrorReport::new("outcome_unknown", why));
                self.record(trail, "system", &failed).await?;
                return Ok(ActionStatus::Failed);
            }
        };
        let context = CallContext {
            identity: row.identity_id.clone(),
            action_id: row.id.clone(),
            audit_id: trail.entries.first().map(|e| e.id.clone()).unwrap_or_default(),
        };
        let inspection = executor
            .inspect(&context, &action, &intent)
            .await
            .map_err(|e| GatewayError::Unavailable(format!("cannot read the object back: {e}")))?;
        let evidence = inspect::evidence(&inspection, &intent);
        let executed = trail.entries.iter().any(|e| e.kind == EntryKind::ActionExecuted);
        let observed_rv = inspection.observed.as_ref().map(|o| o.resource_version.clone());
        let verified = |passed: bool| RecoveredVerification {
            passed,
            recovered: Recovered::by(&recovered_by),
            checks: &inspection.checks,
            observed_resource_version: observed_rv.clone(),
            reason: &inspection.reason,
        };
        if inspection.effect == Effect::Applied {
            let mut events = Vec::new();
            if !executed {
                let execution =
                    json!({"executor_account": intent_text_account(&intent_text), "resource_version": observed_rv});
                let executed = RecoveredExecuted {
                    recovered: Recovered::by(&recovered_by),
                    execution,
                    evidence,
                };
                events.push(executed.kind_and_value());
            }
            events.push(verified(true).kind_and_value());
            self.record_all(trail, "system", events).await?;
            return Ok(ActionStatus::Completed);
        }
        if executed {
            self.record(trail, "system", &verified(false)).await?;
            return Ok(ActionStatus::Failed);
        }
        let code = if inspection.effect == Effect::NotApplied {
            "interrupted"
        } else {
            "outcome_unknown"
        };
        let failed = ActionFailed {
            evidence: Some(evidence),
            ..recovered_failure(&recovered_by, "execute", ErrorReport::new(code, &inspection.reason))
        };
        self.record(trail, "system", &failed).await?;
        Ok(ActionStatus::Failed)
    }
}

/// `action.failed` written by recovery.
fn recovered_failure(recovered_by: &str, stage: &str, error: ErrorReport) -> ActionFailed {
    ActionFailed {
        recovered: Some(Recovered::by(recovered_by)),
        ..ActionFailed::at(stage, error)
    }
}

/// The final status the entries already record, if they end the action.
fn settled_status(row: &ActionRow, entries: &[Entry]) -> Option<ActionStatus> {
    for entry in entries.iter().rev() {
        let payload = payload(entry);
        let Some(kind) = EntryKind::parse(&entry.kind) else {
            continue;
        };
        let reads = ActionType::parse(&row.action_type).is_some_and(|t| !t.is_mutation());
        let status = match kind {
            EntryKind::OutcomeVerified if payload["passed"] == json!(true) => ActionStatus::Completed,
            EntryKind::OutcomeVerified => ActionStatus::Failed,
            // A timed-out call may have taken effect: look at the cluster.
            EntryKind::ActionFailed if payload["error"]["code"] == json!("timeout") => return None,
            EntryKind::ActionFailed => ActionStatus::Failed,
            EntryKind::ActionExecuted if reads => ActionStatus::Completed,
            EntryKind::ActionPreviewed => ActionStatus::Previewed,
            EntryKind::GuardrailDenied | EntryKind::FreezeRefused | EntryKind::BudgetExceeded => ActionStatus::Denied,
            EntryKind::ApprovalDenied => ActionStatus::Rejected,
            EntryKind::ApprovalExpired => ActionStatus::Expired,
            EntryKind::PolicyDecided if denied_in_enforce(&payload) => ActionStatus::Denied,
            EntryKind::PolicyDecided => return None,
            _ => continue,
        };
        return Some(status);
    }
    None
}

fn denied_in_enforce(decided: &Value) -> bool {
    decided["mode"] == json!("enforce") && decided["outcome"] == json!("deny")
}

/// The action as requested (its recorded request; Secret values there are redacted, which judging an
/// effect does not need).
fn requested_action(entries: &[Entry]) -> Result<Action, String> {
    let requested = entries
        .iter()
        .find(|e| e.kind == EntryKind::ActionRequested)
        .map(payload)
        .ok_or("the action has no action.requested entry")?;
    let request: ActionRequest = serde_json::from_value(requested["request"].clone())
        .map_err(|e| format!("the recorded request cannot be read: {e}"))?;
    Action::from_request(&request).map_err(|e| format!("the recorded request: {e}"))
}

fn intent_text_account(intent_text: &str) -> Value {
    serde_json::from_str::<Value>(intent_text).map_or(Value::Null, |v| v["executor_account"].clone())
}
