//! The one rule for keeping Secret values out of records, answers and logs.
//!
//! A Secret's values are its `data` and `stringData` maps, and kubectl's last-applied annotation holds a copy
//! of them. Each is replaced by [`REDACTED`]. Three entry points share the walkers: a whole Secret object, a
//! part of one at a JSON pointer (a diff's change), and "anything that might hold one" (a request of unknown
//! shape, a tool's result).

use serde_json::Value;

/// What stands in for a withheld value.
pub const REDACTED: &str = "<redacted>";
/// kubectl's annotation holding the last applied manifest (for a Secret: a copy of its data).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Redacts a whole Secret object (also its last-applied annotation).
pub fn redact_secret(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        for field in ["data", "stringData"] {
            if let Some(values) = map.get_mut(field) {
                redact_map_values(values);
            }
        }
        if let Some(annotations) = map.get_mut("metadata").and_then(|m| m.get_mut("annotations")) {
            redact_last_applied(annotations);
        }
    }
}

/// Redacts the Secret values inside `value`, which sits at JSON pointer `path` of a Secret.
pub fn redact_secret_at(path: &str, value: &mut Value) {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        [] => redact_secret(value),
        ["data" | "stringData"] => redact_map_values(value),
        ["data" | "stringData", ..] => *value = Value::String(REDACTED.into()),
        ["metadata"] => {
            if let Some(annotations) = value.get_mut("annotations") {
                redact_last_applied(annotations);
            }
        }
        ["metadata", "annotations"] => redact_last_applied(value),
        ["metadata", "annotations", key] if *key == LAST_APPLIED.replace('/', "~1") => {
            *value = Value::String(REDACTED.into());
        }
        _ => {}
    }
}

/// What [`redact_anywhere`] does with a string that is not a last-applied annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strings {
    /// Leave it: the value is structured (a tool's result).
    Keep,
    /// Withhold it whole if it mentions `data` (any case): it may be a JSON document sent as text (a request's parameters).
    WithholdIfMentionsData,
}

/// Redacts every `data`/`stringData` object and last-applied annotation anywhere inside `value`, for
/// values whose shape is not known to be anything but possibly a Secret.
pub fn redact_anywhere(value: &mut Value, strings: Strings) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::Object(_) if key == "data" || key == "stringData" => redact_map_values(child),
                    Value::String(text) if key == LAST_APPLIED => *text = REDACTED.into(),
                    _ => redact_anywhere(child, strings),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_anywhere(item, strings)),
        Value::String(text) if strings == Strings::WithholdIfMentionsData && mentions_data(text) => {
            *text = REDACTED.into();
        }
        _ => {}
    }
}

/// `data` in any case: `stringData` holds Secret values too.
fn mentions_data(text: &str) -> bool {
    text.to_ascii_lowercase().contains("data")
}

fn redact_map_values(value: &mut Value) {
    if let Some(map) = value.as_object_mut() {
        for v in map.values_mut() {
            *v = Value::String(REDACTED.into());
        }
    }
}

fn redact_last_applied(annotations: &mut Value) {
    if let Some(v) = annotations.get_mut(LAST_APPLIED) {
        *v = Value::String(REDACTED.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_loses_its_values_and_its_last_applied_copy() {
        let mut secret = json!({"data": {"a": "c2VjcmV0"}, "stringData": {"b": "plain"},
            "metadata": {"name": "s", "annotations": {LAST_APPLIED: "{\"data\":{}}", "keep": "me"}}});
        redact_secret(&mut secret);
        assert_eq!(secret["data"]["a"], REDACTED);
        assert_eq!(secret["stringData"]["b"], REDACTED);
        assert_eq!(secret["metadata"]["annotations"][LAST_APPLIED], REDACTED);
        assert_eq!(secret["metadata"]["annotations"]["keep"], "me");
        assert_eq!(secret["metadata"]["name"], "s");
    }

    #[test]
    fn parts_of_a_secret_are_redacted_by_where_they_sit() {
        let mut one = json!("value");
        redact_secret_at("/data/key", &mut one);
        assert_eq!(one, REDACTED);
        let mut replicas = json!(3);
        redact_secret_at("/spec/replicas", &mut replicas);
        assert_eq!(replicas, 3);
    }

    #[test]
    fn anywhere_reaches_nested_data_and_withholds_text_only_when_asked() {
        let value = json!({"items": [{"data": {"k": "v"}, "note": "data: k=v", "name": "web"}]});
        let mut kept = value.clone();
        redact_anywhere(&mut kept, Strings::Keep);
        assert_eq!(kept["items"][0]["data"]["k"], REDACTED);
        assert_eq!(kept["items"][0]["note"], "data: k=v");
        let mut withheld = value;
        redact_anywhere(&mut withheld, Strings::WithholdIfMentionsData);
        assert_eq!(withheld["items"][0]["note"], REDACTED);
        assert_eq!(withheld["items"][0]["name"], "web");
        let mut text = json!({"parameters": "{\"stringData\": {\"p\": \"hunter2\"}}"});
        redact_anywhere(&mut text, Strings::WithholdIfMentionsData);
        assert_eq!(text["parameters"], REDACTED, "stringData sent as text");
    }
}
