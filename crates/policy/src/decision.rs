//! What a policy decides, and the strict reading of a policy's result into it.
//!
//! Both engines (embedded Rego, external OPA) produce the same `{"outcome", "reasons"[, "approvals"]}` object; it is
//! read here, once, so that a result the gateway does not understand is an error (and fails closed),
//! never a guess.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The rule every policy must define (package `docketops.policy`, rule `decision`).
pub const ENTRY_POINT: &str = "data.docketops.policy.decision";

/// The policy id recorded for the entry point's package.
pub const DEFAULT_POLICY_ID: &str = "docketops.policy";

/// What a policy decides about an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action goes ahead.
    Allow,
    /// The action is refused.
    Deny,
    /// The action waits for human approval (see [`Decision::approvals`]).
    RequireApproval,
}

impl Outcome {
    /// The outcome as policies and the ledger spell it, e.g. `require_approval`.
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
    /// What the policy decided.
    pub outcome: Outcome,
    /// The policy's reasons, in its words (may be empty).
    pub reasons: Vec<String>,
    /// How many distinct approvers a `require_approval` outcome needs; `None` means the default of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
    /// Groups that must each give one of the approvals (a two-person rule by group: each approver counts for
    /// one group it is in); empty when the policy names none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approval_groups: Vec<String>,
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

/// Why no decision could be had; the gateway refuses the action in enforce mode (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy defines no decision for this input (no rule gave `decision` a value, or no source
    /// declares it).
    #[error("the policy produced no decision (data.docketops.policy.decision is undefined)")]
    Undefined,
    /// The result, or OPA's answer, is not a decision as the policy contract spells it.
    #[error("the policy's decision is malformed: {0}")]
    Malformed(String),
    /// Evaluation failed: a Rego error, the [`EVALUATION_TIME_LIMIT`](crate::engine::EVALUATION_TIME_LIMIT)
    /// passed, or an input that cannot be canonicalized or converted.
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
    /// The OPA server could not be reached, did not answer in time, or answered with an error status.
    #[error("the policy server is unavailable: {0}")]
    Unavailable(String),
    /// A policy file cannot be read, parsed or compiled, or the sources conflict (none given, a name given
    /// twice, two template instances in one package).
    #[error("cannot load the policy: {0}")]
    Load(String),
    /// The OPA client's URL or decision path is invalid, or its HTTP client cannot be built.
    #[error("invalid policy engine configuration: {0}")]
    Config(String),
}

/// The most approvals a policy may ask for: more than any team has approvers is a policy bug, not a rule.
pub const MAX_APPROVALS: u32 = 10;

/// What a policy's result says, read strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResult {
    /// The `outcome` field: a known outcome.
    pub outcome: Outcome,
    /// The `reasons` field: strings, in the policy's words.
    pub reasons: Vec<String>,
    /// How many distinct approvers (1 to [`MAX_APPROVALS`]); only with `require_approval`, `None` when
    /// the policy names no number.
    pub approvals: Option<u32>,
    /// The `approval_groups` field: groups that must each give one approval (at most [`MAX_APPROVALS`],
    /// repeats dropped without regard to ASCII case); only with `require_approval`, empty when absent.
    pub approval_groups: Vec<String>,
}

/// Reads a policy result strictly: an object with `outcome` (a known outcome), `reasons` (a list of
/// strings) and, with `require_approval` only, an optional `approvals` (how many distinct approvers, 1 to
/// [`MAX_APPROVALS`]) and an optional `approval_groups` (groups that must each give one approval). Extra
/// fields are refused too, so a typo such as `reason` is caught, not ignored.
pub fn parse_result(result: &Value) -> Result<PolicyResult, PolicyError> {
    let Value::Object(fields) = result else {
        return Err(PolicyError::Malformed(format!(
            "expected an object {{\"outcome\", \"reasons\"}}, got {}",
            kind_of(result)
        )));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !["outcome", "reasons", "approvals", "approval_groups"].contains(&key.as_str()))
    {
        return Err(PolicyError::Malformed(format!(
            "unexpected field {unknown:?} (expected only \"outcome\", \"reasons\", \"approvals\" and \"approval_groups\")"
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
    let approvals = match fields.get("approvals") {
        None => None,
        Some(_) if outcome != Outcome::RequireApproval => {
            return Err(PolicyError::Malformed(format!(
                "\"approvals\" only goes with \"require_approval\", not with {:?}",
                outcome.as_str()
            )));
        }
        Some(value) => match value.as_u64() {
            Some(n) if (1..=u64::from(MAX_APPROVALS)).contains(&n) => Some(n as u32),
            _ => {
                return Err(PolicyError::Malformed(format!(
                    "\"approvals\" must be a whole number from 1 to {MAX_APPROVALS}, got {value}"
                )));
            }
        },
    };
    let approval_groups = match fields.get("approval_groups") {
        None => Vec::new(),
        Some(_) if outcome != Outcome::RequireApproval => {
            return Err(PolicyError::Malformed(format!(
                "\"approval_groups\" only goes with \"require_approval\", not with {:?}",
                outcome.as_str()
            )));
        }
        Some(value) => parse_groups(value)?,
    };
    Ok(PolicyResult {
        outcome,
        reasons,
        approvals,
        approval_groups,
    })
}

/// `approval_groups`: a list of group names (1 to 256 characters each), at most [`MAX_APPROVALS`] once
/// repeats (compared without regard to ASCII case) are dropped.
fn parse_groups(value: &Value) -> Result<Vec<String>, PolicyError> {
    let malformed = || {
        PolicyError::Malformed(format!(
            "\"approval_groups\" must be a list of up to {MAX_APPROVALS} group names (1 to 256 characters), got {value}"
        ))
    };
    let Value::Array(items) = value else {
        return Err(malformed());
    };
    let mut groups: Vec<String> = Vec::new();
    for item in items {
        // The names an identity's groups can hold (1 to 256 characters, no control characters): a group no
        // identity can be in would leave the action waiting for an approver who cannot exist.
        let valid = |n: &&str| !n.trim().is_empty() && n.chars().count() <= 256 && !n.chars().any(char::is_control);
        let name = item.as_str().filter(valid).ok_or_else(malformed)?;
        if !groups.iter().any(|g| g.eq_ignore_ascii_case(name)) {
            groups.push(name.to_owned());
        }
    }
    if groups.len() > MAX_APPROVALS as usize {
        return Err(malformed());
    }
    Ok(groups)
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
    domain::ids::new(domain::ids::IdKind::Decision)
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
        let parsed = parse_result(&json!({"outcome": "require_approval", "reasons": ["a", "b"]})).unwrap();
        assert_eq!(parsed.outcome, Outcome::RequireApproval);
        assert_eq!(parsed.reasons, ["a", "b"]);
        assert_eq!(parsed.approvals, None);
        let two = parse_result(&json!({"outcome": "require_approval", "reasons": [], "approvals": 2})).unwrap();
        assert_eq!(two.approvals, Some(2));
        assert!(two.approval_groups.is_empty());
        let groups =
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": ["sre", "security", "SRE"]});
        assert_eq!(parse_result(&groups).unwrap().approval_groups, ["sre", "security"]);
        for bad in [
            json!(true),
            json!({"outcome": "maybe", "reasons": []}),
            json!({"outcome": "allow"}),
            json!({"reasons": []}),
            json!({"outcome": "allow", "reasons": "x"}),
            json!({"outcome": "allow", "reasons": [1]}),
            json!({"outcome": 1, "reasons": []}),
            json!({"outcome": "allow", "reasons": [], "reason": "typo"}),
            json!({"outcome": "allow", "reasons": [], "approvals": 2}),
            json!({"outcome": "require_approval", "reasons": [], "approvals": 0}),
            json!({"outcome": "require_approval", "reasons": [], "approvals": 11}),
            json!({"outcome": "require_approval", "reasons": [], "approvals": 1.5}),
            json!({"outcome": "require_approval", "reasons": [], "approvals": "2"}),
            json!({"outcome": "require_approval", "reasons": [], "approvals": -1}),
            json!({"outcome": "allow", "reasons": [], "approval_groups": ["sre"]}),
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": "sre"}),
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": [""]}),
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": [" "]}),
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": ["a\nb"]}),
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": [1]}),
            json!({"outcome": "require_approval", "reasons": [], "approval_groups": (0..11).map(|i| format!("g{i}")).collect::<Vec<_>>()}),
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
