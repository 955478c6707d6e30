use std::path::PathBuf;

use serde_json::{Value, json};

/// A fixture under `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// A policy input in the gateway's shape (see the crate docs).
pub fn input(kind: &str, action_type: &str, risk: &str, justification: Option<&str>) -> Value {
    let id = if kind == "agent" { "agt_0001" } else { "usr_0001" };
    let read = matches!(action_type, "GET" | "LIST");
    let mut action = json!({
        "action_type": action_type,
        "namespace": "staging",
        "resource_kind": "Deployment",
        "resource_name": "web-api",
        "parameters": if action_type == "SCALE" { json!({"replicas": 5}) } else { json!({}) },
    });
    if let Some(text) = justification {
        action["justification"] = json!(text);
    }
    json!({
        "identity": {
            "id": id, "name": "ci-bot", "kind": kind, "roles": ["operator"],
            "scopes": [{"namespaces": ["staging"], "access": if read { "read" } else { "mutate" }, "kinds": ["Deployment"]}],
            "trust_score": 0,
        },
        "action": action,
        "risk": {"level": risk, "rules": ["baseline"]},
        "preview": if read { Value::Null } else { json!({"diff": [{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}]}) },
        "time": "2026-11-27T10:00:00Z",
    })
}

/// Inputs that cover the default policy's three outcomes.
pub fn sample_inputs() -> Vec<Value> {
    vec![
        input("agent", "SCALE", "MEDIUM", Some("load test")),
        input("agent", "GET", "LOW", None),
        input("human", "DELETE", "HIGH", Some("decommission")),
        input("agent", "SCALE", "HIGH", None),
        input("agent", "RESTART", "LOW", Some("   ")),
    ]
}
