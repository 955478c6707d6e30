//! The statuses an action moves through (SPEC §3), spelt as the API and the database spell them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an action stands. `RUNNING`, `PENDING_APPROVAL` and `EXECUTING` are on the way; the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionStatus {
    /// Recorded and being decided (guardrails, preview, risk, policy).
    Running,
    /// Waiting for the approvals its policy decision asks for.
    PendingApproval,
    /// Approved (or allowed) and being executed and verified.
    Executing,
    /// Executed and its outcome verified.
    Completed,
    /// Refused by a guardrail or the policy, or an approver denied it.
    Denied,
    /// Execution or verification failed.
    Failed,
    /// No approval arrived in time.
    Expired,
    /// Not a valid request (recorded, never decided).
    Rejected,
    /// A dry run: decided and previewed, never executed.
    Previewed,
}

impl ActionStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [ActionStatus; 9] = [
        ActionStatus::Running,
        ActionStatus::PendingApproval,
        ActionStatus::Executing,
        ActionStatus::Completed,
        ActionStatus::Denied,
        ActionStatus::Failed,
        ActionStatus::Expired,
        ActionStatus::Rejected,
        ActionStatus::Previewed,
    ];

    /// The status as the API and the database spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Running => "RUNNING",
            ActionStatus::PendingApproval => "PENDING_APPROVAL",
            ActionStatus::Executing => "EXECUTING",
            ActionStatus::Completed => "COMPLETED",
            ActionStatus::Denied => "DENIED",
            ActionStatus::Failed => "FAILED",
            ActionStatus::Expired => "EXPIRED",
            ActionStatus::Rejected => "REJECTED",
            ActionStatus::Previewed => "PREVIEWED",
        }
    }

    /// The status spelt `text`, if it is one.
    pub fn parse(text: &str) -> Option<ActionStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the action can still change (a caller waiting for an outcome keeps waiting).
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            ActionStatus::Running | ActionStatus::PendingApproval | ActionStatus::Executing
        )
    }

    /// Whether the action has reached its end.
    pub fn is_final(self) -> bool {
        !self.is_waiting()
    }
}

impl fmt::Display for ActionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<ActionStatus> for str {
    fn eq(&self, other: &ActionStatus) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<ActionStatus> for &str {
    fn eq(&self, other: &ActionStatus) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<ActionStatus> for String {
    fn eq(&self, other: &ActionStatus) -> bool {
        self == other.as_str()
    }
}

/// A status read back from storage that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for ActionStatus {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ActionStatus::parse(&text).ok_or(UnknownStatus(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_spelling_and_serde() {
        for status in ActionStatus::ALL {
            assert_eq!(ActionStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(ActionStatus::parse("completed"), None);
        assert!(ActionStatus::try_from("NOPE".to_string()).is_err());
        assert!(ActionStatus::PendingApproval.is_waiting() && ActionStatus::Previewed.is_final());
    }
}
