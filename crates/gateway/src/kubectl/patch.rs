//! Which action a PATCH on an object is. kubectl sends a PATCH for many commands, told apart by the content
//! type and the patch's shape: server-side apply, client-side apply (the last-applied annotation), `rollout
//! restart` (only the restart annotation), `set image` (only container images), and anything else as a
//! JSON merge patch.

use domain::ActionType;
use domain::redact::LAST_APPLIED;
use executor::executor::RESTARTED_AT;
use serde_json::{Map, Value, json};

use super::plan::{json_body, json_object};
use super::{Plan, PlannedAction, Refusal};

const SERVER_SIDE_APPLY: &str = "apply --server-side";

/// The plan of `PATCH …/<name>` with header `Content-Type: content_type` and `body`; `force` is the query's
/// `force=true` (server-side apply only: take over fields other managers own).
pub fn plan_patch(name: &str, content_type: &str, force: bool, body: &[u8]) -> Result<Plan, Refusal> {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    match media_type {
        "application/apply-patch+yaml" => {
            let manifest = serde_json::from_slice::<Value>(body).map_err(|_| {
                Refusal::unsupported_media_type(
                    "the DocketOps proxy takes server-side apply bodies as JSON (kubectl sends JSON)",
                )
            })?;
            return Ok(plan_apply(name, json_object(manifest)?, SERVER_SIDE_APPLY, force));
        }
        "application/json-patch+json" => {
            return Err(Refusal::unsupported_media_type(
                "JSON patches are not supported through the DocketOps proxy; use a merge patch (kubectl patch --type merge)",
            ));
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {}
        other => {
            return Err(Refusal::unsupported_media_type(format!(
                "patch content type {other:?} is not supported through the DocketOps proxy"
            )));
        }
    }
    let strategic = media_type == "application/strategic-merge-patch+json";
    let patch = json_object(json_body(body)?)?;

    if let Some(plan) = client_side_apply(name, &patch)? {
        return Ok(plan);
    }
    if let Some(plan) = rollout_restart(name, &patch).or_else(|| set_image(name, &patch)) {
        return Ok(plan);
    }
    // Without lists or `$` directives a strategic merge patch means what a JSON merge patch means.
    if strategic && !plain_merge(&Value::Object(patch.clone())) {
        return Err(Refusal::unsupported_media_type(
            "a strategic merge patch with lists or $ directives is not supported through the DocketOps proxy; use a merge patch (kubectl patch --type merge)",
        ));
    }
    let mut params = Map::new();
    params.insert("patch".into(), Value::Object(patch));
    Ok(Plan::one("patch", ActionType::Patch, Some(name), params))
}

fn plan_apply(name: &str, manifest: Map<String, Value>, verb: &'static str, force: bool) -> Plan {
    let mut params = Map::new();
    if verb == SERVER_SIDE_APPLY && force {
        params.insert("force".into(), json!(true));
    }
    params.insert("manifest".into(), Value::Object(manifest));
    Plan::one(verb, ActionType::Apply, Some(name), params)
}

/// Client-side apply of an existing object: the last-applied annotation holds the whole new configuration.
fn client_side_apply(name: &str, patch: &Map<String, Value>) -> Result<Option<Plan>, Refusal> {
    let Some(applied) = patch
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let manifest = serde_json::from_str::<Value>(applied)
        .map_err(|e| Refusal::bad_request(format!("{LAST_APPLIED} is not JSON: {e}")))?;
    let mut manifest = json_object(manifest)?;
    // Keep the annotation, as kubectl's own apply does, so the next apply can diff against it.
    let metadata = manifest.entry("metadata").or_insert_with(|| json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(LAST_APPLIED.into(), json!(applied));
        }
    }
    Ok(Some(plan_apply(name, manifest, "apply", false)))
}

fn single(key: &str, map: &Map<String, Value>) -> bool {
    map.len() == 1 && map.contains_key(key)
}

/// The pod template of a patch that changes nothing but `spec.template`.
fn template_only(patch: &Map<String, Value>) -> Option<&Map<String, Value>> {
    patch
        .get("spec")
        .and_then(Value::as_object)
        .filter(|spec| single("template", spec))
        .and_then(|spec| spec.get("template"))
        .and_then(Value::as_object)
}

/// kubectl rollout restart: only the restart annotation of the pod template.
fn rollout_restart(name: &str, patch: &Map<String, Value>) -> Option<Plan> {
    let template = template_only(patch)?;
    let meta = template.get("metadata").and_then(Value::as_object)?;
    let annotations = meta.get("annotations").and_then(Value::as_object)?;
    let restart = single("spec", patch)
        && single("metadata", template)
        && single("annotations", meta)
        && single(RESTARTED_AT, annotations);
    restart.then(|| Plan::one("rollout restart", ActionType::Restart, Some(name), Map::new()))
}

/// kubectl set image: only container images of the pod template, one SET_IMAGE per container.
fn set_image(name: &str, patch: &Map<String, Value>) -> Option<Plan> {
    let template = template_only(patch)?;
    if !(single("spec", patch) && single("spec", template)) {
        return None;
    }
    let pod = template.get("spec").and_then(Value::as_object)?;
    // kubectl adds `$setElementOrder/containers`; the order does not change with an image.
    if !pod
        .keys()
        .all(|k| k == "containers" || k == "$setElementOrder/containers")
    {
        return None;
    }
    let containers = pod.get("containers").and_then(Value::as_array)?;
    let mut actions = Vec::new();
    for container in containers {
        let fields = container.as_object().filter(|c| c.len() == 2)?;
        let container_name = fields.get("name").and_then(Value::as_str)?;
        let image = fields.get("image").and_then(Value::as_str)?;
        let mut params = Map::new();
        params.insert("container".into(), json!(container_name));
        params.insert("image".into(), json!(image));
        actions.push(PlannedAction {
            action_type: ActionType::SetImage,
            name: Some(name.to_owned()),
            parameters: params,
        });
    }
    (!actions.is_empty()).then_some(Plan {
        verb: "set image",
        actions,
    })
}

/// A strategic merge patch without lists or `$` directives means the same as a JSON merge patch.
/// A dry run's patch without `metadata.resourceVersion`: `kubectl diff` sends the live resourceVersion as a
/// precondition, which a patch action cannot carry (its precondition is the previewed resourceVersion, and a
/// dry run changes nothing). Any other body is returned as it is.
pub fn without_resource_version(body: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(mut patch)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let Some(metadata) = patch.get_mut("metadata").and_then(Value::as_object_mut) else {
        return body.to_vec();
    };
    if metadata.remove("resourceVersion").is_none() {
        return body.to_vec();
    }
    if metadata.is_empty() {
        patch.remove("metadata");
    }
    Value::Object(patch).to_string().into_bytes()
}

fn plain_merge(value: &Value) -> bool {
    match value {
        Value::Array(_) => false,
        Value::Object(map) => map.iter().all(|(k, v)| !k.starts_with('$') && plain_merge(v)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERGE: &str = "application/merge-patch+json";
    const STRATEGIC: &str = "application/strategic-merge-patch+json";

    fn planned(content_type: &str, patch: Value) -> Result<Plan, Refusal> {
        plan_patch("api", content_type, false, patch.to_string().as_bytes())
    }

    fn types(plan: &Plan) -> Vec<ActionType> {
        plan.actions.iter().map(|a| a.action_type).collect()
    }

    #[test]
    fn a_dry_runs_precondition_is_left_out() {
        let diff = br#"{"metadata": {"resourceVersion": "7"}, "spec": {"replicas": 3}}"#;
        assert_eq!(
            serde_json::from_slice::<Value>(&without_resource_version(diff)).unwrap(),
            json!({"spec": {"replicas": 3}})
        );
        let labels = br#"{"metadata": {"resourceVersion": "7", "labels": {"a": "b"}}}"#;
        assert_eq!(
            serde_json::from_slice::<Value>(&without_resource_version(labels)).unwrap(),
            json!({"metadata": {"labels": {"a": "b"}}})
        );
        for body in [&br#"{"spec": {}}"#[..], b"not json"] {
            assert_eq!(without_resource_version(body), body);
        }
    }

    #[test]
    fn a_restart_annotation_is_a_restart() {
        let patch =
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2025-01-01T00:00:00Z"}}}}});
        let plan = planned(STRATEGIC, patch).unwrap();
        assert_eq!(
            (plan.verb, types(&plan)),
            ("rollout restart", vec![ActionType::Restart])
        );
        assert!(plan.actions[0].parameters.is_empty());
        assert_eq!(plan.object_name(), Some("api"));
        // Another annotation beside it is a patch like any other.
        let both = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "now", "team": "web"}}}}});
        assert_eq!(types(&planned(MERGE, both).unwrap()), vec![ActionType::Patch]);
    }

    #[test]
    fn an_image_only_patch_is_one_set_image_per_container() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [{"name": "web", "image": "web:2"}, {"name": "side", "image": "side:2"}]}}}});
        let plan = planned(STRATEGIC, patch).unwrap();
        assert_eq!((plan.verb, types(&plan)), ("set image", vec![ActionType::SetImage; 2]));
        assert_eq!(
            Value::Object(plan.actions[1].parameters.clone()),
            json!({"container": "side", "image": "side:2"})
        );
        // A container with more than its image changes more: a merge patch.
        let more =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2", "args": []}]}}}});
        assert_eq!(types(&planned(MERGE, more).unwrap()), vec![ActionType::Patch]);
        let none = json!({"spec": {"template": {"spec": {"containers": []}}}});
        assert_eq!(types(&planned(MERGE, none).unwrap()), vec![ActionType::Patch]);
    }

    #[test]
    fn any_other_merge_patch_is_a_patch() {
        let patch = json!({"data": {"a": "b"}});
        for content_type in [MERGE, STRATEGIC, "application/merge-patch+json; charset=utf-8"] {
            let plan = planned(content_type, patch.clone()).unwrap();
            assert_eq!((plan.verb, types(&plan)), ("patch", vec![ActionType::Patch]));
            assert_eq!(plan.actions[0].parameters["patch"], patch);
        }
        // A merge patch replaces lists, so lists are fine there; strategic ones merge them differently.
        let list = json!({"spec": {"ports": [{"port": 80}]}});
        assert_eq!(types(&planned(MERGE, list.clone()).unwrap()), vec![ActionType::Patch]);
        assert_eq!(planned(STRATEGIC, list).unwrap_err().code, 415);
        assert_eq!(planned(STRATEGIC, json!({"$patch": "replace"})).unwrap_err().code, 415);
    }

    #[test]
    fn applies_are_apply_actions() {
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api"}});
        let body = manifest.to_string();
        let server_side = plan_patch("api", "application/apply-patch+yaml", true, body.as_bytes()).unwrap();
        assert_eq!(
            (server_side.verb, types(&server_side)),
            ("apply --server-side", vec![ActionType::Apply])
        );
        assert_eq!(
            Value::Object(server_side.actions[0].parameters.clone()),
            json!({"force": true, "manifest": manifest})
        );
        let unforced = plan_patch("api", "application/apply-patch+yaml", false, body.as_bytes()).unwrap();
        assert!(!unforced.actions[0].parameters.contains_key("force"));

        let client_side = json!({"metadata": {"annotations": {LAST_APPLIED: body}}, "data": {"a": "b"}});
        let plan = plan_patch("api", STRATEGIC, true, client_side.to_string().as_bytes()).unwrap();
        assert_eq!((plan.verb, types(&plan)), ("apply", vec![ActionType::Apply]));
        let applied = &plan.actions[0].parameters;
        assert!(!applied.contains_key("force"), "force is for server-side apply only");
        assert_eq!(applied["manifest"]["metadata"]["annotations"][LAST_APPLIED], body);
        assert_eq!(applied["manifest"]["kind"], "ConfigMap");
    }

    #[test]
    fn patches_the_proxy_cannot_express_are_refused() {
        let yaml = plan_patch("api", "application/apply-patch+yaml", false, b"kind: ConfigMap").unwrap_err();
        assert_eq!((yaml.code, yaml.reason), (415, "UnsupportedMediaType"));
        assert_eq!(planned("application/json-patch+json", json!([])).unwrap_err().code, 415);
        assert_eq!(planned("text/plain", json!({})).unwrap_err().code, 415);
        assert_eq!(planned("", json!({})).unwrap_err().code, 415);
        assert_eq!(planned(MERGE, json!([1])).unwrap_err().code, 400);
        assert_eq!(plan_patch("api", MERGE, false, b"{").unwrap_err().code, 400);
        let bad_annotation = json!({"metadata": {"annotations": {LAST_APPLIED: "{"}}});
        let refusal = planned(MERGE, bad_annotation).unwrap_err();
        assert_eq!(refusal.code, 400);
        assert!(refusal.message.contains(LAST_APPLIED), "{refusal:?}");
    }

    #[test]
    fn plain_merges_have_no_lists_or_directives() {
        assert!(plain_merge(&json!({"data": {"a": "b"}})));
        assert!(!plain_merge(&json!({"spec": {"containers": []}})));
        assert!(!plain_merge(&json!({"$patch": "replace"})));
    }
}
