//! The new-identity form: the posted fields read into a [`NewIdentity`] (scopes built from rows of choices,
//! no JSON typed), and the same fields shown again, as sent, when the gateway refuses them.

use domain::{Access, IdentityKind, ResourceKind, Role, Scope};
use gateway::NewIdentity;

use crate::dashboard::PageError;

/// Scope rows the form offers.
pub(super) const SCOPE_ROWS: usize = 3;

/// The access of a scope row that grants nothing (the row is left out).
const NO_ACCESS: &str = "none";

/// Every kind a scope may name: `*` first, then each governed kind.
fn scope_kinds() -> impl Iterator<Item = &'static str> {
    std::iter::once("*").chain(ResourceKind::ALL.map(ResourceKind::as_str))
}

/// The accesses a row offers, as the form spells them.
fn accesses() -> [(String, &'static str); 3] {
    [
        (NO_ACCESS.to_owned(), "none (row unused)"),
        (Access::Read.to_string(), "read"),
        (Access::Mutate.to_string(), "mutate (and read)"),
    ]
}

/// One scope row as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ScopeRow {
    /// `none`, `read` or `mutate`.
    pub access: String,
    /// Namespace patterns, comma-separated.
    pub namespaces: String,
    /// The kinds ticked.
    pub kinds: Vec<String>,
    /// Cluster patterns, comma-separated (empty: every cluster).
    pub clusters: String,
}

/// The whole form as sent (or empty, for a new form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IdentityForm {
    pub name: String,
    /// `agent` or `human`.
    pub kind: String,
    /// The roles ticked.
    pub roles: Vec<String>,
    /// Group names, one a line.
    pub groups: String,
    pub scopes: Vec<ScopeRow>,
}

impl Default for IdentityForm {
    fn default() -> Self {
        IdentityForm {
            name: String::new(),
            kind: IdentityKind::Agent.as_str().to_owned(),
            roles: Vec::new(),
            groups: String::new(),
            scopes: vec![
                ScopeRow {
                    access: NO_ACCESS.to_owned(),
                    ..ScopeRow::default()
                };
                SCOPE_ROWS
            ],
        }
    }
}

/// The scope row a field `s<N>_<name>` belongs to, and the name.
fn row_field(field: &str) -> Option<(usize, &str)> {
    let (row, name) = field.strip_prefix('s')?.split_once('_')?;
    let row: usize = row.parse().ok()?;
    (row < SCOPE_ROWS).then_some((row, name))
}

/// A comma-separated list, trimmed, without empty items.
fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl IdentityForm {
    /// The form from the posted pairs (repeated names for the checkboxes), and its CSRF token (empty when
    /// missing, which the session check refuses). An unknown field is refused.
    pub fn read(pairs: Vec<(String, String)>) -> Result<(String, IdentityForm), PageError> {
        let mut form = IdentityForm {
            kind: String::new(),
            scopes: vec![ScopeRow::default(); SCOPE_ROWS],
            ..IdentityForm::default()
        };
        let mut csrf = String::new();
        for (field, value) in pairs {
            match field.as_str() {
                "csrf" => csrf = value,
                "name" => form.name = value,
                "kind" => form.kind = value,
                "role" => form.roles.push(value),
                "groups" => form.groups = value,
                other => {
                    let Some((row, name)) = row_field(other) else {
                        return Err(PageError::bad_request(format!("unknown field {other:?}")));
                    };
                    let row = &mut form.scopes[row];
                    match name {
                        "access" => row.access = value,
                        "namespaces" => row.namespaces = value,
                        "kind" => row.kinds.push(value),
                        "clusters" => row.clusters = value,
                        _ => return Err(PageError::bad_request(format!("unknown field {other:?}"))),
                    }
                }
            }
        }
        Ok((csrf, form))
    }

    /// The request the form makes, checked as the API checks it (the directory checks it again); the message
    /// says which field to fix.
    pub fn to_new(&self) -> Result<NewIdentity, String> {
        let kind = IdentityKind::parse(&self.kind)
            .ok_or_else(|| format!("choose agent or human as the kind, not {:?}", self.kind))?;
        let mut scopes = Vec::new();
        for (index, row) in self.scopes.iter().enumerate() {
            if let Some(scope) = row
                .scope()
                .map_err(|error| format!("scope row {}: {error}", index + 1))?
            {
                scopes.push(scope);
            }
        }
        Ok(NewIdentity {
            name: self.name.trim().to_owned(),
            kind,
            roles: self.roles.clone(),
            scopes,
            groups: self
                .groups
                .lines()
                .map(str::trim)
                .filter(|group| !group.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

impl ScopeRow {
    /// The scope this row grants; `None` for a row without access and without anything filled in.
    fn scope(&self) -> Result<Option<Scope>, String> {
        let filled = !self.namespaces.trim().is_empty() || !self.kinds.is_empty() || !self.clusters.trim().is_empty();
        if self.access == NO_ACCESS || self.access.is_empty() {
            return if filled {
                Err("choose read or mutate, or clear the row".to_owned())
            } else {
                Ok(None)
            };
        }
        let access = [Access::Read, Access::Mutate]
            .into_iter()
            .find(|access| access.to_string() == self.access)
            .ok_or_else(|| format!("unknown access {:?}; expected none, read or mutate", self.access))?;
        let scope = Scope {
            namespaces: list(&self.namespaces),
            access,
            kinds: self.kinds.clone(),
            clusters: list(&self.clusters),
        };
        scope.validate()?;
        Ok(Some(scope))
    }
}

/// A choice (option or checkbox) as the template shows it.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The value sent.
    pub value: String,
    /// What the user reads.
    pub label: String,
    /// Selected or ticked.
    pub on: bool,
}

/// A scope row as the template shows it.
#[derive(Debug, Clone)]
pub struct ScopeRowView {
    /// The row's number, from 0 (its fields are `s<index>_…`).
    pub index: usize,
    pub accesses: Vec<Choice>,
    pub namespaces: String,
    pub kinds: Vec<Choice>,
    pub clusters: String,
}

/// The form as the template shows it.
#[derive(Debug, Clone)]
pub struct IdentityFormView {
    pub name: String,
    pub kinds: Vec<Choice>,
    pub roles: Vec<Choice>,
    pub groups: String,
    pub scopes: Vec<ScopeRowView>,
}

impl IdentityForm {
    /// The form's fields with what was sent selected and ticked.
    pub fn view(&self) -> IdentityFormView {
        let choice = |value: &str, label: &str, on: bool| Choice {
            value: value.to_owned(),
            label: label.to_owned(),
            on,
        };
        IdentityFormView {
            name: self.name.clone(),
            kinds: [(IdentityKind::Agent, "agent"), (IdentityKind::Human, "person")]
                .into_iter()
                .map(|(kind, label)| choice(kind.as_str(), label, kind.as_str() == self.kind))
                .collect(),
            roles: Role::ALL
                .into_iter()
                .map(|role| {
                    choice(
                        role.as_str(),
                        role.as_str(),
                        self.roles.iter().any(|r| r == role.as_str()),
                    )
                })
                .collect(),
            groups: self.groups.clone(),
            scopes: self
                .scopes
                .iter()
                .enumerate()
                .map(|(index, row)| ScopeRowView {
                    index,
                    accesses: accesses()
                        .into_iter()
                        .map(|(value, label)| {
                            let on = value == row.access;
                            choice(&value, label, on)
                        })
                        .collect(),
                    namespaces: row.namespaces.clone(),
                    kinds: scope_kinds()
                        .map(|kind| choice(kind, kind, row.kinds.iter().any(|k| k == kind)))
                        .collect(),
                    clusters: row.clusters.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn rows_become_scopes_and_unused_rows_are_left_out() {
        let (csrf, form) = IdentityForm::read(pairs(&[
            ("csrf", "t"),
            ("name", " deployer "),
            ("kind", "agent"),
            ("role", "operator"),
            ("groups", "sre\n\n ops team \n"),
            ("s0_access", "mutate"),
            ("s0_namespaces", "staging, team-* ,"),
            ("s0_kind", "Deployment"),
            ("s0_kind", "StatefulSet"),
            ("s0_clusters", ""),
            ("s1_access", "none"),
            ("s1_namespaces", ""),
            ("s2_access", "read"),
            ("s2_namespaces", "*"),
            ("s2_kind", "*"),
            ("s2_clusters", "prod-eu,prod-us"),
        ]))
        .unwrap();
        assert_eq!(csrf, "t");
        let new = form.to_new().unwrap();
        assert_eq!(new.name, "deployer");
        assert_eq!(new.kind, IdentityKind::Agent);
        assert_eq!(new.roles, ["operator"]);
        assert_eq!(new.groups, ["sre", "ops team"]);
        let mut staging = Scope::new(&["staging", "team-*"], Access::Mutate, &["Deployment", "StatefulSet"]);
        staging.clusters = Vec::new();
        let mut everywhere = Scope::new(&["*"], Access::Read, &["*"]);
        everywhere.clusters = vec!["prod-eu".into(), "prod-us".into()];
        assert_eq!(new.scopes, [staging, everywhere]);
    }

    #[test]
    fn a_bad_row_is_named_and_unknown_fields_are_refused() {
        let read = |fields: &[(&str, &str)]| IdentityForm::read(pairs(fields)).unwrap().1.to_new();
        let error = read(&[("kind", "agent"), ("s1_access", "mutate"), ("s1_namespaces", "staging")]).unwrap_err();
        assert!(error.starts_with("scope row 2: ") && error.contains("kind"), "{error}");
        let error = read(&[("kind", "agent"), ("s0_namespaces", "staging")]).unwrap_err();
        assert!(error.contains("choose read or mutate"), "{error}");
        let error = read(&[("kind", "robot")]).unwrap_err();
        assert!(error.contains("agent or human"), "{error}");
        let error = read(&[("kind", "agent"), ("s0_access", "write")]).unwrap_err();
        assert!(error.contains("unknown access"), "{error}");
        assert!(IdentityForm::read(pairs(&[("s3_access", "read")])).is_err());
        assert!(IdentityForm::read(pairs(&[("s0_verbs", "get")])).is_err());
        assert!(IdentityForm::read(pairs(&[("scopes", "[]")])).is_err());
    }

    #[test]
    fn the_view_keeps_what_was_sent() {
        let (_, form) = IdentityForm::read(pairs(&[
            ("kind", "human"),
            ("role", "auditor"),
            ("s1_access", "read"),
            ("s1_kind", "Pod"),
        ]))
        .unwrap();
        let view = form.view();
        let on =
            |choices: &[Choice]| -> Vec<String> { choices.iter().filter(|c| c.on).map(|c| c.value.clone()).collect() };
        assert_eq!(on(&view.kinds), ["human"]);
        assert_eq!(on(&view.roles), ["auditor"]);
        assert_eq!(on(&view.scopes[1].accesses), ["read"]);
        assert_eq!(on(&view.scopes[1].kinds), ["Pod"]);
        assert_eq!(view.scopes[1].kinds.len(), ResourceKind::ALL.len() + 1);
        // A new form: an agent, nothing granted.
        let fresh = IdentityForm::default().view();
        assert_eq!(on(&fresh.kinds), ["agent"]);
        assert!(fresh.scopes.iter().all(|row| on(&row.accesses) == ["none"]));
    }
}
