//! Trust: a score from 0 to 100 per identity, computed only from ledger entries, so an auditor recomputes
//! it from an export (`docketops trust --bundle FILE --identity ID`) and gets the server's number.
//!
//! The function (integers only, no clock, entries in seq order):
//! 1. An action belongs to the identity that is the actor of its `action.requested` entry (the latest one,
//!    should an action id ever be requested twice).
//! 2. Each later entry of an action may move its owner's score by a delta (table below); before each move
//!    the score decays by 1/16 (integer division), so recent history weighs more than old; after each move
//!    the score is clamped to 0..=100. A new identity starts at 0.
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
//!
//! The function is defined one entry at a time ([`action_update`] and [`step`]) so that the storage crate
//! can keep every identity's score up to date as entries are appended, from stored state, and still give
//! the same numbers as [`trust`] over all entries. [`SCORING_VERSION`] names this definition: stored
//! state of another version is recomputed.

use domain::EntryKind;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::Entry;

/// The highest score: after every move the score is clamped to `0..=MAX_TRUST`.
pub const MAX_TRUST: i64 = 100;

/// The version of the scoring function; bump it whenever a score or a change could come out different,
/// so that stored scores of the previous version are rebuilt.
pub const SCORING_VERSION: u32 = 1;

/// The risk level an action has until its `risk.classified` entry.
pub const DEFAULT_RISK: &str = "MEDIUM";

/// One entry that moved the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustChange {
    /// The seq of the entry that moved the score.
    pub seq: u64,
    /// The id of that entry.
    pub entry_id: String,
    /// The action the entry belongs to (one the identity requested).
    pub action_id: String,
    /// The entry's kind, e.g. `outcome.verified`.
    pub kind: String,
    /// The move from the table in the module documentation, applied after the decay (negative for a penalty).
    pub delta: i64,
    /// The score after this entry: decayed by 1/16, moved by `delta`, clamped to `0..=MAX_TRUST`.
    pub score: i64,
}

/// One identity's trust score and the entries that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustReport {
    /// The identity scored; its actions are those whose `action.requested` entry it is the actor of.
    pub identity_id: String,
    /// The score, 0 to [`MAX_TRUST`]; 0 for an identity that nothing has moved.
    pub score: i64,
    /// Every entry that moved the score, oldest first (the explanation of the number).
    pub changes: Vec<TrustChange>,
}

/// What an entry does to the table of actions (owner and risk level of each action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionUpdate {
    /// `action.requested`: the action belongs to `owner`, at the default risk level.
    Requested {
        /// The requested action.
        action_id: String,
        /// The actor of the `action.requested` entry.
        owner: String,
    },
    /// `risk.classified`: the action's risk level (only for an action that was requested).
    Classified {
        /// The classified action.
        action_id: String,
        /// The `level` of the entry's payload, e.g. `HIGH`.
        level: String,
    },
}

/// An action's owner and risk level, as far as trust is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAction {
    /// The identity that requested the action (the actor of its `action.requested` entry).
    pub owner: String,
    /// The action's risk level (`LOW`, `MEDIUM` or `HIGH`); [`DEFAULT_RISK`] until it is classified.
    pub risk: String,
}

/// What `entry` does to the action table, if anything. An entry with an update never moves a score.
pub fn action_update(entry: &Entry) -> Option<ActionUpdate> {
    let action_id = entry.action_id.as_deref()?;
    match EntryKind::parse(&entry.kind)? {
        EntryKind::ActionRequested => Some(ActionUpdate::Requested {
            action_id: action_id.to_owned(),
            owner: entry.actor.clone(),
        }),
        EntryKind::RiskClassified => {
            let payload = parse(&entry.payload);
            let level = payload["level"].as_str()?;
            Some(ActionUpdate::Classified {
                action_id: action_id.to_owned(),
                level: level.to_owned(),
            })
        }
        _ => None,
    }
}

/// Applies `update` to an action table (a `Classified` of an unknown action changes nothing).
pub fn apply_update(actions: &mut HashMap<String, TrustAction>, update: ActionUpdate) {
    match update {
        ActionUpdate::Requested { action_id, owner } => {
            actions.insert(
                action_id,
                TrustAction {
                    owner,
                    risk: DEFAULT_RISK.to_owned(),
                },
            );
        }
        ActionUpdate::Classified { action_id, level } => {
            if let Some(action) = actions.get_mut(&action_id) {
                action.risk = level;
            }
        }
    }
}

/// The kinds whose payload the function reads; of every other entry it needs only the kind, actor and
/// action id (so a catch-up need not load the rest).
pub const PAYLOAD_KINDS: [&str; 3] = [
    EntryKind::RiskClassified.as_str(),
    EntryKind::OutcomeVerified.as_str(),
    EntryKind::PolicyDecided.as_str(),
];

/// Whether an entry of this kind can move a score (cheap: no payload parsing).
pub fn may_move(kind: &str) -> bool {
    matches!(
        EntryKind::parse(kind),
        Some(
            EntryKind::OutcomeVerified
                | EntryKind::ActionFailed
                | EntryKind::GuardrailDenied
                | EntryKind::PolicyDecided
                | EntryKind::ApprovalDenied
        )
    )
}

/// The move `entry` makes to the score of its action's owner, whose score is `score` and whose action
/// has risk level `risk`; None if it moves nothing. The caller has checked that the entry belongs to an
/// action of the table and is not an [`action_update`].
pub fn step(score: i64, risk: &str, entry: &Entry) -> Option<TrustChange> {
    if !may_move(&entry.kind) {
        return None;
    }
    let action_id = entry.action_id.as_deref()?;
    let delta = delta(&entry.kind, &parse(&entry.payload), risk)?;
    Some(TrustChange {
        seq: entry.seq,
        entry_id: entry.id.clone(),
        action_id: action_id.to_owned(),
        kind: entry.kind.clone(),
        delta,
        score: (score - score / 16 + delta).clamp(0, MAX_TRUST),
    })
}

/// The payload is canonical JSON the verifier checks; an unreadable one moves nothing.
fn parse(payload: &str) -> Value {
    serde_json::from_str(payload).unwrap_or(Value::Null)
}

fn delta(kind: &str, payload: &Value, risk: &str) -> Option<i64> {
    let by_risk = |low: i64, medium: i64, high: i64| match risk {
        "LOW" => low,
        "HIGH" => high,
        _ => medium,
    };
    match EntryKind::parse(kind)? {
        EntryKind::OutcomeVerified if payload["passed"] == true => Some(by_risk(2, 5, 10)),
        EntryKind::OutcomeVerified => Some(-by_risk(5, 10, 20)),
        EntryKind::ActionFailed => Some(-by_risk(3, 5, 10)),
        EntryKind::GuardrailDenied => Some(-5),
        EntryKind::PolicyDecided if payload["outcome"] == "deny" && payload["mode"] == "enforce" => Some(-5),
        EntryKind::ApprovalDenied => Some(-10),
        // A dry run (`action.previewed`) is not a success: trust is earned by verified changes only.
        _ => None,
    }
}

/// Feeds entries in seq order; `report` gives one identity's score so far.
#[derive(Debug)]
pub struct TrustScorer {
    identity_id: String,
    /// Every requested action: its owner and risk level.
    actions: HashMap<String, TrustAction>,
    score: i64,
    changes: Vec<TrustChange>,
}

impl TrustScorer {
    /// A scorer for `identity_id`, whose score starts at 0.
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
        if let Some(update) = action_update(entry) {
            // Only this identity's actions are kept: memory follows its history, not the ledger's.
            match &update {
                ActionUpdate::Requested { action_id, owner } if *owner != self.identity_id => {
                    self.actions.remove(action_id);
                }
                _ => apply_update(&mut self.actions, update),
            }
            return;
        }
        let Some(action) = entry.action_id.as_deref().and_then(|id| self.actions.get(id)) else {
            return;
        };
        if let Some(change) = step(self.score, &action.risk, entry) {
            self.score = change.score;
            self.changes.push(change);
        }
    }

    /// The score and its changes after the entries fed so far.
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

    /// What the storage crate does: one action table and one score per identity for all identities at
    /// once, entry by entry. It gives every identity the scores and changes of its own fold.
    fn fold_all(entries: &[Entry]) -> HashMap<String, (i64, Vec<TrustChange>)> {
        let mut actions = HashMap::new();
        let mut scores: HashMap<String, (i64, Vec<TrustChange>)> = HashMap::new();
        for entry in entries {
            if let Some(update) = action_update(entry) {
                apply_update(&mut actions, update);
                continue;
            }
            let Some(action) = entry.action_id.as_deref().and_then(|id| actions.get(id)) else {
                continue;
            };
            let (score, changes) = scores.entry(action.owner.clone()).or_default();
            if let Some(change) = step(*score, &action.risk, entry) {
                *score = change.score;
                changes.push(change);
            }
        }
        scores
    }

    #[test]
    fn the_step_by_step_fold_of_all_identities_is_each_identitys_fold() {
        let kinds = [
            ("outcome.verified", r#"{"passed":true}"#),
            ("outcome.verified", r#"{"passed":false}"#),
            ("action.failed", "{}"),
            ("guardrail.denied", "{}"),
            ("policy.decided", r#"{"outcome":"deny","mode":"enforce"}"#),
            ("policy.decided", r#"{"outcome":"deny","mode":"audit"}"#),
            ("approval.denied", "{}"),
            ("action.previewed", "{}"),
        ];
        let levels = [
            r#"{"level":"LOW"}"#,
            r#"{"level":"HIGH"}"#,
            r#"{"level":7}"#,
            "not json",
        ];
        let mut entries = Vec::new();
        let mut seq = 0;
        let mut push = |kind: &str, actor: &str, action: &str, payload: &str| {
            seq += 1;
            entries.push(entry(seq, kind, actor, action, payload));
        };
        for i in 0..300usize {
            let actor = format!("agt_{}", i % 7);
            // Entries of earlier actions interleave with later ones; one action id is requested again
            // by someone else, and its later entries count for the new requester only.
            let action = format!("act_{}", if i % 50 == 49 { i - 3 } else { i });
            push("action.requested", &actor, &action, "{}");
            if i % 4 != 0 {
                push("risk.classified", "system", &action, levels[i % levels.len()]);
            }
            let (kind, payload) = kinds[i % kinds.len()];
            push(kind, "usr_x", &format!("act_{}", i.saturating_sub(i % 3)), payload);
            push(kind, "usr_x", &action, payload);
        }
        let all = fold_all(&entries);
        // Payloads of kinds outside PAYLOAD_KINDS change nothing (a catch-up does not load them).
        let mut stripped = entries.clone();
        for entry in stripped
            .iter_mut()
            .filter(|e| !PAYLOAD_KINDS.contains(&e.kind.as_str()))
        {
            entry.payload = "{}".into();
        }
        let mut moved = 0;
        for i in 0..8 {
            let id = format!("agt_{i}");
            let report = trust(&id, &entries);
            assert_eq!(trust(&id, &stripped), report, "{id}");
            let (score, changes) = all.get(&id).cloned().unwrap_or_default();
            assert_eq!((report.score, &report.changes), (score, &changes), "{id}");
            moved += changes.len();
        }
        assert!(moved > 200, "{moved}");
    }
}
