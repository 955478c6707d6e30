//! A budget's `workloads_percent`: at most this share of the target namespace's workloads (Deployments,
//! StatefulSets, DaemonSets, CronJobs) changed by the budget's subject within its window. The namespace's
//! workloads are counted by the executor (cached for `executor::WORKLOAD_COUNT_TTL`); the share becomes a
//! number of workloads, rounded down (never more than the percentage), but at least one unless the percentage is
//! 0, so that a small namespace is not frozen by a share smaller than one workload. It applies to changes of an existing workload: a create or a change of another kind
//! counts as usual against the other limits.

use domain::ResourceKind;
use executor::{Action, CallContext, ExecError, Preview};
use storage::WorkloadLimit;

use crate::Cluster;

/// The target namespace's workloads, for the budgets that limit their share.
pub(super) struct Share {
    /// `cluster/namespace/Kind/`, one per workload kind.
    prefixes: Vec<String>,
    /// The workloads in the namespace (at least 1: the target exists).
    pub(super) total: i64,
}

impl Share {
    /// The share to check for `action`, if it changes an existing workload and some budget limits the share;
    /// counting them is one cached LIST per workload kind.
    pub(super) async fn of(
        executor: &dyn Cluster,
        context: &CallContext,
        action: &Action,
        preview: &Preview,
        limited: bool,
    ) -> Result<Option<Share>, ExecError> {
        let namespace = match &action.namespace {
            Some(namespace) if limited && action.kind.counts_as_workload() && preview.live.is_some() => namespace,
            _ => return Ok(None),
        };
        let total = executor.namespace_workloads(context, namespace).await?;
        let cluster = executor.name();
        let prefixes = ResourceKind::WORKLOADS
            .iter()
            .map(|kind| format!("{cluster}/{namespace}/{}/", kind.as_str()))
            .collect();
        Ok(Some(Share {
            prefixes,
            // A count taken before the target was created can be 0; the target is one.
            total: i64::try_from(total).unwrap_or(i64::MAX).max(1),
        }))
    }

    /// `percent` of the namespace's workloads, as a number of them: rounded down, at least 1 unless 0 %.
    pub(super) fn limit(&self, percent: i64) -> WorkloadLimit {
        let share = percent.saturating_mul(self.total) / 100;
        WorkloadLimit {
            prefixes: self.prefixes.clone(),
            limit: if percent > 0 { share.max(1) } else { 0 },
        }
    }

    /// `workloads` of the namespace's workloads, as a percentage (rounded up).
    pub(super) fn percent(&self, workloads: i64) -> i64 {
        workloads.saturating_mul(100).saturating_add(self.total - 1) / self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(total: i64) -> Share {
        Share {
            prefixes: vec!["c/ns/Deployment/".into()],
            total,
        }
    }

    #[test]
    fn a_percentage_becomes_whole_workloads_rounded_down_but_at_least_one() {
        assert_eq!(share(10).limit(20).limit, 2);
        assert_eq!(share(10).limit(25).limit, 2, "rounded down: never more than 25 %");
        assert_eq!(share(3).limit(34).limit, 1, "34 % of three is one, not two (67 %)");
        assert_eq!(share(3).limit(20).limit, 1, "at least one of three");
        assert_eq!(share(3).limit(0).limit, 0, "0 % allows none");
        assert_eq!(share(7).limit(100).limit, 7);
        assert_eq!(share(10).percent(3), 30);
        assert_eq!(share(3).percent(1), 34, "rounded up");
    }
}
