//! Scopes: which namespaces, kinds and clusters an identity may read or mutate (SPEC §2).

use serde::{Deserialize, Serialize};

use crate::action::{Access, ResourceKind, validate_namespace};

/// One grant of an identity (SPEC §2): which namespaces and kinds, to read or to mutate, on which clusters.
///
/// Names are exact, `"*"` matches all, and a trailing `*` matches a prefix (`team-*`). `clusters` empty (or
/// absent) means every cluster the gateway governs. A mutate scope also
/// lets its holder read the same objects (a change cannot be previewed or verified without reading);
/// a read scope never allows a mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Namespace patterns; cluster-scoped objects are reached only through `"*"`.
    #[schema(schema_with = namespace_patterns)]
    pub namespaces: Vec<String>,
    /// Read, or mutate (which includes reading).
    pub access: Access,
    /// Kind names such as `Deployment`, or `"*"` for every kind.
    #[schema(schema_with = scope_kinds)]
    pub kinds: Vec<String>,
    /// Cluster name patterns; empty for every cluster.
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
    /// A scope on every cluster, from borrowed names; not validated (see [`validate`](Self::validate)).
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

    /// Whether this scope grants `access` to objects of `kind` in `namespace` (`None`: cluster-scoped).
    pub fn permits(&self, access: Access, namespace: Option<&str>, kind: ResourceKind) -> bool {
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
        None => validate_namespace(pattern).is_ok(),
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

/// `*` matches everything, `prefix*` a prefix, anything else itself (namespace patterns everywhere).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}
