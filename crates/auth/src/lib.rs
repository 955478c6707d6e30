//! Sign-in with the identity providers a company already runs, for humans: OpenID Connect (the dashboard's
//! authorization-code flow with PKCE, and the provider's ID tokens as API bearer tokens, validated against
//! the issuer's JWKS, audience and expiry) and LDAP (bind as the user over LDAPS or StartTLS, then read the
//! user's groups). Groups map to roles and scopes by configuration ([`GroupMapping`]).
//!
//! Architecture invariant: this crate only talks to identity providers and answers who someone is and what
//! their groups grant. It stores nothing (the gateway records and provisions identities) and serves no HTTP.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ldap;
mod mapping;
mod oidc;

pub use ldap::{LdapConfig, LdapDirectory};
pub use mapping::{Grants, GroupMapping, grants_for};
pub use oidc::{OidcConfig, OidcProvider, Pkce};

/// Someone an identity provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUser {
    /// `oidc` or `ldap`.
    pub source: &'static str,
    /// The OIDC issuer, or the LDAP server URL.
    pub issuer: String,
    /// The stable subject: OIDC `sub`, or the user's LDAP DN.
    pub subject: String,
    /// A readable name: `preferred_username`, `email` or `sub`; the LDAP user name.
    pub username: String,
    /// The user's email address (OIDC `email` claim); None for LDAP users and tokens without one.
    pub email: Option<String>,
    /// Group names (OIDC: the groups claim; LDAP: each group's name attribute and its DN).
    pub groups: Vec<String>,
    /// When the proof expires (OIDC `exp`, seconds since the epoch).
    pub expires_at: Option<i64>,
}

/// Why a sign-in or token was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credentials or token are not acceptable (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The provider is down or answered nonsense (HTTP 503).
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The configuration cannot work.
    #[error("identity provider configuration: {0}")]
    Config(String),
}
