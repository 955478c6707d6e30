//! Risk classification: LOW, MEDIUM or HIGH for an action, with the rules that fired.
//!
//! A baseline comes first (reads LOW, mutations MEDIUM); rules can only raise it, so a configuration
//! mistake can make an action look riskier, never safer than the baseline. The classification is a
//! function of the action, the configuration and what the preview saw (current replicas), all of which
//! the ledger records, so it can be recomputed.

use std::collections::BTreeMap;

use domain::matches_pattern;
use domain::{Action, ActionType, Operation, ResourceKind};
use serde::{Deserialize, Serialize};

/// How risky an action is; ordered, so the highest of several levels is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RiskLevel {
    /// The baseline for reads.
    Low,
    /// The baseline for mutations.
    Medium,
    /// Only a rule raises an action to it; the default policy then requires an approval.
    High,
}

impl RiskLevel {
    /// The level as the ledger and policies spell it, e.g. `HIGH`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "LOW",
            RiskLevel::Medium => "MEDIUM",
            RiskLevel::High => "HIGH",
        }
    }
}

/// Facts about the target the preview found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RiskContext {
    /// `spec.replicas` before a SCALE.
    pub current_replicas: Option<u32>,
    /// The cluster the action is for (rules may name clusters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// One rule: every condition given must hold (an empty list means "any").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRule {
    /// Stable name, recorded when the rule fires.
    pub id: String,
    /// The level an action gets, at least, when the rule fires.
    pub level: RiskLevel,
    /// Why the rule exists, recorded with it.
    pub reason: String,
    /// Only these action types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action_types: Vec<ActionType>,
    /// Only these kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ResourceKind>,
    /// Namespace tiers (names from `RiskConfig::tiers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_tiers: Vec<String>,
    /// Namespace patterns: exact, `*`, or a prefix ending in `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Cluster name patterns (as namespaces), e.g. `["prod-*"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Only mutations (not GET/LIST).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mutations_only: bool,
    /// SCALE to zero replicas.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scale_to_zero: bool,
    /// SCALE by at least this many replicas, up or down (needs the current count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_change: Option<u32>,
    /// SCALE up to at least this multiple of the current count (needs a current count above zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_factor: Option<u32>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The risk configuration; `Default` is the shipped rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Tier name → namespace patterns, e.g. `production = ["prod", "prod-*"]`.
    pub tiers: BTreeMap<String, Vec<String>>,
    /// The rules; an action's level is the highest of the baseline and every rule that fires.
    pub rules: Vec<RiskRule>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        let rule = |id: &str, level, reason: &str| RiskRule {
            id: id.into(),
            level,
            reason: reason.into(),
            action_types: Vec::new(),
            kinds: Vec::new(),
            namespace_tiers: Vec::new(),
            namespaces: Vec::new(),
            clusters: Vec::new(),
            mutations_only: false,
            scale_to_zero: false,
            min_replica_change: None,
            min_replica_factor: None,
        };
        let high = RiskLevel::High;
        Self {
            tiers: BTreeMap::from([(
                "production".to_owned(),
                ["prod", "prod-*", "production", "production-*"]
                    .map(str::to_owned)
                    .to_vec(),
            )]),
            rules: vec![
                RiskRule {
                    action_types: vec![ActionType::Delete],
                    ..rule("delete", high, "deletes an object")
                },
                RiskRule {
                    action_types: vec![ActionType::Scale],
                    scale_to_zero: true,
                    ..rule("scale-to-zero", high, "scales a workload to zero replicas")
                },
                RiskRule {
                    action_types: vec![ActionType::Scale],
                    min_replica_change: Some(10),
                    ..rule("large-replica-change", high, "changes the replica count by 10 or more")
                },
                RiskRule {
                    action_types: vec![ActionType::Scale],
                    min_replica_factor: Some(3),
                    ..rule(
                        "replica-multiplier",
                        high,
                        "scales up to three times the current replicas or more",
                    )
                },
                RiskRule {
                    namespace_tiers: vec!["production".into()],
                    mutations_only: true,
                    ..rule("production-namespace", high, "changes a production namespace")
                },
                RiskRule {
                    kinds: vec![ResourceKind::Secret],
                    mutations_only: true,
                    ..rule("secret-change", high, "changes a Secret")
                },
            ],
        }
    }
}

/// A rule that fired (the baseline is recorded as the rule `baseline`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiredRule {
    /// The rule's id, or `baseline`.
    pub id: String,
    /// The level the rule gives.
    pub level: RiskLevel,
    /// Why, as the rule says.
    pub reason: String,
}

/// The result, as the `risk.classified` entry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// The highest level among the fired rules.
    pub level: RiskLevel,
    /// The baseline first, then every configured rule that fired, in configuration order.
    pub rules: Vec<FiredRule>,
    /// The facts the classification used.
    pub context: RiskContext,
}

/// A classification is recorded as it is, as `risk.classified`.
impl domain::payload::Payload for Classification {
    fn kind(&self) -> domain::EntryKind {
        domain::EntryKind::RiskClassified
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("risk rule {rule:?}: {message}")]
pub struct InvalidRiskConfig {
    /// The id of the rule at fault.
    pub rule: String,
    /// What is wrong with it.
    pub message: String,
}

impl RiskConfig {
    /// Refuses rules that could never fire as written (unknown tiers, duplicate ids, no condition at all).
    pub fn validate(&self) -> Result<(), InvalidRiskConfig> {
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.rules {
            let fail = |message: String| InvalidRiskConfig {
                rule: rule.id.clone(),
                message,
            };
            if rule.id.is_empty() || !seen.insert(rule.id.as_str()) {
                return Err(fail("every rule needs a unique, non-empty id".into()));
            }
            if let Some(tier) = rule.namespace_tiers.iter().find(|t| !self.tiers.contains_key(*t)) {
                return Err(fail(format!("unknown namespace tier {tier:?}")));
            }
            let scale_conditions =
                rule.scale_to_zero || rule.min_replica_change.is_some() || rule.min_replica_factor.is_some();
            let has_condition = scale_conditions
                || rule.mutations_only
                || !rule.action_types.is_empty()
                || !rule.kinds.is_empty()
                || !rule.namespace_tiers.is_empty()
                || !rule.namespaces.is_empty()
                || !rule.clusters.is_empty();
            if !has_condition {
                return Err(fail("a rule needs at least one condition".into()));
            }
            if scale_conditions && rule.action_types.iter().any(|t| *t != ActionType::Scale) {
                return Err(fail("replica conditions only apply to SCALE".into()));
            }
        }
        Ok(())
    }

    /// Classifies `action`: the baseline (reads LOW, mutations MEDIUM), raised by every rule that matches it
    /// and `context`.
    pub fn classify(&self, action: &Action, context: RiskContext) -> Classification {
        let baseline = if action.action_type.is_mutation() {
            FiredRule {
                id: "baseline".into(),
                level: RiskLevel::Medium,
                reason: "every mutation is at least MEDIUM".into(),
            }
        } else {
            FiredRule {
                id: "baseline".into(),
                level: RiskLevel::Low,
                reason: "reads are LOW".into(),
            }
        };
        let mut fired = vec![baseline];
        fired.extend(
            self.rules
                .iter()
                .filter(|rule| self.matches(rule, action, &context))
                .map(|rule| FiredRule {
                    id: rule.id.clone(),
                    level: rule.level,
                    reason: rule.reason.clone(),
                }),
        );
        let level = fired.iter().map(|f| f.level).max().unwrap_or(RiskLevel::Low);
        Classification {
            level,
            rules: fired,
            context,
        }
    }

    fn matches(&self, rule: &RiskRule, action: &Action, context: &RiskContext) -> bool {
        if rule.mutations_only && !action.action_type.is_mutation() {
            return false;
        }
        if !rule.clusters.is_empty()
            && !context
                .cluster
                .as_deref()
                .is_some_and(|cluster| rule.clusters.iter().any(|p| matches_pattern(p, cluster)))
        {
            return false;
        }
        if !rule.action_types.is_empty() && !rule.action_types.contains(&action.action_type) {
            return false;
        }
        if !rule.kinds.is_empty() && !rule.kinds.contains(&action.kind) {
            return false;
        }
        let namespace = action.namespace.as_deref();
        if !rule.namespaces.is_empty()
            && !namespace.is_some_and(|ns| rule.namespaces.iter().any(|p| matches_pattern(p, ns)))
        {
            return false;
        }
        if !rule.namespace_tiers.is_empty() {
            let in_tier = namespace.is_some_and(|ns| {
                rule.namespace_tiers
                    .iter()
                    .filter_map(|tier| self.tiers.get(tier))
                    .flatten()
                    .any(|pattern| matches_pattern(pattern, ns))
            });
            if !in_tier {
                return false;
            }
        }
        let scale_conditions =
            rule.scale_to_zero || rule.min_replica_change.is_some() || rule.min_replica_factor.is_some();
        if scale_conditions {
            let Operation::Scale { replicas } = action.operation else {
                return false;
            };
            if rule.scale_to_zero && !(replicas == 0 && context.current_replicas != Some(0)) {
                return false;
            }
            if let Some(min_change) = rule.min_replica_change {
                match context.current_replicas {
                    Some(current) if replicas.abs_diff(current) >= min_change => {}
                    _ => return false,
                }
            }
            if let Some(factor) = rule.min_replica_factor {
                match context.current_replicas {
                    Some(current) if current > 0 && u64::from(replicas) >= u64::from(current) * u64::from(factor) => {}
                    _ => return false,
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ActionRequest;
    use serde_json::{Value, json};

    fn action(value: Value) -> Action {
        Action::from_request(&serde_json::from_value::<ActionRequest>(value).unwrap()).unwrap()
    }

    fn scale(ns: &str, replicas: u32) -> Action {
        action(
            json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web",
                      "parameters": {"replicas": replicas}}),
        )
    }

    fn ids(c: &Classification) -> Vec<&str> {
        c.rules.iter().map(|r| r.id.as_str()).collect()
    }

    fn current(n: u32) -> RiskContext {
        RiskContext {
            current_replicas: Some(n),
            cluster: None,
        }
    }

    #[test]
    fn rules_can_name_clusters() {
        let config: RiskConfig = toml::from_str(
            "[[rules]]\nid = \"prod-cluster\"\nlevel = \"HIGH\"\nreason = \"production cluster\"\nclusters = [\"prod-*\"]",
        )
        .unwrap();
        config.validate().unwrap();
        let on = |cluster: Option<&str>| RiskContext {
            current_replicas: Some(3),
            cluster: cluster.map(str::to_owned),
        };
        assert_eq!(
            config.classify(&scale("web", 4), on(Some("prod-eu"))).level,
            RiskLevel::High
        );
        assert_eq!(
            config.classify(&scale("web", 4), on(Some("staging"))).level,
            RiskLevel::Medium
        );
        assert_eq!(config.classify(&scale("web", 4), on(None)).level, RiskLevel::Medium);
    }

    #[test]
    fn defaults_follow_the_spec() {
        let config = RiskConfig::default();
        config.validate().unwrap();
        let get =
            action(json!({"action_type": "GET", "namespace": "prod", "resource_kind": "Secret", "resource_name": "s"}));
        let c = config.classify(&get, RiskContext::default());
        assert_eq!(
            (c.level, ids(&c)),
            (RiskLevel::Low, vec!["baseline"]),
            "reads stay LOW, even in production"
        );

        let c = config.classify(&scale("staging", 5), current(3));
        assert_eq!((c.level, ids(&c)), (RiskLevel::Medium, vec!["baseline"]));

        let c = config.classify(&scale("staging", 0), current(3));
        assert_eq!((c.level, ids(&c)), (RiskLevel::High, vec!["baseline", "scale-to-zero"]));
        let c = config.classify(&scale("staging", 0), current(0));
        assert_eq!(c.level, RiskLevel::Medium, "already at zero");

        let c = config.classify(&scale("staging", 20), current(10));
        assert_eq!(ids(&c), ["baseline", "large-replica-change"]);
        let c = config.classify(&scale("staging", 6), current(2));
        assert_eq!(ids(&c), ["baseline", "replica-multiplier"]);
        let c = config.classify(&scale("staging", 6), RiskContext::default());
        assert_eq!(
            c.level,
            RiskLevel::Medium,
            "unknown current count: replica rules cannot fire"
        );

        let c = config.classify(&scale("prod-eu", 4), current(3));
        assert_eq!(
            (c.level, ids(&c)),
            (RiskLevel::High, vec!["baseline", "production-namespace"])
        );

        let delete = action(
            json!({"action_type": "DELETE", "namespace": "staging", "resource_kind": "Pod", "resource_name": "p"}),
        );
        assert_eq!(
            ids(&config.classify(&delete, RiskContext::default())),
            ["baseline", "delete"]
        );
        let patch_secret = action(
            json!({"action_type": "PATCH", "namespace": "staging", "resource_kind": "Secret",
                                         "resource_name": "s", "parameters": {"patch": {"data": {"k": "dg=="}}}}),
        );
        assert_eq!(
            config.classify(&patch_secret, RiskContext::default()).level,
            RiskLevel::High
        );
    }

    #[test]
    fn rules_come_from_toml_and_only_raise_the_baseline() {
        let config: RiskConfig = toml::from_str(
            r#"
            [tiers]
            critical = ["payments", "ledger-*"]

            [[rules]]
            id = "critical-anything"
            level = "HIGH"
            reason = "critical namespaces"
            namespace_tiers = ["critical"]

            [[rules]]
            id = "quiet-reads"
            level = "LOW"
            reason = "a rule cannot lower a mutation"
            action_types = ["RESTART"]
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let restart = action(
            json!({"action_type": "RESTART", "namespace": "staging", "resource_kind": "Deployment", "resource_name": "w"}),
        );
        let c = config.classify(&restart, RiskContext::default());
        assert_eq!((c.level, ids(&c)), (RiskLevel::Medium, vec!["baseline", "quiet-reads"]));
        let list = action(json!({"action_type": "LIST", "namespace": "ledger-a", "resource_kind": "Pod"}));
        assert_eq!(config.classify(&list, RiskContext::default()).level, RiskLevel::High);
    }

    #[test]
    fn broken_configurations_are_refused() {
        let parse = |text: &str| toml::from_str::<RiskConfig>(text);
        assert!(parse("[[rules]]\nid = \"x\"\nlevel = \"SEVERE\"\nreason = \"\"\nkinds = [\"Pod\"]").is_err());
        assert!(
            parse("[[rules]]\nid = \"x\"\nlevel = \"HIGH\"\nreason = \"\"\nkind = [\"Pod\"]").is_err(),
            "unknown field"
        );
        let no_condition = parse("[[rules]]\nid = \"x\"\nlevel = \"HIGH\"\nreason = \"r\"").unwrap();
        assert!(no_condition.validate().unwrap_err().message.contains("condition"));
        let unknown_tier =
            parse("[[rules]]\nid = \"x\"\nlevel = \"HIGH\"\nreason = \"r\"\nnamespace_tiers = [\"gold\"]").unwrap();
        assert!(unknown_tier.validate().unwrap_err().message.contains("gold"));
        let wrong_type = parse("[[rules]]\nid = \"x\"\nlevel = \"HIGH\"\nreason = \"r\"\naction_types = [\"DELETE\"]\nscale_to_zero = true").unwrap();
        assert!(wrong_type.validate().is_err());
    }
}
