//! Executing a decided change and verifying its outcome: intent stored before effect, the change sent only
//! while this gateway owns the action and no freeze covers it, and each result a ledger entry.

use super::*;
use crate::payloads::ChangeExecuted;
use domain::{ActionStatus, FreezeTarget, IdentityKind};

impl Pipeline {
    /// Intent before effect: what is about to be sent, stored before it is sent, so that recovery can tell
    /// whether it took effect if this task never learns the answer. False if this gateway no longer owns
    /// the action.
    pub(super) async fn store_intent(
        &self,
        action_id: &str,
        preview: &executor::Preview,
    ) -> Result<bool, GatewayError> {
        let intent = serde_json::to_string(preview).expect("a preview serializes");
        Ok(self
            .parts
            .store
            .record_intent(action_id, self.owner.instance(), &intent)
            .await?)
    }

    /// The change and its verification, each a ledger entry; `owned` is what [`Pipeline::store_intent`]
    /// answered. When the change's answer settles the verification (no read-back needed), both entries are
    /// one commit.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn execute_and_verify(
        &self,
        executor: &dyn Cluster,
        context: &CallContext,
        preview: &executor::Preview,
        owned: bool,
        trail: &mut Trail,
        actor: &str,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        // A gateway whose heartbeats lapsed may have lost the action to another one: it must not send.
        if !owned || !self.owner.lease_is_fresh() {
            return Err(GatewayError::Stopped(format!(
                "{}: this gateway's lease lapsed before the change was sent; nothing was sent",
                trail.action_id
            )));
        }
        // A freeze made since the decision (on any gateway) still stops the change: nothing is sent.
        let target = FreezeTarget {
            cluster: executor.name(),
            namespace: preview.shown_action.namespace.as_deref(),
            identity_id: &context.identity,
            identity_kind: IdentityKind::of_id(&context.identity),
        };
        if let Some(freeze) = self.freeze_covering(&target).await? {
            return self.deny_by_freeze(trail, actor, &freeze, "execute").await;
        }
        let executed = executor
            .execute(context, preview)
            .instrument(step_span!("execute", trail.action_id));
        match executed.await {
            Ok(execution) => {
                let executed = ChangeExecuted {
                    execution: &execution,
                    request: &preview.request,
                    diff: &preview.diff,
                };
                match executor.verify_from_answer(preview, &execution) {
                    Some(verification) => {
                        // Settled by the change's answer, without a read-back: the step's span is an instant.
                        let action_id = trail.action_id.as_str();
                        tracing::info_span!("verify", action.id = action_id, verify.from_answer = true).in_scope(|| {});
                        let events = vec![executed.kind_and_value(), verification.kind_and_value()];
                        self.record_all(trail, actor, events).await?;
                        return self.verified(trail, &verification, risk, decision);
                    }
                    None => self.record(trail, actor, &executed).await?,
                }
            }
            Err(error) => {
                let report = self.record_failure(trail, actor, "execute", &error).await?;
                // A timeout leaves the outcome unknown: look before reporting.
                if !matches!(error, ExecError::Timeout { .. }) {
                    return self.respond(
                        trail,
                        ActionStatus::Failed,
                        Some(risk),
                        Some(decision),
                        None,
                        Some(report),
                    );
                }
            }
        }
        let verification = executor
            .verify(context, preview)
            .instrument(step_span!("verify", trail.action_id))
            .await;
        self.record(trail, actor, &verification).await?;
        self.verified(trail, &verification, risk, decision)
    }

    pub(super) fn verified(
        &self,
        trail: &Trail,
        verification: &executor::Verification,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        if verification.passed {
            return self.respond(trail, ActionStatus::Completed, Some(risk), Some(decision), None, None);
        }
        let error = json!({"code": "verification_failed", "verification": verification});
        self.respond(
            trail,
            ActionStatus::Failed,
            Some(risk),
            Some(decision),
            None,
            Some(error),
        )
    }
}
