//! Blast-radius budgets (docs/safety.md): how much change an identity, a role's or a group's identities
//! together, a namespace, a cluster or the whole gateway may make within a sliding window — mutations, deletes,
//! distinct objects changed, total replica change. Planned after the preview (which gives the replica change),
//! reserved with the decision's entries in the ledger writer's transaction (`Ledger::append_reserving`), in every
//! mode; a refusal is final and replaces the decision (`budget.exceeded`, with the counters, the limit, and when
//! the window frees up), so the ledger reads as if the budget came before policy. Usage is counted from the
//! database under the writer's lock, so several gateways on one database share each budget exactly. Dry runs
//! spend nothing.
//!
//! An admin may also give one identity limits of its own (`own`: `budget.set`); they apply besides the
//! configured budgets, on the same usage as `per = "identity"`, and the strictest wins.

mod own;
mod workloads;

use std::sync::Arc;

use domain::payload::{ActionFailed, ErrorReport, IdentityLimit, MAX_LIMIT, Payload};
use domain::{ActionStatus, ActionType, EntryKind, Role};
use executor::{Action, CallContext, Preview};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::{Exceeded, IdentityBudgetRow, Limits, Metric, Reservation, Reserved, Spend, Window};
use tracing::Instrument as _;
use workloads::Share;

use crate::identity::{Caller, Identity};
use crate::{Cluster, GatewayError, now, now_minus};

use super::{ActionResponse, DecisionView, Pipeline, Trail};

/// `[budgets]`: the limits (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budgets {
    /// Each `[[budgets.limits]]`.
    pub limits: Vec<BudgetLimit>,
}

/// Whose mutations a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Per {
    /// Each identity on its own.
    Identity,
    /// All identities with this role, together.
    Role(Role),
    /// All identities in this group, together (the group's name compared without regard to ASCII case).
    Group(String),
    /// Each namespace (of each cluster) on its own.
    Namespace,
    /// Each cluster on its own.
    Cluster,
    /// Everything the gateway changes.
    Global,
}

impl TryFrom<String> for Per {
    type Error = String;
    fn try_from(text: String) -> Result<Per, String> {
        Ok(match text.as_str() {
            "identity" => Per::Identity,
            "namespace" => Per::Namespace,
            "cluster" => Per::Cluster,
            "global" => Per::Global,
            other => {
                let role = other.strip_prefix("role:").and_then(Role::parse);
                // A group's name as an identity's groups are checked: 1 to 256 characters, no control character.
                let group = other
                    .strip_prefix("group:")
                    .filter(|group| crate::identity::checked_groups(&[(*group).to_owned()]).is_ok());
                match (role, group) {
                    (Some(role), _) => Per::Role(role),
                    (None, Some(group)) => Per::Group(group.to_owned()),
                    (None, None) => {
                        return Err(format!(
                            "budget per {other:?}: identity, namespace, cluster, global, \
                             role:<admin|operator|approver|auditor> or group:<name of 1 to 256 characters>"
                        ));
                    }
                }
            }
        })
    }
}

impl From<Per> for String {
    fn from(per: Per) -> String {
        match per {
            Per::Identity => "identity".into(),
            Per::Role(role) => format!("role:{}", role.as_str()),
            Per::Group(group) => format!("group:{group}"),
            Per::Namespace => "namespace".into(),
            Per::Cluster => "cluster".into(),
            Per::Global => "global".into(),
        }
    }
}

impl Per {
    /// The subject whose usage a budget of this kind counts for `identity`'s mutation of an object in
    /// `target` (cluster, namespace); `None` when the budget does not apply to the identity, or when it depends
    /// on a target and none is given.
    fn subject(&self, identity: &Identity, target: Option<(&str, &str)>) -> Option<String> {
        Some(match self {
            Per::Identity => format!("identity:{}", identity.id),
            Per::Role(role) if identity.has_role(*role) => format!("role:{}", role.as_str()),
            Per::Group(group) if crate::identity::in_group(&identity.groups, group) => {
                format!("group:{}", group.to_ascii_lowercase())
            }
            Per::Role(_) | Per::Group(_) => return None,
            Per::Namespace => {
                let (cluster, namespace) = target?;
                format!("namespace:{cluster}/{namespace}")
            }
            Per::Cluster => format!("cluster:{}", target?.0),
            Per::Global => "global".into(),
        })
    }
}

/// One budget: whose, over which window, and the limits (each optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimit {
    /// Whose mutations count.
    pub per: Per,
    /// The sliding window, in seconds.
    pub window_seconds: u64,
    /// At most this many mutations.
    #[serde(default)]
    pub mutations: Option<i64>,
    /// At most this many deletes.
    #[serde(default)]
    pub deletes: Option<i64>,
    /// At most this many distinct objects changed.
    #[serde(default)]
    pub objects: Option<i64>,
    /// At most this much replica change, added up in absolute value.
    #[serde(default)]
    pub replicas: Option<i64>,
    /// At most this percentage (0 to 100) of the target namespace's workloads changed (see `workloads`).
    #[serde(default)]
    pub workloads_percent: Option<i64>,
}

/// `budget.exceeded`: a mutation a budget refused (final in every mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetExceeded {
    /// Whose budget (`identity`, `role:operator`, `group:sre`, `namespace`, `cluster`, `global`).
    pub per: Per,
    /// Its subject: `identity:agt_…`, `role:operator`, `group:sre` (lowercase), `namespace:prod/shop`,
    /// `cluster:prod`, `global`.
    pub subject: String,
    /// The window, in seconds.
    pub window_seconds: u64,
    /// The limit hit: `mutations`, `deletes`, `objects`, `replicas` or `workloads_percent` (then `limit` and
    /// `would_be` are percentages, and `used` holds `workloads` and `namespace_workloads`).
    pub metric: Metric,
    /// The limit.
    pub limit: i64,
    /// The usage with this mutation added.
    pub would_be: i64,
    /// The window's counters before this mutation.
    pub used: Value,
    /// When the oldest mutation counted leaves the window (usage starts to free up).
    pub frees_at: Option<String>,
    /// For a limit of the identity's own (set by an admin): the `budget.set` entry that set it. Absent for a
    /// configured budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_in: Option<String>,
}

impl Payload for BudgetExceeded {
    fn kind(&self) -> EntryKind {
        EntryKind::BudgetExceeded
    }
}

impl Budgets {
    /// Checks the configuration: windows of 1 s to 30 days, limits of 0 to 2^53 − 1, at least one limit each.
    pub fn validate(&self) -> Result<(), String> {
        for (n, limit) in self.limits.iter().enumerate() {
            let counters = limit.counters();
            let percent = limit.workloads_percent;
            check_limit(limit.window_seconds, &[&counters[..], &[percent]].concat())
                .and_then(|()| match percent {
                    Some(percent) if !(0..=100).contains(&percent) => {
                        Err(format!("workloads_percent {percent}: 0 to 100"))
                    }
                    _ => Ok(()),
                })
                .map_err(|why| format!("[[budgets.limits]] #{}: {why}", n + 1))?;
        }
        Ok(())
    }
}

/// Checks one budget's window and limits (the configuration's and an identity's own): a window of 1 s to
/// 30 days, limits of 0 to 2^53 − 1 (what the ledger's JSON holds exactly), at least one of them.
pub(crate) fn check_limit(window_seconds: u64, counters: &[Option<i64>]) -> Result<(), String> {
    let window = super::breakers::MAX_WINDOW_SECONDS;
    if !(1..=window).contains(&window_seconds)
        || counters.iter().flatten().any(|l| !(0..=MAX_LIMIT).contains(l))
        || counters.iter().all(Option::is_none)
    {
        return Err(format!(
            "window_seconds 1 to {window}, and at least one of mutations, deletes, objects, replicas \
             (0 to {MAX_LIMIT}){}",
            if counters.len() > 4 { ", workloads_percent" } else { "" }
        ));
    }
    Ok(())
}

impl BudgetLimit {
    /// The limits, in the order mutations, deletes, objects, replicas.
    fn counters(&self) -> [Option<i64>; 4] {
        [self.mutations, self.deletes, self.objects, self.replicas]
    }

    /// An identity's own limit, as a budget of that identity.
    fn own(limit: &IdentityLimit) -> BudgetLimit {
        BudgetLimit {
            per: Per::Identity,
            window_seconds: limit.window_seconds,
            mutations: limit.mutations,
            deletes: limit.deletes,
            objects: limit.objects,
            replicas: limit.replicas,
            workloads_percent: None,
        }
    }
}

impl BudgetExceeded {
    /// The refusal of the budget `applicable`, from the storage's verdict; a share of the namespace's
    /// workloads (`share`) is reported in percent, with the numbers it was counted from.
    fn of(applicable: &Applicable, exceeded: Exceeded, share: Option<&Share>) -> BudgetExceeded {
        let Applicable { limit, window, set_in } = applicable;
        let used = exceeded.counted.used;
        let mut counters = serde_json::json!({"mutations": used.mutations, "deletes": used.deletes,
                                              "objects": used.objects, "replicas": used.replicas});
        let (mut cap, mut would_be) = (exceeded.limit, exceeded.would_be);
        if let (Some(share), Some(workloads)) = (share, used.workloads) {
            counters["workloads"] = workloads.into();
            counters["namespace_workloads"] = share.total.into();
            if exceeded.metric == Metric::Workloads {
                cap = limit.workloads_percent.unwrap_or(cap);
                would_be = share.percent(would_be);
            }
        }
        BudgetExceeded {
            per: limit.per.clone(),
            subject: window.subject.clone(),
            window_seconds: limit.window_seconds,
            metric: exceeded.metric,
            limit: cap,
            would_be,
            used: counters,
            frees_at: frees_at(exceeded.counted.oldest.as_deref(), limit.window_seconds),
            set_in: set_in.clone(),
        }
    }

    fn reason(&self) -> String {
        let own = self
            .set_in
            .as_ref()
            .map(|entry| format!(" (its own budget, {} {entry})", EntryKind::BudgetSet.as_str()))
            .unwrap_or_default();
        format!(
            "budget exceeded: {}{own} {} would be {} within {} s (the limit is {}){}",
            self.subject,
            self.metric.as_str(),
            self.would_be,
            self.window_seconds,
            self.limit,
            self.frees_at
                .as_ref()
                .map(|at| format!("; it frees up from {at}"))
                .unwrap_or_default()
        )
    }
}

/// A budget that applies to one mutation: its limits, the window counted, and, for a limit of the identity's
/// own, the `budget.set` entry that set it.
struct Applicable {
    limit: BudgetLimit,
    window: Window,
    set_in: Option<String>,
}

/// An identity's own limits as stored, read.
pub(super) struct OwnBudget {
    limits: Vec<IdentityLimit>,
    row: IdentityBudgetRow,
}

impl OwnBudget {
    /// The stored row, read; `Err` with why when its limits cannot be read (an edited database).
    pub(super) fn read(row: IdentityBudgetRow) -> Result<OwnBudget, String> {
        match serde_json::from_str(&row.limits) {
            Ok(limits) => Ok(OwnBudget { limits, row }),
            Err(error) => Err(format!(
                "the budget of {} set in {} cannot be read: {error}",
                row.identity_id, row.recorded_entry
            )),
        }
    }
}

/// A mutation's reservation against every budget that applies, made with the entries of its decision
/// (`Pipeline::record_reserving`): admitted, it is counted and the decision recorded in one transaction;
/// refused, only `budget.exceeded` is recorded.
pub(super) struct PendingBudget {
    windows: Vec<Window>,
    spend: Spend,
    refusal: Arc<Refusal>,
}

/// What a refusal is told from: the budgets that applied, and the namespace's workloads when counted.
struct Refusal {
    applicable: Vec<Applicable>,
    share: Option<Share>,
}

impl Refusal {
    fn payload(&self, exceeded: &Exceeded) -> BudgetExceeded {
        BudgetExceeded::of(&self.applicable[exceeded.window], exceeded.clone(), self.share.as_ref())
    }
}

impl Pipeline {
    /// The reservation this mutation must make with its decision (`None` when no budget applies), or the
    /// response when one cannot be checked (fail closed: `action.failed` at stage `budget`). The identity's
    /// own budget costs no query while no identity has one (the store remembers it), else one primary-key
    /// lookup.
    #[tracing::instrument(name = "budget", skip_all, fields(action.id = trail.action_id.as_str()))]
    pub(super) async fn plan_budget(
        &self,
        caller: &Caller,
        executor: &dyn Cluster,
        action: &Action,
        preview: Option<&Preview>,
        trail: &mut Trail,
    ) -> Result<Result<Option<PendingBudget>, ActionResponse>, GatewayError> {
        let Some(preview) = preview else {
            return Ok(Ok(None));
        };
        let configured = &self.parts.budgets.limits;
        let own = self.parts.store.identity_budget(&caller.identity.id).await?;
        if configured.is_empty() && own.is_none() {
            return Ok(Ok(None));
        }
        let own = match own.map(OwnBudget::read).transpose() {
            Ok(own) => own,
            Err(why) => {
                // Fail closed and loud: a budget nobody can read must not let the mutation through.
                tracing::error!(identity = %caller.identity.id, %why, "unreadable identity budget");
                let failed = ActionFailed::at("budget", ErrorReport::new("budget_unreadable", why));
                self.record(trail, caller.actor(), &failed).await?;
                let report = serde_json::json!(failed.error);
                return self
                    .respond(trail, ActionStatus::Failed, None, None, None, Some(report))
                    .map(Err);
            }
        };
        let cluster = executor.name();
        let namespace = action.namespace.as_deref().unwrap_or_default();
        let target = (cluster, namespace);
        // Counted only when a budget that applies to this mutation limits the share.
        let limited = configured.iter().any(|limit| {
            limit.workloads_percent.is_some() && limit.per.subject(&caller.identity, Some(target)).is_some()
        });
        let context = CallContext {
            identity: caller.identity.id.clone(),
            action_id: trail.action_id.clone(),
            audit_id: trail.entries[0].id.clone(),
        };
        let share = match Share::of(executor, &context, action, preview, limited).await {
            Ok(share) => share,
            Err(error) => {
                // Fail closed: a share limit that cannot be checked must not let the mutation through.
                let report = self.record_failure(trail, caller.actor(), "budget", &error).await?;
                return self
                    .respond(trail, ActionStatus::Failed, None, None, None, Some(report))
                    .map(Err);
            }
        };
        let applicable = applicable(configured, own.as_ref(), &caller.identity, target, share.as_ref());
        let spend = Spend {
            action_id: trail.action_id.clone(),
            at: now(),
            object: format!(
                "{cluster}/{namespace}/{}/{}",
                action.kind.as_str(),
                action.name.as_deref().unwrap_or_default()
            ),
            delete: action.action_type == ActionType::Delete,
            replicas: replica_change(&preview.diff),
        };
        let windows = applicable.iter().map(|a| a.window.clone()).collect();
        let refusal = Arc::new(Refusal { applicable, share });
        Ok(Ok(Some(PendingBudget {
            windows,
            spend,
            refusal,
        })))
    }

    /// Records the decision's `events` if every budget of `budget` admits the mutation, counting it against
    /// them in the same transaction; otherwise records `budget.exceeded` instead and answers the refusal
    /// (final in every mode).
    pub(super) async fn record_reserving(
        &self,
        trail: &mut Trail,
        actor: &str,
        events: Vec<(EntryKind, Value)>,
        budget: PendingBudget,
    ) -> Result<Option<ActionResponse>, GatewayError> {
        let span = super::commit_span(&trail.action_id);
        let events = events
            .into_iter()
            .map(|(kind, payload)| trail.event(actor, kind, payload))
            .collect();
        let stamp = Trail {
            action_id: trail.action_id.clone(),
            cluster: trail.cluster.clone(),
            entries: Vec::new(),
        };
        let (refusal, who) = (Arc::clone(&budget.refusal), actor.to_owned());
        // Stamped now, not when planned: policy (perhaps a remote OPA) ran in between, and a row stamped early
        // would leave its windows early.
        let spend = Spend {
            at: now(),
            ..budget.spend
        };
        let reservation = Reservation {
            windows: budget.windows,
            spend,
            refusal: Box::new(move |exceeded| {
                let payload = refusal.payload(exceeded);
                stamp.event(&who, payload.kind(), payload.to_value())
            }),
        };
        // The commit decides the kinds (the decision's, or the refusal that replaces them): recorded after it.
        let reserved = self.parts.ledger.append_reserving(events, reservation);
        let reserved = reserved
            .instrument(span.clone())
            .await
            .inspect_err(|_| super::failed(&span))?;
        let (exceeded, entry) = match reserved {
            Reserved::Admitted(entries) => {
                let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
                span.record("ledger.entry_kinds", kinds.join(","));
                super::committed(&span, &entries);
                trail.entries.extend(entries);
                return Ok(None);
            }
            Reserved::Refused { exceeded, entry } => (exceeded, entry),
        };
        // The refusal replaced the decision's entries in that commit.
        span.record("ledger.entry_kinds", entry.kind.as_str());
        super::committed(&span, std::slice::from_ref(&*entry));
        trail.entries.push(*entry);
        let exceeded = budget.refusal.payload(&exceeded);
        let decision = DecisionView {
            outcome: "deny".into(),
            mode: "budget".into(),
            policy: EntryKind::BudgetExceeded.as_str().into(),
            reasons: vec![exceeded.reason()],
        };
        self.respond(trail, ActionStatus::Denied, None, Some(decision), None, None)
            .map(Some)
    }
}

/// The budgets that apply to `identity`'s mutation in `target` (cluster, namespace): its own limits first (a
/// refusal names the admin's limit when both would refuse), then every configured budget that covers it.
fn applicable(
    configured: &[BudgetLimit],
    own: Option<&OwnBudget>,
    identity: &Identity,
    target: (&str, &str),
    share: Option<&Share>,
) -> Vec<Applicable> {
    let window = |limit: &BudgetLimit, subject: String| Window {
        subject,
        seconds: limit.window_seconds,
        limits: Limits {
            mutations: limit.mutations,
            deletes: limit.deletes,
            objects: limit.objects,
            replicas: limit.replicas,
            workloads: share
                .zip(limit.workloads_percent)
                .map(|(share, percent)| share.limit(percent)),
        },
    };
    let own = own.into_iter().flat_map(|own| {
        own.limits.iter().map(|limit| {
            let limit = BudgetLimit::own(limit);
            let subject = format!("identity:{}", identity.id);
            Applicable {
                window: window(&limit, subject),
                limit,
                set_in: Some(own.row.recorded_entry.clone()),
            }
        })
    });
    let configured = configured.iter().filter_map(|limit| {
        let subject = limit.per.subject(identity, Some(target))?;
        Some(Applicable {
            window: window(limit, subject),
            limit: limit.clone(),
            set_in: None,
        })
    });
    own.chain(configured).collect()
}

impl Pipeline {
    /// Forgets budget usage older than every budget's window, configured or an identity's own (each recovery
    /// pass), so the table holds about one window of mutations.
    pub(crate) async fn prune_budget_usage(&self) -> Result<(), GatewayError> {
        let configured = self.parts.budgets.limits.iter().map(|l| l.window_seconds).max();
        let own = self.parts.store.longest_identity_budget_window().await?;
        let own = own.and_then(|seconds| u64::try_from(seconds).ok());
        let Some(longest) = configured.max(own) else {
            return Ok(());
        };
        let before = now_minus(std::time::Duration::from_secs(longest));
        self.parts.store.prune_budget_usage(&before).await?;
        Ok(())
    }
}

/// When the oldest mutation counted leaves a window of `window_seconds`.
pub(super) fn frees_at(oldest: Option<&str>, window_seconds: u64) -> Option<String> {
    let oldest = time::OffsetDateTime::parse(oldest?, &time::format_description::well_known::Rfc3339).ok()?;
    let free = oldest + time::Duration::seconds(i64::try_from(window_seconds).ok()?);
    Some(domain::time::format_timestamp(free))
}

/// The replica change a preview shows (absolute): each change at or above `/spec/replicas` compares the
/// replicas before and after (none: 0), so a SCALE, an update, a create (`add` of `/spec`) and a DELETE (`remove`
/// of the whole object) all count.
fn replica_change(diff: &[executor::diff::Change]) -> i64 {
    let replicas = |value: &Option<Value>, path: &str| {
        let value = value.as_ref()?;
        let inner = match path {
            "" => &value["spec"]["replicas"],
            "/spec" => &value["replicas"],
            "/spec/replicas" => value,
            _ => return None,
        };
        inner.as_i64()
    };
    diff.iter()
        .map(|c| (replicas(&c.to, &c.path).unwrap_or(0) - replicas(&c.from, &c.path).unwrap_or(0)).abs())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(path: &str, from: Option<Value>, to: Option<Value>) -> executor::diff::Change {
        executor::diff::Change {
            op: "replace",
            path: path.into(),
            from,
            to,
        }
    }

    #[test]
    fn replica_change_counts_scales_creates_and_deletes() {
        let of = |diff: Vec<executor::diff::Change>| replica_change(&diff);
        assert_eq!(of(vec![change("/spec/replicas", Some(json!(2)), Some(json!(5)))]), 3);
        assert_eq!(of(vec![change("/spec/replicas", Some(json!(5)), Some(json!(1)))]), 4);
        assert_eq!(
            of(vec![change("/spec", None, Some(json!({"replicas": 7})))]),
            7,
            "a create"
        );
        assert_eq!(
            of(vec![change("", Some(json!({"spec": {"replicas": 50}})), None)]),
            50,
            "a delete"
        );
        assert_eq!(
            of(vec![change(
                "/spec/template/spec/image",
                Some(json!("a")),
                Some(json!("b"))
            )]),
            0
        );
    }
}
