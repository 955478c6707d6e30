//! Two-person rules by group (docs/safety.md): a policy may ask that each of some groups gives one of an
//! action's approvals ("one approver from `sre` and one from `security`"), not only for N distinct people.
//! Each approver counts for one group it is in (its groups: set by an admin, or reported by its OIDC/LDAP
//! sign-in, compared without regard to ASCII case). Whether the approvals so far cover every group is a
//! bipartite matching of approvers to groups: an approver in both `sre` and `security` must not count twice.

use domain::payload;
use storage::ActionRow;

use super::{Pipeline, Trail};
use crate::identity::{Caller, in_group};
use crate::{GatewayError, now};

/// Where an action's approvals stand after one more.
pub(super) struct Granted {
    /// Approvals of the current digest, this one included.
    pub(super) approvals: i64,
    /// Approvals the action needs.
    pub(super) required: i64,
    /// Whether they are enough (the count, and every group met).
    pub(super) complete: bool,
    /// Groups still waiting for an approver.
    pub(super) missing: Vec<String>,
}

impl Granted {
    pub(super) fn summary(&self, approver: &str) -> String {
        let Granted {
            approvals, required, ..
        } = self;
        match self.missing.as_slice() {
            [] => format!("approved by {approver} ({approvals} of {required} approvals)"),
            missing => format!(
                "approved by {approver} ({approvals} of {required} approvals; still needed: an approver from {})",
                missing.join(", ")
            ),
        }
    }
}

impl Pipeline {
    /// Records `caller`'s approval; returns how far the action's approvals now are. With a two-person rule
    /// by group, an approval that meets no group still missing (and is not needed for the count) is refused
    /// and recorded as such.
    pub(super) async fn grant(
        &self,
        caller: &Caller,
        row: &ActionRow,
        trail: &mut Trail,
        comment: Option<String>,
        digest: &str,
    ) -> Result<Granted, GatewayError> {
        let required = row.approvals_required.unwrap_or(1);
        let groups = match required_groups(row) {
            Ok(groups) => groups,
            Err(error) => return Err(self.refuse(trail, caller, error).await),
        };
        let (earlier, before) = self.approvers_with_groups(&row.id, digest).await?;
        if let Some(why) = self.not_independent(caller, &earlier).await? {
            let error = GatewayError::Forbidden(format!("{} cannot approve {}: {why}", caller.identity.name, row.id));
            return Err(self.refuse(trail, caller, error).await);
        }
        if let Err(why) = helps(&before, &caller.identity.groups, &groups, required) {
            let error = GatewayError::Forbidden(format!("{} cannot approve {}: {why}", caller.identity.name, row.id));
            return Err(self.refuse(trail, caller, error).await);
        }
        self.parts
            .store
            .insert_approval(&storage::ApprovalRow {
                action_id: row.id.clone(),
                approver_id: caller.identity.id.clone(),
                decision: "approve".into(),
                digest: digest.to_owned(),
                created_at: now(),
                entry_id: None,
            })
            .await
            .map_err(|e| match e {
                storage::StorageError::Conflict(message) => GatewayError::Conflict(message),
                other => other.into(),
            })?;
        // Counted again from the rows: another gateway may have recorded an approval meanwhile.
        let (ids, all) = self.approvers_with_groups(&row.id, digest).await?;
        let progress = Progress::of(&all, &groups);
        let mine = ids.iter().position(|id| *id == caller.identity.id);
        let granted = Granted {
            approvals: ids.len() as i64,
            required,
            complete: progress.complete(required),
            missing: progress.missing.clone(),
        };
        let recorded = self
            .record(
                trail,
                caller.actor(),
                &payload::ApprovalGranted {
                    approver: caller.identity.id.clone(),
                    comment,
                    digest: digest.to_owned(),
                    approvals: granted.approvals,
                    approvals_required: required,
                    meets_group: mine.and_then(|i| progress.counts_for[i].clone()),
                    groups_missing: (!groups.is_empty()).then(|| progress.missing.clone()),
                },
            )
            .await;
        if let Err(error) = recorded {
            // No entry, no approval: take the row back so the approver can try again.
            if let Err(remove) = self
                .parts
                .store
                .remove_approval(&row.id, &caller.identity.id, digest)
                .await
            {
                tracing::error!(action = %row.id, %remove, "could not take back an unrecorded approval");
            }
            return Err(error);
        }
        Ok(granted)
    }

    /// Why `caller` and an earlier approver are not two independent people, if they are not: one created the
    /// other (or an identity up its lineage) or issued a key it holds (`duties`), so one person could approve
    /// twice, as two members of two groups or as two of N approvers.
    async fn not_independent(&self, caller: &Caller, earlier: &[String]) -> Result<Option<String>, GatewayError> {
        let store = &self.parts.store;
        for other in earlier.iter().filter(|id| **id != caller.identity.id) {
            let pairs = [
                (other.as_str(), caller.identity.id.as_str()),
                (caller.identity.id.as_str(), other.as_str()),
            ];
            for (controller, controlled) in pairs {
                if let Some(why) = crate::duties::could_act_as(store, controller, controlled).await? {
                    return Ok(Some(format!(
                        "the approvals must come from independent identities, and {controller} could act as \
                         {controlled}, who approved too: {why}"
                    )));
                }
            }
        }
        Ok(None)
    }

    /// The approvers of `digest` so far, and each one's groups as they are now (an approver taken out of a
    /// group no longer counts for it).
    async fn approvers_with_groups(
        &self,
        action_id: &str,
        digest: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), GatewayError> {
        let approvals = self.parts.store.approvals_of(action_id, digest).await?;
        let mut ids = Vec::with_capacity(approvals.len());
        let mut groups = Vec::with_capacity(approvals.len());
        for approval in approvals {
            let row = self.parts.store.identity(&approval.approver_id).await?;
            groups.push(row.map(|r| crate::Identity::from_row(&r).groups).unwrap_or_default());
            ids.push(approval.approver_id);
        }
        Ok((ids, groups))
    }
}

/// The groups an action waits for an approver of each of; an unreadable value refuses the approval rather than
/// drop the rule (fail closed).
fn required_groups(row: &ActionRow) -> Result<Vec<String>, GatewayError> {
    match row.approval_groups.as_deref() {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|error| {
            GatewayError::Conflict(format!(
                "{} cannot be approved: the groups it needs approvers of cannot be read ({error})",
                row.id
            ))
        }),
    }
}

/// How far an action's approvals are towards what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The approvers, in the order given.
    pub(crate) approvers: usize,
    /// For each approver, the group it counts for in a largest matching (`None`: it counts only towards
    /// the number of approvers).
    pub(crate) counts_for: Vec<Option<String>>,
    /// The groups no approver counts for yet.
    pub(crate) missing: Vec<String>,
}

impl Progress {
    /// The groups met by the approvals whose groups are `approvers` (each approver's groups, in order).
    pub(crate) fn of(approvers: &[Vec<String>], groups: &[String]) -> Progress {
        let assigned = largest_matching(approvers, groups);
        let mut counts_for = vec![None; approvers.len()];
        let mut missing = Vec::new();
        for (group, approver) in groups.iter().zip(&assigned) {
            match approver {
                Some(approver) => counts_for[*approver] = Some(group.clone()),
                None => missing.push(group.clone()),
            }
        }
        Progress {
            approvers: approvers.len(),
            counts_for,
            missing,
        }
    }

    /// Whether `required` distinct approvers have approved and every group has one of them.
    pub(crate) fn complete(&self, required: i64) -> bool {
        self.missing.is_empty() && self.approvers as i64 >= required
    }

    /// Approvers that count for no group: they only add to the number of approvers.
    fn extra(&self) -> usize {
        self.counts_for.iter().filter(|group| group.is_none()).count()
    }
}

/// Whether one more approval, by someone in `groups_of_new`, brings the action closer to what it needs
/// (`required` approvers, one from each of `groups`), given the approvals so far: it meets a group still
/// missing, or there is room for an approver who meets none. `Err` says why not, in words for the approver.
pub(crate) fn helps(
    before: &[Vec<String>],
    groups_of_new: &[String],
    groups: &[String],
    required: i64,
) -> Result<(), String> {
    if groups.is_empty() {
        return Ok(());
    }
    let now = Progress::of(before, groups);
    let mut after_approvers = before.to_vec();
    after_approvers.push(groups_of_new.to_vec());
    let after = Progress::of(&after_approvers, groups);
    // Room for approvers beyond one per group: the count may ask for more people than there are groups.
    let room = (required - groups.len() as i64).max(0) as usize;
    if after.missing.len() < now.missing.len() || after.extra() <= room {
        return Ok(());
    }
    Err(format!(
        "this action needs an approver from each of {}; still missing: {}; the approver's groups ({}) meet none of them",
        groups.join(", "),
        now.missing.join(", "),
        if groups_of_new.is_empty() {
            "none".to_owned()
        } else {
            groups_of_new.join(", ")
        }
    ))
}

/// A largest matching of approvers to groups (each approver to at most one group it is in, each group to
/// at most one approver): for each group, the approver it is matched with. Kuhn's augmenting paths; the
/// sizes are tiny (at most 10 groups, a handful of approvers), and no maintained crate offers a plain
/// unweighted bipartite matching without a graph framework around it.
fn largest_matching(approvers: &[Vec<String>], groups: &[String]) -> Vec<Option<usize>> {
    let mut matched: Vec<Option<usize>> = vec![None; groups.len()];
    for approver in 0..approvers.len() {
        let mut visited = vec![false; groups.len()];
        augment(approver, approvers, groups, &mut matched, &mut visited);
    }
    matched
}

/// Tries to give `approver` a group, moving earlier approvers to other groups of theirs where needed.
fn augment(
    approver: usize,
    approvers: &[Vec<String>],
    groups: &[String],
    matched: &mut [Option<usize>],
    visited: &mut [bool],
) -> bool {
    for (group, name) in groups.iter().enumerate() {
        if visited[group] || !in_group(&approvers[approver], name) {
            continue;
        }
        visited[group] = true;
        let free = match matched[group] {
            None => true,
            Some(other) => augment(other, approvers, groups, matched, visited),
        };
        if free {
            matched[group] = Some(approver);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn each_approver_counts_for_one_group() {
        let needed = groups(&["sre", "security"]);
        // Two SREs: one group met, security missing.
        let two_sres = [groups(&["sre"]), groups(&["SRE", "dev"])];
        let progress = Progress::of(&two_sres, &needed);
        assert_eq!(progress.missing, ["security"]);
        assert!(!progress.complete(2));
        // Someone in both groups counts once: with an SRE beside them, both groups are met.
        let both = [groups(&["security", "sre"]), groups(&["sre"])];
        let progress = Progress::of(&both, &needed);
        assert!(progress.missing.is_empty(), "{progress:?}");
        assert_eq!(progress.counts_for, [Some("security".into()), Some("sre".into())]);
        assert!(progress.complete(2));
        // Alone, they meet only one of the two.
        assert_eq!(Progress::of(&[groups(&["security", "sre"])], &needed).missing.len(), 1);
        // Three approvers asked for, two groups: the third may be anyone.
        let three = [groups(&["sre"]), groups(&["security"])];
        assert!(!Progress::of(&three, &needed).complete(3));
        let with_anyone = [groups(&["sre"]), groups(&["security"]), groups(&[])];
        assert!(Progress::of(&with_anyone, &needed).complete(3));
    }

    #[test]
    fn an_approval_that_adds_nothing_is_refused() {
        let needed = groups(&["sre", "security"]);
        let one_sre = [groups(&["sre"])];
        let refused = helps(&one_sre, &groups(&["sre"]), &needed, 2).unwrap_err();
        assert!(refused.contains("still missing: security"), "{refused}");
        assert!(helps(&one_sre, &groups(&["Security"]), &needed, 2).is_ok());
        // The first approver who is in both groups helps; a second SRE then helps too (the first moves to
        // security).
        let both = [groups(&["sre", "security"])];
        assert!(helps(&both, &groups(&["sre"]), &needed, 2).is_ok());
        // With room for a third approver, anyone helps once.
        assert!(helps(&one_sre, &groups(&["dev"]), &needed, 3).is_ok());
        let with_extra = [groups(&["sre"]), groups(&["dev"])];
        assert!(helps(&with_extra, &groups(&["dev"]), &needed, 3).is_err());
        // No groups: every approval helps (the count alone decides).
        assert!(helps(&one_sre, &[], &[], 2).is_ok());
    }
}
