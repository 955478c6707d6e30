//! What the object must show after each kind of change: the comparisons verification makes of the object read
//! back (or of the change's answer) with the intended state.

use serde_json::{Value, json};

use super::verify::Check;
use super::{Preview, RESTARTED_AT, container_pointer, str_at};
use crate::action::{Operation, ResourceKind};
use crate::diff;
use crate::plan::{PatchBody, PlannedCall};

/// The comparisons for each action type (DELETE is handled by `deletion_check`).
pub(super) fn intended_state_checks(preview: &Preview, object: &Value, redact: bool) -> Vec<Check> {
    let action = &preview.action;
    let mut checks = Vec::new();
    match &action.operation {
        Operation::Scale { replicas } => {
            checks.push(equal_check("/spec/replicas", json!(replicas), object));
        }
        Operation::Restart => {
            let expected = match &preview.plan.call {
                PlannedCall::Patch {
                    patch: PatchBody::Merge(patch),
                    ..
                } => patch
                    .pointer("/spec/template/metadata/annotations")
                    .and_then(|a| a.get(RESTARTED_AT))
                    .cloned()
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            };
            let pointer = format!(
                "/spec/template/metadata/annotations/{}",
                RESTARTED_AT.replace('/', "~1")
            );
            checks.push(equal_check(&pointer, expected, object));
        }
        Operation::SetImage { container, image } => match container_pointer(action.kind, object, container) {
            Some(pointer) => checks.push(equal_check(&format!("{pointer}/image"), json!(image), object)),
            None => checks.push(Check {
                field: format!("container {container}"),
                expected: json!(image),
                observed: Value::Null,
                passed: false,
            }),
        },
        Operation::Patch { patch } => {
            let mut expected = patch.clone();
            if action.kind == ResourceKind::Secret {
                string_data_as_data(&mut expected);
            }
            subset_checks("", &Value::Object(expected), Some(object), true, &mut checks)
        }
        Operation::Apply { manifest, .. } => {
            let mut expected = manifest.clone();
            if action.kind == ResourceKind::Secret {
                string_data_as_data(&mut expected);
            }
            // The object is read back at the served version; the version string itself may differ.
            expected.remove("apiVersion");
            subset_checks("", &Value::Object(expected), Some(object), false, &mut checks);
        }
        Operation::Get { .. } | Operation::List { .. } | Operation::Delete { .. } => {}
    }
    if redact {
        for check in &mut checks {
            diff::redact_secret_at(&check.field, &mut check.expected);
            diff::redact_secret_at(&check.field, &mut check.observed);
        }
    }
    checks
}

/// `stringData` is write-only: the API server stores it base64-encoded in `data`, so compare it there.
fn string_data_as_data(expected: &mut serde_json::Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(string_data)) = expected.remove("stringData") else {
        return;
    };
    let data = expected.entry("data").or_insert_with(|| json!({}));
    if let Some(data) = data.as_object_mut() {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default();
            data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

fn equal_check(pointer: &str, expected: Value, object: &Value) -> Check {
    let observed = object.pointer(pointer).cloned().unwrap_or(Value::Null);
    Check {
        field: pointer.to_owned(),
        passed: observed == expected,
        expected,
        observed,
    }
}

/// One check per leaf of `expected`: the observed object must contain it (a merge patch's `null` means absent).
fn subset_checks(prefix: &str, expected: &Value, observed: Option<&Value>, merge_nulls: bool, out: &mut Vec<Check>) {
    match expected {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                let child = observed.and_then(|o| o.get(key));
                if merge_nulls && value.is_null() {
                    out.push(Check {
                        field: pointer,
                        expected: Value::Null,
                        observed: child.cloned().unwrap_or(Value::Null),
                        passed: child.is_none(),
                    });
                } else {
                    subset_checks(&pointer, value, child, merge_nulls, out);
                }
            }
        }
        _ => out.push(Check {
            field: prefix.to_owned(),
            expected: expected.clone(),
            observed: observed.cloned().unwrap_or(Value::Null),
            passed: observed.is_some_and(|o| contains(expected, o)),
        }),
    }
}

/// Whether `observed` has everything `expected` has (the server adds defaults; lists may gain entries).
pub(crate) fn contains(expected: &Value, observed: &Value) -> bool {
    match (expected, observed) {
        (Value::Object(e), Value::Object(o)) => e.iter().all(|(k, v)| o.get(k).is_some_and(|ov| contains(v, ov))),
        (Value::Array(e), Value::Array(o)) => e.iter().all(|ev| o.iter().any(|ov| contains(ev, ov))),
        _ => expected == observed,
    }
}

/// Whether the previewed object is gone (or replaced by a new one with another uid).
pub(super) fn deletion_check(preview: &Preview, observed: Option<&Value>) -> Check {
    let previewed_uid = preview.live.as_ref().map(|l| l.uid.clone()).unwrap_or_default();
    match observed {
        None => Check {
            field: "deleted".into(),
            expected: json!(true),
            observed: json!(true),
            passed: true,
        },
        // Deleted and created again by someone: the object we deleted is gone.
        Some(object) if str_at(object, "/metadata/uid").as_deref() != Some(previewed_uid.as_str()) => Check {
            field: "deleted".into(),
            expected: json!(true),
            observed: json!({"recreated_with_uid": str_at(object, "/metadata/uid")}),
            passed: true,
        },
        Some(object) => Check {
            field: "deleted".into(),
            expected: json!(true),
            observed: json!({
                "deletionTimestamp": object.pointer("/metadata/deletionTimestamp"),
                "finalizers": object.pointer("/metadata/finalizers"),
            }),
            passed: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_checks_follow_merge_patch_semantics() {
        let live = json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"},
                          "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        let mut checks = Vec::new();
        subset_checks(
            "",
            &json!({"metadata": {"labels": {"a": "1", "gone": null}}, "data": {"k": "v"}}),
            Some(&live),
            true,
            &mut checks,
        );
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        let mut checks = Vec::new();
        subset_checks(
            "",
            &json!({"data": {"k": "other"}, "spec": {"ports": [{"port": 80}]}}),
            Some(&live),
            false,
            &mut checks,
        );
        assert_eq!(
            checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.field.as_str())
                .collect::<Vec<_>>(),
            ["/data/k"]
        );
    }
}
