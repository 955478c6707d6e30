//! What a policy decides, and the strict reading of a policy's result into it.
//!
//! Both engines (embedded Rego, external OPA) produce the same `{"outcome", "reasons"}` object; it is
//! read here, once, so that a result the gateway does not understand is an error (and fails closed),
//! never a guess.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The rule every policy must define (package `docketops.policy`, rule `decision`).
pub const ENTRY_POINT: &str = "data.docketops.policy.decision";

/// The policy id recorded for the entry point's package.
pub const DEFAULT_POLICY_ID: &str = "docketops.policy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    RequireApproval,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::RequireApproval => "require_approval",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        match text {
            "allow" => Some(Outcome::Allow),
            "deny" => Some(Outcome::Deny),
            "require_approval" => Some(Outcome::RequireApproval),
            _ => None,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One policy decision, as the `policy.decided` ledger entry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reasons: Vec<String>,
    /// The policy id: the package of the entry point, e.g. `docketops.policy`.
    pub policy: String,
    /// Which policy text decided: `sha256:<hex>` of the embedded sources (see
    /// [`crate::EmbeddedEngine::revision`]), or what the OPA client reports (see [`crate::OpaClient`]).
    pub revision: String,
    /// `dec_` + a UUID v7 in simple hex, or the `decision_id` OPA returned.
    pub decision_id: String,
    /// `sha256:<hex>` of the RFC 8785 canonical JSON of the input.
    pub input_sha256: String,
    /// `embedded` or `opa`.
    pub engine: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy produced no decision (data.docketops.policy.decision is undefined)")]
    Undefined,
    #[error("the policy's decision is malformed: {0}")]
    Malformed(String),
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
    #[error("the policy server is unavailable: {0}")]
    Unavailable(String),
    #[error("cannot load the policy: {0}")]
    Load(String),
    #[error("invalid policy engine configuration: {0}")]
    Config(String),
}

/// Reads a policy result strictly: an object with exactly `outcome` (a known outcome) and `reasons` (a
/// list of strings). Extra fields are refused too, so a typo such as `reason` is caught, not ignored.
pub fn parse_result(result: &Value) -> Result<(Outcome, Vec<String>), PolicyError> {
    let Value::Object(fields) = result else {
        return Err(PolicyError::Malformed(format!(
            "expected an object {{\"outcome\", \"reasons\"}}, got {}",
            kind_of(result)
        )));
    };
    if let Some(unknown) = fields.keys().find(|key| *key != "outcome" && *key != "reasons") {
        return Err(PolicyError::Malformed(format!(
            "unexpected field {unknown:?} (expected only \"outcome\" and \"reasons\")"
        )));
    }
    let outcome = match fields.get("outcome") {
        None => return Err(PolicyError::Malformed("the field \"outcome\" is missing".into())),
        Some(Value::String(text)) => Outcome::parse(text).ok_or_else(|| {
            PolicyError::Malformed(format!(
                "unknown outcome {text:?} (expected \"allow\", \"deny\" or \"require_approval\")"
            ))
        })?,
        Some(other) => {
            return Err(PolicyError::Malformed(format!(
                "\"outcome\" must be a string, got {}",
                kind_of(other)
            )));
        }
    };
    let reasons = match fields.get("reasons") {
        None => return Err(PolicyError::Malformed("the field \"reasons\" is missing".into())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(reason) => Ok(reason.clone()),
                other => Err(PolicyError::Malformed(format!(
                    "\"reasons\" must hold strings only, got {}",
                    kind_of(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(PolicyError::Malformed(format!(
                "\"reasons\" must be a list of strings, got {}",
                kind_of(other)
            )));
        }
    };
    Ok((outcome, reasons))
}

/// `sha256:<hex>` of the RFC 8785 canonical JSON of `input`: what `docketops ledger canonicalize --hash`
/// prints for the same document.
pub fn input_sha256(input: &Value) -> Result<String, PolicyError> {
    let canonical = serde_json_canonicalizer::to_vec(input)
        .map_err(|error| PolicyError::Evaluation(format!("the input cannot be canonicalized: {error}")))?;
    Ok(sha256_hex(&canonical))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A fresh decision id: `dec_` + UUID v7 (time-ordered) in simple hex.
pub fn new_decision_id() -> String {
    format!("dec_{}", uuid::Uuid::now_v7().simple())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strict_parsing() {
        let parsed = parse_result(&json!({"outcome": "require_approval", "reasons": ["a", "b"]}));
        assert!(matches!(parsed, Ok((Outcome::RequireApproval, ref reasons)) if reasons == &["a", "b"]));
        for bad in [
            json!(true),
            json!({"outcome": "maybe", "reasons": []}),
            json!({"outcome": "allow"}),
            json!({"reasons": []}),
            json!({"outcome": "allow", "reasons": "x"}),
            json!({"outcome": "allow", "reasons": [1]}),
            json!({"outcome": 1, "reasons": []}),
            json!({"outcome": "allow", "reasons": [], "reason": "typo"}),
        ] {
            assert!(matches!(parse_result(&bad), Err(PolicyError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn outcome_serializes_snake_case() {
        assert_eq!(json!(Outcome::RequireApproval), json!("require_approval"));
        assert!(new_decision_id().starts_with("dec_"));
        assert_eq!(new_decision_id().len(), 4 + 32);
    }
}
