//! Guardrails: hard allowlists checked before any Kubernetes call, in every policy mode (SPEC §4 step 2).
//!
//! Pure functions of the configuration, the action and the caller's scopes. A refusal names the rule that
//! fired so it can be recorded and explained; it is final (policy cannot override it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::{Access, Action, ActionType, ResourceKind};

/// Namespaces no action may touch unless the operator removes them from the block list on purpose.
pub const DEFAULT_BLOCKED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// One grant of an identity (SPEC §2): which namespaces and kinds, to read or to mutate, on which clusters.
///
/// Names are exact, `"*"` matches all, and a trailing `*` matches a prefix (`team-*`). `clusters` empty (or
/// absent) means every cluster the gateway governs. A mutate scope also
/// lets its holder read the same objects (a change cannot be previewed or verified without reading);
/// a read scope never allows a mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[schema(schema_with = namespace_patterns)]
    pub namespaces: Vec<String>,
    pub access: Access,
    #[schema(schema_with = scope_kinds)]
    pub kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = names)]
    pub clusters: Vec<String>,
}

/// What `Scope::validate` requires, for the OpenAPI document: names are not empty.
fn names() -> utoipa::openapi::Array {
    let name = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1));
    utoipa::openapi::ArrayBuilder::new().items(name).build()
}

/// At least one namespace: a name, `*`, or a prefix ending in `*` (what `check_namespace_pattern` accepts).
fn namespace_patterns() -> utoipa::openapi::Array {
    let pattern = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(
            r"^(\*|[a-z0-9][-a-z0-9]{0,61}\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$",
        ));
    utoipa::openapi::ArrayBuilder::new()
        .items(pattern)
        .min_items(Some(1))
        .build()
}

/// At least one kind: `*` or a kind the gateway governs.
fn scope_kinds() -> utoipa::openapi::Array {
    let kinds = std::iter::once("*").chain(ResourceKind::ALL.map(ResourceKind::as_str));
    let kind = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(kinds));
    utoipa::openapi::ArrayBuilder::new()
        .items(kind)
        .min_items(Some(1))
        .build()
}

impl Scope {
    pub fn new(namespaces: &[&str], access: Access, kinds: &[&str]) -> Self {
        Self {
            namespaces: namespaces.iter().map(|s| (*s).to_owned()).collect(),
            access,
            kinds: kinds.iter().map(|s| (*s).to_owned()).collect(),
            clusters: Vec::new(),
        }
    }

    /// Whether this scope grants anything on `cluster`.
    pub fn covers_cluster(&self, cluster: &str) -> bool {
        self.clusters.is_empty() || self.clusters.iter().any(|pattern| matches_pattern(pattern, cluster))
    }

    /// Parses the short form `access:namespaces:kinds[:clusters]`, lists comma-separated:
    /// `mutate:staging:Deployment`, `read:*:*`, `read:team-a,team-b:Pod,Service`, `mutate:web:*:prod-eu`.
    pub fn parse_short(text: &str) -> Result<Scope, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (access, namespaces, kinds, clusters) = match parts[..] {
            [access, namespaces, kinds] => (access, namespaces, kinds, None),
            [access, namespaces, kinds, clusters] => (access, namespaces, kinds, Some(clusters)),
            _ => {
                return Err(format!(
                    "{text:?} is not a scope; expected access:namespaces:kinds[:clusters], e.g. mutate:staging:Deployment"
                ));
            }
        };
        let access = match access {
            "read" => Access::Read,
            "mutate" => Access::Mutate,
            other => {
                return Err(format!(
                    "unknown access {other:?} in scope {text:?}; expected read or mutate"
                ));
            }
        };
        let split = |list: &str| -> Vec<String> { list.split(',').map(str::trim).map(str::to_owned).collect() };
        let scope = Scope {
            namespaces: split(namespaces),
            access,
            kinds: split(kinds),
            clusters: clusters.map(split).unwrap_or_default(),
        };
        scope.validate()?;
        Ok(scope)
    }

    /// Checks names and kinds, so a typo does not silently grant nothing (or everything).
    pub fn validate(&self) -> Result<(), String> {
        if self.namespaces.is_empty() || self.namespaces.iter().any(|n| n.is_empty()) {
            return Err("a scope needs at least one namespace (or \"*\")".into());
        }
        if self.kinds.is_empty() {
            return Err("a scope needs at least one kind (or \"*\")".into());
        }
        if self.clusters.iter().any(|c| c.is_empty()) {
            return Err("a scope's cluster names cannot be empty (leave clusters out for every cluster)".into());
        }
        for namespace in &self.namespaces {
            check_namespace_pattern(namespace)?;
        }
        for kind in &self.kinds {
            if kind != "*" && ResourceKind::parse(kind).is_none() {
                return Err(format!(
                    "unknown kind {kind:?} in scope; expected \"*\" or one of {}",
                    ResourceKind::ALL.map(|k| k.as_str()).join(", ")
                ));
            }
        }
        Ok(())
    }

    fn permits(&self, access: Access, namespace: Option<&str>, kind: ResourceKind) -> bool {
        let access_ok = self.access == Access::Mutate || access == Access::Read;
        let kind_ok = self.kinds.iter().any(|k| k == "*" || k == kind.as_str());
        // Cluster-scoped objects belong to no namespace: only an all-namespaces scope reaches them.
        let namespace_ok = match namespace {
            Some(ns) => self.namespaces.iter().any(|pattern| matches_pattern(pattern, ns)),
            None => self.namespaces.iter().any(|pattern| pattern == "*"),
        };
        access_ok && kind_ok && namespace_ok
    }
}

/// A scope's namespace: a namespace name (DNS-1123 label), `*`, or a prefix of one ending in `*` (`team-*`),
/// the only forms `matches_pattern` gives a meaning; anything else (`../x`, `*kube*`) would silently grant
/// nothing or something unintended.
fn check_namespace_pattern(pattern: &str) -> Result<(), String> {
    let label_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    let ok = match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => prefix.len() < 63 && !prefix.starts_with('-') && prefix.bytes().all(label_char),
        None => crate::action::validate_namespace(pattern).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "namespace {pattern:?} in scope is not valid: expected a namespace name (at most 63 characters of a-z, \
             0-9 and '-', starting and ending with a letter or digit), \"*\" for every namespace, or a prefix \
             ending in \"*\" such as \"team-*\""
        ))
    }
}

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

/// `*` matches everything, `prefix*` a prefix, anything else itself (namespace patterns everywhere).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::ActionRequest;
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
