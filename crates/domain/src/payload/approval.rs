//! The approval family and guardrail refusals.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Payload;
use crate::EntryKind;

/// `guardrail.denied`: a guardrail refused the action (final in every policy mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailDenied {
    /// The rule that fired: `namespace_blocked`, `namespace_not_allowed`, `kind_not_allowed`,
    /// `cluster_scoped_mutation` or `scope`.
    pub rule: String,
    /// Why, in words for the caller.
    pub message: String,
}

/// `approval.requested`: the action waits for approvals of this digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    /// `sha256:<hex>` of the cluster, the action and its preview: what an approval approves.
    pub digest: String,
    /// How many distinct approvers the action needs (`null` in an entry whose action row had none).
    pub approvals_required: Option<i64>,
    /// Groups that must each give one of the approvals (a two-person rule by group); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approval_groups: Vec<String>,
    /// When the request lapses (RFC 3339 UTC).
    pub expires_at: String,
    /// The previewed changes (`null` when nothing was previewed).
    pub diff: Value,
    /// The digest this request replaces, when the target changed since the first request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// `approval.granted`: an approver approved the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalGranted {
    /// The approver's identity id.
    pub approver: String,
    /// The approver's comment, if any.
    pub comment: Option<String>,
    /// The digest approved.
    pub digest: String,
    /// Approvals of this digest so far, this one included.
    pub approvals: i64,
    /// Approvals the action needs.
    pub approvals_required: i64,
    /// The group requirement this approval met (two-person rules by group), when the action has any: the
    /// group it counts for, or absent when it counts only towards the number of approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meets_group: Option<String>,
    /// The groups still waiting for an approval after this one (present only when the action has groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_missing: Option<Vec<String>>,
}

/// `approval.denied`: an approver rejected the action; it ends REJECTED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDenied {
    /// The approver's identity id.
    pub approver: String,
    /// The approver's comment, if any.
    pub comment: Option<String>,
    /// The digest the action waited for.
    pub digest: String,
}

/// `approval.expired`: no decision arrived in time; the action ends EXPIRED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalExpired {
    /// When the request lapsed.
    pub expires_at: Option<String>,
}

/// `approval.refused`: an attempt to decide was refused (self-approval, separation of duties, a stale
/// digest, a missing role…); the action keeps waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRefused {
    /// Who tried.
    pub approver: String,
    /// Why it was refused, as the caller was told.
    pub reason: String,
}

impl Payload for GuardrailDenied {
    fn kind(&self) -> EntryKind {
        EntryKind::GuardrailDenied
    }
}
impl Payload for ApprovalRequested {
    fn kind(&self) -> EntryKind {
        EntryKind::ApprovalRequested
    }
}
impl Payload for ApprovalGranted {
    fn kind(&self) -> EntryKind {
        EntryKind::ApprovalGranted
    }
}
impl Payload for ApprovalDenied {
    fn kind(&self) -> EntryKind {
        EntryKind::ApprovalDenied
    }
}
impl Payload for ApprovalExpired {
    fn kind(&self) -> EntryKind {
        EntryKind::ApprovalExpired
    }
}
impl Payload for ApprovalRefused {
    fn kind(&self) -> EntryKind {
        EntryKind::ApprovalRefused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The payloads as the gateway wrote them before they were typed.
    #[test]
    fn payloads_serialize_as_the_ledger_has_always_spelt_them() {
        let granted = ApprovalGranted {
            approver: "usr_1".into(),
            comment: None,
            digest: "sha256:ab".into(),
            approvals: 1,
            approvals_required: 2,
            meets_group: None,
            groups_missing: None,
        };
        let before = json!({"approver": "usr_1", "comment": null, "digest": "sha256:ab", "approvals": 1,
                            "approvals_required": 2});
        assert_eq!(serde_json::to_value(&granted).unwrap(), before);
        let first = ApprovalRequested {
            digest: "sha256:ab".into(),
            approvals_required: Some(1),
            approval_groups: Vec::new(),
            expires_at: "2026-12-07T00:00:00.000000Z".into(),
            diff: Value::Null,
            replaces: None,
        };
        let before = json!({"digest": "sha256:ab", "approvals_required": 1,
                            "expires_at": "2026-12-07T00:00:00.000000Z", "diff": null});
        assert_eq!(serde_json::to_value(&first).unwrap(), before);
        let again = ApprovalRequested {
            replaces: Some("sha256:cd".into()),
            ..first
        };
        assert_eq!(serde_json::to_value(&again).unwrap()["replaces"], "sha256:cd");
        let refused = ApprovalRefused {
            approver: "usr_2".into(),
            reason: "no".into(),
        };
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            json!({"approver": "usr_2", "reason": "no"})
        );
        assert_eq!(ApprovalExpired { expires_at: None }.kind(), EntryKind::ApprovalExpired);
    }
}
