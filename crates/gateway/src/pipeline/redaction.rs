//! What the ledger keeps of a request: Secret values redacted, numbers it can hold, and its digest.

use domain::ResourceKind;
use domain::redact::{Strings, redact_anywhere, redact_secret};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of the request as recorded (redacted).
pub(crate) fn request_sha256(body: &Value) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(redact_request(body).to_string().as_bytes()))
    )
}

/// The request as recorded: Secret values redacted (whatever else is wrong with the request).
///
/// A valid request for a Secret has its patch or manifest redacted. Anything else that could carry Secret
/// values (another spelling of the kind, an APPLY whose manifest says `kind: Secret`, a malformed request) has
/// every `data`/`stringData` object anywhere in its parameters redacted; ConfigMap data stays readable only in
/// requests that are valid and name another kind.
pub(crate) fn redact_request(body: &Value) -> Value {
    let mut body = body.clone();
    let kind = body
        .get("resource_kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let valid_non_secret = ResourceKind::parse(&kind).is_some_and(|k| k != ResourceKind::Secret)
        && !body.to_string().to_ascii_lowercase().contains("\"kind\":\"secret\"");
    if let Some(parameters) = body.get_mut("parameters") {
        if kind == ResourceKind::Secret.as_str() {
            for key in ["patch", "manifest"] {
                if let Some(value) = parameters.get_mut(key) {
                    redact_secret(value);
                }
            }
        }
        if !valid_non_secret {
            redact_anywhere(parameters, Strings::WithholdIfMentionsData);
        }
    }
    body
}

/// The ledger keeps integers within ±(2^53−1) and no floats (SPEC §5): anything else a caller sent is
/// recorded as its JSON text, so even a malformed request can be recorded.
pub(crate) fn ledger_safe(value: Value) -> Value {
    const MAX_SAFE: u64 = ledger_core::json::MAX_SAFE_INTEGER as u64;
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i.unsigned_abs() <= MAX_SAFE => Value::Number(n),
            (_, Some(u)) if u <= MAX_SAFE => Value::Number(n),
            _ => Value::String(n.to_string()),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(ledger_safe).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, ledger_safe(v))).collect::<Map<_, _>>()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsafe_numbers_are_recorded_as_text() {
        let value = json!({"a": 1.5, "b": [9007199254740993u64, -3], "c": {"d": 9007199254740991u64}});
        assert_eq!(
            ledger_safe(value),
            json!({"a": "1.5", "b": ["9007199254740993", -3], "c": {"d": 9007199254740991u64}})
        );
    }

    #[test]
    fn secret_values_are_redacted_however_the_request_is_wrong() {
        for body in [
            json!({"resource_kind": "secret", "parameters": {"patch": {"data": {"k": "c2VjcmV0"}}}}),
            json!({"resource_kind": "ConfigMap", "parameters": {"manifest": {"kind": "Secret", "data": {"k": "c2VjcmV0"}}}}),
            json!({"resource_kind": "Secret", "parameters": {"data": {"k": "c2VjcmV0"}}}),
            json!({"resource_kind": "Secret", "parameters": "{\"data\": {\"k\": \"c2VjcmV0\"}}"}),
            json!({"resource_kind": "Sekret", "parameters": {"x": [{"stringData": {"k": "c2VjcmV0"}}]}}),
        ] {
            assert!(!redact_request(&body).to_string().contains("c2VjcmV0"), "{body}");
        }
    }

    #[test]
    fn secret_requests_are_redacted() {
        let body = json!({"resource_kind": "Secret", "parameters": {"patch": {"data": {"k": "c2VjcmV0"}}}});
        assert!(!redact_request(&body).to_string().contains("c2VjcmV0"));
        let other = json!({"resource_kind": "ConfigMap", "parameters": {"patch": {"data": {"k": "v"}}}});
        assert_eq!(redact_request(&other), other);
    }
}
