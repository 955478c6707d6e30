//! The kinds of ledger entries (SPEC §5), spelt as the ledger spells them.
//!
//! An entry stores its kind as text, and the verifier accepts any well-formed kind (a ledger written by a
//! later release may hold kinds this one does not know); everything that writes or interprets an entry
//! names its kind through this enum.

use std::fmt;

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// `action.requested`: A caller asked for an action (the request as sent, Secret values redacted).
    ActionRequested,
    /// `action.rejected`: The request was not a valid action; nothing was decided.
    ActionRejected,
    /// `guardrail.denied`: A guardrail refused the action (final in every policy mode).
    GuardrailDenied,
    /// `risk.classified`: The action's risk level and the reasons for it.
    RiskClassified,
    /// `policy.decided`: The policy's decision: allow, deny or require approval.
    PolicyDecided,
    /// `approval.requested`: The action waits for approvals.
    ApprovalRequested,
    /// `approval.granted`: An approver approved the action.
    ApprovalGranted,
    /// `approval.denied`: An approver denied the action.
    ApprovalDenied,
    /// `approval.expired`: No decision arrived before the approval expired.
    ApprovalExpired,
    /// `approval.refused`: An approval was refused (self-approval, stale digest, missing role).
    ApprovalRefused,
    /// `action.previewed`: A dry run: what the action would have done.
    ActionPreviewed,
    /// `action.executed`: The action reached the cluster, with the API server's answer.
    ActionExecuted,
    /// `action.failed`: Execution or verification failed.
    ActionFailed,
    /// `outcome.verified`: The cluster was read back and the outcome checked.
    OutcomeVerified,
    /// `audit.bypass_detected`: The cluster's audit log shows a change that did not pass the gateway.
    AuditBypassDetected,
    /// `budget.exceeded`: A blast-radius budget refused a mutation (final in every mode).
    BudgetExceeded,
    /// `freeze.enabled`: Mutations in a scope are stopped until the freeze is lifted (the kill switch).
    FreezeEnabled,
    /// `freeze.lifted`: A freeze was lifted.
    FreezeLifted,
    /// `freeze.refused`: A freeze stopped an action (final in every mode; not held against trust).
    FreezeRefused,
    /// `budget.set`: An admin set (or cleared) an identity's own blast-radius budget.
    BudgetSet,
    /// `identity.created`: An identity was created.
    IdentityCreated,
    /// `identity.updated`: An identity's roles or scopes changed.
    IdentityUpdated,
    /// `identity.suspended`: An identity was suspended.
    IdentitySuspended,
    /// `identity.reactivated`: A suspended identity was reactivated.
    IdentityReactivated,
    /// `identity.revoked`: An identity was revoked for good.
    IdentityRevoked,
    /// `key.issued`: An API key was issued.
    KeyIssued,
    /// `key.rotated`: An API key was replaced by a new one.
    KeyRotated,
    /// `key.revoked`: An API key was revoked.
    KeyRevoked,
    /// `ledger.initialized`: The genesis entry: the first signing key.
    LedgerInitialized,
    /// `ledger.key_rotated`: The ledger's signing key was rotated.
    LedgerKeyRotated,
    /// `ledger.note`: A free-form note written by an operator.
    LedgerNote,
}

impl EntryKind {
    /// Every kind, in the order of an action's life, then the kill switch, budgets set by an admin,
    /// identities, keys and the ledger itself.
    pub const ALL: [EntryKind; 31] = [
        EntryKind::ActionRequested,
        EntryKind::ActionRejected,
        EntryKind::GuardrailDenied,
        EntryKind::RiskClassified,
        EntryKind::PolicyDecided,
        EntryKind::ApprovalRequested,
        EntryKind::ApprovalGranted,
        EntryKind::ApprovalDenied,
        EntryKind::ApprovalExpired,
        EntryKind::ApprovalRefused,
        EntryKind::ActionPreviewed,
        EntryKind::ActionExecuted,
        EntryKind::ActionFailed,
        EntryKind::OutcomeVerified,
        EntryKind::AuditBypassDetected,
        EntryKind::BudgetExceeded,
        EntryKind::FreezeEnabled,
        EntryKind::FreezeLifted,
        EntryKind::FreezeRefused,
        EntryKind::BudgetSet,
        EntryKind::IdentityCreated,
        EntryKind::IdentityUpdated,
        EntryKind::IdentitySuspended,
        EntryKind::IdentityReactivated,
        EntryKind::IdentityRevoked,
        EntryKind::KeyIssued,
        EntryKind::KeyRotated,
        EntryKind::KeyRevoked,
        EntryKind::LedgerInitialized,
        EntryKind::LedgerKeyRotated,
        EntryKind::LedgerNote,
    ];

    /// The kind as the ledger spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::ActionRequested => "action.requested",
            EntryKind::ActionRejected => "action.rejected",
            EntryKind::GuardrailDenied => "guardrail.denied",
            EntryKind::RiskClassified => "risk.classified",
            EntryKind::PolicyDecided => "policy.decided",
            EntryKind::ApprovalRequested => "approval.requested",
            EntryKind::ApprovalGranted => "approval.granted",
            EntryKind::ApprovalDenied => "approval.denied",
            EntryKind::ApprovalExpired => "approval.expired",
            EntryKind::ApprovalRefused => "approval.refused",
            EntryKind::ActionPreviewed => "action.previewed",
            EntryKind::ActionExecuted => "action.executed",
            EntryKind::ActionFailed => "action.failed",
            EntryKind::OutcomeVerified => "outcome.verified",
            EntryKind::AuditBypassDetected => "audit.bypass_detected",
            EntryKind::BudgetExceeded => "budget.exceeded",
            EntryKind::FreezeEnabled => "freeze.enabled",
            EntryKind::FreezeLifted => "freeze.lifted",
            EntryKind::FreezeRefused => "freeze.refused",
            EntryKind::BudgetSet => "budget.set",
            EntryKind::IdentityCreated => "identity.created",
            EntryKind::IdentityUpdated => "identity.updated",
            EntryKind::IdentitySuspended => "identity.suspended",
            EntryKind::IdentityReactivated => "identity.reactivated",
            EntryKind::IdentityRevoked => "identity.revoked",
            EntryKind::KeyIssued => "key.issued",
            EntryKind::KeyRotated => "key.rotated",
            EntryKind::KeyRevoked => "key.revoked",
            EntryKind::LedgerInitialized => "ledger.initialized",
            EntryKind::LedgerKeyRotated => "ledger.key_rotated",
            EntryKind::LedgerNote => "ledger.note",
        }
    }

    /// The kind spelt `text`, if this release knows it.
    pub fn parse(text: &str) -> Option<EntryKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether an entry of this kind belongs to an action (it carries the action's id).
    pub fn is_action_step(self) -> bool {
        self.as_str().starts_with("action.")
            || self.as_str().starts_with("approval.")
            || matches!(
                self,
                EntryKind::GuardrailDenied
                    | EntryKind::RiskClassified
                    | EntryKind::PolicyDecided
                    | EntryKind::OutcomeVerified
                    | EntryKind::FreezeRefused
                    | EntryKind::BudgetExceeded
            )
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<EntryKind> for str {
    fn eq(&self, other: &EntryKind) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<EntryKind> for String {
    fn eq(&self, other: &EntryKind) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<EntryKind> for &str {
    fn eq(&self, other: &EntryKind) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct_well_formed_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in EntryKind::ALL {
            assert!(seen.insert(kind.as_str()), "{kind} twice");
            assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
            let (family, word) = kind.as_str().split_once('.').unwrap();
            assert!(!family.is_empty() && !word.is_empty() && !word.contains('.'), "{kind}");
        }
        assert_eq!(EntryKind::parse("ledger.unknown"), None);
        assert!(EntryKind::ApprovalGranted.is_action_step() && !EntryKind::KeyIssued.is_action_step());
        assert!(
            !EntryKind::BudgetSet.is_action_step(),
            "an admin's change, not a step of an action"
        );
    }
}
