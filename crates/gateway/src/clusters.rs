//! The clusters a gateway governs, by name: one executor each, and which one an action without a
//! `cluster` goes to. One ledger records the actions of all of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::GatewayError;
use crate::cluster::Cluster;

/// The governed clusters by name, and the default one; empty when the gateway governs none.
#[derive(Default)]
pub struct Clusters {
    default: String,
    executors: BTreeMap<String, Arc<dyn Cluster>>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("default", &self.default)
            .field("names", &self.names())
            .finish()
    }
}

impl Clusters {
    /// No cluster: actions answer 503 (the ledger and identity routes still work).
    pub fn none() -> Clusters {
        Clusters::default()
    }

    /// One cluster, which is also the default.
    pub fn single(executor: Arc<dyn Cluster>) -> Clusters {
        let name = executor.name().to_owned();
        Clusters {
            default: name.clone(),
            executors: BTreeMap::from([(name, executor)]),
        }
    }

    /// Several clusters by their executors' names; `default` must be one of them.
    pub fn new(default: &str, executors: Vec<Arc<dyn Cluster>>) -> Result<Clusters, String> {
        let executors: BTreeMap<String, Arc<dyn Cluster>> = executors
            .into_iter()
            .map(|executor| (executor.name().to_owned(), executor))
            .collect();
        if !executors.contains_key(default) {
            return Err(format!(
                "the default cluster {default:?} is not configured (configured: {})",
                executors.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Clusters {
            default: default.to_owned(),
            executors,
        })
    }

    /// The clusters' names, in sorted order.
    pub fn names(&self) -> Vec<&str> {
        self.executors.keys().map(String::as_str).collect()
    }

    /// The cluster an action without a `cluster` goes to (empty when there is none).
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// How this cluster's API server audit events are judged (its executor's accounts and guardrails).
    pub fn audit_policy(&self, name: &str) -> Option<crate::audit::AuditPolicy> {
        self.executors.get(name).map(|executor| {
            crate::audit::AuditPolicy::new(name, executor.accounts().clone(), executor.guardrails().clone())
        })
    }

    /// The executor for `requested` (the default cluster when `None`): 503 when the gateway has no cluster,
    /// `Err(Ok(message))` for an unknown name (a bad request the caller can fix).
    pub fn resolve(&self, requested: Option<&str>) -> Result<Arc<dyn Cluster>, Result<String, GatewayError>> {
        if self.executors.is_empty() {
            return Err(Err(GatewayError::Unavailable(
                "no Kubernetes cluster is configured for this gateway".into(),
            )));
        }
        let name = requested.unwrap_or(&self.default);
        self.executors.get(name).cloned().ok_or_else(|| {
            Ok(format!(
                "unknown cluster {name:?}; this gateway governs {}",
                self.names().join(", ")
            ))
        })
    }
}
