//! Blast-radius budgets (docs/safety.md): how much change an identity, a role's identities together, a
//! namespace, a cluster or the whole gateway may make within a sliding window — mutations, deletes, distinct
//! objects changed, total replica change. Checked after the preview (which gives the replica change) and before
//! policy, in every mode; a refusal is final (`budget.exceeded`, with the counters, the limit, and when the window
//! frees up). Usage is counted from the database and reserved in one serialized transaction (`storage::budgets`),
//! so several gateways on one database share each budget exactly. Dry runs spend nothing.

use domain::payload::Payload;
use domain::{ActionStatus, ActionType, EntryKind, Role};
use executor::{Action, Preview};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::{Counted, Spend, Window};

use crate::identity::Caller;
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
            other => match other.strip_prefix("role:").and_then(Role::parse) {
                Some(role) => Per::Role(role),
                None => {
                    return Err(format!(
                        "budget per {other:?}: identity, namespace, cluster, global or role:<admin|operator|approver|auditor>"
                    ));
                }
            },
        })
    }
}

impl From<Per> for String {
    fn from(per: Per) -> String {
        match per {
            Per::Identity => "identity".into(),
            Per::Role(role) => format!("role:{}", role.as_str()),
            Per::Namespace => "namespace".into(),
            Per::Cluster => "cluster".into(),
            Per::Global => "global".into(),
        }
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
}

/// `budget.exceeded`: a mutation a budget refused (final in every mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetExceeded {
    /// Whose budget (`identity`, `role:operator`, `namespace`, `cluster`, `global`).
    pub per: Per,
    /// Its subject: `identity:agt_…`, `role:operator`, `namespace:prod/shop`, `cluster:prod`, `global`.
    pub subject: String,
    /// The window, in seconds.
    pub window_seconds: u64,
    /// The limit hit: `mutations`, `deletes`, `objects` or `replicas`.
    pub metric: String,
    /// The limit.
    pub limit: i64,
    /// The usage with this mutation added.
    pub would_be: i64,
    /// The window's counters before this mutation.
    pub used: Value,
    /// When the oldest mutation counted leaves the window (usage starts to free up).
    pub frees_at: Option<String>,
}

impl Payload for BudgetExceeded {
    fn kind(&self) -> EntryKind {
        EntryKind::BudgetExceeded
    }
}

impl Budgets {
    /// Checks the configuration: windows of 1 s to 30 days, limits not negative, at least one limit each.
    pub fn validate(&self) -> Result<(), String> {
        for (n, limit) in self.limits.iter().enumerate() {
            let limits = [limit.mutations, limit.deletes, limit.objects, limit.replicas];
            let window = super::breakers::MAX_WINDOW_SECONDS;
            if !(1..=window).contains(&limit.window_seconds)
                || limits.iter().flatten().any(|l| *l < 0)
                || limits.iter().all(Option::is_none)
            {
                return Err(format!(
                    "[[budgets.limits]] #{}: window_seconds 1 to {window}, and at least one of mutations, deletes, \
                     objects, replicas (not negative)",
                    n + 1
                ));
            }
        }
        Ok(())
    }
}

impl BudgetExceeded {
    fn reason(&self) -> String {
        format!(
            "budget exceeded: {} {} would be {} within {} s (the limit is {}){}",
            self.subject,
            self.metric,
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

impl Pipeline {
    /// Reserves the mutation against every budget that applies; `Some(DENIED)` when one would be exceeded.
    pub(super) async fn spend_budget(
        &self,
        caller: &Caller,
        executor: &dyn Cluster,
        action: &Action,
        preview: Option<&Preview>,
        trail: &mut Trail,
    ) -> Result<Option<ActionResponse>, GatewayError> {
        let limits = &self.parts.budgets.limits;
        let Some(preview) = preview.filter(|_| !limits.is_empty()) else {
            return Ok(None);
        };
        let cluster = executor.name();
        let namespace = action.namespace.as_deref().unwrap_or_default();
        let applicable: Vec<(&BudgetLimit, Window)> = limits
            .iter()
            .filter_map(|limit| {
                let subject = match &limit.per {
                    Per::Identity => format!("identity:{}", caller.identity.id),
                    Per::Role(role) if caller.identity.has_role(*role) => format!("role:{}", role.as_str()),
                    Per::Role(_) => return None,
                    Per::Namespace => format!("namespace:{cluster}/{namespace}"),
                    Per::Cluster => format!("cluster:{cluster}"),
                    Per::Global => "global".into(),
                };
                let since = now_minus(std::time::Duration::from_secs(limit.window_seconds));
                Some((limit, Window { subject, since }))
            })
            .collect();
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
        let windows: Vec<Window> = applicable.iter().map(|(_, w)| w.clone()).collect();
        let verdict = self
            .parts
            .store
            .reserve_budget(&windows, &spend, |counted| first_exceeded(&applicable, counted, &spend))
            .await?;
        let Err(exceeded) = verdict else {
            return Ok(None);
        };
        self.record(trail, caller.actor(), &*exceeded).await?;
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

impl Pipeline {
    /// Forgets budget usage older than every budget's window (each recovery pass), so the table holds about
    /// one window of mutations.
    pub(crate) async fn prune_budget_usage(&self) -> Result<(), GatewayError> {
        let Some(longest) = self.parts.budgets.limits.iter().map(|l| l.window_seconds).max() else {
            return Ok(());
        };
        let before = now_minus(std::time::Duration::from_secs(longest));
        self.parts.store.prune_budget_usage(&before).await?;
        Ok(())
    }
}

/// The first budget the mutation would exceed, with its counters.
fn first_exceeded(
    applicable: &[(&BudgetLimit, Window)],
    counted: &[Counted],
    spend: &Spend,
) -> Result<(), Box<BudgetExceeded>> {
    for ((limit, window), counted) in applicable.iter().zip(counted) {
        let used = counted.used;
        let after = [
            ("mutations", limit.mutations, used.mutations + 1),
            ("deletes", limit.deletes, used.deletes + i64::from(spend.delete)),
            ("objects", limit.objects, used.objects + i64::from(!counted.object_seen)),
            ("replicas", limit.replicas, used.replicas + spend.replicas),
        ];
        for (metric, cap, would_be) in after {
            let Some(cap) = cap.filter(|cap| would_be > *cap) else {
                continue;
            };
            let frees_at = counted.oldest.as_deref().and_then(|oldest| {
                let oldest =
                    time::OffsetDateTime::parse(oldest, &time::format_description::well_known::Rfc3339).ok()?;
                let free = oldest + time::Duration::seconds(i64::try_from(limit.window_seconds).ok()?);
                Some(domain::time::format_timestamp(free))
            });
            return Err(Box::new(BudgetExceeded {
                per: limit.per.clone(),
                subject: window.subject.clone(),
                window_seconds: limit.window_seconds,
                metric: metric.to_owned(),
                limit: cap,
                would_be,
                used: serde_json::json!({"mutations": used.mutations, "deletes": used.deletes,
                                         "objects": used.objects, "replicas": used.replicas}),
                frees_at,
            }));
        }
    }
    Ok(())
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
