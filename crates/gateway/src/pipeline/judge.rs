//! Judging an action: its risk, the policy's decision with the requester's trust, and the trust gate.

use crate::payloads::{PolicyDecided, TrustGate};
use executor::Preview;
use storage::StoredTrust;

use super::*;

/// What judging decided, and the entries that record it (written together with the intent, if any).
pub(super) struct Judged {
    pub(super) outcome: Outcome,
    /// What a held action needs: how many distinct approvers, and groups that must each give one.
    pub(super) required: Required,
    pub(super) risk: String,
    pub(super) decision: DecisionView,
    pub(super) recorded: Vec<(EntryKind, Value)>,
}

/// An action the policy holds for approval, with what the approval request needs of it.
pub(super) struct Held<'a> {
    pub(super) caller: &'a Caller,
    pub(super) executor: &'a dyn Cluster,
    pub(super) action: &'a Action,
    pub(super) request: &'a ActionRequest,
    pub(super) preview: Option<&'a Preview>,
    pub(super) required: Required,
}

/// The approvals a held action needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Required {
    /// How many distinct approvers: what the policy asked for, at least one per group, else one.
    pub(crate) approvals: i64,
    /// Groups that must each give one of the approvals (none: any approvers).
    pub(crate) groups: Vec<String>,
}

impl Required {
    /// What a decision asks for.
    fn of(approvals: Option<u32>, groups: &[String]) -> Required {
        let count = approvals.map_or(1, i64::from).max(groups.len() as i64);
        Required {
            approvals: count,
            groups: groups.to_vec(),
        }
    }
}

impl Pipeline {
    /// Classifies the risk and asks the policy; a trust gate may turn an allow into an approval.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(name = "policy", skip_all, fields(action.id = trail.action_id.as_str(), risk.level = tracing::field::Empty, policy.outcome = tracing::field::Empty))]
    pub(super) async fn judge(
        &self,
        caller: &Caller,
        executor: &dyn Cluster,
        action: &Action,
        request: &ActionRequest,
        trail: &Trail,
        preview: Option<&Preview>,
        trust: StoredTrust,
    ) -> Result<Judged, GatewayError> {
        // A score that misses entries (a catch-up pending: an upgrade, a rebuild) may be too high: fail closed,
        // as if nothing was earned yet, and say so in the recorded input.
        let (trust_score, trust_stale) = match trust.current {
            true => (trust.score, false),
            false => (0, true),
        };
        let classification = self.classify(executor, action, preview);
        let risk = classification.level.as_str().to_owned();
        self.parts.metrics.risk(&risk);
        // Policy, with the identity's trust.
        let input = json!({
            "identity": {"id": caller.identity.id, "name": caller.identity.name, "kind": caller.identity.kind,
                         "roles": caller.identity.roles, "scopes": caller.identity.scopes, "groups": caller.identity.groups,
                         "trust_score": trust_score,
                         "trust_stale": trust_stale},
            "action": {"action_id": trail.action_id, "cluster": trail.cluster, "action_type": action.action_type, "namespace": action.namespace,
                       "resource_kind": action.kind, "resource_name": action.name,
                       "parameters": redact_request(&json!({"resource_kind": request.resource_kind, "parameters": request.parameters}))["parameters"],
                       "justification": request.justification},
            "risk": {"level": risk, "rules": classification.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>()},
            "preview": preview.as_ref().map(|p| json!({"diff": p.diff, "live": p.live})),
            "time": now(),
        });
        let policy_started = std::time::Instant::now();
        let decided = self.parts.policy.decide(&input).await;
        let policy_elapsed = policy_started.elapsed();
        let mut payload = match decided {
            Ok(decision) => PolicyDecided {
                outcome: decision.outcome,
                reasons: decision.reasons,
                mode: self.parts.mode,
                policy: decision.policy,
                revision: Some(decision.revision),
                decision_id: Some(decision.decision_id),
                engine: Some(decision.engine),
                error: None,
                approvals: decision.approvals,
                approval_groups: decision.approval_groups,
                input_sha256: decision.input_sha256,
                input,
                trust_gate: None,
            },
            // Fail closed: an undefined or failed decision is a deny (only observed in ledger mode).
            Err(error) => PolicyDecided {
                outcome: Outcome::Deny,
                reasons: vec![format!("policy evaluation failed: {error}")],
                mode: self.parts.mode,
                policy: self.parts.policy.describe(),
                revision: None,
                decision_id: None,
                engine: None,
                error: Some(error.to_string()),
                approvals: None,
                approval_groups: Vec::new(),
                input_sha256: policy::decision::input_sha256(&input).unwrap_or_default(),
                input,
                trust_gate: None,
            },
        };
        let (outcome, reasons) = self.trust_gate(&mut payload, classification.level, trust_score);
        self.parts
            .metrics
            .decision(outcome.as_str(), self.parts.mode.as_str(), policy_elapsed);
        let decision = DecisionView {
            outcome: outcome.as_str().into(),
            mode: self.parts.mode.as_str().into(),
            policy: payload.policy.clone(),
            reasons,
        };
        let required = Required::of(payload.approvals, &payload.approval_groups);
        let span = tracing::Span::current();
        span.record("risk.level", risk.as_str());
        span.record("policy.outcome", outcome.as_str());
        // Risk and decision are recorded together: one commit for both (the decision's input names the risk).
        let recorded = vec![classification.kind_and_value(), payload.kind_and_value()];
        Ok(Judged {
            outcome,
            required,
            risk,
            decision,
            recorded,
        })
    }

    /// The action's risk; a SCALE is judged against the replicas the preview saw.
    fn classify(&self, executor: &dyn Cluster, action: &Action, preview: Option<&Preview>) -> policy::Classification {
        let current_replicas = preview.and_then(|p| match action.operation {
            Operation::Scale { replicas } => Some(
                p.diff
                    .iter()
                    .find(|c| c.path == "/spec/replicas")
                    .and_then(|c| c.from.as_ref())
                    .and_then(Value::as_u64)
                    .map_or(replicas, |n| n as u32),
            ),
            _ => None,
        });
        self.parts.risk.classify(
            action,
            RiskContext {
                current_replicas,
                cluster: Some(executor.name().to_owned()),
            },
        )
    }

    /// A trust gate turns an allowed action the identity has not yet earned into one that needs an approval.
    fn trust_gate(
        &self,
        payload: &mut PolicyDecided,
        level: policy::RiskLevel,
        trust_score: i64,
    ) -> (Outcome, Vec<String>) {
        let required = match level {
            policy::RiskLevel::Medium => self.parts.trust_gates.medium_min,
            policy::RiskLevel::High => self.parts.trust_gates.high_min,
            policy::RiskLevel::Low => 0,
        };
        if payload.outcome != Outcome::Allow || trust_score >= required {
            return (payload.outcome, payload.reasons.clone());
        }
        let risk = level.as_str();
        let reason = format!("trust {trust_score} is below the {required} needed for {risk} risk without an approval");
        payload.trust_gate = Some(TrustGate {
            trust_score,
            required,
            outcome: Outcome::RequireApproval,
            reason: reason.clone(),
        });
        (Outcome::RequireApproval, vec![reason])
    }
}
