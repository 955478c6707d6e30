//! Groups to roles and scopes: each mapping names a group and what its members get; a user gets the union
//! over all their groups. A user in no mapped group gets nothing (and is refused by the gateway).

use domain::Scope;
use serde::Deserialize;

/// `[[oidc.groups]]` / `[[ldap.groups]]`: members of `group` get `roles` and `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// A group name as the provider reports it (OIDC groups claim; LDAP group `cn` or full DN).
    pub group: String,
    /// Role names the group's members get (default none).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scopes the group's members get (default none).
    #[serde(default)]
    pub scopes: Vec<Scope>,
}

/// What a user's groups grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Sorted, without duplicates.
    pub roles: Vec<String>,
    /// The scopes granted, in mapping order, without duplicates.
    pub scopes: Vec<Scope>,
}

/// The union of the mappings whose group the user is in (group names compare case-insensitively, as
/// directories usually do).
pub fn grants_for(groups: &[String], mappings: &[GroupMapping]) -> Grants {
    let mut grants = Grants::default();
    for mapping in mappings {
        if groups.iter().any(|g| g.eq_ignore_ascii_case(&mapping.group)) {
            grants.roles.extend(mapping.roles.iter().cloned());
            for scope in &mapping.scopes {
                if !grants.scopes.contains(scope) {
                    grants.scopes.push(scope.clone());
                }
            }
        }
    }
    grants.roles.sort();
    grants.roles.dedup();
    grants
}

#[cfg(test)]
mod tests {
    use domain::Access;

    use super::*;

    #[test]
    fn grants_are_the_union_of_the_users_groups() {
        let read = Scope::new(&["*"], Access::Read, &["*"]);
        let mappings = vec![
            GroupMapping {
                group: "approvers".into(),
                roles: vec!["approver".into()],
                scopes: vec![read.clone()],
            },
            GroupMapping {
                group: "Auditors".into(),
                roles: vec!["auditor".into(), "approver".into()],
                scopes: vec![read.clone()],
            },
            GroupMapping {
                group: "admins".into(),
                roles: vec!["admin".into()],
                scopes: vec![],
            },
        ];
        let grants = grants_for(&["approvers".into(), "auditors".into()], &mappings);
        assert_eq!(grants.roles, ["approver", "auditor"]);
        assert_eq!(grants.scopes, [read]);
        assert_eq!(grants_for(&["nobody".into()], &mappings), Grants::default());
    }
}
