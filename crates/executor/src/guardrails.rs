//! Guardrails: hard allowlists checked before any Kubernetes call, in every policy mode (SPEC §4 step 2).
//!
//! Pure functions of the configuration, the action and the caller's scopes. A refusal names the rule that
//! fired so it can be recorded and explained; it is final (policy cannot override it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionType, ResourceKind};
pub use domain::scope::{Scope, matches_pattern};

/// Namespaces no action may touch unless the operator removes them from the block list on purpose.
pub const DEFAULT_BLOCKED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The guardrail configuration. `Default` is the safe default of SPEC §4 step 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guardrails {
    /// If not empty, only these namespaces (patterns as in scopes) are governed; all others are refused.
    pub allowed_namespaces: Vec<String>,
    /// Never touched, whatever the scopes say. The gateway's own namespace is added to these.
    pub blocked_namespaces: Vec<String>,
    /// The namespace the gateway runs in (blocked: an agent must not reconfigure its own governor).
    pub gateway_namespace: String,
    /// Which kinds each action type may touch; a type missing here allows every kind that supports it.
    pub kinds: BTreeMap<ActionType, Vec<ResourceKind>>,
    /// Return Secret `data`/`stringData`; off by default (reads fetch metadata only, diffs redact values).
    pub reveal_secret_data: bool,
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            allowed_namespaces: Vec::new(),
            blocked_namespaces: DEFAULT_BLOCKED_NAMESPACES.iter().map(|s| (*s).to_owned()).collect(),
            gateway_namespace: "docketops".into(),
            kinds: BTreeMap::new(),
            reveal_secret_data: false,
        }
    }
}

/// A guardrail refusal: the rule that fired and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("refused by guardrail {rule}: {message}")]
pub struct GuardrailViolation {
    /// Stable rule name: `namespace_blocked`, `namespace_not_allowed`, `kind_not_allowed`,
    /// `cluster_scoped_mutation`, `scope`.
    pub rule: &'static str,
    /// What was refused and why, for the caller.
    pub message: String,
}

fn violation(rule: &'static str, message: String) -> GuardrailViolation {
    GuardrailViolation { rule, message }
}

impl Guardrails {
    /// Whether `namespace` is governed at all (not blocked, and allowed if there is an allow list).
    pub fn check_namespace(&self, namespace: &str) -> Result<(), GuardrailViolation> {
        let blocked = self
            .blocked_namespaces
            .iter()
            .chain(std::iter::once(&self.gateway_namespace))
            .find(|pattern| matches_pattern(pattern, namespace));
        if let Some(pattern) = blocked {
            let why = if *pattern == self.gateway_namespace {
                "the gateway's own namespace"
            } else {
                "a blocked namespace"
            };
            return Err(violation(
                "namespace_blocked",
                format!("namespace {namespace:?} is {why}"),
            ));
        }
        if !self.allowed_namespaces.is_empty()
            && !self
                .allowed_namespaces
                .iter()
                .any(|pattern| matches_pattern(pattern, namespace))
        {
            return Err(violation(
                "namespace_not_allowed",
                format!(
                    "namespace {namespace:?} is not governed by this gateway (allowed: {})",
                    self.allowed_namespaces.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Every guardrail, in a fixed order; the first refusal is returned.
    pub fn check(&self, action: &Action, scopes: &[Scope]) -> Result<(), GuardrailViolation> {
        // A GET of a Namespace object is about that namespace.
        let namespace_touched = match (action.kind, &action.namespace) {
            (_, Some(ns)) => Some(ns.as_str()),
            (ResourceKind::Namespace, None) => action.name.as_deref(),
            _ => None,
        };
        if let Some(ns) = namespace_touched {
            self.check_namespace(ns)?;
        }
        if let Some(kinds) = self.kinds.get(&action.action_type)
            && !kinds.contains(&action.kind)
        {
            return Err(violation(
                "kind_not_allowed",
                format!(
                    "{} of {} is not allowed here (allowed kinds: {})",
                    action.action_type,
                    action.kind,
                    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        // The kind table already makes cluster-scoped kinds read-only; this stays as a second check in
        // case the table ever grows (no setting turns it off).
        if action.action_type.is_mutation() && !action.kind.namespaced() {
            return Err(violation(
                "cluster_scoped_mutation",
                format!("{} of cluster-scoped {} is refused", action.action_type, action.kind),
            ));
        }
        let access = action.action_type.access();
        if !scopes
            .iter()
            .any(|scope| scope.permits(access, action.namespace.as_deref(), action.kind))
        {
            let place = match &action.namespace {
                Some(ns) => format!("in namespace {ns:?}"),
                None => "cluster-wide".to_owned(),
            };
            return Err(violation(
                "scope",
                format!(
                    "no scope of the caller grants {access} access to {} {place}",
                    action.kind
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{Access, ActionRequest};
    use serde_json::json;

    fn action(value: serde_json::Value) -> Action {
        Action::from_request(&serde_json::from_value::<ActionRequest>(value).unwrap()).unwrap()
    }

    fn scale(ns: &str) -> Action {
        action(
            json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
            "resource_name": "web", "parameters": {"replicas": 2}}),
        )
    }

    fn get(ns: &str) -> Action {
        action(json!({"action_type": "GET", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web"}))
    }

    #[test]
    fn system_and_gateway_namespaces_are_blocked_by_default() {
        let guardrails = Guardrails::default();
        let all = [Scope::new(&["*"], Access::Mutate, &["*"])];
        for ns in ["kube-system", "kube-public", "kube-node-lease", "docketops"] {
            let err = guardrails.check(&scale(ns), &all).unwrap_err();
            assert_eq!(err.rule, "namespace_blocked", "{ns}");
            assert_eq!(guardrails.check(&get(ns), &all).unwrap_err().rule, "namespace_blocked");
        }
        let ns_object =
            action(json!({"action_type": "GET", "resource_kind": "Namespace", "resource_name": "kube-system"}));
        assert_eq!(
            guardrails.check(&ns_object, &all).unwrap_err().rule,
            "namespace_blocked"
        );
        assert!(guardrails.check(&scale("staging"), &all).is_ok());
    }

    #[test]
    fn allow_list_limits_the_governed_namespaces() {
        let guardrails = Guardrails {
            allowed_namespaces: vec!["staging".into(), "team-*".into()],
            ..Guardrails::default()
        };
        let all = [Scope::new(&["*"], Access::Mutate, &["*"])];
        assert!(guardrails.check(&scale("staging"), &all).is_ok());
        assert!(guardrails.check(&scale("team-blue"), &all).is_ok());
        assert_eq!(
            guardrails.check(&scale("prod"), &all).unwrap_err().rule,
            "namespace_not_allowed"
        );
    }

    #[test]
    fn a_read_scope_never_allows_a_mutation_and_a_mutate_scope_reads() {
        let guardrails = Guardrails::default();
        let read = [Scope::parse_short("read:staging:Deployment").unwrap()];
        assert!(guardrails.check(&get("staging"), &read).is_ok());
        let err = guardrails.check(&scale("staging"), &read).unwrap_err();
        assert_eq!(err.rule, "scope");
        assert!(
            err.message
                .contains("mutate access to Deployment in namespace \"staging\""),
            "{err}"
        );

        let mutate = [Scope::parse_short("mutate:staging:Deployment").unwrap()];
        assert!(guardrails.check(&scale("staging"), &mutate).is_ok());
        assert!(guardrails.check(&get("staging"), &mutate).is_ok());
        assert_eq!(guardrails.check(&scale("prod"), &mutate).unwrap_err().rule, "scope");
        let other_kind = [Scope::parse_short("mutate:staging:StatefulSet").unwrap()];
        assert_eq!(
            guardrails.check(&scale("staging"), &other_kind).unwrap_err().rule,
            "scope"
        );
        assert_eq!(guardrails.check(&scale("staging"), &[]).unwrap_err().rule, "scope");
    }

    #[test]
    fn cluster_scoped_reads_need_an_all_namespaces_scope() {
        let guardrails = Guardrails::default();
        let nodes = action(json!({"action_type": "LIST", "resource_kind": "Node"}));
        assert_eq!(
            guardrails
                .check(&nodes, &[Scope::parse_short("read:staging:*").unwrap()])
                .unwrap_err()
                .rule,
            "scope"
        );
        assert!(
            guardrails
                .check(&nodes, &[Scope::parse_short("read:*:Node").unwrap()])
                .is_ok()
        );
    }

    #[test]
    fn kinds_per_action_type_narrow_what_a_type_may_touch() {
        let mut guardrails = Guardrails::default();
        guardrails.kinds.insert(ActionType::Delete, vec![ResourceKind::Pod]);
        let all = [Scope::new(&["*"], Access::Mutate, &["*"])];
        let delete_deploy = action(
            json!({"action_type": "DELETE", "namespace": "a", "resource_kind": "Deployment",
            "resource_name": "web"}),
        );
        let err = guardrails.check(&delete_deploy, &all).unwrap_err();
        assert_eq!(err.rule, "kind_not_allowed");
        assert!(err.message.contains("allowed kinds: Pod"), "{err}");
        let delete_pod = action(
            json!({"action_type": "DELETE", "namespace": "a", "resource_kind": "Pod",
            "resource_name": "web"}),
        );
        assert!(guardrails.check(&delete_pod, &all).is_ok());
    }

    #[test]
    fn short_scopes_are_validated() {
        assert!(Scope::parse_short("write:staging:Deployment").is_err());
        assert!(Scope::parse_short("read:staging").is_err());
        assert!(
            Scope::parse_short("read:staging:Deploymnet")
                .unwrap_err()
                .contains("Deploymnet")
        );
        let scope = Scope::parse_short("read:a,b:Pod,Service").unwrap();
        assert_eq!(scope.namespaces, ["a", "b"]);
        assert_eq!(scope.kinds, ["Pod", "Service"]);
    }
}
