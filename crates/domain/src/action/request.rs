//! An action request as callers send it, and the validated `Action` it becomes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::kinds::{ActionType, ResourceKind};
use super::names::{check_dns_label, check_image, check_manifest, check_object_name};

/// An action request as callers send it (SPEC §3). Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
    "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "Scale up for load test"}))]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// What to do: `GET`, `LIST`, `SCALE`, `RESTART`, `SET_IMAGE`, `PATCH`, `APPLY` or `DELETE`.
    pub action_type: String,
    /// The object's namespace: required for namespaced kinds, left out for cluster-scoped ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The kind of the target object, e.g. `Deployment`.
    pub resource_kind: String,
    /// The object's name: left out for LIST, optional for APPLY (the manifest may name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Per action type: `replicas` (SCALE); `container`, `image` (SET_IMAGE); `patch` (PATCH, a JSON merge
    /// patch); `manifest`, `force` (APPLY); `propagation_policy`, `grace_period_seconds` (DELETE);
    /// `label_selector`, `field_selector`, `limit`, `continue` (LIST); `as_table` (GET and LIST: the API
    /// server's `Table` of the objects, the columns `kubectl get` prints).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// Why the caller asks, in its own words; recorded with the action and given to policy.
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
    /// Delete the object now and its dependents in the background (the default).
    Background,
    /// Delete the dependents first, then the object.
    Foreground,
    /// Delete the object and leave its dependents.
    Orphan,
}

/// The validated, typed operation of an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Read the object.
    Get {
        /// Read it as the API server's `Table` (meta.k8s.io/v1): the columns `kubectl get` prints.
        #[serde(skip_serializing_if = "is_false")]
        table: bool,
    },
    /// List objects, one page.
    List {
        /// Read them as the API server's `Table` (meta.k8s.io/v1): the columns `kubectl get` prints.
        #[serde(skip_serializing_if = "is_false")]
        table: bool,
        /// Only objects whose labels match this label selector.
        #[serde(skip_serializing_if = "Option::is_none")]
        label_selector: Option<String>,
        /// Only objects whose fields match this field selector.
        #[serde(skip_serializing_if = "Option::is_none")]
        field_selector: Option<String>,
        /// The most objects in the page, 1 to [`MAX_LIST_LIMIT`].
        limit: u32,
        /// The `continue_token` of the previous page.
        #[serde(skip_serializing_if = "Option::is_none")]
        continue_token: Option<String>,
    },
    /// Set the replica count.
    Scale {
        /// The new count, 0 to [`MAX_REPLICAS`].
        replicas: u32,
    },
    /// Roll the workload's pods.
    Restart,
    /// Change one container's image.
    SetImage {
        /// The container's name (a DNS label).
        container: String,
        /// The new image reference.
        image: String,
    },
    /// Change the object with a JSON merge patch.
    Patch {
        /// The merge patch: not empty, and changing neither `apiVersion`, `kind` nor the object's name,
        /// namespace, uid or resourceVersion.
        patch: Map<String, Value>,
    },
    /// Create or update the object by server-side apply.
    Apply {
        /// The manifest, describing exactly the action's object (namespace filled in).
        manifest: Map<String, Value>,
        /// Take over fields another field manager owns (server-side apply's `force`).
        force: bool,
    },
    /// Delete the object.
    Delete {
        /// What happens to the object's dependents.
        propagation: Propagation,
        /// Seconds the object gets to terminate, 0 to 86400; the object's own default when `None`.
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
    /// What the action does.
    pub action_type: ActionType,
    /// The kind of the target object.
    pub kind: ResourceKind,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `None` only for LIST.
    pub name: Option<String>,
    /// The operation, with its checked parameters.
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
    /// What was wrong, in words the caller can act on.
    pub message: String,
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidAction {
    InvalidAction {
        field: field.into(),
        message: message.into(),
    }
}

impl Action {
    /// Checks a request completely and turns it into an `Action`.
    pub fn from_request(request: &ActionRequest) -> Result<Action, InvalidAction> {
        let (action_type, kind) = type_and_kind(request)?;
        // A read changes nothing, so there is nothing to preview; saying so beats silently reading.
        if request.dry_run && !action_type.is_mutation() {
            return Err(invalid(
                "dry_run",
                format!("{action_type} only reads; dry_run is for mutations (leave it out to read)"),
            ));
        }

        let namespace = namespace_of(request, kind)?;
        let name = name_of(request, action_type)?;
        let mut params = Params::new(&request.parameters);
        let operation = match action_type {
            ActionType::Get => Operation::Get {
                table: params.opt_bool("as_table")?.unwrap_or(false),
            },
            ActionType::List => {
                let limit = params.opt_u32("limit", 1, MAX_LIST_LIMIT)?.unwrap_or(MAX_LIST_LIMIT);
                Operation::List {
                    table: params.opt_bool("as_table")?.unwrap_or(false),
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
            ActionType::Patch => Operation::Patch {
                patch: patch_of(&mut params)?,
            },
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
            ActionType::Delete => delete_of(&mut params)?,
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
                    crate::redact::redact_secret(&mut value);
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

/// The action type and resource kind, known and a pair the table allows.
fn type_and_kind(request: &ActionRequest) -> Result<(ActionType, ResourceKind), InvalidAction> {
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

    Ok((action_type, kind))
}

/// The namespace: required for namespaced kinds, refused for cluster-scoped ones.
fn namespace_of(request: &ActionRequest, kind: ResourceKind) -> Result<Option<String>, InvalidAction> {
    Ok(match (kind.namespaced(), request.namespace.as_deref()) {
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
    })
}

/// The object's name: none for LIST, optional for APPLY (the manifest may name it), required otherwise.
fn name_of(request: &ActionRequest, action_type: ActionType) -> Result<Option<String>, InvalidAction> {
    Ok(match (action_type, request.resource_name.as_deref()) {
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
    })
}

/// A PATCH's merge patch: an object that cannot retarget the object it patches.
fn patch_of(params: &mut Params<'_>) -> Result<Map<String, Value>, InvalidAction> {
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
    Ok(patch)
}

/// A DELETE's propagation policy and grace period.
fn delete_of(params: &mut Params<'_>) -> Result<Operation, InvalidAction> {
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
    Ok(Operation::Delete {
        propagation,
        grace_period_seconds,
    })
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
