//! The executor: turns a validated action into Kubernetes API calls under least privilege.
//!
//! - [`action`]: the action model, re-exported from the domain crate (validated before anything else happens).
//! - [`guardrails`]: hard allowlists checked before any Kubernetes call.
//! - [`rbac`]: the executor's Kubernetes accounts and the RBAC manifests that give them their rights.
//! - [`executor`]: reads, dry-run previews with a diff, execution with preconditions, outcome verification.
//! - [`inspect`]: after an interruption, whether a previewed change took effect (recovery).
//! - [`kube`]: the connection (kubeconfig, in-cluster, context), discovery, impersonation and audit headers.
//!
//! - [`setup`]: installing that RBAC and issuing the gateway a kubeconfig, as a cluster administrator.
//!
//! All Kubernetes calls of the project live in this crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use domain::action;
pub mod diff;
pub mod error;
pub mod executor;
pub mod guardrails;
pub mod inspect;
pub mod kube;
mod plan;
pub mod rbac;
pub mod setup;

pub use domain::{Access, Action, ActionRequest, ActionType, InvalidAction, Operation, ResourceKind};
pub use error::{ErrorReport, ExecError};
pub use executor::{
    Check, DEFAULT_CLUSTER, Execution, Executor, ExecutorOptions, ObservedIn, Preview, ReadResult, Rollout,
    RolloutProgress, Verification, Watch, WatchEvents, WatchOptions,
};
pub use guardrails::{GuardrailViolation, Guardrails, Scope};
pub use kube::{CallContext, KubeConnection, KubeSource};
pub use rbac::Accounts;
