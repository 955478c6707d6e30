//! The payloads the gateway writes that carry its own types or the executor's (the rest are in
//! `domain::payload`; `action.previewed` is in `dry_run`). Each borrows what it records, so writing one copies nothing twice.

use domain::payload::{KeyRef, Payload, Recovered};
use domain::{EntryKind, Role, Scope};
use executor::Check;
use executor::Execution;
use executor::diff::Change;
use executor::executor::PlannedRequest;
use policy::decision::Outcome;
use serde::Serialize;
use serde_json::Value;

use crate::Identity;
use crate::pipeline::PolicyMode;

/// `policy.decided`: what policy said, in which mode, about which input. `outcome` is the policy's own; a
/// trust gate that asked for an approval instead is recorded in `trust_gate`.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDecided {
    /// The policy's outcome (`deny` when evaluation failed: fail closed).
    pub outcome: Outcome,
    /// Why.
    pub reasons: Vec<String>,
    /// `ledger` or `enforce`.
    pub mode: PolicyMode,
    /// Which policy decided.
    pub policy: String,
    /// The policy's revision (absent when evaluation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The engine's decision id (absent when evaluation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// The engine (absent when evaluation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Why evaluation failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Approvals the policy asks for, when it says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
    /// Groups the policy asks one approval from each of, when it names any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approval_groups: Vec<String>,
    /// `sha256:<hex>` of the canonical input.
    pub input_sha256: String,
    /// The input policy saw.
    pub input: Value,
    /// A trust gate that turned an allow into a required approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_gate: Option<TrustGate>,
}

/// The trust gate's part of `policy.decided`.
#[derive(Debug, Clone, Serialize)]
pub struct TrustGate {
    /// The identity's trust score.
    pub trust_score: i64,
    /// The score needed at this risk without an approval.
    pub required: i64,
    /// Always `require_approval`.
    pub outcome: Outcome,
    /// In words.
    pub reason: String,
}

/// `action.executed` for a change: the API server's answer, with the request sent and the diff previewed.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeExecuted<'a> {
    /// The API server's answer.
    pub execution: &'a Execution,
    /// The request sent.
    pub request: &'a PlannedRequest,
    /// The changes previewed.
    pub diff: &'a [Change],
}

/// `action.executed` written by recovery: the change took effect before the gateway stopped.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveredExecuted {
    /// Who recovered it.
    #[serde(flatten)]
    pub recovered: Recovered,
    /// What is known of the execution: `executor_account` and the `resource_version` observed.
    pub execution: Value,
    /// What recovery found in the cluster.
    pub evidence: Value,
}

/// `outcome.verified` written by recovery: the object compared with the intent after a restart.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveredVerification<'a> {
    /// Whether the intent is in the cluster.
    pub passed: bool,
    /// Who recovered it.
    #[serde(flatten)]
    pub recovered: Recovered,
    /// The comparisons made.
    pub checks: &'a [Check],
    /// The `resourceVersion` observed, if the object exists.
    pub observed_resource_version: Option<String>,
    /// Why, in one sentence.
    pub reason: &'a str,
}

/// `identity.created` through the API (or the first admin, `bootstrap`).
#[derive(Debug, Clone, Serialize)]
pub struct IdentityCreated<'a> {
    /// The identity as created.
    pub identity: &'a Identity,
    /// Its first key.
    pub key: KeyRef,
    /// Whether this is the first admin, created at start-up.
    pub bootstrap: bool,
}

/// `identity.created` for a person first signed in through OIDC or LDAP.
#[derive(Debug, Clone, Serialize)]
pub struct SignedInIdentityCreated<'a> {
    /// The identity as created.
    pub identity: &'a Identity,
    /// Where the sign-in came from.
    pub source: SignInSource<'a>,
}

/// Where a sign-in came from.
#[derive(Debug, Clone, Serialize)]
pub struct SignInSource<'a> {
    /// `oidc` or `ldap`.
    pub kind: &'a str,
    /// The OIDC issuer or LDAP server.
    pub issuer: &'a str,
    /// The subject at the source.
    pub subject: &'a str,
    /// The groups the source reported.
    pub groups: &'a [String],
}

impl<'a> From<&'a auth::ExternalUser> for SignInSource<'a> {
    fn from(user: &'a auth::ExternalUser) -> Self {
        SignInSource {
            kind: user.source,
            issuer: &user.issuer,
            subject: &user.subject,
            groups: &user.groups,
        }
    }
}

/// An identity's roles, scopes and groups.
#[derive(Debug, Clone, Serialize)]
pub struct Grants<'a> {
    /// Its roles.
    pub roles: &'a [Role],
    /// Its scopes.
    pub scopes: &'a [Scope],
    /// Its groups.
    pub groups: &'a [String],
}

/// `identity.updated`: a signed-in person's roles, scopes and groups followed their directory groups.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityUpdated<'a> {
    /// The identity.
    pub identity_id: &'a str,
    /// The roles now.
    pub roles: &'a [Role],
    /// The scopes now.
    pub scopes: &'a [Scope],
    /// The groups now.
    pub groups: &'a [String],
    /// The roles, scopes and groups before.
    pub previous: Grants<'a>,
    /// Why they changed.
    pub reason: &'a str,
    /// Where the sign-in came from.
    pub source: SignInSource<'a>,
}

impl Payload for PolicyDecided {
    fn kind(&self) -> EntryKind {
        EntryKind::PolicyDecided
    }
}
impl Payload for ChangeExecuted<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionExecuted
    }
}
impl Payload for RecoveredExecuted {
    fn kind(&self) -> EntryKind {
        EntryKind::ActionExecuted
    }
}
impl Payload for RecoveredVerification<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::OutcomeVerified
    }
}
impl Payload for IdentityCreated<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::IdentityCreated
    }
}
impl Payload for SignedInIdentityCreated<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::IdentityCreated
    }
}
impl Payload for IdentityUpdated<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::IdentityUpdated
    }
}
