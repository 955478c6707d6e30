//! How many workloads a namespace holds, for a budget's `workloads_percent` (the share of a namespace's
//! workloads one subject may change within a window): a metadata-only LIST per workload kind
//! ([`ResourceKind::WORKLOADS`]) as the namespace's reader account, with `limit=1` so that the API server
//! counts the rest (`remainingItemCount`) instead of sending them; paged through where it does not say.
//! Counts are kept per namespace for [`WORKLOAD_COUNT_TTL`]: a namespace's workloads change slowly, and a
//! mutation must not cost four LISTs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::api::ListParams;
use serde_json::Value;

use super::Executor;
use crate::action::{Access, ResourceKind};
use crate::error::ExecError;
use crate::kube::CallContext;
use crate::rbac::ServiceAccountRef;

/// How long a namespace's workload count is used before it is counted again.
pub const WORKLOAD_COUNT_TTL: Duration = Duration::from_secs(30);

/// Namespaces' workload counts, and when each was taken.
#[derive(Debug, Default)]
pub(crate) struct WorkloadCounts(Mutex<HashMap<String, (Instant, u64)>>);

impl WorkloadCounts {
    fn fresh(&self, namespace: &str) -> Option<u64> {
        let counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (at, count) = counts.get(namespace)?;
        (at.elapsed() < WORKLOAD_COUNT_TTL).then_some(*count)
    }

    fn keep(&self, namespace: &str, count: u64) {
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only namespaces counted within the TTL stay: the map holds the namespaces in use, not every one ever.
        counts.retain(|_, (at, _)| at.elapsed() < WORKLOAD_COUNT_TTL);
        counts.insert(namespace.to_owned(), (Instant::now(), count));
    }
}

impl Executor {
    /// The workloads (Deployments, StatefulSets, DaemonSets, CronJobs) in `namespace`, counted at most
    /// [`WORKLOAD_COUNT_TTL`] ago.
    pub async fn namespace_workloads(&self, context: &CallContext, namespace: &str) -> Result<u64, ExecError> {
        if let Some(count) = self.workload_counts.fresh(namespace) {
            return Ok(count);
        }
        let account = self.accounts.executor(Some(namespace), Access::Read);
        let mut total = 0;
        for kind in ResourceKind::WORKLOADS {
            total += self.count_kind(context, &account, kind, namespace).await?;
        }
        self.workload_counts.keep(namespace, total);
        Ok(total)
    }

    /// The objects of `kind` in `namespace`: the first page's one item plus the API server's count of the
    /// rest; where it gives none (it may leave it out), the rest page by page.
    async fn count_kind(
        &self,
        context: &CallContext,
        account: &ServiceAccountRef,
        kind: ResourceKind,
        namespace: &str,
    ) -> Result<u64, ExecError> {
        let path = self.kube.resource(kind).await?;
        let mut params = ListParams::default().limit(1);
        let mut counted = 0;
        loop {
            let request = path
                .request(Some(namespace))
                .list_metadata(&params)
                .map_err(|e| ExecError::client(e.to_string()))?;
            let body = self.kube.send(request, account, context).await?.body;
            counted += body["items"].as_array().map_or(0, Vec::len) as u64;
            let next = body
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            let rest = body.pointer("/metadata/remainingItemCount").and_then(Value::as_u64);
            match (next, rest) {
                (None, _) => return Ok(counted),
                (Some(_), Some(rest)) => return Ok(counted + rest),
                (Some(next), None) => {
                    params = ListParams::default().limit(500);
                    params.continue_token = Some(next.to_owned());
                }
            }
        }
    }
}
