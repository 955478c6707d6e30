//! Which actions a kubectl request is: a read is GET or LIST, `/scale` is SCALE, a create is APPLY, a delete
//! is DELETE (a PATCH has many meanings: `patch`). The parameters are the action request's, spelt as SPEC §3
//! spells them.

use std::collections::HashMap;

use domain::ActionType;
use domain::action::MAX_LIST_LIMIT;
use serde_json::{Map, Value, json};

use super::{Refusal, ResourcePath};

/// A translated request: the verb kubectl used (for the default justification) and the actions to run in
/// turn (an image patch for several containers is one SET_IMAGE per container).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `get`, `scale`, `set image`, `apply --server-side`, …
    pub verb: &'static str,
    /// Run in this order; the answer is the last one's.
    pub actions: Vec<PlannedAction>,
}

/// One action of a plan, on the request's resource kind and namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction {
    /// What the action does.
    pub action_type: ActionType,
    /// `None` for LIST.
    pub name: Option<String>,
    /// The action request's `parameters`.
    pub parameters: Map<String, Value>,
}

impl Plan {
    /// A plan of one action.
    pub fn one(
        verb: &'static str,
        action_type: ActionType,
        name: Option<&str>,
        parameters: Map<String, Value>,
    ) -> Plan {
        Plan {
            verb,
            actions: vec![PlannedAction {
                action_type,
                name: name.map(str::to_owned),
                parameters,
            }],
        }
    }

    /// `GET …/<name>` (also the read-back after a change).
    pub fn get(name: &str) -> Plan {
        Plan::get_as(name, false)
    }

    /// `GET …/<name>`, as the API server's `Table` when `table` (what `kubectl get` asks for).
    pub fn get_as(name: &str, table: bool) -> Plan {
        let mut params = Map::new();
        if table {
            params.insert("as_table".into(), json!(true));
        }
        Plan::one("get", ActionType::Get, Some(name), params)
    }

    /// The object the plan's first action names (a create takes it from the manifest).
    pub fn object_name(&self) -> Option<&str> {
        self.actions.first().and_then(|action| action.name.as_deref())
    }
}

/// `GET …/<plural>`: LIST with kubectl's selectors, page size and continue token; as the API server's
/// `Table` when `table` (what `kubectl get` asks for).
pub fn plan_list(query: &HashMap<String, String>, table: bool) -> Plan {
    let mut params = Map::new();
    for (query_name, param) in [
        ("labelSelector", "label_selector"),
        ("fieldSelector", "field_selector"),
        ("continue", "continue"),
    ] {
        if let Some(value) = query.get(query_name).filter(|v| !v.is_empty()) {
            params.insert(param.into(), json!(value));
        }
    }
    if let Some(limit) = query.get("limit").and_then(|l| l.parse::<u64>().ok()) {
        // kubectl may ask for more than a page holds; it follows the continue token for the rest.
        params.insert("limit".into(), json!(limit.clamp(1, u64::from(MAX_LIST_LIMIT))));
    }
    if table {
        params.insert("as_table".into(), json!(true));
    }
    Plan::one("list", ActionType::List, None, params)
}

/// The replica count a `Scale` body asks for.
pub fn requested_replicas(body: &[u8]) -> Result<u64, Refusal> {
    json_body(body)?
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .ok_or_else(|| Refusal::bad_request("a scale request needs spec.replicas"))
}

/// `PATCH|PUT …/<name>/scale`: SCALE.
pub fn plan_scale(name: &str, replicas: u64) -> Plan {
    let mut params = Map::new();
    params.insert("replicas".into(), json!(replicas));
    Plan::one("scale", ActionType::Scale, Some(name), params)
}

/// `POST …/<plural>` (`kubectl create`, and a client-side apply of a new object): APPLY of the body, in the
/// path's namespace.
pub fn plan_create(target: &ResourcePath, body: &[u8]) -> Result<Plan, Refusal> {
    let mut manifest = json_object(json_body(body)?)?;
    if let Some(ns) = &target.namespace {
        let metadata = manifest.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.entry("namespace").or_insert_with(|| json!(ns));
        }
    }
    let name = manifest
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::bad_request("the object needs metadata.name (generateName is not supported)"))?
        .to_owned();
    let mut params = Map::new();
    params.insert("manifest".into(), Value::Object(manifest));
    Ok(Plan::one("create", ActionType::Apply, Some(&name), params))
}

/// `PUT …/<name>` (`kubectl replace`): APPLY of the whole object with `force` (the body's fields win, as a
/// replace's do), in the path's namespace. What only the API server sets (`status`, `resourceVersion`, `uid`,
/// …) is left out of the manifest: the domain refuses it in an APPLY. The body's resourceVersion is checked
/// against the live object's first ([`check_replace_precondition`]); the executor's own precondition is then
/// the previewed resourceVersion.
pub fn plan_replace(target: &ResourcePath, name: &str, body: &[u8]) -> Result<Plan, Refusal> {
    let mut manifest = json_object(json_body(body)?)?;
    manifest.remove("status");
    let metadata = manifest.entry("metadata").or_insert_with(|| json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            metadata.remove(field);
        }
        if let Some(ns) = &target.namespace {
            metadata.entry("namespace").or_insert_with(|| json!(ns));
        }
    }
    let mut params = Map::new();
    params.insert("manifest".into(), Value::Object(manifest));
    params.insert("force".into(), json!(true));
    Ok(Plan::one("replace", ActionType::Apply, Some(name), params))
}

/// The `metadata.resourceVersion` a replace's body names (what it was read at), if any.
pub fn replace_resource_version(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    body.get("metadata")?
        .get("resourceVersion")?
        .as_str()
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A replace's optimistic concurrency: the domain's APPLY refuses `resourceVersion` in a manifest, so the
/// proxy compares the body's with the live object's (read just before) and refuses a stale one with 409
/// Conflict, as the API server would. No live object, or none named in the body: nothing to compare.
pub fn check_replace_precondition(name: &str, body: &[u8], live: Option<&Value>) -> Result<(), Refusal> {
    let Some(expected) = replace_resource_version(body) else {
        return Ok(());
    };
    let actual = live
        .and_then(|o| o.get("metadata"))
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str);
    match actual {
        Some(actual) if actual != expected => Err(Refusal::new(
            409,
            format!(
                "Operation cannot be fulfilled on {name:?}: the object has been modified; please apply your \
                 changes to the latest version and try again (resourceVersion {expected} was read, the live \
                 object is at {actual})"
            ),
        )),
        _ => Ok(()),
    }
}

/// `DELETE …/<name>`: DELETE with the propagation policy and grace period of the body's `DeleteOptions`, or
/// of the query (older clients).
pub fn plan_delete(name: &str, body: &[u8], query: &HashMap<String, String>) -> Result<Plan, Refusal> {
    let options = if body.is_empty() { json!({}) } else { json_body(body)? };
    let mut params = Map::new();
    let policy = options
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| query.get("propagationPolicy").cloned());
    if let Some(policy) = policy {
        params.insert("propagation_policy".into(), json!(policy));
    }
    let grace = options
        .get("gracePeriodSeconds")
        .and_then(Value::as_u64)
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    if let Some(grace) = grace {
        params.insert("grace_period_seconds".into(), json!(grace));
    }
    Ok(Plan::one("delete", ActionType::Delete, Some(name), params))
}

pub(super) fn json_body(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::bad_request(format!("the request body is not JSON: {e}")))
}

pub(super) fn json_object(value: Value) -> Result<Map<String, Value>, Refusal> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Refusal::bad_request("the request body must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_replace_is_a_conflict() {
        let body = br#"{"metadata": {"name": "c", "resourceVersion": "5"}}"#;
        let live = |rv: &str| json!({"metadata": {"name": "c", "resourceVersion": rv}});
        assert_eq!(check_replace_precondition("c", body, Some(&live("5"))), Ok(()));
        let refused = check_replace_precondition("c", body, Some(&live("6"))).unwrap_err();
        assert_eq!((refused.code, refused.reason), (409, "Conflict"));
        assert_eq!(
            check_replace_precondition("c", br#"{"metadata": {"name": "c"}}"#, Some(&live("6"))),
            Ok(())
        );
        assert_eq!(check_replace_precondition("c", body, None), Ok(()));
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn only(plan: &Plan) -> &PlannedAction {
        assert_eq!(plan.actions.len(), 1, "{plan:?}");
        &plan.actions[0]
    }

    #[test]
    fn a_read_is_get_or_list() {
        let get = Plan::get("api");
        assert_eq!(
            (only(&get).action_type, get.object_name()),
            (ActionType::Get, Some("api"))
        );
        let list = plan_list(
            &query(&[("labelSelector", "app=web"), ("fieldSelector", ""), ("limit", "9000")]),
            false,
        );
        let action = only(&list);
        assert_eq!(
            (list.verb, action.action_type, action.name.as_deref()),
            ("list", ActionType::List, None)
        );
        assert_eq!(
            Value::Object(action.parameters.clone()),
            json!({"label_selector": "app=web", "limit": 500})
        );
        let next = plan_list(&query(&[("continue", "abc"), ("limit", "0")]), true);
        assert_eq!(
            Value::Object(only(&next).parameters.clone()),
            json!({"continue": "abc", "limit": 1, "as_table": true})
        );
        let table = Plan::get_as("api", true);
        assert_eq!(
            Value::Object(only(&table).parameters.clone()),
            json!({"as_table": true})
        );
        assert!(only(&Plan::get("api")).parameters.is_empty());
    }

    #[test]
    fn plans_a_scale() {
        assert_eq!(requested_replicas(br#"{"spec": {"replicas": 5}}"#), Ok(5));
        let plan = plan_scale("api", 5);
        let action = only(&plan);
        assert_eq!(
            (plan.verb, action.action_type, plan.object_name()),
            ("scale", ActionType::Scale, Some("api"))
        );
        assert_eq!(action.parameters["replicas"], 5);
        for body in [&br#"{"spec": {}}"#[..], br#"{"spec": {"replicas": -1}}"#, b"not json"] {
            assert_eq!(requested_replicas(body).unwrap_err().code, 400);
        }
    }

    #[test]
    fn a_create_applies_the_body_in_the_paths_namespace() {
        let target = ResourcePath::parse("/api/v1/namespaces/web/configmaps").unwrap();
        let plan = plan_create(
            &target,
            br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#,
        )
        .unwrap();
        let action = only(&plan);
        assert_eq!(
            (plan.verb, action.action_type, plan.object_name()),
            ("create", ActionType::Apply, Some("c"))
        );
        assert_eq!(
            action.parameters["manifest"]["metadata"],
            json!({"name": "c", "namespace": "web"})
        );
        let unnamed = plan_create(&target, br#"{"metadata": {"generateName": "c-"}}"#).unwrap_err();
        assert!(unnamed.message.contains("generateName"), "{unnamed:?}");
        assert_eq!(plan_create(&target, b"[]").unwrap_err().code, 400);
        assert_eq!(plan_create(&target, b"{").unwrap_err().code, 400);
    }

    #[test]
    fn a_replace_applies_the_whole_object_with_force() {
        let target = ResourcePath::parse("/api/v1/namespaces/web/configmaps/c").unwrap();
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}, "status": {},
            "metadata": {"name": "c", "resourceVersion": "7", "uid": "u", "labels": {"x": "y"}}});
        let plan = plan_replace(&target, "c", body.to_string().as_bytes()).unwrap();
        let action = only(&plan);
        assert_eq!(
            (plan.verb, action.action_type, plan.object_name()),
            ("replace", ActionType::Apply, Some("c"))
        );
        assert_eq!(
            Value::Object(action.parameters.clone()),
            json!({"force": true, "manifest": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"},
                "metadata": {"name": "c", "namespace": "web", "labels": {"x": "y"}}}})
        );
        assert_eq!(plan_replace(&target, "c", b"[]").unwrap_err().code, 400);
    }

    #[test]
    fn a_delete_takes_its_options_from_the_body_or_the_query() {
        let body = br#"{"kind": "DeleteOptions", "propagationPolicy": "Foreground", "gracePeriodSeconds": 0}"#;
        let plan = plan_delete("api", body, &HashMap::new()).unwrap();
        let action = only(&plan);
        assert_eq!((plan.verb, action.action_type), ("delete", ActionType::Delete));
        assert_eq!(
            Value::Object(action.parameters.clone()),
            json!({"propagation_policy": "Foreground", "grace_period_seconds": 0})
        );
        let from_query = plan_delete("api", b"", &query(&[("propagationPolicy", "Orphan")])).unwrap();
        assert_eq!(
            Value::Object(only(&from_query).parameters.clone()),
            json!({"propagation_policy": "Orphan"})
        );
        assert!(
            only(&plan_delete("api", b"", &HashMap::new()).unwrap())
                .parameters
                .is_empty()
        );
        assert_eq!(plan_delete("api", b"nope", &HashMap::new()).unwrap_err().code, 400);
    }
}
