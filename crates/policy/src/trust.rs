//! Trust: a score from 0 to 100 per identity, computed only from ledger entries, so an auditor recomputes
//! it from an export (`docketops trust --bundle FILE --identity ID`) and gets the server's number.
//!
//! The function (integers only, no clock, entries in seq order):
//! 1. The identity's actions are those whose `action.requested` entry has the identity as actor.
//! 2. Each later entry of those actions may move the score by a delta (table below); before each move the
//!    score decays by 1/16 (integer division), so recent history weighs more than old; after each move the
//!    score is clamped to 0..=100. A new identity starts at 0.
//!
//! | entry | LOW | MEDIUM | HIGH |
//! | --- | --- | --- | --- |
//! | `outcome.verified`, passed (a verified success) | +2 | +5 | +10 |
//! | `outcome.verified`, failed | −5 | −10 | −20 |
//! | `action.failed` | −3 | −5 | −10 |
//! | `guardrail.denied` | −5 | −5 | −5 |
//! | `policy.decided` with outcome `deny` in `enforce` mode | −5 | −5 | −5 |
//! | `approval.denied` (an approver rejected it) | −10 | −10 | −10 |
//!
//! The risk level is the one the action's `risk.classified` entry recorded (MEDIUM if none yet).
//! `action.previewed` (a dry run) moves nothing: nothing ran, so nothing was verified. A dry run that policy
//! denies in `enforce` mode counts as a denial, like any enforced deny.

use std::collections::HashMap;

use ledger_core::Entry;
use serde::Serialize;
use serde_json::Value;

pub const MAX_TRUST: i64 = 100;

/// One entry that moved the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustChange {
    pub seq: u64,
    pub entry_id: String,
    pub action_id: String,
    pub kind: String,
    pub delta: i64,
    pub score: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustReport {
    pub identity_id: String,
    pub score: i64,
    /// Every entry that moved the score, oldest first (the explanation of the number).
    pub changes: Vec<TrustChange>,
}

/// Feeds entries in seq order; `report` gives the score so far.
#[derive(Debug)]
pub struct TrustScorer {
    identity_id: String,
    /// The identity's actions and their risk level.
    actions: HashMap<String, String>,
    score: i64,
    changes: Vec<TrustChange>,
}

fn delta(kind: &str, payload: &Value, risk: &str) -> Option<i64> {
    let by_risk = |low: i64, medium: i64, high: i64| match risk {
        "LOW" => low,
        "HIGH" => high,
        _ => medium,
    };
    match kind {
        "outcome.verified" if payload["passed"] == true => Some(by_risk(2, 5, 10)),
        "outcome.verified" => Some(-by_risk(5, 10, 20)),
        "action.failed" => Some(-by_risk(3, 5, 10)),
        "guardrail.denied" => Some(-5),
        "policy.decided" if payload["outcome"] == "deny" && payload["mode"] == "enforce" => Some(-5),
        "approval.denied" => Some(-10),
        // A dry run is not a success: trust is earned by verified changes only.
        "action.previewed" => None,
        _ => None,
    }
}

impl TrustScorer {
    pub fn new(identity_id: &str) -> Self {
        Self {
            identity_id: identity_id.to_owned(),
            actions: HashMap::new(),
            score: 0,
            changes: Vec::new(),
        }
    }

    /// One entry; entries must come in seq order.
    pub fn feed(&mut self, entry: &Entry) {
        let Some(action_id) = entry.action_id.as_deref() else {
            return;
        };
        if entry.kind == "action.requested" {
            if entry.actor == self.identity_id {
                self.actions.insert(action_id.to_owned(), "MEDIUM".to_owned());
            }
            return;
        }
        let Some(risk) = self.actions.get(action_id) else {
            return;
        };
        // The payload is canonical JSON the verifier checks; an unreadable one moves nothing.
        let payload: Value = serde_json::from_str(&entry.payload).unwrap_or(Value::Null);
        if entry.kind == "risk.classified" {
            if let Some(level) = payload["level"].as_str() {
                self.actions.insert(action_id.to_owned(), level.to_owned());
            }
            return;
        }
        if let Some(delta) = delta(&entry.kind, &payload, risk) {
            self.score = (self.score - self.score / 16 + delta).clamp(0, MAX_TRUST);
            self.changes.push(TrustChange {
                seq: entry.seq,
                entry_id: entry.id.clone(),
                action_id: action_id.to_owned(),
                kind: entry.kind.clone(),
                delta,
                score: self.score,
            });
        }
    }

    pub fn report(self) -> TrustReport {
        TrustReport {
            identity_id: self.identity_id,
            score: self.score,
            changes: self.changes,
        }
    }
}

/// The score of `identity_id` from `entries` (seq order).
pub fn trust<'a>(identity_id: &str, entries: impl IntoIterator<Item = &'a Entry>) -> TrustReport {
    let mut scorer = TrustScorer::new(identity_id);
    for entry in entries {
        scorer.feed(entry);
    }
    scorer.report()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, kind: &str, actor: &str, action: &str, payload: &str) -> Entry {
        Entry {
            seq,
            id: format!("evt_{seq}"),
            timestamp: String::new(),
            kind: kind.into(),
            actor: actor.into(),
            action_id: Some(action.into()),
            payload: payload.into(),
            prev_chain_hash: String::new(),
            event_hash: String::new(),
            chain_hash: String::new(),
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn verified_successes_raise_and_failures_lower_by_risk() {
        let entries = vec![
            entry(1, "action.requested", "agt_a", "act_1", "{}"),
            entry(2, "risk.classified", "agt_a", "act_1", r#"{"level":"MEDIUM"}"#),
            entry(3, "outcome.verified", "agt_a", "act_1", r#"{"passed":true}"#),
            entry(4, "action.requested", "agt_other", "act_2", "{}"),
            entry(5, "outcome.verified", "agt_other", "act_2", r#"{"passed":true}"#),
            entry(6, "action.requested", "agt_a", "act_3", "{}"),
            entry(7, "risk.classified", "agt_a", "act_3", r#"{"level":"HIGH"}"#),
            entry(8, "outcome.verified", "usr_approver", "act_3", r#"{"passed":true}"#),
            entry(9, "action.requested", "agt_a", "act_4", "{}"),
            entry(10, "risk.classified", "agt_a", "act_4", r#"{"level":"LOW"}"#),
            entry(11, "action.failed", "agt_a", "act_4", "{}"),
        ];
        let report = trust("agt_a", &entries);
        // 0 → 5; 5 - 0 + 10 = 15; 15 - 0 - 3 = 12.
        assert_eq!(report.changes.iter().map(|c| c.score).collect::<Vec<_>>(), [5, 15, 12]);
        assert_eq!(report.score, 12);
        assert_eq!(trust("agt_other", &entries).score, 5);
        assert_eq!(trust("agt_new", &entries).score, 0);
    }

    #[test]
    fn a_preview_is_not_a_success() {
        let entries = vec![
            entry(
                1,
                "action.requested",
                "agt_a",
                "act_1",
                r#"{"request":{"dry_run":true}}"#,
            ),
            entry(2, "risk.classified", "agt_a", "act_1", r#"{"level":"HIGH"}"#),
            entry(
                3,
                "policy.decided",
                "agt_a",
                "act_1",
                r#"{"outcome":"allow","mode":"enforce"}"#,
            ),
            entry(
                4,
                "action.previewed",
                "agt_a",
                "act_1",
                r#"{"would":{"outcome":"execute"},"dry_run_status":200}"#,
            ),
        ];
        let report = trust("agt_a", &entries);
        assert_eq!((report.score, report.changes.len()), (0, 0), "{report:?}");
    }

    #[test]
    fn the_score_stays_within_bounds_and_decays() {
        let mut entries = Vec::new();
        for i in 0..200u64 {
            entries.push(entry(2 * i + 1, "action.requested", "agt_a", &format!("act_{i}"), "{}"));
            entries.push(entry(
                2 * i + 2,
                "outcome.verified",
                "agt_a",
                &format!("act_{i}"),
                r#"{"passed":true}"#,
            ));
        }
        let report = trust("agt_a", &entries);
        assert!(report.score <= MAX_TRUST && report.score >= 75, "{}", report.score);
        let mut denied = entries.clone();
        for i in 0..40u64 {
            denied.push(entry(
                1000 + 2 * i,
                "action.requested",
                "agt_a",
                &format!("act_d{i}"),
                "{}",
            ));
            denied.push(entry(
                1001 + 2 * i,
                "guardrail.denied",
                "agt_a",
                &format!("act_d{i}"),
                "{}",
            ));
        }
        assert_eq!(trust("agt_a", &denied).score, 0);
    }
}
