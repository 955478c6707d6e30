//! Dry-run actions (`"dry_run": true`, kubectl's `--dry-run=server`): guardrails, the server-side dry-run
//! preview, risk and policy run and are recorded exactly as for a real action; then, instead of requesting an
//! approval or executing, the pipeline records `action.previewed` with what would have happened and answers
//! `PREVIEWED` with the object the API server's dry run returned. Nothing is executed or queued.

use domain::payload::Payload;
use domain::{ActionStatus, EntryKind};
use executor::Preview;
use executor::diff::Change;
use executor::executor::{LiveObject, PlannedRequest};
use policy::Outcome;
use serde::Serialize;

use crate::GatewayError;
use crate::pipeline::{ActionResponse, DecisionView, Pipeline, PolicyMode, Trail};

/// What a real submission of the same action would have led to (after guardrails and policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum WouldHappen {
    /// Allowed (or policy only observed, in ledger mode): it would have run at once.
    Execute,
    /// Held: it would have waited for this many distinct approvals.
    NeedApprovals { approvals_required: i64 },
}

impl WouldHappen {
    /// `None`: enforced deny, which a dry run answers as DENIED like any action.
    pub(crate) fn from_decision(mode: PolicyMode, outcome: Outcome, approvals_required: i64) -> Option<Self> {
        match (mode, outcome) {
            (PolicyMode::Enforce, Outcome::Deny) => None,
            (PolicyMode::Enforce, Outcome::RequireApproval) => Some(WouldHappen::NeedApprovals { approvals_required }),
            _ => Some(WouldHappen::Execute),
        }
    }

    fn summary(self) -> String {
        match self {
            WouldHappen::Execute => "would execute".to_owned(),
            WouldHappen::NeedApprovals { approvals_required: 1 } => "would need 1 approval".to_owned(),
            WouldHappen::NeedApprovals { approvals_required } => {
                format!("would need {approvals_required} approvals")
            }
        }
    }
}

/// `action.previewed`: a dry run's answer, never executed.
#[derive(Debug, Clone, Serialize)]
struct ActionPreviewed<'a> {
    request: &'a PlannedRequest,
    diff: &'a [Change],
    /// `null` when the object would be created.
    live: &'a Option<LiveObject>,
    dry_run_status: u16,
    policy_outcome: Outcome,
    would: WouldHappen,
    summary: String,
}

impl Payload for ActionPreviewed<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionPreviewed
    }
}

impl Pipeline {
    /// The end of a dry run, once `policy.decided` is recorded: DENIED as usual for an enforced deny, else
    /// `action.previewed` and PREVIEWED with the dry-run object as `result`. Never executes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish_dry_run(
        &self,
        trail: &mut Trail,
        actor: &str,
        preview: &Preview,
        outcome: Outcome,
        approvals_required: i64,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        let Some(would) = WouldHappen::from_decision(self.parts.mode, outcome, approvals_required) else {
            return self.respond(trail, ActionStatus::Denied, Some(risk), Some(decision), None, None);
        };
        let previewed = ActionPreviewed {
            request: &preview.request,
            diff: &preview.diff,
            live: &preview.live,
            dry_run_status: preview.dry_run_status,
            policy_outcome: outcome,
            would,
            summary: would.summary(),
        };
        self.record(trail, actor, &previewed).await?;
        let result = Some(preview.dry_run_object.clone());
        self.respond(trail, ActionStatus::Previewed, Some(risk), Some(decision), result, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_would_happen_follows_mode_and_outcome() {
        use PolicyMode::{Enforce, Ledger};
        assert_eq!(WouldHappen::from_decision(Enforce, Outcome::Deny, 1), None);
        assert_eq!(
            WouldHappen::from_decision(Enforce, Outcome::RequireApproval, 2),
            Some(WouldHappen::NeedApprovals { approvals_required: 2 })
        );
        assert_eq!(
            WouldHappen::from_decision(Enforce, Outcome::Allow, 1),
            Some(WouldHappen::Execute)
        );
        // Ledger mode only observes policy: the action would have run.
        for outcome in [Outcome::Deny, Outcome::RequireApproval, Outcome::Allow] {
            assert_eq!(
                WouldHappen::from_decision(Ledger, outcome, 1),
                Some(WouldHappen::Execute)
            );
        }
        assert_eq!(
            WouldHappen::NeedApprovals { approvals_required: 2 }.summary(),
            "would need 2 approvals"
        );
        assert_eq!(
            json!(WouldHappen::NeedApprovals { approvals_required: 1 }),
            json!({"outcome": "need_approvals", "approvals_required": 1})
        );
    }
}
