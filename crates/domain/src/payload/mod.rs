//! Typed payloads of ledger entries: each type names the kind of entry it is written as, so a writer cannot
//! pair a kind with another kind's payload. They serialize exactly as the ledger has always spelt these
//! payloads (the ledger format does not change): the canonical form sorts keys, and an `Option` without
//! `skip_serializing_if` is written as `null`.
//!
//! A payload type lives beside what it carries: the ones here carry only this crate's vocabulary; a payload
//! that *is* another crate's report implements [`Payload`] there (the executor's `Verification`, the risk
//! classifier's `Classification`), and the gateway's own payloads (which carry its `Identity` or the
//! executor's preview) live in the gateway. One kind may have several shapes (a recovered `action.failed`
//! says so), hence one type per shape rather than one per kind.
//!
//! Readers of old ledgers keep reading payloads as JSON: an entry written by an earlier release must still
//! be read, and an unknown field must not fail a verification.

mod action;
mod approval;
mod budget;
mod freeze;
mod identity;

pub use action::{ActionFailed, ActionRejected, ActionRequested, ReadExecuted, RejectedUnparsable, Requester};
pub use approval::{
    ApprovalDenied, ApprovalExpired, ApprovalGranted, ApprovalRefused, ApprovalRequested, GuardrailDenied,
};
pub use budget::{BudgetSet, IdentityLimit, MAX_IDENTITY_LIMITS, MAX_LIMIT, MAX_WINDOW_SECONDS};
pub use freeze::{FreezeEnabled, FreezeLifted, FreezeRefused};
pub use identity::{IdentityStatusChanged, KeyIssued, KeyRef, KeyRevoked};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EntryKind;

/// A ledger entry's payload, tied to its kind.
pub trait Payload: Serialize {
    /// The kind of entry this payload is written as.
    fn kind(&self) -> EntryKind;

    /// The payload as the JSON the ledger stores.
    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a payload is plain data and serializes to JSON")
    }

    /// The kind and the JSON together, for writers that append several entries at once.
    fn kind_and_value(&self) -> (EntryKind, Value) {
        (self.kind(), self.to_value())
    }
}

/// An error as the ledger records it (in `action.failed` and in a failed verification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// A stable code: `timeout`, `conflict`, `forbidden`, `interrupted`, `outcome_unknown`…
    pub code: String,
    /// The API server's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The guardrail rule that refused, for `guardrail_denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What went wrong, in words.
    pub message: String,
}

impl ErrorReport {
    /// A report with a code and a message only.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorReport {
            code: code.into(),
            status: None,
            rule: None,
            message: message.into(),
        }
    }
}

/// Marks an entry written by recovery (after a restart) rather than by the request that started the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// Always `true`: the field is there so that readers can tell recovered entries apart.
    pub recovered: bool,
    /// The gateway instance that recovered the action.
    pub recovered_by: String,
}

impl Recovered {
    /// Recovered by the instance `instance`.
    pub fn by(instance: impl Into<String>) -> Self {
        Recovered {
            recovered: true,
            recovered_by: instance.into(),
        }
    }
}
