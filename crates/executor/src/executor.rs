//! The executor: guardrails first, then Kubernetes calls as an impersonated least-privilege account.
//!
//! A read is one call. A mutation is three steps the gateway records separately:
//! 1. [`Executor::preview`] checks the guardrails, reads the live object and sends the exact request with
//!    server-side dry-run; the diff between live and dry-run object is what approvers see.
//! 2. [`Executor::execute`] sends that same request for real, with the previewed `resourceVersion` (or
//!    uid and resourceVersion for DELETE) as a precondition: if the object changed since the preview the
//!    API server answers 409 and nothing is changed.
//! 3. [`Executor::verify`] reads the object back and compares it with the intended state, waiting for the
//!    rollout where that means something.
//!
//! The steps live in their own modules: `read` (GET and LIST), `watch` (the event stream of a recorded LIST),
//! `preview` (the dry-run and its
//! diff), `execute`, `verify` (read-back, waiting for rollouts) with `intended_state` (what the object must
//! show) and `rollout` (how far a workload's rollout is).

mod execute;
#[cfg(feature = "fake")]
mod fake;
mod intended_state;
mod objects;
mod preview;
mod read;
mod rollout;
mod verify;
mod watch;
mod workloads;

use std::time::Duration;

use crate::action::{Action, ResourceKind};
use crate::error::ExecError;
use crate::guardrails::{Guardrails, Scope};
use crate::kube::KubeConnection;
use crate::rbac::Accounts;

pub use execute::Execution;
pub use preview::{LiveObject, PlannedRequest, Preview};
pub use read::ReadResult;
pub use rollout::{RolloutProgress, rollout_status};
pub use verify::{Check, ObservedIn, Rollout, Verification};
pub use watch::{Watch, WatchEvents, WatchOptions};
pub use workloads::WORKLOAD_COUNT_TTL;

pub(crate) use intended_state::contains;
pub(crate) use objects::{container_names, container_pointer, str_at};

/// The name of the only cluster when the gateway is configured with one.
pub const DEFAULT_CLUSTER: &str = "default";

/// The annotation `kubectl rollout restart` sets; controllers and tools recognize it.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "docketops";

/// Limits and waiting for an [`Executor`]; `Default`: 30 s per call, 120 s to verify, waiting for rollouts,
/// reading back every second, watches of at most 5 minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Limit for one API call.
    pub call_timeout: Duration,
    /// Limit for outcome verification (rollout, deletion).
    pub verify_timeout: Duration,
    /// Wait for workloads to roll out (observedGeneration, updated and available replicas) before passing.
    pub wait_for_rollout: bool,
    /// Pause between read-backs while waiting.
    pub poll_interval: Duration,
    /// The longest a watch lasts (a caller's longer `timeoutSeconds` is cut to this).
    pub max_watch: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            verify_timeout: Duration::from_secs(120),
            wait_for_rollout: true,
            poll_interval: Duration::from_secs(1),
            max_watch: Duration::from_secs(300),
        }
    }
}

/// Runs actions on one cluster: guardrails first, then each call as the executor account for the action's
/// namespace and access.
#[derive(Debug)]
pub struct Executor {
    /// The cluster's name in the gateway's configuration (`default` for a single cluster).
    cluster: String,
    pub(crate) kube: KubeConnection,
    guardrails: Guardrails,
    pub(crate) accounts: Accounts,
    options: ExecutorOptions,
    workload_counts: workloads::WorkloadCounts,
}

impl Executor {
    /// An executor for the cluster named [`DEFAULT_CLUSTER`] (see [`with_cluster_name`](Self::with_cluster_name));
    /// `release` prefixes the names of the accounts it impersonates (see [`Accounts`]).
    pub fn new(kube: KubeConnection, guardrails: Guardrails, release: &str, options: ExecutorOptions) -> Self {
        let accounts = Accounts {
            release: release.to_owned(),
            gateway_namespace: guardrails.gateway_namespace.clone(),
        };
        Self {
            cluster: DEFAULT_CLUSTER.to_owned(),
            kube,
            guardrails,
            accounts,
            options,
            workload_counts: workloads::WorkloadCounts::default(),
        }
    }

    /// Names the cluster this executor reaches (scopes that name clusters are matched against it).
    pub fn with_cluster_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.cluster);
        self
    }

    /// The cluster's name in the gateway's configuration.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The guardrails checked before every call.
    pub fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }

    /// The Kubernetes accounts the executor impersonates.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The guardrails alone (no Kubernetes call), with the scopes that cover this cluster.
    pub fn check(&self, action: &Action, scopes: &[Scope]) -> Result<(), ExecError> {
        let here: Vec<Scope> = scopes
            .iter()
            .filter(|scope| scope.covers_cluster(&self.cluster))
            .cloned()
            .collect();
        self.guardrails.check(action, &here).map_err(|mut violation| {
            if violation.rule == "scope" {
                violation.message = format!("{} on cluster {:?}", violation.message, self.cluster);
            }
            ExecError::Guardrail(violation)
        })
    }

    fn redact(&self, kind: ResourceKind) -> bool {
        kind == ResourceKind::Secret && !self.guardrails.reveal_secret_data
    }

    /// A discovery or OpenAPI document with the gateway's own credentials (see [`KubeConnection::discovery`]).
    pub async fn discovery(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<(u16, Vec<u8>, Option<String>), ExecError> {
        self.kube.discovery(path, accept).await
    }
}
