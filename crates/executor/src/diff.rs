//! The preview diff: what a mutation would change, live object against the server's dry-run result.
//!
//! `json-patch` computes the operations; each change also carries the old value, because an approver needs
//! to see "replicas 2 → 5", not only "replace /spec/replicas with 5". Fields the server rewrites on every
//! write (resourceVersion, managedFields, generation, status) are left out so the diff shows intent.
//! Secret values never appear: they are replaced by `"<redacted>"` unless the guardrails reveal them.

use serde::Serialize;
use serde_json::{Map, Value};

/// One changed field, at a JSON pointer (RFC 6901) into the object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `add`, `remove` or `replace`.
    pub op: &'static str,
    /// The JSON pointer of the field (empty for the whole object).
    pub path: String,
    /// The value before; `None` for `add`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The value after; `None` for `remove`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

pub use domain::redact::{LAST_APPLIED, REDACTED, redact_secret, redact_secret_at};

/// The changes from `before` (`None`: the object does not exist yet) to `after`.
pub fn changes(before: Option<&Value>, after: &Value, redact_secrets: bool) -> Vec<Change> {
    let before = before.map(comparable).unwrap_or_else(|| Value::Object(Map::new()));
    let after = comparable(after);
    let patch = json_patch::diff(&before, &after);
    let mut out: Vec<Change> = patch
        .0
        .iter()
        .filter_map(|operation| {
            use json_patch::PatchOperation as Op;
            let (op, path) = match operation {
                Op::Add(add) => ("add", add.path.to_string()),
                Op::Remove(remove) => ("remove", remove.path.to_string()),
                Op::Replace(replace) => ("replace", replace.path.to_string()),
                // `diff` only produces the three above.
                _ => return None,
            };
            Some(Change {
                op,
                from: if op == "add" {
                    None
                } else {
                    before.pointer(&path).cloned()
                },
                to: if op == "remove" {
                    None
                } else {
                    after.pointer(&path).cloned()
                },
                path,
            })
        })
        .collect();
    if redact_secrets {
        for change in &mut out {
            for value in [change.from.as_mut(), change.to.as_mut()].into_iter().flatten() {
                redact_secret_at(&change.path, value);
            }
        }
    }
    out
}

/// The object without the fields the server rewrites on every write.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for volatile in [
                "resourceVersion",
                "managedFields",
                "generation",
                "creationTimestamp",
                "uid",
                "selfLink",
            ] {
                meta.remove(volatile);
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scale_diff_shows_old_and_new_replicas_without_volatile_fields() {
        let live = json!({"metadata": {"name": "web", "resourceVersion": "10", "generation": 1},
                          "spec": {"replicas": 2}, "status": {"replicas": 2}});
        let dry = json!({"metadata": {"name": "web", "resourceVersion": "11", "generation": 2},
                         "spec": {"replicas": 5}, "status": {"replicas": 2}});
        assert_eq!(
            changes(Some(&live), &dry, false),
            [Change {
                op: "replace",
                path: "/spec/replicas".into(),
                from: Some(json!(2)),
                to: Some(json!(5))
            }]
        );
    }

    #[test]
    fn creation_is_one_add_per_top_level_field() {
        let after = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let diff = changes(None, &after, false);
        assert!(diff.iter().all(|c| c.op == "add"));
        assert!(
            diff.iter()
                .any(|c| c.path == "/data" && c.to == Some(json!({"k": "v"})))
        );
    }

    #[test]
    fn secret_values_are_redacted_wherever_they_appear() {
        let live = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "c2VjcmV0"}});
        let after = json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {LAST_APPLIED: "{\"data\":{\"password\":\"bmV3\"}}"}},
                           "data": {"password": "bmV3", "token": "dG9r"}});
        let diff = changes(Some(&live), &after, true);
        let text = serde_json::to_string(&diff).unwrap();
        for secret in ["c2VjcmV0", "bmV3", "dG9r"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(
            diff.iter().any(|c| c.path == "/data/password" && c.op == "replace"),
            "{text}"
        );
        let created = changes(None, &after, true);
        assert!(!serde_json::to_string(&created).unwrap().contains("bmV3"));
        // Without redaction (revealed by configuration) the values are there.
        assert!(
            serde_json::to_string(&changes(Some(&live), &after, false))
                .unwrap()
                .contains("bmV3")
        );
    }
}
