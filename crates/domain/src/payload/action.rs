//! The action family written from the domain's own vocabulary: the request, its refusal, a read's
//! summary, and a failure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ErrorReport, Payload, Recovered};
use crate::{EntryKind, IdentityKind};

/// Who asked, as `action.requested` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// The identity's id.
    pub id: String,
    /// The identity's name.
    pub name: String,
    /// Agent or human.
    pub kind: IdentityKind,
}

/// `action.requested`: the first entry of every valid action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequested {
    /// Who asked.
    pub identity: Requester,
    /// The API key presented (or where a sign-in without one came from).
    pub key_id: String,
    /// The request body, Secret values redacted.
    pub request: Value,
    /// `sha256:<hex>` of the request as received (before redaction).
    pub request_sha256: String,
    /// The caller's justification, if any.
    pub justification: Option<String>,
}

/// `action.rejected`: a request that parsed as JSON but is not a valid action (or names no configured
/// cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRejected {
    /// The request body, Secret values redacted.
    pub request: Value,
    /// `sha256:<hex>` of the request as received.
    pub request_sha256: String,
    /// The field at fault (`body` for the whole request).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
    /// The API key presented.
    pub key_id: String,
}

/// `action.rejected` for a body that is not JSON: a bounded prefix of its text (or only its size when it
/// may hold Secret data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedUnparsable {
    /// The body's first bytes as text, or the redaction marker.
    pub request_text: String,
    /// The body's size in bytes.
    pub request_bytes: usize,
    /// Whether `request_text` is only a prefix.
    pub request_truncated: bool,
    /// `sha256:<hex>` of the whole body; `null` when the text was withheld.
    pub request_sha256: Option<String>,
    /// Always `body`.
    pub field: String,
    /// Why it does not parse.
    pub message: String,
    /// The API key presented.
    pub key_id: String,
}

/// `action.executed` for a read (GET/LIST/LOGS): what was read, not the object itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadExecuted {
    /// The Kubernetes user the read was sent as.
    pub executor_account: String,
    /// The API server's HTTP status.
    pub api_status: u16,
    /// How many items a LIST returned (`null` for one object).
    pub items: Option<usize>,
    /// Whether Secret values were withheld from the answer.
    pub secret_data_withheld: bool,
}

/// `action.failed`: the action stopped at `stage` (`read`, `preview`, `execute`, `verify`, `interrupted`…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionFailed {
    /// Where it stopped.
    pub stage: String,
    /// What went wrong.
    pub error: ErrorReport,
    /// Set when recovery wrote the entry after a restart.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovered>,
    /// What recovery found in the cluster, when it looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
}

impl ActionFailed {
    /// A failure at `stage`, found by the request itself.
    pub fn at(stage: impl Into<String>, error: ErrorReport) -> Self {
        ActionFailed {
            stage: stage.into(),
            error,
            recovered: None,
            evidence: None,
        }
    }
}

impl Payload for ActionRequested {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionRequested
    }
}
impl Payload for ActionRejected {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionRejected
    }
}
impl Payload for RejectedUnparsable {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionRejected
    }
}
impl Payload for ReadExecuted {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionExecuted
    }
}
impl Payload for ActionFailed {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The shapes the gateway wrote before they were typed.
    #[test]
    fn failures_serialize_as_before() {
        let failed = ActionFailed::at(
            "execute",
            ErrorReport {
                status: Some(409),
                ..ErrorReport::new("conflict", "changed")
            },
        );
        assert_eq!(
            failed.to_value(),
            json!({"stage": "execute", "error": {"code": "conflict", "status": 409, "message": "changed"}})
        );
        let recovered = ActionFailed {
            recovered: Some(Recovered::by("gw-1")),
            ..ActionFailed::at("interrupted", ErrorReport::new("interrupted", "stopped"))
        };
        let value = recovered.to_value();
        assert_eq!(
            value,
            json!({"stage": "interrupted", "recovered": true, "recovered_by": "gw-1",
                   "error": {"code": "interrupted", "message": "stopped"}})
        );
        let back: ActionFailed = serde_json::from_value(value).unwrap();
        assert_eq!(back, recovered);
    }

    #[test]
    fn requests_and_reads_serialize_as_before() {
        let requested = ActionRequested {
            identity: Requester {
                id: "agt_1".into(),
                name: "bot".into(),
                kind: IdentityKind::Agent,
            },
            key_id: "key_1".into(),
            request: json!({"action_type": "GET"}),
            request_sha256: "sha256:00".into(),
            justification: None,
        };
        assert_eq!(
            requested.to_value(),
            json!({"identity": {"id": "agt_1", "name": "bot", "kind": "agent"}, "key_id": "key_1",
                   "request": {"action_type": "GET"}, "request_sha256": "sha256:00", "justification": null})
        );
        let read = ReadExecuted {
            executor_account: "system:serviceaccount:a:b".into(),
            api_status: 200,
            items: None,
            secret_data_withheld: false,
        };
        assert_eq!(read.kind(), EntryKind::ActionExecuted);
        assert_eq!(read.to_value()["items"], Value::Null);
    }
}
