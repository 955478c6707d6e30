//! The kill switch's entries: a freeze enabled, lifted, and a mutation it refused.

use serde::{Deserialize, Serialize};

use super::Payload;
use crate::{EntryKind, FreezeScope};

/// `freeze.enabled`: mutations in `scope` are refused from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeEnabled {
    /// The freeze's id (`frz_…`).
    pub freeze_id: String,
    /// What it covers.
    pub scope: FreezeScope,
    /// Why, as the one who froze said.
    pub reason: String,
}

/// `freeze.lifted`: mutations in `scope` may run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeLifted {
    /// The freeze lifted.
    pub freeze_id: String,
    /// What it covered.
    pub scope: FreezeScope,
    /// Why it is lifted.
    pub reason: String,
    /// Who had frozen it.
    pub frozen_by: String,
    /// Since when.
    pub frozen_at: String,
}

/// `freeze.refused`: a mutation a freeze stopped (final in every policy mode, like a guardrail, but not
/// held against the requester's trust: a freeze is not its doing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeRefused {
    /// The freeze that stopped it.
    pub freeze_id: String,
    /// What the freeze covers.
    pub scope: FreezeScope,
    /// The freeze's reason.
    pub reason: String,
    /// Who froze.
    pub frozen_by: String,
    /// Where the action was stopped: `submit` (before anything was previewed or decided) or `execute`
    /// (after its decision, before the change was sent: the freeze came meanwhile).
    pub stage: String,
}

impl Payload for FreezeEnabled {
    fn kind(&self) -> EntryKind {
        EntryKind::FreezeEnabled
    }
}
impl Payload for FreezeLifted {
    fn kind(&self) -> EntryKind {
        EntryKind::FreezeLifted
    }
}
impl Payload for FreezeRefused {
    fn kind(&self) -> EntryKind {
        EntryKind::FreezeRefused
    }
}
