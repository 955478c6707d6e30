//! Size before effect: everything an action records is bounded before any Kubernetes call.
//!
//! A ledger entry's payload is at most [`MAX_PAYLOAD_BYTES`] (canonical JSON). The request is recorded
//! whole in `action.requested`, so a request that could not be is refused before anything else
//! ([`check_request`]). Every later entry goes through [`fit`]: parts too large for one entry (a 1 MiB pod
//! template in a diff, a big ConfigMap in a policy input) are recorded as their SHA-256 and size, so an
//! entry written after a change can never be refused for its size.

use ledger_core::entry::MAX_PAYLOAD_BYTES;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The `field` of a request refused for its size (answered 413 instead of 400).
pub(crate) const TOO_LARGE: &str = "size";
/// At most this many bytes of a request (as recorded) reach the pipeline.
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;
/// A justification is a sentence or a paragraph, not a document.
pub const MAX_JUSTIFICATION_BYTES: usize = 16 * 1024;
/// What an entry's payload may use, leaving room for what the pipeline adds (cluster, ids).
const BUDGET: usize = MAX_PAYLOAD_BYTES - 64 * 1024;
/// Strings longer than this are the first to be replaced by digests when a payload is too large.
const LONG_STRING: usize = 1024;

/// Refuses a request whose recorded form, or justification, is too large (field [`TOO_LARGE`]).
pub(crate) fn check_request(body: &Value) -> Result<(), (String, String)> {
    let justification = body.get("justification").and_then(Value::as_str).map_or(0, str::len);
    if justification > MAX_JUSTIFICATION_BYTES {
        return Err((
            TOO_LARGE.into(),
            format!("justification: {justification} bytes; at most {MAX_JUSTIFICATION_BYTES}"),
        ));
    }
    let recorded = size(&crate::pipeline::redact_request(body));
    if recorded > MAX_REQUEST_BYTES {
        return Err((
            TOO_LARGE.into(),
            format!(
                "the request is {recorded} bytes; at most {MAX_REQUEST_BYTES}, so that every entry of the action fits the ledger"
            ),
        ));
    }
    Ok(())
}

/// The payload, with its largest parts replaced by digests until it fits one entry. Small payloads
/// (nearly all) come back unchanged after one size measurement.
pub(crate) fn fit(payload: Value) -> Value {
    if size(&payload) <= BUDGET {
        return payload;
    }
    let mut payload = payload;
    digest_long_strings(&mut payload);
    let mut limit = BUDGET / 2;
    while size(&payload) > BUDGET && limit > 16 {
        digest_subtrees_over(&mut payload, limit);
        limit /= 2;
    }
    if size(&payload) > BUDGET {
        // Only a pathological shape gets here (very many tiny values): its digest is what fits.
        return json!({"payload": omitted(&payload)});
    }
    payload
}

/// The marker that stands for an omitted value: its size and the SHA-256 of its canonical JSON (RFC 8785),
/// so whoever holds the value can show it is the one the ledger meant.
pub fn omitted(value: &Value) -> Value {
    let text = ledger_core::json::canonicalize(value).unwrap_or_else(|_| value.to_string());
    json!({"omitted": "too large for a ledger entry", "bytes": text.len(),
           "sha256": format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))})
}

fn size(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |text| text.len())
}

fn digest_long_strings(value: &mut Value) {
    match value {
        Value::String(text) if text.len() > LONG_STRING => *value = omitted(value),
        Value::Array(items) => items.iter_mut().for_each(digest_long_strings),
        Value::Object(map) => map.values_mut().for_each(digest_long_strings),
        _ => {}
    }
}

/// Replaces every value larger than `limit` whose children are each within it (the smallest subtrees that
/// are still too large), keeping the structure above them.
fn digest_subtrees_over(value: &mut Value, limit: usize) {
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => return,
    };
    let mut any_large_child = false;
    for child in children {
        if size(child) > limit {
            any_large_child = true;
            match child {
                Value::Array(_) | Value::Object(_) => digest_subtrees_over(child, limit),
                _ => *child = omitted(child),
            }
        }
    }
    if !any_large_child && size(value) > limit {
        *value = omitted(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_are_unchanged() {
        let payload = json!({"a": [1, 2, {"b": "c"}], "d": "x".repeat(5000)});
        assert_eq!(fit(payload.clone()), payload);
    }

    #[test]
    fn large_payloads_fit_and_keep_small_fields() {
        let big = "y".repeat(2 * MAX_PAYLOAD_BYTES);
        let many: Vec<Value> = (0..200_000).map(|i| json!({"i": i, "s": "abcdefgh"})).collect();
        for payload in [
            json!({"execution": {"api_status": 200}, "diff": [{"path": "/data/k", "to": big}]}),
            json!({"execution": {"api_status": 200}, "diff": many}),
        ] {
            let fitted = fit(payload);
            assert!(size(&fitted) <= BUDGET, "{}", size(&fitted));
            assert_eq!(fitted["execution"]["api_status"], 200);
        }
    }

    #[test]
    fn an_omitted_value_names_its_digest() {
        let value = json!({"k": "v"});
        let marker = omitted(&value);
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(br#"{"k":"v"}"#)));
        assert_eq!(marker["sha256"], json!(expected));
        assert_eq!(marker["bytes"], 9);
    }

    #[test]
    fn oversized_requests_and_justifications_are_refused() {
        let long = json!({"justification": "j".repeat(MAX_JUSTIFICATION_BYTES + 1)});
        assert_eq!(check_request(&long).unwrap_err().0, TOO_LARGE);
        let big = json!({"resource_kind": "ConfigMap",
                         "parameters": {"manifest": {"kind": "ConfigMap", "data": {"k": "v".repeat(MAX_REQUEST_BYTES)}}}});
        assert_eq!(check_request(&big).unwrap_err().0, TOO_LARGE);
        // The same size of Secret data is recorded redacted, so it fits.
        let secret = json!({"resource_kind": "Secret",
                            "parameters": {"manifest": {"kind": "Secret", "data": {"k": "v".repeat(MAX_REQUEST_BYTES)}}}});
        assert!(check_request(&secret).is_ok());
        assert!(check_request(&json!({"justification": "ok", "parameters": {"replicas": 3}})).is_ok());
    }
}
