//! The dry-run preview an action's entries record, wherever it is: the diff of an execution, an approval
//! request or a dry run, or else the preview policy was shown (`policy.decided` → `input.preview`), which is
//! the only copy for an action policy denied.

use domain::EntryKind;
use serde_json::Value;

use super::super::text_of;
use super::Step;
use crate::dashboard::views::DiffRow;

/// Entry kinds whose payload carries the preview's diff at the top (`payload.diff`).
const WITH_DIFF: [EntryKind; 3] = [
    EntryKind::ActionExecuted,
    EntryKind::ApprovalRequested,
    EntryKind::ActionPreviewed,
];

/// What the entries say about the preview.
#[derive(Debug, Clone, Default)]
pub struct Previewed {
    /// Whether any entry records a preview (false: a read, or the action was stopped before one).
    pub made: bool,
    /// The kind of the entry it was read from.
    pub source: String,
    /// The changes (empty with `made`: the preview changed nothing).
    pub rows: Vec<DiffRow>,
    /// A diff too large for a ledger entry, as `N bytes, sha256 …`.
    pub omitted: Option<String>,
}

/// The newest preview among `steps` (oldest first): a top-level `diff` first, else `policy.decided`'s
/// `input.preview.diff`.
pub fn previewed(steps: &[Step<'_>]) -> Previewed {
    let top = steps
        .iter()
        .rev()
        .filter(|step| WITH_DIFF.iter().any(|kind| kind.as_str() == step.kind))
        .find_map(|step| Some((step.kind, step.payload.get("diff").filter(|d| !d.is_null())?)));
    let decided = || {
        steps
            .iter()
            .rev()
            .filter(|step| step.kind == EntryKind::PolicyDecided.as_str())
            .find_map(|step| {
                // A whole payload, input or preview replaced by its digest (`sizes::fit`) stands for the diff.
                let payload = step.payload.get("payload").unwrap_or(&step.payload);
                if payload.get("omitted").is_some() {
                    return Some((step.kind, payload));
                }
                let input = payload.get("input")?;
                if input.get("omitted").is_some() {
                    return Some((step.kind, input));
                }
                let preview = input.get("preview").filter(|p| !p.is_null())?;
                let diff = if preview.get("omitted").is_some() {
                    preview
                } else {
                    preview.get("diff").filter(|d| !d.is_null())?
                };
                Some((step.kind, diff))
            })
    };
    let Some((source, diff)) = top.or_else(decided) else {
        return Previewed::default();
    };
    Previewed {
        made: true,
        source: source.to_owned(),
        rows: diff
            .as_array()
            .map(|changes| changes.iter().map(row).collect())
            .unwrap_or_default(),
        omitted: omitted(diff),
    }
}

/// `N bytes, sha256 …` for the marker that stands for a value too large for an entry.
fn omitted(value: &Value) -> Option<String> {
    value.get("omitted")?;
    Some(format!(
        "{} bytes, {}",
        text_of(&value["bytes"]),
        text_of(&value["sha256"])
    ))
}

fn row(change: &Value) -> DiffRow {
    DiffRow {
        op: text_of(&change["op"]),
        path: Some(text_of(&change["path"]))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "(the whole object)".into()),
        from: text_of(&change["from"]),
        to: text_of(&change["to"]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(kind: EntryKind, payload: Value) -> (EntryKind, Value) {
        (kind, payload)
    }

    fn run(steps: &[(EntryKind, Value)]) -> Previewed {
        let steps: Vec<Step<'_>> = steps
            .iter()
            .map(|(kind, payload)| Step {
                kind: kind.as_str(),
                actor: "someone",
                payload: payload.clone(),
            })
            .collect();
        previewed(&steps)
    }

    fn scale(from: i64, to: i64) -> Value {
        json!([{"op": "replace", "path": "/spec/replicas", "from": from, "to": to}])
    }

    #[test]
    fn a_denied_action_shows_the_preview_policy_saw() {
        let denied = run(&[
            step(EntryKind::ActionRequested, json!({})),
            step(EntryKind::RiskClassified, json!({"level": "LOW"})),
            step(
                EntryKind::PolicyDecided,
                json!({"outcome": "deny", "input": {"preview": {"diff": scale(1, 3), "live": {}}}}),
            ),
        ]);
        assert!(denied.made);
        assert_eq!(denied.source, EntryKind::PolicyDecided.as_str());
        assert_eq!(denied.rows.len(), 1);
        assert_eq!(
            (denied.rows[0].path.as_str(), denied.rows[0].to.as_str()),
            ("/spec/replicas", "3")
        );
    }

    #[test]
    fn the_newest_top_level_diff_wins_over_the_policy_input() {
        let executed = run(&[
            step(
                EntryKind::PolicyDecided,
                json!({"input": {"preview": {"diff": scale(1, 2)}}}),
            ),
            step(EntryKind::ApprovalRequested, json!({"diff": scale(1, 3)})),
            step(EntryKind::ActionExecuted, json!({"diff": scale(1, 4)})),
            step(EntryKind::OutcomeVerified, json!({"diff": "not a preview"})),
        ]);
        assert_eq!(
            (executed.source.as_str(), executed.rows[0].to.as_str()),
            (EntryKind::ActionExecuted.as_str(), "4")
        );
        // An approval request without a preview (null) does not hide the policy's copy.
        let held = run(&[
            step(
                EntryKind::PolicyDecided,
                json!({"input": {"preview": {"diff": scale(1, 2)}}}),
            ),
            step(EntryKind::ApprovalRequested, json!({"diff": null})),
        ]);
        assert_eq!(held.rows[0].to, "2");
    }

    #[test]
    fn no_preview_an_empty_one_and_an_omitted_one_differ() {
        let read = run(&[step(EntryKind::PolicyDecided, json!({"input": {"preview": null}}))]);
        assert!(!read.made && read.rows.is_empty() && read.omitted.is_none());
        assert!(!run(&[step(EntryKind::GuardrailDenied, json!({"rule": "scope"}))]).made);
        let nothing = run(&[step(EntryKind::ActionPreviewed, json!({"diff": []}))]);
        assert!(nothing.made && nothing.rows.is_empty() && nothing.omitted.is_none());
        let marker = json!({"omitted": "too large for a ledger entry", "bytes": 70000, "sha256": "sha256:ab"});
        let large = run(&[step(EntryKind::ActionExecuted, json!({"diff": marker}))]);
        assert_eq!(large.omitted.as_deref(), Some("70000 bytes, sha256:ab"));
        assert!(large.made && large.rows.is_empty());
        let large_input = run(&[step(EntryKind::PolicyDecided, json!({"input": {"preview": marker}}))]);
        assert_eq!(large_input.omitted.as_deref(), Some("70000 bytes, sha256:ab"));
        let whole_input = run(&[step(EntryKind::PolicyDecided, json!({"input": marker}))]);
        assert!(
            whole_input.made && whole_input.omitted.is_some(),
            "the whole input digested"
        );
        let whole_payload = run(&[step(EntryKind::PolicyDecided, json!({"payload": marker}))]);
        assert!(
            whole_payload.made && whole_payload.omitted.is_some(),
            "the whole payload digested"
        );
        let whole = run(&[step(
            EntryKind::ActionExecuted,
            json!({"diff": [{"op": "add", "path": "", "to": 1}]}),
        )]);
        assert_eq!(whole.rows[0].path, "(the whole object)");
    }
}
