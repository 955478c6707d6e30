//! What each tool takes: its parameters, deserialized strictly, and the JSON schema an agent host shows the
//! model (closed sets of kinds become enums, numbers carry their ranges).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Defines a closed set of resource kinds a tool accepts (an `enum` in the tool's JSON schema).
macro_rules! kinds {
    ($(#[$meta:meta])* $name:ident { $($(#[$attr:meta])* $kind:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        pub enum $name { $($(#[$attr])* $kind),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$kind => stringify!($kind)),+ }
            }
        }
    };
}

kinds!(
    /// The Kubernetes kind. Namespace and Node are cluster-scoped (leave `namespace` out).
    ReadableKind { Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Service, ConfigMap, Secret, Job, CronJob, Namespace, Node }
);
kinds!(
    /// The kind of the object (namespaced kinds only).
    NamespacedKind { Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Service, ConfigMap, Secret, Job, CronJob }
);
kinds!(
    /// The workload kind (default Deployment).
    #[derive(Default)]
    ScalableKind { #[default] Deployment, StatefulSet, ReplicaSet }
);
kinds!(
    /// The workload kind (default Deployment).
    #[derive(Default)]
    RestartableKind { #[default] Deployment, StatefulSet, DaemonSet }
);
kinds!(
    /// The kind of the object whose container image changes (default Deployment).
    #[derive(Default)]
    ImageKind { #[default] Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, CronJob }
);

/// How a DELETE treats the object's dependents (Kubernetes `propagationPolicy`; default Background).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    pub resource_kind: ReadableKind,
    /// The namespace; leave it out for Namespace and Node.
    pub namespace: Option<String>,
    /// The object's name.
    pub resource_name: String,
    /// Why you read it (recorded in the ledger).
    pub justification: Option<String>,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub resource_kind: ReadableKind,
    /// The namespace; leave it out for Namespace and Node.
    pub namespace: Option<String>,
    /// A Kubernetes label selector, e.g. `app=web-api`.
    pub label_selector: Option<String>,
    /// A Kubernetes field selector, e.g. `status.phase=Running`.
    pub field_selector: Option<String>,
    /// At most this many objects (1–500, default 500).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// A Kubernetes list continuation token, to read on after an earlier page.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    /// Why you list them (recorded in the ledger).
    pub justification: Option<String>,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleParams {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name, e.g. `web-api`.
    pub resource_name: String,
    /// The number of replicas wanted (0–10000; scaling to zero or by a lot is HIGH risk and waits for an approval).
    #[schemars(range(max = 10000))]
    pub replicas: u32,
    /// Why (recorded in the ledger; policy may deny a change without one).
    pub justification: String,
    #[serde(default)]
    pub resource_kind: ScalableKind,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartParams {
    /// The object's namespace.
    pub namespace: String,
    /// The workload's name.
    pub resource_name: String,
    /// Why (recorded in the ledger; policy may deny a change without one).
    pub justification: String,
    #[serde(default)]
    pub resource_kind: RestartableKind,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetImageParams {
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub resource_name: String,
    /// The container's name in the pod template.
    pub container: String,
    /// The new image reference, e.g. `registry.example/web:1.4.2`.
    pub image: String,
    /// Why (recorded in the ledger; policy may deny a change without one).
    pub justification: String,
    #[serde(default)]
    pub resource_kind: ImageKind,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchParams {
    /// The object's namespace.
    pub namespace: String,
    pub resource_kind: NamespacedKind,
    /// The object's name.
    pub resource_name: String,
    /// A JSON merge patch (RFC 7396), e.g. `{"metadata": {"labels": {"tier": "web"}}}`; it cannot change
    /// apiVersion, kind, or metadata name, namespace, uid, resourceVersion.
    pub patch: Map<String, Value>,
    /// Why (recorded in the ledger; policy may deny a change without one).
    pub justification: String,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyParams {
    /// The object's namespace.
    pub namespace: String,
    pub resource_kind: NamespacedKind,
    /// The whole object as JSON (apiVersion, kind, metadata, spec …), applied server-side.
    pub manifest: Map<String, Value>,
    /// The object's name, when the manifest's metadata has none.
    pub resource_name: Option<String>,
    /// Take over fields another field manager owns (server-side apply `force`; default false).
    pub force: Option<bool>,
    /// Why (recorded in the ledger; policy may deny a change without one).
    pub justification: String,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// The object's namespace.
    pub namespace: String,
    pub resource_kind: NamespacedKind,
    /// The object's name.
    pub resource_name: String,
    /// Why (recorded in the ledger; policy may deny a change without one).
    pub justification: String,
    pub propagation_policy: Option<Propagation>,
    /// Seconds the object's pods get to stop (0–86400).
    #[schemars(range(max = 86400))]
    pub grace_period_seconds: Option<u32>,
    /// A configured cluster's name; the gateway's default cluster when left out.
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    /// The action's id (`act_…`) from an earlier result.
    pub action_id: String,
    /// Wait up to this many seconds (0–60) for a final status before answering (use it while an action is
    /// PENDING_APPROVAL or RUNNING).
    #[schemars(range(max = 60))]
    pub wait_seconds: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// The action's id (`act_…`) from an earlier result.
    pub action_id: String,
}
