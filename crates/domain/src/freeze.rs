//! The kill switch: a freeze stops every mutation in its scope (everything, a cluster, a namespace, an
//! identity, or every agent) until it is lifted. Reads still work. Which actions a freeze covers is decided
//! here, from the action's cluster, namespace and requester alone.

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};

use crate::IdentityKind;

/// What a freeze covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FreezeScope {
    /// Every mutation, on every cluster. (Written `All {}`, not a unit variant: serde's `deny_unknown_fields`
    /// refuses stray fields only in struct variants.)
    All {},
    /// Every mutation on one cluster.
    Cluster {
        /// The cluster's configured name.
        cluster: String,
    },
    /// Every mutation in one namespace: of one cluster, or (no `cluster`) of every cluster.
    Namespace {
        /// The namespace.
        namespace: String,
        /// The cluster; absent for the namespace on every cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
    },
    /// Every mutation one identity asks for.
    Identity {
        /// The identity's id (`agt_…`, `usr_…`).
        identity_id: String,
    },
    /// Every mutation any agent asks for (people can still act).
    Agents {},
}

/// What a freeze is matched against: one mutation.
#[derive(Debug, Clone, Copy)]
pub struct FreezeTarget<'a> {
    /// The cluster the action is for.
    pub cluster: &'a str,
    /// Its namespace (`None` for a cluster-scoped object).
    pub namespace: Option<&'a str>,
    /// Who asked.
    pub identity_id: &'a str,
    /// Whether an agent or a person asked.
    pub identity_kind: IdentityKind,
}

impl FreezeScope {
    /// Whether a mutation of `target` is frozen by this scope.
    pub fn covers(&self, target: &FreezeTarget<'_>) -> bool {
        match self {
            FreezeScope::All {} => true,
            FreezeScope::Cluster { cluster } => cluster == target.cluster,
            FreezeScope::Namespace { namespace, cluster } => {
                target.namespace == Some(namespace.as_str()) && cluster.as_deref().is_none_or(|c| c == target.cluster)
            }
            FreezeScope::Identity { identity_id } => identity_id == target.identity_id,
            FreezeScope::Agents {} => target.identity_kind == IdentityKind::Agent,
        }
    }

    /// In words, for messages: `everything`, `cluster prod`, `namespace shop (every cluster)`…
    pub fn describe(&self) -> String {
        match self {
            FreezeScope::All {} => "everything".to_owned(),
            FreezeScope::Cluster { cluster } => format!("cluster {cluster}"),
            FreezeScope::Namespace {
                namespace,
                cluster: Some(cluster),
            } => format!("namespace {namespace} on cluster {cluster}"),
            FreezeScope::Namespace {
                namespace,
                cluster: None,
            } => format!("namespace {namespace} (every cluster)"),
            FreezeScope::Identity { identity_id } => format!("identity {identity_id}"),
            FreezeScope::Agents {} => "every agent".to_owned(),
        }
    }

    /// Checks the names a scope carries: namespaces and clusters are RFC 1123 labels, an identity id is a
    /// kind prefix and hex digits (as the API schema says).
    pub fn validate(&self) -> Result<(), String> {
        // The same rules as the schema's patterns (LABEL_PATTERN and the identity id's).
        let label =
            |field: &str, name: &str| crate::action::validate_namespace(name).map_err(|e| format!("{field}: {e}"));
        match self {
            FreezeScope::All {} | FreezeScope::Agents {} => Ok(()),
            FreezeScope::Cluster { cluster } => label("cluster", cluster),
            FreezeScope::Namespace { namespace, cluster } => {
                label("namespace", namespace)?;
                cluster.as_deref().map_or(Ok(()), |c| label("cluster", c))
            }
            FreezeScope::Identity { identity_id } => {
                let (prefix, hex) = identity_id.split_once('_').unwrap_or_default();
                let valid = prefix.len() == 3
                    && prefix.chars().all(|c| c.is_ascii_lowercase())
                    && (1..=64).contains(&hex.len())
                    && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
                match valid {
                    true => Ok(()),
                    false => Err(format!(
                        "identity_id: {identity_id:?} is not an identity id (agt_…, usr_…)"
                    )),
                }
            }
        }
    }
}

/// An RFC 1123 label: a namespace's or a cluster's name.
const LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Written by hand: utoipa's derive leaves the variants of an internally tagged enum open to other
/// properties, while the API refuses them (`deny_unknown_fields`). Each variant is an object with its `kind`
/// and its own fields, nothing else.
impl utoipa::PartialSchema for FreezeScope {
    fn schema() -> RefOr<Schema> {
        // An optional field may also be sent as null (serde reads it as absent).
        let text = |pattern: &str, required: bool| {
            let types = match required {
                true => SchemaType::Type(Type::String),
                false => SchemaType::Array(vec![Type::String, Type::Null]),
            };
            ObjectBuilder::new().schema_type(types).pattern(Some(pattern))
        };
        let variant = |kind: &str, description: &str, fields: &[(&str, &str, bool)]| {
            let tag = ObjectBuilder::new().schema_type(Type::String).enum_values(Some([kind]));
            let mut object = ObjectBuilder::new()
                .description(Some(description))
                .property("kind", tag)
                .required("kind")
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
            for (name, pattern, required) in fields {
                object = object.property(*name, text(pattern, *required));
                if *required {
                    object = object.required(*name);
                }
            }
            object
        };
        let identity = "^[a-z]{3}_[0-9a-f]{1,64}$";
        OneOfBuilder::new()
            .description(Some("What a freeze covers"))
            .item(variant("all", "Every mutation, on every cluster", &[]))
            .item(variant(
                "cluster",
                "Every mutation on one cluster",
                &[("cluster", LABEL_PATTERN, true)],
            ))
            .item(variant(
                "namespace",
                "Every mutation in one namespace (of one cluster, or of every cluster)",
                &[("namespace", LABEL_PATTERN, true), ("cluster", LABEL_PATTERN, false)],
            ))
            .item(variant(
                "identity",
                "Every mutation one identity asks for",
                &[("identity_id", identity, true)],
            ))
            .item(variant("agents", "Every mutation any agent asks for", &[]))
            .into()
    }
}

impl utoipa::ToSchema for FreezeScope {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(namespace: Option<&'static str>, kind: IdentityKind) -> FreezeTarget<'static> {
        FreezeTarget {
            cluster: "prod",
            namespace,
            identity_id: "agt_1",
            identity_kind: kind,
        }
    }

    #[test]
    fn each_scope_covers_what_it_names_and_nothing_else() {
        let agent = target(Some("shop"), IdentityKind::Agent);
        let person = target(Some("shop"), IdentityKind::Human);
        let cluster_scoped = target(None, IdentityKind::Agent);
        let ns = |namespace: &str, cluster: Option<&str>| FreezeScope::Namespace {
            namespace: namespace.into(),
            cluster: cluster.map(Into::into),
        };
        assert!(FreezeScope::All {}.covers(&cluster_scoped));
        assert!(FreezeScope::Cluster { cluster: "prod".into() }.covers(&agent));
        assert!(!FreezeScope::Cluster { cluster: "dev".into() }.covers(&agent));
        assert!(ns("shop", None).covers(&agent));
        assert!(ns("shop", Some("prod")).covers(&agent));
        assert!(!ns("shop", Some("dev")).covers(&agent));
        assert!(!ns("shop", None).covers(&cluster_scoped));
        assert!(!ns("other", None).covers(&agent));
        assert!(
            FreezeScope::Identity {
                identity_id: "agt_1".into()
            }
            .covers(&agent)
        );
        assert!(
            !FreezeScope::Identity {
                identity_id: "agt_2".into()
            }
            .covers(&agent)
        );
        assert!(FreezeScope::Agents {}.covers(&agent));
        assert!(!FreezeScope::Agents {}.covers(&person));
    }

    #[test]
    fn scopes_read_as_the_api_spells_them() {
        let scope: FreezeScope = serde_json::from_value(json!({"kind": "namespace", "namespace": "shop"})).unwrap();
        assert_eq!(
            scope,
            FreezeScope::Namespace {
                namespace: "shop".into(),
                cluster: None
            }
        );
        assert_eq!(
            serde_json::to_value(&FreezeScope::Agents {}).unwrap(),
            json!({"kind": "agents"})
        );
        assert!(serde_json::from_value::<FreezeScope>(json!({"kind": "namespace"})).is_err());
        assert!(serde_json::from_value::<FreezeScope>(json!({"kind": "galaxy"})).is_err());
        assert!(serde_json::from_value::<FreezeScope>(json!({"kind": "all", "extra": 1})).is_err());
        assert!(FreezeScope::Cluster { cluster: String::new() }.validate().is_err());
        assert!(
            FreezeScope::Identity {
                identity_id: "agt\n1".into()
            }
            .validate()
            .is_err()
        );
        assert!(
            FreezeScope::Identity {
                identity_id: "agt_0a1".into()
            }
            .validate()
            .is_ok()
        );
        assert!(
            FreezeScope::Namespace {
                namespace: "Shop".into(),
                cluster: None
            }
            .validate()
            .is_err()
        );
        assert!(ns_ok());
    }

    fn ns_ok() -> bool {
        FreezeScope::Namespace {
            namespace: "shop".into(),
            cluster: Some("prod".into()),
        }
        .validate()
        .is_ok()
    }
}
