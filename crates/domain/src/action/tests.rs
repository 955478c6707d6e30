//! The action model's parsing rules, one test per rule.

use serde_json::{Value, json};

use super::names::is_api_version;
use super::*;

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
fn reads_may_ask_for_the_api_servers_table() {
    let get = |params: Value| {
        parse(
            json!({"action_type": "GET", "namespace": "web", "resource_kind": "Deployment",
            "resource_name": "api", "parameters": params}),
        )
    };
    assert_eq!(
        get(json!({"as_table": true})).unwrap().operation,
        Operation::Get { table: true }
    );
    let plain = get(json!({})).unwrap();
    assert_eq!(plain.operation, Operation::Get { table: false });
    // Left out when not asked for, so actions serialize as before.
    assert_eq!(serde_json::to_value(&plain.operation).unwrap(), json!({"op": "get"}));
    assert_eq!(
        get(json!({"as_table": "yes"})).unwrap_err().field,
        "parameters.as_table"
    );
    let list = parse(
        json!({"action_type": "LIST", "namespace": "web", "resource_kind": "Pod",
        "parameters": {"as_table": true, "limit": 10}}),
    )
    .unwrap();
    assert!(
        matches!(
            list.operation,
            Operation::List {
                table: true,
                limit: 10,
                ..
            }
        ),
        "{list:?}"
    );
    let scale = parse(
        json!({"action_type": "SCALE", "namespace": "web", "resource_kind": "Deployment",
        "resource_name": "api", "parameters": {"replicas": 1, "as_table": true}}),
    );
    assert_eq!(scale.unwrap_err().field, "parameters.as_table");
}

#[test]
fn unknown_fields_types_and_kinds_are_refused_with_the_field_named() {
    let unknown_field = serde_json::from_value::<ActionRequest>(json!({"action_type": "GET", "resource_kind": "Pod",
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
    let err = parse(json!({"action_type": "DELETE", "resource_kind": "Namespace", "resource_name": "x"})).unwrap_err();
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
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}});
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
