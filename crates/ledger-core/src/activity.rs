//! What the console's overview counts per hour, read from one entry at a time: actions requested (and by
//! whom), how actions ended (completed, denied — with the reason —, failed, rejected, expired, previewed),
//! requests held for an approval, and bypasses detected. Each action ends once: a read completes at
//! `action.executed`, a change at its `outcome.verified` (passed: completed; not: failed).
//!
//! A pure function of one entry, so counts folded from any point of the ledger are the same as counts
//! rebuilt from the start: the storage keeps them as derived tables beside the ledger.

use domain::{EntryKind, FreezeScope};
use serde_json::Value;

use crate::Entry;

/// Bumped when [`activity`] changes what it counts: stored counts of another version are rebuilt.
pub const ACTIVITY_VERSION: u32 = 1;

/// The longest denial reason kept (in characters); a longer one is cut.
pub const MAX_REASON_CHARS: usize = 160;

/// The kinds whose payload [`activity`] reads; of every other entry it needs only the kind, time and actor.
pub const PAYLOAD_KINDS: [&str; 7] = [
    EntryKind::ActionExecuted.as_str(),
    EntryKind::PolicyDecided.as_str(),
    EntryKind::GuardrailDenied.as_str(),
    EntryKind::BudgetExceeded.as_str(),
    EntryKind::FreezeRefused.as_str(),
    EntryKind::ActionRejected.as_str(),
    EntryKind::OutcomeVerified.as_str(),
];

/// What one entry counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tally {
    /// An action was requested (`action.requested`).
    Requested,
    /// An action completed: a read answered (`action.executed`), a change verified (`outcome.verified`).
    Completed,
    /// An action was refused: by policy in enforce mode, a guardrail, a budget, a freeze, or as invalid.
    Denied,
    /// An action failed, or its change did not verify.
    Failed,
    /// An action was held for approvers (`approval.requested`; not an ending: it goes on to one of the others).
    AwaitingApproval,
    /// An approver rejected an action.
    Rejected,
    /// No approver decided in time.
    Expired,
    /// A dry run was answered (`action.previewed`).
    Previewed,
    /// A change made around the gateway was detected (`audit.bypass_detected`).
    Bypass,
}

impl Tally {
    /// Every tally, in the order the overview shows them.
    pub const ALL: [Tally; 9] = [
        Tally::Requested,
        Tally::Completed,
        Tally::Denied,
        Tally::Failed,
        Tally::AwaitingApproval,
        Tally::Rejected,
        Tally::Expired,
        Tally::Previewed,
        Tally::Bypass,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tally::Requested => "requested",
            Tally::Completed => "completed",
            Tally::Denied => "denied",
            Tally::Failed => "failed",
            Tally::AwaitingApproval => "awaiting_approval",
            Tally::Rejected => "rejected",
            Tally::Expired => "expired",
            Tally::Previewed => "previewed",
            Tally::Bypass => "bypass",
        }
    }

    /// The tally with this stored name.
    pub fn parse(name: &str) -> Option<Tally> {
        Tally::ALL.into_iter().find(|tally| tally.as_str() == name)
    }
}

/// What refused an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenialSource {
    /// The policy, in enforce mode.
    Policy,
    /// A guardrail of the executor.
    Guardrail,
    /// A budget.
    Budget,
    /// A freeze (the kill switch).
    Freeze,
    /// The request was not a valid action.
    InvalidRequest,
}

impl DenialSource {
    /// Every source.
    pub const ALL: [DenialSource; 5] = [
        DenialSource::Policy,
        DenialSource::Guardrail,
        DenialSource::Budget,
        DenialSource::Freeze,
        DenialSource::InvalidRequest,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenialSource::Policy => "policy",
            DenialSource::Guardrail => "guardrail",
            DenialSource::Budget => "budget",
            DenialSource::Freeze => "freeze",
            DenialSource::InvalidRequest => "invalid_request",
        }
    }

    /// The source with this stored name.
    pub fn parse(name: &str) -> Option<DenialSource> {
        DenialSource::ALL.into_iter().find(|source| source.as_str() == name)
    }
}

/// A denial's cause, coarse enough to group by: the policy's reasons, a guardrail's rule, a budget's
/// subject and metric, a freeze's scope, the invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Denial {
    /// What refused it.
    pub source: DenialSource,
    /// Why, in at most [`MAX_REASON_CHARS`] characters.
    pub reason: String,
}

/// What an entry counts as, in the hour it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The hour of the entry's timestamp, `YYYY-MM-DDTHH` (UTC).
    pub hour: String,
    /// What it counts as.
    pub tally: Tally,
    /// The requester, for [`Tally::Requested`].
    pub requester: Option<String>,
    /// The cause, for [`Tally::Denied`].
    pub denial: Option<Denial>,
}

/// The hour an RFC 3339 UTC timestamp falls in: `2026-01-01T13:05:00Z` → `2026-01-01T13`.
pub fn hour_of(timestamp: &str) -> Option<&str> {
    let hour = timestamp.get(..13)?;
    let digits = |range: std::ops::Range<usize>| hour[range].bytes().all(|b| b.is_ascii_digit());
    let shaped = hour.as_bytes()[4] == b'-' && hour.as_bytes()[7] == b'-' && hour.as_bytes()[10] == b'T';
    (shaped && digits(0..4) && digits(5..7) && digits(8..10) && digits(11..13)).then_some(hour)
}

/// What `entry` counts as; None when it counts as nothing (most entries: risk, approvals granted,
/// identities, keys, …) or its time is unreadable.
pub fn activity(entry: &Entry) -> Option<Activity> {
    let hour = hour_of(&entry.timestamp)?.to_owned();
    let kind = EntryKind::parse(&entry.kind)?;
    let payload = || serde_json::from_str::<Value>(&entry.payload).unwrap_or(Value::Null);
    let denied = |source, reason: String| {
        (
            Tally::Denied,
            Some(Denial {
                source,
                reason: cut(reason),
            }),
        )
    };
    let (tally, denial) = match kind {
        EntryKind::ActionRequested => {
            return Some(Activity {
                hour,
                tally: Tally::Requested,
                requester: Some(entry.actor.clone()),
                denial: None,
            });
        }
        EntryKind::ActionExecuted => (Tally::Completed, None),
        EntryKind::ActionFailed => (Tally::Failed, None),
        EntryKind::OutcomeVerified if payload()["passed"] == true => return None,
        EntryKind::OutcomeVerified => (Tally::Failed, None),
        EntryKind::ApprovalRequested => (Tally::AwaitingApproval, None),
        EntryKind::ApprovalDenied => (Tally::Rejected, None),
        EntryKind::ApprovalExpired => (Tally::Expired, None),
        EntryKind::ActionPreviewed => (Tally::Previewed, None),
        EntryKind::AuditBypassDetected => (Tally::Bypass, None),
        EntryKind::PolicyDecided => {
            let decided = payload();
            if decided["outcome"] != "deny" || decided["mode"] != "enforce" {
                return None;
            }
            denied(DenialSource::Policy, policy_reason(&decided))
        }
        EntryKind::GuardrailDenied => denied(DenialSource::Guardrail, text(&payload()["rule"])),
        EntryKind::BudgetExceeded => {
            let budget = payload();
            let reason = format!(
                "{} {} on {}",
                text(&budget["per"]),
                text(&budget["subject"]),
                text(&budget["metric"])
            );
            denied(DenialSource::Budget, reason)
        }
        EntryKind::FreezeRefused => denied(DenialSource::Freeze, scope(&payload()["scope"])),
        EntryKind::ActionRejected => denied(DenialSource::InvalidRequest, text(&payload()["field"])),
        _ => return None,
    };
    Some(Activity {
        hour,
        tally,
        requester: None,
        denial,
    })
}

/// The policy's reasons, or its evaluation error.
fn policy_reason(decided: &Value) -> String {
    if let Some(error) = decided["error"].as_str() {
        return format!("could not be evaluated: {error}");
    }
    let reasons: Vec<String> = decided["reasons"].as_array().into_iter().flatten().map(text).collect();
    if reasons.is_empty() {
        "denied without a reason".to_owned()
    } else {
        reasons.join("; ")
    }
}

/// A freeze's scope in words, as the dashboard names it (`FreezeScope::describe`).
fn scope(scope: &Value) -> String {
    serde_json::from_value::<FreezeScope>(scope.clone())
        .map(|scope| scope.describe())
        .unwrap_or_else(|_| text(scope))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cut(reason: String) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((at, _)) => format!("{}…", &reason[..at]),
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(kind: EntryKind, payload: Value) -> Entry {
        Entry {
            seq: 7,
            id: "evt_1".into(),
            timestamp: "2026-03-04T05:06:07.000000Z".into(),
            kind: kind.as_str().into(),
            actor: "agt_bot".into(),
            action_id: Some("act_1".into()),
            payload: payload.to_string(),
            prev_chain_hash: String::new(),
            event_hash: String::new(),
            chain_hash: String::new(),
            key_id: String::new(),
            signature: String::new(),
        }
    }

    fn tally(kind: EntryKind, payload: Value) -> Option<(Tally, Option<Denial>)> {
        activity(&entry(kind, payload)).map(|a| (a.tally, a.denial))
    }

    #[test]
    fn a_request_counts_in_its_hour_for_its_requester() {
        let counted = activity(&entry(EntryKind::ActionRequested, json!({}))).unwrap();
        assert_eq!(counted.hour, "2026-03-04T05");
        assert_eq!(counted.tally, Tally::Requested);
        assert_eq!(counted.requester.as_deref(), Some("agt_bot"));
    }

    #[test]
    fn only_an_enforced_policy_denial_is_a_denial() {
        let deny = json!({"outcome": "deny", "mode": "enforce", "reasons": ["too many replicas", "prod"]});
        assert_eq!(
            tally(EntryKind::PolicyDecided, deny),
            Some((
                Tally::Denied,
                Some(Denial {
                    source: DenialSource::Policy,
                    reason: "too many replicas; prod".into()
                })
            ))
        );
        assert_eq!(
            tally(EntryKind::PolicyDecided, json!({"outcome": "deny", "mode": "ledger"})),
            None
        );
        assert_eq!(
            tally(EntryKind::PolicyDecided, json!({"outcome": "allow", "mode": "enforce"})),
            None
        );
    }

    #[test]
    fn each_refusal_is_grouped_by_its_cause() {
        let reason = |kind, payload| tally(kind, payload).and_then(|(_, denial)| denial).unwrap();
        assert_eq!(
            reason(
                EntryKind::GuardrailDenied,
                json!({"rule": "protected-namespace", "message": "x"})
            )
            .reason,
            "protected-namespace"
        );
        let budget = json!({"per": "identity", "subject": "agt_bot", "metric": "deletes"});
        assert_eq!(
            reason(EntryKind::BudgetExceeded, budget).reason,
            "identity agt_bot on deletes"
        );
        let freeze = json!({"scope": {"kind": "namespace", "namespace": "prod"}});
        let prod = FreezeScope::Namespace {
            namespace: "prod".into(),
            cluster: None,
        };
        assert_eq!(reason(EntryKind::FreezeRefused, freeze).reason, prod.describe());
        let invalid = reason(EntryKind::ActionRejected, json!({"field": "replicas"}));
        assert_eq!(
            (invalid.source, invalid.reason.as_str()),
            (DenialSource::InvalidRequest, "replicas")
        );
    }

    #[test]
    fn a_failed_verification_is_a_failure_and_a_passed_one_counts_nothing() {
        assert_eq!(
            tally(EntryKind::OutcomeVerified, json!({"passed": false})),
            Some((Tally::Failed, None))
        );
        assert_eq!(tally(EntryKind::OutcomeVerified, json!({"passed": true})), None);
        assert_eq!(tally(EntryKind::RiskClassified, json!({})), None);
    }

    #[test]
    fn a_long_reason_is_cut_and_a_bad_time_counts_nothing() {
        let long = json!({"outcome": "deny", "mode": "enforce", "reasons": ["é".repeat(500)]});
        let (_, denial) = tally(EntryKind::PolicyDecided, long).unwrap();
        assert_eq!(denial.unwrap().reason.chars().count(), MAX_REASON_CHARS + 1);
        let mut bad = entry(EntryKind::ActionRequested, json!({}));
        bad.timestamp = "yesterday".into();
        assert_eq!(activity(&bad), None);
        assert_eq!(hour_of("2026-03-04T05:06:07Z"), Some("2026-03-04T05"));
        assert_eq!(hour_of("2026-03-04 05:06"), None);
    }

    #[test]
    fn names_round_trip() {
        for tally in Tally::ALL {
            assert_eq!(Tally::parse(tally.as_str()), Some(tally));
        }
        for source in DenialSource::ALL {
            assert_eq!(DenialSource::parse(source.as_str()), Some(source));
        }
    }
}
