//! The gateway's logic between HTTP (the server crate) and the parts it governs: identities and API keys
//! (`identity`), and later the action pipeline. Handlers and CLI commands call this crate; it writes
//! every change to the ledger.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apikey;
pub mod audit;
pub mod cluster;
pub mod clusters;
mod dry_run;
pub mod duties;
mod external;
mod groups;
mod idempotency;
pub mod identity;
pub mod kubectl;
pub mod metrics;
pub mod notify;
pub mod ownership;
pub mod payloads;
pub mod pipeline;
mod recovery;
mod rejected;
mod sizes;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transparency;

/// The action and scope types callers send, from the executor.
pub use cluster::Cluster;
pub use clusters::Clusters;
pub use executor::{Access, ActionRequest, Scope};
pub use identity::{Caller, Directory, Identity, IdentityKind, IdentityStatus, IssuedKey, KeyInfo, NewIdentity, Role};
pub use metrics::Metrics;
pub use notify::ApprovalWebhook;
pub use pipeline::{
    ActionResponse, Breakers, BudgetLimit, Budgets, DecisionView, Freeze, FreezeSettings, Per, Pipeline, PipelineParts,
    PolicyMode, Trip, TrustGates, Verdict,
};
/// What a policy decides, as `policy.decided` entries spell it.
pub use policy::Outcome;
pub use transparency::{Transparency, TransparencyConfig, WitnessEndpoint};

/// What can go wrong, by what the caller should do about it (the server maps these to HTTP statuses).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// 400: the request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: valid credentials, missing role.
    #[error("{0}")]
    Forbidden(String),
    /// 404: what the request names (an identity, a key, an action) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: the state does not allow it (duplicate name, already revoked).
    #[error("{0}")]
    Conflict(String),
    /// 503: a part the request needs is not there (no Kubernetes cluster configured).
    #[error("{0}")]
    Unavailable(String),
    /// A database read or write failed: 507 when its disk is full, 503 when it is read-only, 500 otherwise.
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    /// Appending to the ledger failed: 507 or 503 for a full or read-only database as for `Storage`,
    /// 500 otherwise (an invalid event, a wrong signing key, a stopped writer).
    #[error("ledger: {0}")]
    Ledger(#[from] storage::AppendError),
    /// 422: an idempotency key used before with a different request.
    #[error("{0}")]
    Unprocessable(String),
    /// 413: what the request would record cannot fit in a ledger entry.
    #[error("{0}")]
    TooLarge(String),
    /// 500: the task running an action stopped without an answer (the action is recovered).
    #[error("{0}")]
    Stopped(String),
}

/// `<prefix>_` followed by a UUIDv7 in 32 lowercase hex digits (time-ordered, like ledger entry ids).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub use domain::time::{now, now_minus, now_plus};
