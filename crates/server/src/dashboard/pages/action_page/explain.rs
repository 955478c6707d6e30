//! Why an action ended as it did, in plain words, from its entries: what policy decided (and a trust gate),
//! a guardrail, a budget, a freeze, an approver's rejection or an expiry, a request refused as invalid, and
//! the risk rules that fired.

use domain::{EntryKind, FreezeScope};
use gateway::Outcome;
use gateway::PolicyMode;
use serde_json::Value;

use super::super::text_of;
use super::Step;

/// One sentence of the explanation, with the entry kind it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The entry kind (e.g. `policy.decided`).
    pub source: &'static str,
    /// The sentence.
    pub text: String,
    /// A refusal (shown as one), rather than context.
    pub refusal: bool,
}

/// The explanation of `steps` (oldest first): the refusals first, then the context, each in the entries' order.
pub fn explain(steps: &[Step<'_>]) -> Vec<Reason> {
    let mut reasons: Vec<Reason> = steps.iter().flat_map(reasons_of).collect();
    // A failure the action got past (recovery found the change applied, and recorded it) ended nothing.
    let executed_after = |index: usize| {
        steps[index..]
            .iter()
            .any(|step| step.kind == EntryKind::ActionExecuted.as_str())
    };
    if let Some(failed) = steps
        .iter()
        .rposition(|step| step.kind == EntryKind::ActionFailed.as_str())
        && executed_after(failed)
    {
        for reason in reasons
            .iter_mut()
            .filter(|reason| reason.source == EntryKind::ActionFailed.as_str())
        {
            reason.refusal = false;
            reason.text.push_str("; the change was found applied later");
        }
    }
    reasons.sort_by_key(|reason| !reason.refusal);
    reasons
}

fn reasons_of(step: &Step<'_>) -> Vec<Reason> {
    let Some(kind) = EntryKind::parse(step.kind) else {
        return Vec::new();
    };
    let payload = &step.payload;
    let field = |name: &str| text_of(&payload[name]);
    let (text, refusal) = match kind {
        EntryKind::PolicyDecided => return policy(payload),
        EntryKind::RiskClassified => (risk(payload), false),
        EntryKind::GuardrailDenied => (
            format!("Guardrail {} refused it: {}", field("rule"), field("message")),
            true,
        ),
        EntryKind::BudgetExceeded => (budget(payload), true),
        EntryKind::FreezeRefused => (freeze(payload), true),
        EntryKind::ApprovalDenied => {
            let comment = Some(field("comment")).filter(|c| !c.is_empty());
            let said = comment.map(|c| format!(": “{c}”")).unwrap_or_default();
            (format!("{} rejected it{said}", step.actor), true)
        }
        EntryKind::ApprovalExpired => (
            match payload["expires_at"].as_str() {
                Some(at) => format!("No approver decided before {at}; the request expired"),
                None => "No approver decided in time; the request expired".to_owned(),
            },
            true,
        ),
        EntryKind::ActionFailed => {
            let error = &payload["error"];
            let status = error["status"]
                .as_u64()
                .map(|s| format!(", HTTP {s}"))
                .unwrap_or_default();
            let recovered = payload["recovered"].as_bool() == Some(true);
            let by = if recovered {
                " (found by recovery after a restart)"
            } else {
                ""
            };
            let text = format!(
                "It failed at the {} stage{by}: {} ({}{status})",
                field("stage"),
                text_of(&error["message"]),
                text_of(&error["code"]),
            );
            (text, true)
        }
        EntryKind::ActionRejected => (
            format!(
                "The request is not a valid action ({}): {}",
                field("field"),
                field("message")
            ),
            true,
        ),
        _ => return Vec::new(),
    };
    vec![Reason {
        source: kind.as_str(),
        text,
        refusal,
    }]
}

/// `policy.decided`: the outcome in words, the mode, the policy and its revision, the reasons; a trust gate.
fn policy(payload: &Value) -> Vec<Reason> {
    let source = EntryKind::PolicyDecided.as_str();
    let outcome = payload["outcome"].as_str().unwrap_or_default();
    let mode = payload["mode"].as_str().unwrap_or_default();
    let name = text_of(&payload["policy"]);
    // A revision is a digest: its first 12 hex digits name it well enough on a page (the entry has it whole).
    let revision = payload["revision"]
        .as_str()
        .map(|r| match r.char_indices().nth(19) {
            Some((cut, _)) => format!("@{}…", &r[..cut]),
            None => format!("@{r}"),
        })
        .unwrap_or_default();
    let said = [Outcome::Allow, Outcome::Deny, Outcome::RequireApproval]
        .into_iter()
        .find(|known| known.as_str() == outcome)
        .map(|known| match known {
            Outcome::Allow => "allowed it".to_owned(),
            Outcome::Deny => "denied it".to_owned(),
            Outcome::RequireApproval => "asked for an approval".to_owned(),
        })
        .unwrap_or_else(|| format!("decided {outcome:?}"));
    let observed = mode == PolicyMode::Ledger.as_str();
    let enforced = match mode {
        _ if observed => " in ledger mode (recorded, not enforced)".to_owned(),
        "" => String::new(),
        other => format!(" in {other} mode"),
    };
    let reasons: Vec<String> = payload["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text_of)
        .collect();
    let mut text = format!("Policy {name}{revision} {said}{enforced}");
    if let Some(error) = payload["error"].as_str() {
        text.push_str(&format!(": it could not be evaluated ({error})"));
    } else if !reasons.is_empty() {
        text.push_str(&format!(": {}", reasons.join("; ")));
    }
    let mut out = vec![Reason {
        source,
        text,
        refusal: outcome == Outcome::Deny.as_str() && !observed,
    }];
    let gate = &payload["trust_gate"];
    if let Some(reason) = gate["reason"].as_str() {
        out.push(Reason {
            source,
            text: format!(
                "Trust gate: {reason} (score {}, {} needed without an approval)",
                text_of(&gate["trust_score"]),
                text_of(&gate["required"])
            ),
            refusal: false,
        });
    }
    out
}

fn risk(payload: &Value) -> String {
    let rules: Vec<String> = payload["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| format!("{} ({})", text_of(&rule["id"]), text_of(&rule["reason"])))
        .collect();
    format!("Risk {}: {}", text_of(&payload["level"]), rules.join("; "))
}

/// `budget.exceeded`: whose budget, which limit, the usage it would reach in the window, when room frees up.
fn budget(payload: &Value) -> String {
    let metric = text_of(&payload["metric"]);
    let unit = if metric == storage::Metric::Workloads.as_str() {
        "%"
    } else {
        ""
    };
    let window = payload["window_seconds"].as_u64().map(window).unwrap_or_default();
    let mut text = format!(
        "The {} budget ({}) on {metric} is used up: this action would make it {}{unit} of a limit of {}{unit} within {window}",
        text_of(&payload["per"]),
        text_of(&payload["subject"]),
        text_of(&payload["would_be"]),
        text_of(&payload["limit"]),
    );
    if let Some(at) = payload["frees_at"].as_str() {
        text.push_str(&format!("; room frees up at {at}"));
    }
    text
}

/// A window's length in words: `1 h`, `10 min`, `2 days`, `45 s`.
fn window(seconds: u64) -> String {
    match seconds {
        86_400 => "1 day".to_owned(),
        s if s > 0 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn freeze(payload: &Value) -> String {
    let scope = serde_json::from_value::<FreezeScope>(payload["scope"].clone())
        .map(|scope| scope.describe())
        .unwrap_or_else(|_| text_of(&payload["scope"]));
    let when = match payload["stage"].as_str() {
        Some("execute") => " before it ran (the freeze came after its decision)",
        Some("submit") => " when it was submitted",
        _ => "",
    };
    format!(
        "A freeze of {scope} stopped it{when}: {} (frozen by {})",
        text_of(&payload["reason"]),
        text_of(&payload["frozen_by"])
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(kind: EntryKind, payload: Value) -> Vec<Reason> {
        explain(&[Step {
            kind: kind.as_str(),
            actor: "alice",
            payload,
        }])
    }

    #[test]
    fn a_policy_denial_names_the_policy_the_mode_and_the_reasons() {
        let denied = one(
            EntryKind::PolicyDecided,
            json!({"outcome": "deny", "mode": "enforce", "policy": "docketops.policy", "revision": "r1",
                   "reasons": ["mutations by agents need a justification"], "input": {}}),
        );
        assert_eq!(
            denied,
            vec![Reason {
                source: "policy.decided",
                text: "Policy docketops.policy@r1 denied it in enforce mode: mutations by agents need a justification"
                    .into(),
                refusal: true,
            }]
        );
        let observed = one(
            EntryKind::PolicyDecided,
            json!({"outcome": "deny", "mode": "ledger", "policy": "p", "reasons": [], "error": "timeout",
                   "trust_gate": {"reason": "trust 10 is below 50", "trust_score": 10, "required": 50}}),
        );
        assert!(!observed[0].refusal, "a deny in ledger mode stops nothing");
        assert!(
            observed[0].text.contains("ledger mode (recorded, not enforced)"),
            "{:?}",
            observed[0]
        );
        assert!(observed[0].text.ends_with("could not be evaluated (timeout)"));
        assert_eq!(
            observed[1].text,
            "Trust gate: trust 10 is below 50 (score 10, 50 needed without an approval)"
        );
    }

    #[test]
    fn guardrails_budgets_freezes_and_approvals_read_as_sentences() {
        let guard = one(
            EntryKind::GuardrailDenied,
            json!({"rule": "namespace_blocked", "message": "kube-system is blocked"}),
        );
        assert_eq!(
            guard[0].text,
            "Guardrail namespace_blocked refused it: kube-system is blocked"
        );
        let budget = one(
            EntryKind::BudgetExceeded,
            json!({"per": "identity", "subject": "identity:agt_1", "window_seconds": 3600, "metric": "replicas",
                   "limit": 10, "would_be": 12, "used": {}, "frees_at": "2026-03-10T12:00:00Z"}),
        );
        assert_eq!(
            budget[0].text,
            "The identity budget (identity:agt_1) on replicas is used up: this action would make it 12 of a limit \
             of 10 within 1 h; room frees up at 2026-03-10T12:00:00Z"
        );
        let frozen = one(
            EntryKind::FreezeRefused,
            json!({"freeze_id": "frz_1", "scope": {"kind": "agents"}, "reason": "incident", "frozen_by": "usr_1",
                   "stage": "submit"}),
        );
        assert!(frozen[0].text.starts_with("A freeze of "), "{:?}", frozen[0]);
        assert!(
            frozen[0]
                .text
                .ends_with("when it was submitted: incident (frozen by usr_1)"),
            "{:?}",
            frozen[0]
        );
        let rejected = one(
            EntryKind::ApprovalDenied,
            json!({"approver": "usr_2", "comment": "not now", "digest": "d"}),
        );
        assert_eq!(rejected[0].text, "alice rejected it: “not now”");
        let expired = one(
            EntryKind::ApprovalExpired,
            json!({"expires_at": "2026-03-10T12:00:00Z"}),
        );
        assert_eq!(
            expired[0].text,
            "No approver decided before 2026-03-10T12:00:00Z; the request expired"
        );
        let risk = one(
            EntryKind::RiskClassified,
            json!({"level": "HIGH", "rules": [{"id": "baseline", "level": "LOW", "reason": "a change"},
                                              {"id": "prod", "level": "HIGH", "reason": "production"}]}),
        );
        assert_eq!(risk[0].text, "Risk HIGH: baseline (a change); prod (production)");
        assert!(!risk[0].refusal);
        assert!(one(EntryKind::ActionRequested, json!({})).is_empty());
        let failed = one(
            EntryKind::ActionFailed,
            json!({"stage": "execute", "error": {"code": "conflict", "status": 409, "message": "the object changed"}}),
        );
        assert_eq!(
            failed[0].text,
            "It failed at the execute stage: the object changed (conflict, HTTP 409)"
        );
        assert!(failed[0].refusal);
        let failure = |kind: EntryKind, payload: Value| Step {
            kind: kind.as_str(),
            actor: "system",
            payload,
        };
        let got_past = explain(&[
            failure(
                EntryKind::ActionFailed,
                json!({"stage": "verify", "error": {"code": "timeout", "message": "no answer"}}),
            ),
            failure(EntryKind::ActionExecuted, json!({"recovered": true})),
        ]);
        assert!(!got_past[0].refusal, "{:?}", got_past[0].text);
        assert!(got_past[0].text.ends_with("found applied later"));
        let both = explain(&[
            Step {
                kind: EntryKind::RiskClassified.as_str(),
                actor: "a",
                payload: json!({"level": "LOW", "rules": []}),
            },
            Step {
                kind: EntryKind::GuardrailDenied.as_str(),
                actor: "a",
                payload: json!({"rule": "scope", "message": "m"}),
            },
        ]);
        assert_eq!(
            both.iter().map(|r| r.refusal).collect::<Vec<_>>(),
            [true, false],
            "refusals first"
        );
        let long = one(
            EntryKind::PolicyDecided,
            json!({"outcome": "allow", "mode": "enforce", "policy": "p", "revision": format!("sha256:{}", "ab".repeat(32))}),
        );
        assert_eq!(long[0].text, "Policy p@sha256:abababababab… allowed it in enforce mode");
        assert_eq!(window(600), "10 min");
        assert_eq!(window(172_800), "2 days");
        assert_eq!(window(86_400), "1 day");
        assert_eq!(window(90), "90 s");
    }
}
