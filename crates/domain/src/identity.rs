//! Who acts (SPEC §2): an identity's kind, its roles and its status.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an identity may do beyond its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages identities, keys and the gateway.
    Admin,
    /// Submits actions within its scopes.
    Operator,
    /// Approves or denies other identities' actions.
    Approver,
    /// Reads the whole ledger and verifies it.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Approver, Role::Auditor];

    /// The role as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
        }
    }

    /// The role spelt `text`, if it is one.
    pub fn parse(text: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AI agent or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// An AI agent (ids `agt_…`).
    Agent,
    /// A person (ids `usr_…`).
    Human,
}

impl IdentityKind {
    /// The kind as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Agent => "agent",
            IdentityKind::Human => "human",
        }
    }

    /// The kind spelt `text`, if it is one.
    pub fn parse(text: &str) -> Option<IdentityKind> {
        [IdentityKind::Agent, IdentityKind::Human]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The prefix of this kind's identity ids.
    pub const fn id_prefix(self) -> &'static str {
        match self {
            IdentityKind::Agent => "agt",
            IdentityKind::Human => "usr",
        }
    }

    /// The kind of the identity `id`, by its prefix; anything but a person's id reads as an agent (the
    /// kind with fewer rights: a freeze of every agent must not miss one).
    pub fn of_id(id: &str) -> IdentityKind {
        match id.strip_prefix(IdentityKind::Human.id_prefix()) {
            Some(rest) if rest.starts_with('_') => IdentityKind::Human,
            _ => IdentityKind::Agent,
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an identity (or one of its keys) may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdentityStatus {
    /// May act.
    Active,
    /// Stopped for now; an admin can reactivate it.
    Suspended,
    /// Stopped for good.
    Revoked,
}

impl IdentityStatus {
    /// The status as the API and the database spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityStatus::Active => "active",
            IdentityStatus::Suspended => "suspended",
            IdentityStatus::Revoked => "revoked",
        }
    }

    /// Reads a stored status; anything unexpected is treated as the most restrictive state.
    pub fn parse_or_revoked(text: &str) -> IdentityStatus {
        match text {
            "active" => IdentityStatus::Active,
            "suspended" => IdentityStatus::Suspended,
            _ => IdentityStatus::Revoked,
        }
    }
}

/// Whether an API key authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Authenticates (once its `key.issued` entry is durable).
    Active,
    /// Never authenticates again.
    Revoked,
}

impl KeyStatus {
    /// The status as the API and the database spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// A stored key status; anything but `active` reads as revoked (the safe side).
impl From<String> for KeyStatus {
    fn from(text: String) -> Self {
        match text.as_str() {
            "active" => KeyStatus::Active,
            _ => KeyStatus::Revoked,
        }
    }
}

impl fmt::Display for IdentityStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
