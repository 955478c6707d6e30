//! The request a mutation sends: planned once from the action and what was read of the live object, then
//! sent twice (server-side dry-run for the preview, then for real) so that execution sends exactly what was
//! previewed.

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use serde_json::{Value, json};

use crate::action::{Action, Operation, Propagation};
use crate::diff;
use crate::error::ExecError;
use crate::executor::{FIELD_MANAGER, PlannedRequest, RESTARTED_AT, container_names, container_pointer};
use crate::kube::{KubeConnection, ResourcePath};

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) path: ResourcePath,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) call: PlannedCall,
}

#[derive(Debug, Clone)]
pub(crate) enum PlannedCall {
    Patch {
        subresource: Option<&'static str>,
        patch: PatchBody,
        params: PatchParams,
    },
    Delete(DeleteParams),
}

/// The patch forms the executor sends.
#[derive(Debug, Clone)]
pub(crate) enum PatchBody {
    /// RFC 7386 JSON merge patch.
    Merge(Value),
    /// Server-side apply.
    Apply(Value),
}

impl PatchBody {
    fn to_kube(&self) -> Patch<Value> {
        match self {
            PatchBody::Merge(v) => Patch::Merge(v.clone()),
            PatchBody::Apply(v) => Patch::Apply(v.clone()),
        }
    }

    fn content_type(&self) -> &'static str {
        match self {
            PatchBody::Merge(_) => "application/merge-patch+json",
            PatchBody::Apply(_) => "application/apply-patch+yaml",
        }
    }
}

/// What a plan is made from besides the action.
pub(crate) struct Basis<'a> {
    /// The live object, when it was read first (SET_IMAGE and DELETE need it; APPLY may create).
    pub(crate) live: Option<&'a Value>,
    /// The precondition sent with the change; `None` sends none (an APPLY that creates, or a speculative
    /// dry-run whose base the caller compares with the live read afterwards).
    pub(crate) resource_version: Option<&'a str>,
    /// The restart annotation's value, fixed once per preview so the dry-run and the change agree.
    pub(crate) restarted_at: &'a str,
}

/// Whether the request can only be planned from the live object (else the dry-run may run beside the read).
pub(crate) fn needs_live(operation: &Operation) -> bool {
    !matches!(
        operation,
        Operation::Scale { .. } | Operation::Restart | Operation::Patch { .. }
    )
}

/// `patch` with `metadata.resourceVersion` set when there is one (the precondition of a merge patch).
fn with_precondition(mut patch: Value, resource_version: Option<&str>) -> Value {
    if let (Some(rv), Some(object)) = (resource_version, patch.as_object_mut()) {
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
    }
    patch
}

fn merge(subresource: Option<&'static str>, patch: Value) -> PlannedCall {
    PlannedCall::Patch {
        subresource,
        patch: PatchBody::Merge(patch),
        params: PatchParams::default(),
    }
}

/// The call for `action` at `discovered`, on `basis`. APPLY goes to the manifest's own API version.
pub(crate) fn planned_call(
    kube: &KubeConnection,
    action: &Action,
    discovered: ResourcePath,
    basis: &Basis<'_>,
) -> Result<(ResourcePath, PlannedCall), ExecError> {
    let rv = basis.resource_version;
    let call = match &action.operation {
        Operation::Scale { replicas } => merge(
            Some("scale"),
            with_precondition(json!({"spec": {"replicas": replicas}}), rv),
        ),
        Operation::Restart => merge(
            None,
            with_precondition(
                json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: basis.restarted_at}}}}}),
                rv,
            ),
        ),
        Operation::SetImage { container, image } => {
            let live = basis.live.expect("SET_IMAGE is planned from the live object");
            merge(None, set_image_patch(action, live, container, image, rv)?)
        }
        // `Action::from_request` made sure metadata, if present, is an object.
        Operation::Patch { patch } => merge(None, with_precondition(Value::Object(patch.clone()), rv)),
        Operation::Apply { manifest, force } => {
            let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
            let mut body = Value::Object(manifest.clone());
            if let Some(rv) = rv {
                body["metadata"]["resourceVersion"] = json!(rv);
            }
            let mut params = PatchParams::apply(FIELD_MANAGER);
            params.force = *force;
            let call = PlannedCall::Patch {
                subresource: None,
                patch: PatchBody::Apply(body),
                params,
            };
            return Ok((kube.resource_at(action.kind, api_version), call));
        }
        Operation::Delete {
            propagation,
            grace_period_seconds,
        } => {
            let live = basis.live.expect("DELETE is planned from the live object");
            let uid = live
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            PlannedCall::Delete(DeleteParams {
                dry_run: false,
                grace_period_seconds: *grace_period_seconds,
                propagation_policy: Some(match propagation {
                    Propagation::Background => PropagationPolicy::Background,
                    Propagation::Foreground => PropagationPolicy::Foreground,
                    Propagation::Orphan => PropagationPolicy::Orphan,
                }),
                preconditions: Some(Preconditions {
                    resource_version: rv.map(str::to_owned),
                    uid: Some(uid.to_owned()),
                }),
            })
        }
        Operation::Get { .. } | Operation::List { .. } => unreachable!("reads are not planned"),
    };
    Ok((discovered, call))
}

/// A merge patch replaces lists whole: the live list with the one image changed. The resourceVersion
/// precondition makes sure the list is still the one read (409 otherwise).
fn set_image_patch(
    action: &Action,
    live: &Value,
    container: &str,
    image: &str,
    rv: Option<&str>,
) -> Result<Value, ExecError> {
    let pointer = container_pointer(action.kind, live, container).ok_or_else(|| {
        ExecError::Target(format!(
            "{} has no container named {container:?} (containers: {})",
            action.target(),
            container_names(action.kind, live).join(", ")
        ))
    })?;
    let (list_pointer, index) = pointer.rsplit_once('/').expect("container pointer");
    let mut containers = live.pointer(list_pointer).cloned().unwrap_or_default();
    containers[index.parse::<usize>().expect("index")]["image"] = json!(image);
    let mut patch = json!({});
    let mut cursor = &mut patch;
    for segment in list_pointer.trim_start_matches('/').split('/') {
        cursor = &mut cursor[segment];
    }
    *cursor = containers;
    Ok(with_precondition(patch, rv))
}

impl Plan {
    pub(crate) fn request(&self, dry_run: bool) -> Result<http::Request<Vec<u8>>, ExecError> {
        let request = self.path.request(self.namespace.as_deref());
        match &self.call {
            PlannedCall::Patch {
                subresource,
                patch,
                params,
            } => {
                let mut params = params.clone();
                params.dry_run = dry_run;
                match subresource {
                    Some(sub) => request.patch_subresource(sub, &self.name, &params, &patch.to_kube()),
                    None => request.patch(&self.name, &params, &patch.to_kube()),
                }
            }
            PlannedCall::Delete(params) => {
                let mut params = params.clone();
                params.dry_run = dry_run;
                request.delete(&self.name, &params)
            }
        }
        .map_err(|e| ExecError::client(e.to_string()))
    }

    pub(crate) fn describe(&self, redact: bool) -> PlannedRequest {
        let mut path = format!("{}/{}", self.path.collection(self.namespace.as_deref()), self.name);
        match &self.call {
            PlannedCall::Patch { subresource, patch, .. } => {
                if let Some(sub) = subresource {
                    path = format!("{path}/{sub}");
                }
                let mut body = match patch {
                    PatchBody::Apply(v) | PatchBody::Merge(v) => v.clone(),
                };
                if redact {
                    diff::redact_secret(&mut body);
                }
                PlannedRequest {
                    method: "PATCH",
                    path,
                    content_type: Some(patch.content_type().to_owned()),
                    body,
                }
            }
            PlannedCall::Delete(params) => PlannedRequest {
                method: "DELETE",
                path,
                content_type: None,
                body: serde_json::to_value(params).unwrap_or(Value::Null),
            },
        }
    }
}
