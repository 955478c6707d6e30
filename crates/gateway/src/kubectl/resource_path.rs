//! Which governed resource a Kubernetes API path names: `/apis/apps/v1/namespaces/web/deployments/api/scale`
//! and the like. The kinds, their API groups and plurals are `domain::ResourceKind`'s; this module only reads
//! them out of a path.

use domain::ResourceKind;

use super::Refusal;

/// Where a request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// `v1` or `apps/v1`.
    pub api_version: String,
    /// The governed kind the API group and plural name.
    pub kind: ResourceKind,
    /// `None` for cluster-scoped kinds and lists across all namespaces.
    pub namespace: Option<String>,
    /// `None` for a collection (list, create).
    pub name: Option<String>,
    /// `scale`, `status`, …
    pub subresource: Option<String>,
}

impl ResourcePath {
    /// The governed resource `path` names; a refusal for paths no action can express.
    pub fn parse(path: &str) -> Result<ResourcePath, Refusal> {
        let segments = plain_segments(path)?;
        let (group, api_version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", (*version).to_owned(), rest),
            ["apis", group, version, rest @ ..] => (*group, format!("{group}/{version}"), rest),
            _ => return Err(not_available(path)),
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
            _ => (None, rest),
        };
        let (plural, name, subresource) = match rest {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some((*name).to_owned()), None),
            [plural, name, sub] => (*plural, Some((*name).to_owned()), Some((*sub).to_owned())),
            _ => return Err(not_available(path)),
        };
        let kind = kind_at(group, plural).ok_or_else(|| not_available(path))?;
        // A namespaced kind needs its namespace, except for a list across all namespaces; a cluster-scoped
        // kind has none.
        let namespaced = kind.namespaced();
        if namespaced == namespace.is_none() && !(namespaced && name.is_none()) {
            return Err(not_available(path));
        }
        Ok(ResourcePath {
            api_version,
            kind,
            namespace,
            name,
            subresource,
        })
    }

    /// The object (or objects) an action on `name` concerns, for messages: `Deployment web/api`.
    pub fn describe(&self, name: Option<&str>) -> String {
        let kind = self.kind;
        match (&self.namespace, name) {
            (Some(ns), Some(name)) => format!("{kind} {ns}/{name}"),
            (Some(ns), None) => format!("{kind} in {ns}"),
            (None, Some(name)) => format!("{kind} {name}"),
            (None, None) => kind.to_string(),
        }
    }
}

/// The governed kind served at API group `group` ("" for the core group) under `plural`.
pub fn kind_at(group: &str, plural: &str) -> Option<ResourceKind> {
    ResourceKind::ALL
        .into_iter()
        .find(|kind| kind.group() == group && kind.plural() == plural)
}

/// The path's segments, refusing what only a path trick needs: Kubernetes names never hold `%`, `\\` or
/// control characters, and `.`/`..` would make the path the API server resolves differ from the one judged.
pub fn plain_segments(path: &str) -> Result<Vec<&str>, Refusal> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let trick = |s: &&&str| matches!(**s, "." | "..") || s.chars().any(|c| c == '%' || c == '\\' || c.is_control());
    if let Some(bad) = segments.iter().find(trick) {
        return Err(Refusal::bad_request(format!(
            "path segment {bad:?} is not allowed (no encoded characters, backslashes or dot segments)"
        )));
    }
    Ok(segments)
}

/// Discovery and OpenAPI documents: the only paths passed through to the API server (read-only).
pub fn is_discovery(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    matches!(
        segments.as_slice(),
        ["api" | "apis" | "version"] | ["api", _] | ["apis", _, _] | ["openapi", ..]
    )
}

fn not_available(path: &str) -> Refusal {
    Refusal::not_found(format!(
        "{path} is not available through DocketOps (it governs Deployments, StatefulSets, DaemonSets, ReplicaSets, Pods, Services, ConfigMaps, Secrets, Jobs, CronJobs, and reads Namespaces and Nodes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path kubectl uses for `kind`'s objects (in namespace `web` when namespaced).
    fn collection_path(kind: ResourceKind) -> String {
        let api = match kind.group() {
            "" => "/api/v1".to_owned(),
            group => format!("/apis/{group}/v1"),
        };
        let namespace = if kind.namespaced() { "/namespaces/web" } else { "" };
        format!("{api}{namespace}/{}", kind.plural())
    }

    #[test]
    fn every_governed_kind_maps_to_its_path_and_back() {
        for kind in ResourceKind::ALL {
            assert_eq!(kind_at(kind.group(), kind.plural()), Some(kind));
            let path = collection_path(kind);
            let parsed = ResourcePath::parse(&path).unwrap();
            assert_eq!((parsed.kind, parsed.name), (kind, None), "{path}");
            let one = ResourcePath::parse(&format!("{path}/x")).unwrap();
            assert_eq!((one.kind, one.name.as_deref()), (kind, Some("x")), "{path}/x");
        }
        assert_eq!(kind_at("", "deployments"), None, "wrong group");
        assert_eq!(kind_at("apps", "events"), None);
    }

    #[test]
    fn paths_map_to_governed_kinds_only() {
        let t = ResourcePath::parse("/apis/apps/v1/namespaces/web/deployments/api/scale").unwrap();
        assert_eq!(
            (
                t.kind,
                t.api_version.as_str(),
                t.namespace.as_deref(),
                t.name.as_deref()
            ),
            (ResourceKind::Deployment, "apps/v1", Some("web"), Some("api"))
        );
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        assert_eq!(t.describe(Some("api")), "Deployment web/api");
        assert_eq!(t.describe(None), "Deployment in web");
        let t = ResourcePath::parse("/api/v1/namespaces/web/configmaps").unwrap();
        assert_eq!((t.kind, t.name), (ResourceKind::ConfigMap, None));
        let t = ResourcePath::parse("/api/v1/namespaces/web").unwrap();
        assert_eq!((t.kind, t.name.as_deref()), (ResourceKind::Namespace, Some("web")));
        assert_eq!(t.describe(Some("web")), "Namespace web");
        // Across all namespaces.
        assert_eq!(ResourcePath::parse("/api/v1/pods").unwrap().kind, ResourceKind::Pod);
        assert_eq!(ResourcePath::parse("/api/v1/nodes").unwrap().describe(None), "Node");
    }

    #[test]
    fn paths_no_action_can_express_are_refused() {
        for path in [
            "/api/v1/namespaces/web/events",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "/api/v1/namespaces/web/deployments",
            "/api/v1/pods/p",
            "/api/v1/namespaces/web/nodes/n",
            "/apis/apps/v1/namespaces/web/deployments/api/scale/more",
            "/healthz",
        ] {
            let refusal = ResourcePath::parse(path).unwrap_err();
            assert_eq!((refusal.code, refusal.reason), (404, "NotFound"), "{path}");
        }
        for trick in [
            "/api/v1/namespaces/..%2Fkube-system/pods",
            "/api/v1/namespaces/web%2F..%2Fkube-system/pods",
            "/api/v1/namespaces/web/../kube-system/pods",
            "/api/v1/namespaces/./web/pods",
            "/apis/apps/v1/namespaces/web/deployments/a%2e%2e",
            "/api/v1/namespaces/web\\..\\kube-system/pods",
        ] {
            let refusal = ResourcePath::parse(trick).unwrap_err();
            assert_eq!((refusal.code, refusal.reason), (400, "BadRequest"), "{trick}");
            assert!(plain_segments(trick).is_err());
        }
    }

    #[test]
    fn discovery_paths_are_told_apart() {
        for path in [
            "/api",
            "/apis",
            "/version",
            "/api/v1",
            "/apis/apps/v1",
            "/openapi/v2",
            "/openapi/v3/apis",
        ] {
            assert!(is_discovery(path), "{path}");
        }
        for path in ["/api/v1/pods", "/apis/apps/v1/deployments", "/apis/apps"] {
            assert!(!is_discovery(path), "{path}");
        }
    }
}
