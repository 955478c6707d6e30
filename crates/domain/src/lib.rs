//! The vocabulary every DocketOps crate shares (SPEC §2–§5): what an action is, who may do what, the
//! statuses an action moves through, the kinds of ledger entries, identities' roles, timestamps, and the one
//! rule for keeping Secret values out of records.
//!
//! Pure data and pure functions: no I/O, no async, no database, no Kubernetes, no HTTP. Everything here
//! serializes exactly as the ledger and the API spell it, so a typo is a compile error rather than a status
//! nobody matches.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
pub mod entry_kind;
pub mod freeze;
pub mod identity;
pub mod ids;
pub mod payload;
pub mod redact;
pub mod scope;
pub mod status;
pub mod time;

pub use action::{
    Access, Action, ActionRequest, ActionType, InvalidAction, Operation, PodSpecPath, Propagation, ResourceKind,
};
pub use entry_kind::EntryKind;
pub use freeze::{FreezeScope, FreezeTarget};
pub use identity::{IdentityKind, IdentityStatus, KeyStatus, Role};
pub use scope::{Scope, matches_pattern};
pub use status::ActionStatus;
