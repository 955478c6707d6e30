//! The action model (SPEC §3): action types, resource kinds, and the validated `Action` an executor runs.
//!
//! Everything here is pure: a request is parsed and checked completely (names, parameters, kind/type pairs)
//! before anything talks to Kubernetes, and every refusal says what was wrong in words a caller can act on.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a caller asks the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionType {
    Get,
    List,
    Scale,
    Restart,
    SetImage,
    Patch,
    Apply,
    Delete,
}

impl ActionType {
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

    pub fn as_str(self) -> &'static str {
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

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// GET and LIST read; every other type changes the cluster.
    pub fn is_mutation(self) -> bool {
        !matches!(self, ActionType::Get | ActionType::List)
    }

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
    Read,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Pod,
    Service,
    ConfigMap,
    Secret,
    Job,
    CronJob,
    Namespace,
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
    pub fn pointer(self) -> &'static str {
        match self {
            PodSpecPath::Pod => "/spec",
            PodSpecPath::Template => "/spec/template/spec",
            PodSpecPath::JobTemplate => "/spec/jobTemplate/spec/template/spec",
        }
    }
}

impl ResourceKind {
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

    pub fn as_str(self) -> &'static str {
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

/// An action request as callers send it (SPEC §3). Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
    "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "Scale up for load test"}))]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    pub action_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub resource_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Per action type: `replicas` (SCALE); `container`, `image` (SET_IMAGE); `patch` (PATCH, a JSON merge
    /// patch); `manifest`, `force` (APPLY); `propagation_policy`, `grace_period_seconds` (DELETE);
    /// `label_selector`, `field_selector`, `limit`, `continue` (LIST).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// Which configured cluster the action is for; the gateway's default cluster when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Preview only (mutations): guardrails, server-side dry-run, risk and policy as usual, then the
    /// answer `PREVIEWED` with what would have happened; nothing is executed or queued for approval.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// How DELETE treats the object's dependents (Kubernetes `propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// The validated, typed operation of an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    Get,
    List {
        #[serde(skip_serializing_if = "Option::is_none")]
        label_selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        field_selector: Option<String>,
        limit: u32,
        /// The `continue_token` of the previous page.
        #[serde(skip_serializing_if = "Option::is_none")]
        continue_token: Option<String>,
    },
    Scale {
        replicas: u32,
    },
    Restart,
    SetImage {
        container: String,
        image: String,
    },
    Patch {
        patch: Map<String, Value>,
    },
    Apply {
        manifest: Map<String, Value>,
        force: bool,
    },
    Delete {
        propagation: Propagation,
        #[serde(skip_serializing_if = "Option::is_none")]
        grace_period_seconds: Option<u32>,
    },
}

/// A fully validated action: every name is a valid Kubernetes name, every parameter checked.
/// Only [`Action::from_request`] makes one (`non_exhaustive` keeps other crates from building it field by
/// field and so skipping the checks that keep names safe inside URL paths).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Action {
    pub action_type: ActionType,
    pub kind: ResourceKind,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `None` only for LIST.
    pub name: Option<String>,
    pub operation: Operation,
}

/// The most replicas a SCALE may ask for; far beyond any sane request, it stops typos like 10000000.
pub const MAX_REPLICAS: u32 = 10_000;
/// The largest page a LIST returns (and the default when the caller names none).
pub const MAX_LIST_LIMIT: u32 = 500;

/// Why a request is not a valid action (HTTP 400 in the gateway).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidAction {
    /// The request field at fault, e.g. `parameters.replicas`.
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidAction {
    InvalidAction {
        field: field.into(),
        message: message.into(),
    }
}

impl Action {
    /// Checks a request completely and turns it into an `Action`.
    pub fn from_request(request: &ActionRequest) -> Result<Action, InvalidAction> {
        let action_type = ActionType::parse(&request.action_type).ok_or_else(|| {
            invalid(
                "action_type",
                format!(
                    "unknown action_type {:?}; expected one of {}",
                    request.action_type,
                    ActionType::ALL.map(|t| t.as_str()).join(", ")
                ),
            )
        })?;
        let kind = ResourceKind::parse(&request.resource_kind).ok_or_else(|| {
            invalid(
                "resource_kind",
                format!(
                    "unknown resource_kind {:?}; expected one of {}",
                    request.resource_kind,
                    ResourceKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            )
        })?;
        if !kind.supports(action_type) {
            let supported: Vec<&str> = ActionType::ALL
                .into_iter()
                .filter(|t| kind.supports(*t))
                .map(ActionType::as_str)
                .collect();
            return Err(invalid(
                "action_type",
                format!(
                    "{action_type} is not supported for {kind}; {kind} supports {}",
                    supported.join(", ")
                ),
            ));
        }

        // A read changes nothing, so there is nothing to preview; saying so beats silently reading.
        if request.dry_run && !action_type.is_mutation() {
            return Err(invalid(
                "dry_run",
                format!("{action_type} only reads; dry_run is for mutations (leave it out to read)"),
            ));
        }

        let namespace = match (kind.namespaced(), request.namespace.as_deref()) {
            (true, None | Some("")) => {
                return Err(invalid("namespace", format!("{kind} is namespaced: name a namespace")));
            }
            (true, Some(ns)) => {
                check_dns_label(ns).map_err(|m| invalid("namespace", m))?;
                Some(ns.to_owned())
            }
            (false, None | Some("")) => None,
            (false, Some(_)) => {
                return Err(invalid(
                    "namespace",
                    format!("{kind} is cluster-scoped: leave namespace out"),
                ));
            }
        };

        let name = match (action_type, request.resource_name.as_deref()) {
            (ActionType::List, None | Some("")) => None,
            (ActionType::List, Some(_)) => {
                return Err(invalid(
                    "resource_name",
                    "LIST takes no resource_name (use GET for one object)",
                ));
            }
            // APPLY may take the name from the manifest.
            (ActionType::Apply, None | Some("")) => None,
            (_, None | Some("")) => {
                return Err(invalid("resource_name", format!("{action_type} needs a resource_name")));
            }
            (_, Some(name)) => {
                check_object_name(name).map_err(|m| invalid("resource_name", m))?;
                Some(name.to_owned())
            }
        };

        let mut params = Params::new(&request.parameters);
        let operation = match action_type {
            ActionType::Get => Operation::Get,
            ActionType::List => {
                let limit = params.opt_u32("limit", 1, MAX_LIST_LIMIT)?.unwrap_or(MAX_LIST_LIMIT);
                Operation::List {
                    label_selector: params.opt_str("label_selector")?,
                    field_selector: params.opt_str("field_selector")?,
                    limit,
                    continue_token: params.opt_str("continue")?,
                }
            }
            ActionType::Scale => Operation::Scale {
                replicas: params
                    .opt_u32("replicas", 0, MAX_REPLICAS)?
                    .ok_or_else(|| invalid("parameters.replicas", "SCALE needs parameters.replicas"))?,
            },
            ActionType::Restart => Operation::Restart,
            ActionType::SetImage => {
                let container = params
                    .opt_str("container")?
                    .ok_or_else(|| invalid("parameters.container", "SET_IMAGE needs parameters.container"))?;
                check_dns_label(&container).map_err(|m| invalid("parameters.container", m))?;
                let image = params
                    .opt_str("image")?
                    .ok_or_else(|| invalid("parameters.image", "SET_IMAGE needs parameters.image"))?;
                check_image(&image).map_err(|m| invalid("parameters.image", m))?;
                Operation::SetImage { container, image }
            }
            ActionType::Patch => {
                let patch = params.opt_object("patch")?.ok_or_else(|| {
                    invalid(
                        "parameters.patch",
                        "PATCH needs parameters.patch (a JSON merge patch object)",
                    )
                })?;
                if patch.is_empty() {
                    return Err(invalid("parameters.patch", "the merge patch is empty"));
                }
                for field in ["apiVersion", "kind"] {
                    if patch.contains_key(field) {
                        return Err(invalid(
                            format!("parameters.patch.{field}"),
                            format!("a patch cannot change {field}"),
                        ));
                    }
                }
                let metadata = match patch.get("metadata") {
                    None => None,
                    Some(Value::Object(meta)) => Some(meta),
                    Some(_) => {
                        return Err(invalid("parameters.patch.metadata", "metadata must be a JSON object"));
                    }
                };
                if let Some(meta) = metadata {
                    for field in ["name", "namespace", "uid", "resourceVersion"] {
                        if meta.contains_key(field) {
                            return Err(invalid(
                                format!("parameters.patch.metadata.{field}"),
                                format!("a patch cannot set metadata.{field}"),
                            ));
                        }
                    }
                }
                Operation::Patch { patch }
            }
            ActionType::Apply => {
                let manifest = params
                    .opt_object("manifest")?
                    .ok_or_else(|| invalid("parameters.manifest", "APPLY needs parameters.manifest (an object)"))?;
                let force = params.opt_bool("force")?.unwrap_or(false);
                let (manifest, name) = check_manifest(manifest, kind, namespace.as_deref(), name.as_deref())?;
                params.finish()?;
                return Ok(Action {
                    action_type,
                    kind,
                    namespace,
                    name: Some(name),
                    operation: Operation::Apply { manifest, force },
                });
            }
            ActionType::Delete => {
                let propagation = match params.opt_str("propagation_policy")?.as_deref() {
                    None | Some("Background") => Propagation::Background,
                    Some("Foreground") => Propagation::Foreground,
                    Some("Orphan") => Propagation::Orphan,
                    Some(other) => {
                        return Err(invalid(
                            "parameters.propagation_policy",
                            format!("unknown propagation_policy {other:?}; expected Background, Foreground or Orphan"),
                        ));
                    }
                };
                let grace_period_seconds = params.opt_u32("grace_period_seconds", 0, 86_400)?;
                Operation::Delete {
                    propagation,
                    grace_period_seconds,
                }
            }
        };
        params.finish()?;
        Ok(Action {
            action_type,
            kind,
            namespace,
            name,
            operation,
        })
    }

    /// A copy with Secret values (`data`, `stringData`) replaced by `"<redacted>"`, for records and logs.
    pub fn redacted(&self) -> Action {
        let mut copy = self.clone();
        if self.kind == ResourceKind::Secret {
            match &mut copy.operation {
                Operation::Patch { patch: map } | Operation::Apply { manifest: map, .. } => {
                    let mut value = Value::Object(std::mem::take(map));
                    crate::diff::redact_secret(&mut value);
                    if let Value::Object(redacted) = value {
                        *map = redacted;
                    }
                }
                _ => {}
            }
        }
        copy
    }

    /// `kind namespace/name` for messages and logs.
    pub fn target(&self) -> String {
        let name = self.name.as_deref().unwrap_or("*");
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }
}

/// Reads parameters by name and, at the end, refuses any it did not read.
struct Params<'a> {
    map: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

impl<'a> Params<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, read: Vec::new() }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_str(&mut self, key: &'static str) -> Result<Option<String>, InvalidAction> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Err(invalid(format!("parameters.{key}"), "must not be empty")),
            Some(Value::String(s)) if s.len() > 1024 => {
                Err(invalid(format!("parameters.{key}"), "is longer than 1024 bytes"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("parameters.{key}"), "must be a string")),
        }
    }

    fn opt_u32(&mut self, key: &'static str, min: u32, max: u32) -> Result<Option<u32>, InvalidAction> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(Some(n as u32)),
                _ => Err(invalid(
                    format!("parameters.{key}"),
                    format!("must be an integer from {min} to {max}, got {value}"),
                )),
            },
        }
    }

    fn opt_bool(&mut self, key: &'static str) -> Result<Option<bool>, InvalidAction> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!("parameters.{key}"), "must be true or false")),
        }
    }

    fn opt_object(&mut self, key: &'static str) -> Result<Option<Map<String, Value>>, InvalidAction> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map.clone())),
            Some(_) => Err(invalid(format!("parameters.{key}"), "must be a JSON object")),
        }
    }

    fn finish(self) -> Result<(), InvalidAction> {
        let mut unknown: Vec<&String> = self.map.keys().filter(|k| !self.read.contains(&k.as_str())).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(first) => Err(invalid(
                format!("parameters.{first}"),
                format!(
                    "unknown parameter {first:?}; this action takes {}",
                    if self.read.is_empty() {
                        "no parameters".to_owned()
                    } else {
                        self.read.join(", ")
                    }
                ),
            )),
        }
    }
}

/// An APPLY manifest must describe exactly the action's object; returns it (namespace filled in) and its name.
fn check_manifest(
    mut manifest: Map<String, Value>,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<(Map<String, Value>, String), InvalidAction> {
    let api_version = manifest
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("parameters.manifest.apiVersion", "the manifest needs an apiVersion"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if !is_api_version(version) {
        return Err(invalid(
            "parameters.manifest.apiVersion",
            format!("{api_version:?} is not an API version (expected e.g. v1, apps/v1, batch/v1beta1)"),
        ));
    }
    if group != kind.group() {
        let expected = if kind.group().is_empty() {
            "v1".to_owned()
        } else {
            format!("{}/<version>", kind.group())
        };
        return Err(invalid(
            "parameters.manifest.apiVersion",
            format!("{api_version} is not an API version of {kind} (expected {expected})"),
        ));
    }
    match manifest.get("kind").and_then(Value::as_str) {
        Some(k) if k == kind.as_str() => {}
        other => {
            return Err(invalid(
                "parameters.manifest.kind",
                format!("the manifest's kind is {other:?}, the action's resource_kind is {kind}"),
            ));
        }
    }
    let metadata = manifest
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("parameters.manifest.metadata", "the manifest needs metadata"))?;
    let manifest_name = metadata.get("name").and_then(Value::as_str).map(str::to_owned);
    let name = match (name, manifest_name) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(
                "parameters.manifest.metadata.name",
                format!("the manifest names {b:?}, the action names {a:?}"),
            ));
        }
        (_, Some(n)) => n,
        (Some(n), None) => {
            metadata.insert("name".into(), Value::String(n.to_owned()));
            n.to_owned()
        }
        (None, None) => return Err(invalid("resource_name", "APPLY needs resource_name or metadata.name")),
    };
    check_object_name(&name).map_err(|m| invalid("parameters.manifest.metadata.name", m))?;
    match (metadata.get("namespace").and_then(Value::as_str), namespace) {
        (Some(m), Some(ns)) if m != ns => {
            return Err(invalid(
                "parameters.manifest.metadata.namespace",
                format!("the manifest's namespace is {m:?}, the action's namespace is {ns:?}"),
            ));
        }
        (_, Some(ns)) => {
            metadata.insert("namespace".into(), Value::String(ns.to_owned()));
        }
        (_, None) => {}
    }
    for field in [
        "uid",
        "resourceVersion",
        "managedFields",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        if metadata.contains_key(field) {
            return Err(invalid(
                format!("parameters.manifest.metadata.{field}"),
                format!("metadata.{field} is set by the API server; remove it from the manifest"),
            ));
        }
    }
    if manifest.contains_key("status") {
        return Err(invalid(
            "parameters.manifest.status",
            "status is written by controllers; remove it",
        ));
    }
    Ok((manifest, name))
}

/// `v1`, `v2beta1`, `v1alpha3`: the form of every Kubernetes API version (it also goes into URL paths).
fn is_api_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = &rest[digits..];
    let tail = rest.strip_prefix("alpha").or_else(|| rest.strip_prefix("beta"));
    match tail {
        None => rest.is_empty(),
        Some(number) => !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Checks a namespace name (RFC 1123 label), e.g. for RBAC manifests.
pub fn validate_namespace(name: &str) -> Result<(), String> {
    check_dns_label(name)
}

/// RFC 1123 label: namespaces and container names.
fn check_dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        ))
    }
}

/// RFC 1123 subdomain: object names. Also keeps every name safe inside a URL path.
fn check_object_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid Kubernetes object name: at most 253 characters of a-z, 0-9, '-' and '.'"
        ))
    }
}

/// A container image reference: no whitespace or control characters (the API server validates the rest).
fn check_image(image: &str) -> Result<(), String> {
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "{image:?} is not a valid image reference: it contains whitespace or control characters"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> ActionRequest {
        serde_json::from_value(value).unwrap()
    }

    fn parse(value: Value) -> Result<Action, InvalidAction> {
        Action::from_request(&request(value))
    }

    #[test]
    fn scale_request_from_the_spec_parses() {
        let action = parse(
            json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
            "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "load test"}),
        )
        .unwrap();
        assert_eq!(action.action_type, ActionType::Scale);
        assert_eq!(action.operation, Operation::Scale { replicas: 5 });
        assert_eq!(action.target(), "Deployment staging/web-api");
    }

    #[test]
    fn unknown_fields_types_and_kinds_are_refused_with_the_field_named() {
        let unknown_field =
            serde_json::from_value::<ActionRequest>(json!({"action_type": "GET", "resource_kind": "Pod",
            "namespace": "a", "resource_name": "b", "extra": 1}));
        assert!(unknown_field.unwrap_err().to_string().contains("unknown field `extra`"));

        let err = parse(json!({"action_type": "REBOOT", "resource_kind": "Pod", "namespace": "a"})).unwrap_err();
        assert_eq!(err.field, "action_type");
        assert!(err.message.contains("SET_IMAGE"), "{err}");

        let err = parse(json!({"action_type": "GET", "resource_kind": "Ingress", "namespace": "a"})).unwrap_err();
        assert_eq!(err.field, "resource_kind");

        let err = parse(
            json!({"action_type": "SCALE", "resource_kind": "Deployment", "namespace": "a",
            "resource_name": "b", "parameters": {"replicas": 2, "replica": 3}}),
        )
        .unwrap_err();
        assert_eq!(err.field, "parameters.replica");
    }

    #[test]
    fn dry_run_is_for_mutations_only() {
        let scale = json!({"action_type": "SCALE", "resource_kind": "Deployment", "namespace": "a",
            "resource_name": "b", "parameters": {"replicas": 2}, "dry_run": true});
        assert!(request(scale.clone()).dry_run);
        assert!(parse(scale).is_ok());
        assert!(!request(json!({"action_type": "GET", "resource_kind": "Pod"})).dry_run);
        let err = parse(json!({"action_type": "GET", "resource_kind": "Pod", "namespace": "a",
            "resource_name": "b", "dry_run": true}))
        .unwrap_err();
        assert_eq!(err.field, "dry_run");
        // Left out of the serialized request when false, so stored requests and digests keep their form.
        let plain = request(json!({"action_type": "GET", "resource_kind": "Node", "resource_name": "n"}));
        assert!(serde_json::to_value(&plain).unwrap().get("dry_run").is_none());
    }

    #[test]
    fn kind_and_type_pairs_follow_the_table() {
        let err = parse(
            json!({"action_type": "SCALE", "resource_kind": "ConfigMap", "namespace": "a",
            "resource_name": "b", "parameters": {"replicas": 1}}),
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("ConfigMap supports GET, LIST, PATCH, APPLY, DELETE"),
            "{err}"
        );
        let err =
            parse(json!({"action_type": "DELETE", "resource_kind": "Namespace", "resource_name": "x"})).unwrap_err();
        assert!(err.message.contains("not supported"), "{err}");
        assert!(parse(json!({"action_type": "LIST", "resource_kind": "Node"})).is_ok());
        let err = parse(json!({"action_type": "LIST", "resource_kind": "Node", "namespace": "a"})).unwrap_err();
        assert_eq!(err.field, "namespace");
        let err = parse(
            json!({"action_type": "SET_IMAGE", "resource_kind": "Job", "namespace": "a",
            "resource_name": "j", "parameters": {"container": "c", "image": "i"}}),
        )
        .unwrap_err();
        assert_eq!(err.field, "action_type");
    }

    #[test]
    fn names_that_could_escape_a_url_path_are_refused() {
        for name in [
            "../secrets",
            "a/b",
            "A",
            "web api",
            "x?dryRun=All",
            "",
            "-a",
            "a..b",
            "é",
        ] {
            let result = parse(json!({"action_type": "GET", "resource_kind": "Pod", "namespace": "ns",
                "resource_name": name}));
            assert!(result.is_err(), "{name:?} was accepted");
            let result = parse(json!({"action_type": "LIST", "resource_kind": "Pod", "namespace": name}));
            assert!(result.is_err(), "namespace {name:?} was accepted");
        }
        assert!(
            parse(json!({"action_type": "GET", "resource_kind": "Pod", "namespace": "ns",
            "resource_name": "web-1.example"}))
            .is_ok()
        );
    }

    #[test]
    fn replicas_must_be_a_bounded_integer() {
        for replicas in [json!(-1), json!(1.5), json!("3"), json!(MAX_REPLICAS + 1), json!(true)] {
            let err = parse(
                json!({"action_type": "SCALE", "resource_kind": "Deployment", "namespace": "a",
                "resource_name": "b", "parameters": {"replicas": replicas}}),
            )
            .unwrap_err();
            assert_eq!(err.field, "parameters.replicas", "{replicas}");
        }
        let err = parse(
            json!({"action_type": "SCALE", "resource_kind": "Deployment", "namespace": "a",
            "resource_name": "b"}),
        )
        .unwrap_err();
        assert!(err.message.contains("needs parameters.replicas"));
    }

    #[test]
    fn apply_manifest_must_match_the_action() {
        let manifest =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}});
        let action = parse(
            json!({"action_type": "APPLY", "resource_kind": "ConfigMap", "namespace": "ns",
            "parameters": {"manifest": manifest}}),
        )
        .unwrap();
        assert_eq!(action.name.as_deref(), Some("cfg"));
        let Operation::Apply { manifest, force } = &action.operation else {
            panic!()
        };
        assert_eq!(manifest["metadata"]["namespace"], "ns");
        assert!(!force);

        let cases = [
            (
                json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
                "apiVersion",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}),
                "kind",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}}),
                "namespace",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1"}}),
                "resourceVersion",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
                "resource_name",
            ),
            (json!({"apiVersion": "v1", "kind": "ConfigMap"}), "metadata"),
        ];
        for (manifest, field) in cases {
            let err = parse(
                json!({"action_type": "APPLY", "resource_kind": "ConfigMap", "namespace": "ns",
                "parameters": {"manifest": manifest}}),
            )
            .unwrap_err();
            assert!(err.field.ends_with(field), "{field}: {err:?}");
        }
    }

    #[test]
    fn api_versions_must_look_like_api_versions() {
        for good in ["v1", "v2beta1", "v1alpha3", "v10"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in [
            "", "v", "1", "v1?x=1", "..", "%2e", "v1beta", "vbeta1", "v1gamma1", "V1",
        ] {
            assert!(!is_api_version(bad), "{bad}");
            let err = parse(
                json!({"action_type": "APPLY", "resource_kind": "ConfigMap", "namespace": "ns",
                "parameters": {"manifest": {"apiVersion": bad, "kind": "ConfigMap", "metadata": {"name": "c"}}}}),
            )
            .unwrap_err();
            assert_eq!(err.field, "parameters.manifest.apiVersion", "{bad}");
        }
    }

    #[test]
    fn patch_cannot_retarget_the_object() {
        for patch in [
            json!({"metadata": {"name": "x"}}),
            json!({"kind": "Secret"}),
            json!({}),
            json!({"metadata": 1}),
            json!({"metadata": "x"}),
            json!({"metadata": []}),
        ] {
            let err = parse(
                json!({"action_type": "PATCH", "resource_kind": "ConfigMap", "namespace": "a",
                "resource_name": "b", "parameters": {"patch": patch}}),
            )
            .unwrap_err();
            assert!(err.field.starts_with("parameters.patch"), "{err:?}");
        }
    }
}
