//! What an action does and to which kind of object: the action types, the kinds the gateway governs, and
//! the read/mutate split of scopes (SPEC §3).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a caller asks the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionType {
    /// Read one object.
    Get,
    /// List a kind's objects, a page at a time (`parameters.label_selector`, `field_selector`, `limit`,
    /// `continue`).
    List,
    /// Set a workload's replica count (`parameters.replicas`).
    Scale,
    /// Roll a workload's pods by stamping `kubectl.kubernetes.io/restartedAt` on its pod template.
    Restart,
    /// Change one container's image (`parameters.container`, `parameters.image`).
    SetImage,
    /// Change an object with a JSON merge patch (`parameters.patch`).
    Patch,
    /// Create or update an object by server-side apply (`parameters.manifest`, `parameters.force`).
    Apply,
    /// Delete an object (`parameters.propagation_policy`, `parameters.grace_period_seconds`).
    Delete,
}

impl ActionType {
    /// Every action type.
    pub const ALL: [ActionType; 8] = [
        ActionType::Get,
        ActionType::List,
        ActionType::Scale,
        ActionType::Restart,
        ActionType::SetImage,
        ActionType::Patch,
        ActionType::Apply,
        ActionType::Delete,
    ];

    /// The type as the API and the ledger spell it, e.g. `SET_IMAGE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionType::Get => "GET",
            ActionType::List => "LIST",
            ActionType::Scale => "SCALE",
            ActionType::Restart => "RESTART",
            ActionType::SetImage => "SET_IMAGE",
            ActionType::Patch => "PATCH",
            ActionType::Apply => "APPLY",
            ActionType::Delete => "DELETE",
        }
    }

    /// The type spelt exactly `text` (as [`as_str`](Self::as_str) spells it); `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// GET and LIST read; every other type changes the cluster.
    pub fn is_mutation(self) -> bool {
        !matches!(self, ActionType::Get | ActionType::List)
    }

    /// The scope access the type needs: [`Access::Read`] for GET and LIST, else [`Access::Mutate`].
    pub fn access(self) -> Access {
        if self.is_mutation() {
            Access::Mutate
        } else {
            Access::Read
        }
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read and mutate scopes are separate: a read scope never allows a mutation (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// GET and LIST.
    Read,
    /// Every action type that changes the cluster.
    Mutate,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Mutate => "mutate",
        })
    }
}

/// The Kubernetes kinds the gateway governs (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// v1 Pod.
    Pod,
    /// v1 Service.
    Service,
    /// v1 ConfigMap.
    ConfigMap,
    /// v1 Secret; its values are kept out of records ([`crate::redact`]).
    Secret,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 Namespace: cluster-scoped, read-only.
    Namespace,
    /// v1 Node: cluster-scoped, read-only.
    Node,
}

/// Where the pod template (and so the containers) sits in an object of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSpecPath {
    /// `/spec` (Pod)
    Pod,
    /// `/spec/template/spec` (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job)
    Template,
    /// `/spec/jobTemplate/spec/template/spec` (CronJob)
    JobTemplate,
}

impl PodSpecPath {
    /// The JSON pointer to the pod spec.
    pub fn pointer(self) -> &'static str {
        match self {
            PodSpecPath::Pod => "/spec",
            PodSpecPath::Template => "/spec/template/spec",
            PodSpecPath::JobTemplate => "/spec/jobTemplate/spec/template/spec",
        }
    }
}

impl ResourceKind {
    /// Every governed kind.
    pub const ALL: [ResourceKind; 12] = [
        ResourceKind::Deployment,
        ResourceKind::StatefulSet,
        ResourceKind::DaemonSet,
        ResourceKind::ReplicaSet,
        ResourceKind::Pod,
        ResourceKind::Service,
        ResourceKind::ConfigMap,
        ResourceKind::Secret,
        ResourceKind::Job,
        ResourceKind::CronJob,
        ResourceKind::Namespace,
        ResourceKind::Node,
    ];

    /// The kind as Kubernetes spells it, e.g. `StatefulSet`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Deployment => "Deployment",
            ResourceKind::StatefulSet => "StatefulSet",
            ResourceKind::DaemonSet => "DaemonSet",
            ResourceKind::ReplicaSet => "ReplicaSet",
            ResourceKind::Pod => "Pod",
            ResourceKind::Service => "Service",
            ResourceKind::ConfigMap => "ConfigMap",
            ResourceKind::Secret => "Secret",
            ResourceKind::Job => "Job",
            ResourceKind::CronJob => "CronJob",
            ResourceKind::Namespace => "Namespace",
            ResourceKind::Node => "Node",
        }
    }

    /// The kinds a namespace's workloads are counted in (a budget's `workloads_percent`): the objects a team
    /// runs its software as. ReplicaSets, Jobs and Pods are left out: their controllers make them (a Deployment
    /// keeps ten old ReplicaSets), so counting them would dilute the share.
    pub const WORKLOADS: [ResourceKind; 4] = [
        ResourceKind::Deployment,
        ResourceKind::StatefulSet,
        ResourceKind::DaemonSet,
        ResourceKind::CronJob,
    ];

    /// Whether the kind is one of [`WORKLOADS`](Self::WORKLOADS) (not [`is_workload`](Self::is_workload):
    /// the kinds that roll out).
    pub fn counts_as_workload(self) -> bool {
        Self::WORKLOADS.contains(&self)
    }

    /// The kind spelt exactly `text` (as [`as_str`](Self::as_str) spells it); `None` for any other.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The API group ("" for the core group).
    pub fn group(self) -> &'static str {
        match self {
            ResourceKind::Deployment
            | ResourceKind::StatefulSet
            | ResourceKind::DaemonSet
            | ResourceKind::ReplicaSet => "apps",
            ResourceKind::Job | ResourceKind::CronJob => "batch",
            _ => "",
        }
    }

    /// The resource name in URLs and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            ResourceKind::Deployment => "deployments",
            ResourceKind::StatefulSet => "statefulsets",
            ResourceKind::DaemonSet => "daemonsets",
            ResourceKind::ReplicaSet => "replicasets",
            ResourceKind::Pod => "pods",
            ResourceKind::Service => "services",
            ResourceKind::ConfigMap => "configmaps",
            ResourceKind::Secret => "secrets",
            ResourceKind::Job => "jobs",
            ResourceKind::CronJob => "cronjobs",
            ResourceKind::Namespace => "namespaces",
            ResourceKind::Node => "nodes",
        }
    }

    /// Whether the kind's objects live in a namespace (all but Namespace and Node).
    pub fn namespaced(self) -> bool {
        !matches!(self, ResourceKind::Namespace | ResourceKind::Node)
    }

    /// Kinds whose objects roll out (and so have generation/observedGeneration and rollout status).
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            ResourceKind::Deployment | ResourceKind::StatefulSet | ResourceKind::DaemonSet | ResourceKind::ReplicaSet
        )
    }

    /// Where the kind's pod spec sits; `None` for kinds without pods.
    pub fn pod_spec(self) -> Option<PodSpecPath> {
        match self {
            ResourceKind::Pod => Some(PodSpecPath::Pod),
            ResourceKind::Deployment
            | ResourceKind::StatefulSet
            | ResourceKind::DaemonSet
            | ResourceKind::ReplicaSet
            | ResourceKind::Job => Some(PodSpecPath::Template),
            ResourceKind::CronJob => Some(PodSpecPath::JobTemplate),
            _ => None,
        }
    }

    /// The action types that make sense for a kind at all (guardrails can narrow this further).
    pub fn supports(self, action_type: ActionType) -> bool {
        use ActionType::*;
        use ResourceKind::*;
        match action_type {
            Get | List => true,
            // Namespaces and Nodes are read-only (SPEC §3).
            _ if !self.namespaced() => false,
            Scale => matches!(self, Deployment | StatefulSet | ReplicaSet),
            Restart => matches!(self, Deployment | StatefulSet | DaemonSet),
            // A Job's pod template is immutable; every other pod-carrying kind can change its image.
            SetImage => self.pod_spec().is_some() && self != Job,
            Patch | Apply | Delete => true,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
