//! What an entry means, independent of the schema it is written in: the activity, the outcome, the
//! severity, who acted and on what. `ocsf` and `ecs` spell these facts in their own fields.

use domain::{ActionType, EntryKind, IdentityKind, ResourceKind};
use ledger_core::Entry;
use serde::Deserialize;
use serde_json::Value;

use super::ActionTarget;

/// What kind of API operation an entry records (OCSF `activity_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activity {
    Unknown,
    Create,
    Read,
    Update,
    Delete,
    Other,
}

/// How the step ended (OCSF `status_id`, ECS `event.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Unknown,
    Success,
    Failure,
    /// Neither yet: a request waiting for its decision, an action waiting for approvals.
    Pending,
}

/// OCSF `severity_id` (ECS `event.severity` uses the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Informational = 1,
    Low = 2,
    Medium = 3,
    High = 4,
}

/// Who wrote the entry (OCSF `actor.user.type_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActorType {
    Unknown,
    /// A person (`usr_…`).
    User,
    /// An operator on the gateway's host (`cli:…`).
    Admin,
    /// The gateway itself (`system`).
    System,
    /// An AI agent (`agt_…`).
    Agent,
}

/// The risk levels of `risk.classified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum RiskLevel {
    Low,
    Medium,
    High,
}

/// The outcomes of `policy.decided`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Allow,
    Deny,
    RequireApproval,
}

/// An entry's meaning.
pub(crate) struct Facts<'a> {
    pub entry: &'a Entry,
    pub kind: Option<EntryKind>,
    pub target: Option<&'a ActionTarget>,
    pub activity: Activity,
    pub status: Status,
    pub severity: Severity,
    /// Why: the decision and its reasons, the error, the refusal.
    pub detail: Option<String>,
    /// The API server's HTTP status (executed, failed).
    pub response_code: Option<i64>,
    pub actor_type: ActorType,
    /// The acting identity's name, where the entry names it.
    pub user_name: Option<String>,
    /// The entry's cluster: the payload's, else the action's.
    pub cluster: Option<String>,
    /// The entry's time in epoch milliseconds (None if its timestamp does not parse).
    pub time_ms: Option<i64>,
    /// Whether a policy allowed, or an approver granted (ECS `event.type` `allowed`).
    pub allowed: bool,
}

impl<'a> Facts<'a> {
    pub(crate) fn of(entry: &'a Entry, payload: &Value, target: Option<&'a ActionTarget>) -> Facts<'a> {
        let kind = EntryKind::parse(&entry.kind);
        let decision = payload
            .get("outcome")
            .and_then(|v| Decision::deserialize(v).ok())
            .filter(|_| kind == Some(EntryKind::PolicyDecided));
        let (status, detail, response_code) = status_of(kind, payload, decision);
        let mut severity = match status {
            Status::Failure => Severity::Medium,
            _ => Severity::Informational,
        };
        if kind == Some(EntryKind::RiskClassified) {
            severity = match payload.get("level").and_then(|v| RiskLevel::deserialize(v).ok()) {
                Some(RiskLevel::Low) | None => Severity::Low,
                Some(RiskLevel::Medium) => Severity::Medium,
                Some(RiskLevel::High) => Severity::High,
            };
        }
        if kind == Some(EntryKind::AuditBypassDetected) {
            severity = Severity::High;
        }
        let time_ms = time::OffsetDateTime::parse(&entry.timestamp, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|at| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok());
        let cluster = super::text(payload, "cluster").or_else(|| target.and_then(|t| t.cluster.clone()));
        Facts {
            entry,
            kind,
            target,
            activity: activity_of(kind, target.and_then(|t| t.action_type)),
            status,
            severity,
            detail,
            response_code,
            actor_type: actor_type(&entry.actor),
            user_name: user_name(entry, payload, target),
            cluster,
            time_ms,
            allowed: decision == Some(Decision::Allow) || kind == Some(EntryKind::ApprovalGranted),
        }
    }

    /// The API operation: the action's type, else the entry's kind.
    pub(crate) fn operation(&self) -> &str {
        match self.target.and_then(|t| t.action_type) {
            Some(action_type) => action_type.as_str(),
            None => &self.entry.kind,
        }
    }

    /// The target's API version (`apps/v1`, `v1`), for the kinds this release knows.
    pub(crate) fn api_version(&self) -> Option<String> {
        let kind = ResourceKind::parse(self.target?.resource_kind.as_deref()?)?;
        Some(match kind.group() {
            "" => "v1".to_string(),
            group => format!("{group}/v1"),
        })
    }
}

/// The activity of an entry: from the action's type for an action's steps, from the kind otherwise.
fn activity_of(kind: Option<EntryKind>, action_type: Option<ActionType>) -> Activity {
    let Some(kind) = kind else {
        return Activity::Unknown;
    };
    if kind.is_action_step() {
        return match action_type {
            Some(ActionType::Get | ActionType::List) => Activity::Read,
            Some(ActionType::Delete) => Activity::Delete,
            Some(_) => Activity::Update,
            None => Activity::Unknown,
        };
    }
    match kind {
        EntryKind::IdentityCreated | EntryKind::KeyIssued | EntryKind::LedgerInitialized => Activity::Create,
        EntryKind::IdentityRevoked | EntryKind::KeyRevoked => Activity::Delete,
        EntryKind::LedgerNote | EntryKind::AuditBypassDetected => Activity::Other,
        _ => Activity::Update,
    }
}

/// The status, its detail and the API server's status code.
fn status_of(
    kind: Option<EntryKind>,
    payload: &Value,
    decision: Option<Decision>,
) -> (Status, Option<String>, Option<i64>) {
    let reasons = || {
        let list: Vec<&str> = payload
            .get("reasons")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        (!list.is_empty()).then(|| list.join("; "))
    };
    let message = |name: &str| super::text(payload, name);
    let Some(kind) = kind else {
        return (Status::Unknown, None, None);
    };
    match kind {
        EntryKind::ActionRequested | EntryKind::ApprovalRequested => (Status::Pending, None, None),
        EntryKind::PolicyDecided => match decision {
            Some(Decision::Allow) => (Status::Success, reasons(), None),
            // A deny in ledger (observe-only) mode is recorded, not enforced: the action went ahead.
            Some(Decision::Deny) if payload.get("mode").and_then(Value::as_str) == Some("ledger") => {
                (Status::Success, reasons(), None)
            }
            Some(Decision::Deny) => (Status::Failure, reasons(), None),
            Some(Decision::RequireApproval) => (Status::Pending, reasons(), None),
            None => (Status::Unknown, reasons(), None),
        },
        EntryKind::ActionExecuted => {
            let code = payload
                .get("api_status")
                .or_else(|| payload.pointer("/execution/api_status"))
                .and_then(Value::as_i64);
            let ok = code.is_none_or(|code| (200..300).contains(&code));
            (if ok { Status::Success } else { Status::Failure }, None, code)
        }
        EntryKind::ActionFailed => {
            let error = payload.get("error").unwrap_or(&Value::Null);
            let detail = [
                message("stage"),
                super::text(error, "code"),
                super::text(error, "message"),
            ];
            let detail: Vec<String> = detail.into_iter().flatten().collect();
            let code = error.get("status").and_then(Value::as_i64);
            (Status::Failure, (!detail.is_empty()).then(|| detail.join(": ")), code)
        }
        EntryKind::OutcomeVerified => match payload.get("passed").and_then(Value::as_bool) {
            Some(true) => (Status::Success, None, None),
            Some(false) => (Status::Failure, Some("the outcome did not verify".into()), None),
            None => (Status::Unknown, None, None),
        },
        EntryKind::ActionRejected
        | EntryKind::GuardrailDenied
        | EntryKind::ApprovalDenied
        | EntryKind::ApprovalExpired
        | EntryKind::ApprovalRefused
        | EntryKind::BudgetExceeded
        | EntryKind::FreezeRefused => (Status::Failure, message("message").or_else(|| message("reason")), None),
        EntryKind::AuditBypassDetected => (Status::Unknown, None, None),
        _ => (Status::Success, None, None),
    }
}

/// The actor's type from its id: `agt_…` agents, `usr_…` people, `system` the gateway, `cli:…` operators.
fn actor_type(actor: &str) -> ActorType {
    let prefixed = |kind: IdentityKind| {
        actor
            .strip_prefix(kind.id_prefix())
            .is_some_and(|rest| rest.starts_with('_'))
    };
    if prefixed(IdentityKind::Agent) {
        ActorType::Agent
    } else if prefixed(IdentityKind::Human) {
        ActorType::User
    } else if actor == "system" {
        ActorType::System
    } else if actor.starts_with("cli:") || actor == "cli" {
        ActorType::Admin
    } else {
        ActorType::Unknown
    }
}

/// The acting identity's name: the requester's, from `action.requested`, on the entries the requester
/// wrote.
fn user_name(entry: &Entry, payload: &Value, target: Option<&ActionTarget>) -> Option<String> {
    if EntryKind::parse(&entry.kind) == Some(EntryKind::ActionRequested) {
        return payload
            .get("identity")
            .and_then(|identity| super::text(identity, "name"));
    }
    let target = target?;
    if target.requester_id.as_deref() == Some(entry.actor.as_str()) {
        target.requester_name.clone()
    } else {
        None
    }
}
