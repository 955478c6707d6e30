//! The Kubernetes RBAC the executor relies on, generated from one description so the manifests, the
//! Helm chart and the executor's impersonation never disagree.
//!
//! - The gateway's own service account may do one thing: impersonate the executor accounts (and attach
//!   the two impersonation extras naming the caller and the action). It has no rights on objects.
//! - In each governed namespace, `<release>-reader` may get/list/watch the governed kinds and
//!   `<release>-operator` may also patch, create and delete them. Nothing else, and nothing elsewhere.
//! - `<release>-cluster-reader` in the gateway's namespace may read Namespaces and Nodes.

use serde_json::{Value, json};

use crate::action::{Access, ResourceKind};

/// Impersonation extra naming the identity (`agt_…`/`usr_…`) that asked for the call.
pub const EXTRA_IDENTITY: &str = "docketops-identity";
/// Impersonation extra naming the action (`act_…`) the call belongs to.
pub const EXTRA_ACTION: &str = "docketops-action";

/// Names of the executor's Kubernetes accounts; `release` prefixes every name (like a Helm release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// Prefix of every account, role and binding name, like a Helm release name.
    pub release: String,
    /// The namespace the gateway and its own service accounts live in.
    pub gateway_namespace: String,
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            release: "docketops".into(),
            gateway_namespace: "docketops".into(),
        }
    }
}

/// A Kubernetes service account the executor acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRef {
    /// The account's namespace.
    pub namespace: String,
    /// The account's name.
    pub name: String,
}

impl ServiceAccountRef {
    /// The user name Kubernetes gives the account, as sent in `Impersonate-User`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

impl Accounts {
    /// The gateway's own account, `<release>-gateway`: it may only impersonate the executor accounts.
    pub fn gateway(&self) -> ServiceAccountRef {
        ServiceAccountRef {
            namespace: self.gateway_namespace.clone(),
            name: format!("{}-gateway", self.release),
        }
    }

    /// `<release>-cluster-reader` in the gateway's namespace: it reads Namespaces and Nodes.
    pub fn cluster_reader(&self) -> ServiceAccountRef {
        ServiceAccountRef {
            namespace: self.gateway_namespace.clone(),
            name: format!("{}-cluster-reader", self.release),
        }
    }

    /// The account for `access` in `namespace` (`None`: cluster-scoped reads).
    pub fn executor(&self, namespace: Option<&str>, access: Access) -> ServiceAccountRef {
        match (namespace, access) {
            (None, _) => self.cluster_reader(),
            (Some(ns), Access::Read) => ServiceAccountRef {
                namespace: ns.to_owned(),
                name: format!("{}-reader", self.release),
            },
            (Some(ns), Access::Mutate) => ServiceAccountRef {
                namespace: ns.to_owned(),
                name: format!("{}-operator", self.release),
            },
        }
    }

    /// Every manifest for the gateway and the given governed namespaces, in an order `kubectl apply` accepts.
    pub fn manifests(&self, governed_namespaces: &[String]) -> Vec<Value> {
        let gateway = self.gateway();
        let cluster_reader = self.cluster_reader();
        let labels = json!({"app.kubernetes.io/name": "docketops-ledger", "app.kubernetes.io/instance": self.release});
        let mut out = vec![
            service_account(&gateway, &labels),
            service_account(&cluster_reader, &labels),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": format!("{}-impersonation-extras", self.release), "labels": labels},
                "rules": [{"apiGroups": ["authentication.k8s.io"],
                           "resources": [format!("userextras/{EXTRA_IDENTITY}"), format!("userextras/{EXTRA_ACTION}")],
                           "verbs": ["impersonate"]}]
            }),
            cluster_binding(&format!("{}-impersonation-extras", self.release), &gateway, &labels),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": format!("{}-cluster-reader", self.release), "labels": labels},
                "rules": [{"apiGroups": [""], "resources": ["namespaces", "nodes"], "verbs": ["get", "list", "watch"]}]
            }),
            cluster_binding(&format!("{}-cluster-reader", self.release), &cluster_reader, &labels),
        ];
        out.extend(impersonation_role(
            &self.gateway_namespace,
            &format!("{}-impersonate", self.release),
            &[&cluster_reader.name],
            &gateway,
            &labels,
        ));
        for namespace in governed_namespaces {
            let reader = self.executor(Some(namespace), Access::Read);
            let operator = self.executor(Some(namespace), Access::Mutate);
            out.push(service_account(&reader, &labels));
            out.push(service_account(&operator, &labels));
            out.extend(role_with_binding(
                namespace,
                &reader.name,
                read_rules(),
                &reader,
                &labels,
            ));
            out.extend(role_with_binding(
                namespace,
                &operator.name,
                operate_rules(),
                &operator,
                &labels,
            ));
            out.extend(impersonation_role(
                namespace,
                &format!("{}-impersonate", self.release),
                &[&reader.name, &operator.name],
                &gateway,
                &labels,
            ));
        }
        out
    }
}

fn namespaced_kinds_by_group() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for kind in ResourceKind::ALL.into_iter().filter(|k| k.namespaced()) {
        match groups.iter_mut().find(|(g, _)| *g == kind.group()) {
            Some((_, plurals)) => plurals.push(kind.plural()),
            None => groups.push((kind.group(), vec![kind.plural()])),
        }
    }
    groups
}

fn scale_subresources() -> Vec<String> {
    [
        ResourceKind::Deployment,
        ResourceKind::StatefulSet,
        ResourceKind::ReplicaSet,
    ]
    .iter()
    .map(|k| format!("{}/scale", k.plural()))
    .collect()
}

fn read_rules() -> Vec<Value> {
    let mut rules: Vec<Value> = namespaced_kinds_by_group()
        .into_iter()
        .map(|(group, plurals)| json!({"apiGroups": [group], "resources": plurals, "verbs": ["get", "list", "watch"]}))
        .collect();
    rules.push(json!({"apiGroups": ["apps"], "resources": scale_subresources(), "verbs": ["get"]}));
    rules
}

fn operate_rules() -> Vec<Value> {
    let mut rules: Vec<Value> = namespaced_kinds_by_group()
        .into_iter()
        .map(|(group, plurals)| {
            json!({"apiGroups": [group], "resources": plurals,
                   "verbs": ["get", "list", "watch", "create", "patch", "delete"]})
        })
        .collect();
    rules.push(json!({"apiGroups": ["apps"], "resources": scale_subresources(), "verbs": ["get", "patch"]}));
    rules
}

fn service_account(account: &ServiceAccountRef, labels: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": account.name, "namespace": account.namespace, "labels": labels}})
}

fn subject(account: &ServiceAccountRef) -> Value {
    json!({"kind": "ServiceAccount", "name": account.name, "namespace": account.namespace})
}

fn cluster_binding(role: &str, account: &ServiceAccountRef, labels: &Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": role, "labels": labels},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": [subject(account)]})
}

fn role_with_binding(
    namespace: &str,
    name: &str,
    rules: Vec<Value>,
    account: &ServiceAccountRef,
    labels: &Value,
) -> [Value; 2] {
    [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": name, "namespace": namespace, "labels": labels}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name, "namespace": namespace, "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [subject(account)]}),
    ]
}

/// Lets the gateway impersonate exactly the named service accounts of one namespace.
fn impersonation_role(
    namespace: &str,
    name: &str,
    accounts: &[&str],
    gateway: &ServiceAccountRef,
    labels: &Value,
) -> [Value; 2] {
    role_with_binding(
        namespace,
        name,
        vec![
            json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                    "resourceNames": accounts}),
        ],
        gateway,
        labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_rights_are_impersonation_only() {
        let accounts = Accounts::default();
        let manifests = accounts.manifests(&["staging".into()]);
        let gateway = accounts.gateway();
        for binding in manifests
            .iter()
            .filter(|m| m["kind"].as_str().unwrap().ends_with("Binding"))
        {
            if binding["subjects"][0]["name"] != gateway.name.as_str() {
                continue;
            }
            let role = manifests
                .iter()
                .find(|m| {
                    m["kind"] == binding["roleRef"]["kind"]
                        && m["metadata"]["name"] == binding["roleRef"]["name"]
                        && m["metadata"]["namespace"] == binding["metadata"]["namespace"]
                })
                .unwrap();
            for rule in role["rules"].as_array().unwrap() {
                assert_eq!(rule["verbs"], json!(["impersonate"]), "{role}");
            }
        }
    }

    #[test]
    fn executor_accounts_follow_the_scope() {
        let accounts = Accounts::default();
        assert_eq!(
            accounts.executor(Some("staging"), Access::Read).username(),
            "system:serviceaccount:staging:docketops-reader"
        );
        assert_eq!(
            accounts.executor(Some("staging"), Access::Mutate).username(),
            "system:serviceaccount:staging:docketops-operator"
        );
        assert_eq!(
            accounts.executor(None, Access::Read).username(),
            "system:serviceaccount:docketops:docketops-cluster-reader"
        );
    }

    #[test]
    fn reader_role_has_no_write_verb() {
        for rule in read_rules() {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(["get", "list", "watch"].contains(&verb.as_str().unwrap()), "{rule}");
            }
        }
    }
}
