//! An identity's own budget, set by an admin (`PUT`/`DELETE /api/v1/identities/{id}/budget`, `docketops budget`):
//! limits that apply to that identity besides the configured budgets, counted on the same usage as
//! `per = "identity"`; the strictest wins. Recorded as `budget.set` before it takes effect: if the row cannot be
//! written after the entry, the change did not happen and setting it again records it again.
//!
//! Who may: an admin, never through an agent's key (whatever its roles), never on itself, and never a person an
//! agent could act as (it created them or issued their key), nor for an identity that could act as the admin:
//! the one a budget bounds must not be able to loosen it.

use domain::payload::{BudgetSet, IdentityLimit, MAX_IDENTITY_LIMITS};
use domain::{IdentityKind, Role};
use ledger_core::{Entry, NewEvent};
use serde::Serialize;
use storage::{Counted, IdentityBudgetRow, Usage, Window};

use super::{BudgetLimit, OwnBudget, Per, check_limit, frees_at};
use crate::identity::{Caller, Identity};
use crate::{GatewayError, Pipeline, now};

/// Changes to identities' budgets, one at a time in this process, so that each `budget.set` names the limits
/// it replaced (another gateway's change at the same moment may still interleave; the last row written wins).
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The longest reason kept.
const MAX_REASON_CHARS: usize = 1000;

/// An identity's budgets, as `GET /api/v1/identities/{id}/budget` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityBudgetView {
    /// The identity.
    pub identity_id: String,
    /// Its own limits, each with its usage (empty: none; the configured budgets alone apply).
    pub own: Vec<LimitView>,
    /// Who set its own limits, when and why (absent without any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<SetBy>,
    /// The configured budgets that apply to it: `identity`, its roles', its groups' and `global` with their
    /// usage; `namespace` and `cluster` ones (counted per target) without.
    pub configured: Vec<LimitView>,
}

/// Who set an identity's own limits.
#[derive(Debug, Clone, Serialize)]
pub struct SetBy {
    /// The admin.
    pub set_by: String,
    /// When.
    pub set_at: String,
    /// Why.
    pub reason: String,
    /// The `budget.set` entry.
    pub ledger_entry_id: String,
}

/// One budget and, where it counts for this identity whatever it changes, its usage now.
#[derive(Debug, Clone, Serialize)]
pub struct LimitView {
    /// Whose mutations it counts (`identity`, `role:operator`, `group:sre`, `namespace`, `cluster`, `global`).
    pub per: Per,
    /// The subject counted (`identity:agt_…`, `role:operator`, …); absent for budgets counted per target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The window, in seconds.
    pub window_seconds: u64,
    /// The limits (absent: none on that counter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutations: Option<i64>,
    /// At most this many deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes: Option<i64>,
    /// At most this many distinct objects changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<i64>,
    /// At most this much replica change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// At most this percentage of the target namespace's workloads changed (configured budgets only; its usage
    /// depends on the target, so `used` does not show it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads_percent: Option<i64>,
    /// The window's counters now: `{mutations, deletes, objects, replicas, frees_at}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<serde_json::Value>,
}

impl Pipeline {
    /// Sets `identity_id`'s own limits (replacing any it had); the view afterwards and the `budget.set` entry.
    pub async fn set_identity_budget(
        &self,
        caller: &Caller,
        identity_id: &str,
        limits: Vec<IdentityLimit>,
        reason: &str,
    ) -> Result<(IdentityBudgetView, Entry), GatewayError> {
        self.may_change_budget(caller, identity_id)?;
        checked_limits(&limits)?;
        let reason = checked_reason(reason)?;
        let identity = self.budgeted_identity(caller, identity_id).await?;
        let _one_at_a_time = CHANGES.lock().await;
        let previous = self.own_limits(identity_id).await?.unwrap_or_default();
        let set = BudgetSet {
            identity_id: identity_id.to_owned(),
            limits,
            previous,
            reason,
        };
        let entry = self.parts.ledger.append(NewEvent::of(caller.actor(), &set)).await?;
        let longest = set.limits.iter().map(|l| l.window_seconds).max().unwrap_or(1);
        let row = IdentityBudgetRow {
            identity_id: identity_id.to_owned(),
            limits: serde_json::to_string(&set.limits).expect("limits serialize"),
            longest_window_seconds: i64::try_from(longest).unwrap_or(i64::MAX),
            reason: set.reason.clone(),
            set_by: caller.actor().to_owned(),
            set_at: now(),
            recorded_entry: entry.id.clone(),
        };
        self.parts.store.put_identity_budget(&row).await?;
        tracing::warn!(identity = %identity_id, by = %caller.actor(), entry = %entry.id, "identity budget set");
        Ok((self.budget_view(&identity).await?, entry))
    }

    /// Removes `identity_id`'s own limits (the configured budgets alone apply again); `Conflict` (409) if it
    /// has none.
    pub async fn clear_identity_budget(
        &self,
        caller: &Caller,
        identity_id: &str,
        reason: &str,
    ) -> Result<(IdentityBudgetView, Entry), GatewayError> {
        self.may_change_budget(caller, identity_id)?;
        let reason = checked_reason(reason)?;
        let identity = self.budgeted_identity(caller, identity_id).await?;
        let _one_at_a_time = CHANGES.lock().await;
        let Some(previous) = self.own_limits(identity_id).await? else {
            return Err(GatewayError::Conflict(format!(
                "{identity_id} has no budget of its own; the configured budgets apply"
            )));
        };
        let set = BudgetSet {
            identity_id: identity_id.to_owned(),
            limits: Vec::new(),
            previous,
            reason,
        };
        let entry = self.parts.ledger.append(NewEvent::of(caller.actor(), &set)).await?;
        self.parts.store.delete_identity_budget(identity_id).await?;
        tracing::warn!(identity = %identity_id, by = %caller.actor(), entry = %entry.id, "identity budget cleared");
        Ok((self.budget_view(&identity).await?, entry))
    }

    /// `identity_id`'s budgets with their usage. An admin, or the identity itself, may read them.
    pub async fn identity_budget(
        &self,
        caller: &Caller,
        identity_id: &str,
    ) -> Result<IdentityBudgetView, GatewayError> {
        if !caller.identity.has_role(Role::Admin) && caller.identity.id != identity_id {
            return Err(GatewayError::Forbidden(format!(
                "{} may read its own budget only; another identity's takes the admin role",
                caller.identity.name
            )));
        }
        let row = self.parts.store.identity(identity_id).await?;
        let row = row.ok_or_else(|| GatewayError::NotFound(format!("no identity {identity_id:?}")))?;
        self.budget_view(&Identity::from_row(&row)).await
    }

    /// Admins only, never an agent's key, never on itself.
    fn may_change_budget(&self, caller: &Caller, identity_id: &str) -> Result<(), GatewayError> {
        caller.require(Role::Admin)?;
        if caller.identity.kind == IdentityKind::Agent {
            return Err(GatewayError::Forbidden(
                "an agent's key never changes a budget, whatever its roles; ask a person with the admin role".into(),
            ));
        }
        if caller.identity.id == identity_id {
            return Err(GatewayError::Forbidden(
                "no identity changes its own budget; ask another admin".into(),
            ));
        }
        Ok(())
    }

    /// The identity whose budget changes (`NotFound` if none), unless the lineage says the one bounded could
    /// loosen its own bound through the caller.
    async fn budgeted_identity(&self, caller: &Caller, identity_id: &str) -> Result<Identity, GatewayError> {
        let row = self.parts.store.identity(identity_id).await?;
        let row = row.ok_or_else(|| GatewayError::NotFound(format!("no identity {identity_id:?}")))?;
        let store = &self.parts.store;
        // The lineage's words name "the approver" (the caller here) and "the requester" (who controls it).
        let name = &caller.identity.name;
        let words =
            |why: String, controller: &str| why.replace("the approver", name).replace("the requester", controller);
        if let Some(why) = crate::duties::controlled_by_agent(store, caller.actor()).await? {
            return Err(GatewayError::Forbidden(format!(
                "an agent could act as {name} ({}): budgets are changed by a person no agent controls",
                words(why, "an agent")
            )));
        }
        if let Some(why) = crate::duties::could_act_as(store, identity_id, caller.actor()).await? {
            return Err(GatewayError::Forbidden(format!(
                "{identity_id} could act as {name} ({}): it must not change its own budget through it",
                words(why, identity_id)
            )));
        }
        Ok(Identity::from_row(&row))
    }

    /// The identity's own limits as stored now (`None`: it has none). Unreadable ones (an edited database) read
    /// as empty, so that they can be replaced or cleared.
    async fn own_limits(&self, identity_id: &str) -> Result<Option<Vec<IdentityLimit>>, GatewayError> {
        let row = self.parts.store.identity_budget_row(identity_id).await?;
        Ok(row.map(|row| {
            OwnBudget::read(row).map_or_else(
                |why| {
                    tracing::error!(identity = %identity_id, %why, "unreadable identity budget replaced");
                    Vec::new()
                },
                |own| own.limits,
            )
        }))
    }

    async fn budget_view(&self, identity: &Identity) -> Result<IdentityBudgetView, GatewayError> {
        let store = &self.parts.store;
        let row = store.identity_budget_row(&identity.id).await?;
        let own = row
            .map(OwnBudget::read)
            .transpose()
            .map_err(GatewayError::Unavailable)?;
        let own_limits: Vec<BudgetLimit> = own
            .iter()
            .flat_map(|own| own.limits.iter().map(BudgetLimit::own))
            .collect();
        // A configured budget of a role or group the identity is not in does not apply to it; one counted per
        // namespace or cluster does, whatever the target.
        let applying = self.parts.budgets.limits.iter().filter(|limit| {
            matches!(limit.per, Per::Namespace | Per::Cluster) || limit.per.subject(identity, None).is_some()
        });
        let mut views: Vec<LimitView> = own_limits
            .iter()
            .chain(applying)
            .map(|limit| LimitView::of(limit, limit.per.subject(identity, None)))
            .collect();
        // Usage: counted the way a reservation counts it, without its lock, spending nothing.
        let windows: Vec<Window> = views
            .iter()
            .filter_map(|view| {
                Some(Window {
                    subject: view.subject.clone()?,
                    seconds: view.window_seconds,
                    // Counted as a limit of one less would count them: up to one past it.
                    limits: storage::Limits {
                        objects: Some(OBJECTS_SHOWN - 1),
                        ..storage::Limits::default()
                    },
                })
            })
            .collect();
        let mut usage = self.count_usage(&windows).await?.into_iter();
        for view in views.iter_mut().filter(|view| view.subject.is_some()) {
            let counted = usage.next().expect("one usage per window");
            let frees_at = frees_at(counted.oldest.as_deref(), view.window_seconds);
            view.used = Some(used_json(counted.used, frees_at));
        }
        let configured = views.split_off(own_limits.len());
        Ok(IdentityBudgetView {
            identity_id: identity.id.clone(),
            own: views,
            set: own.map(|own| SetBy {
                set_by: own.row.set_by,
                set_at: own.row.set_at,
                reason: own.row.reason,
                ledger_entry_id: own.row.recorded_entry,
            }),
            configured,
        })
    }
}

impl Pipeline {
    /// Each window's usage now, spending nothing and taking no lock.
    async fn count_usage(&self, windows: &[Window]) -> Result<Vec<Counted>, GatewayError> {
        Ok(self.parts.store.budget_usage(windows, &crate::now()).await?)
    }
}

impl LimitView {
    fn of(limit: &BudgetLimit, subject: Option<String>) -> LimitView {
        LimitView {
            per: limit.per.clone(),
            subject,
            window_seconds: limit.window_seconds,
            mutations: limit.mutations,
            deletes: limit.deletes,
            objects: limit.objects,
            replicas: limit.replicas,
            workloads_percent: limit.workloads_percent,
            used: None,
        }
    }
}

/// Distinct objects a budget's usage view counts at most (an admin's read; a mutation counts only up to its limit).
const OBJECTS_SHOWN: i64 = 10_000;

fn used_json(used: Usage, frees_at: Option<String>) -> serde_json::Value {
    serde_json::json!({"mutations": used.mutations, "deletes": used.deletes, "objects": used.objects,
                       "replicas": used.replicas, "frees_at": frees_at})
}

/// 1 to [`MAX_IDENTITY_LIMITS`] limits, each as the configuration's are checked.
fn checked_limits(limits: &[IdentityLimit]) -> Result<(), GatewayError> {
    if limits.is_empty() || limits.len() > MAX_IDENTITY_LIMITS {
        return Err(GatewayError::BadRequest(format!(
            "limits: 1 to {MAX_IDENTITY_LIMITS} limits (to go back to the configured budgets, DELETE the budget)"
        )));
    }
    for (n, limit) in limits.iter().enumerate() {
        let counters = [limit.mutations, limit.deletes, limit.objects, limit.replicas];
        check_limit(limit.window_seconds, &counters)
            .map_err(|why| GatewayError::BadRequest(format!("limits[{n}]: {why}")))?;
    }
    Ok(())
}

/// A reason: not blank, at most [`MAX_REASON_CHARS`] characters (as sent), kept trimmed.
fn checked_reason(reason: &str) -> Result<String, GatewayError> {
    // Blank as the schema's `\S` sees it (Python's and Rust's white space: U+FEFF is not blank, U+001C to
    // U+001F are), so a reason the schema accepts is accepted here.
    let blank = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    if reason.chars().all(blank) {
        return Err(GatewayError::BadRequest("reason: say why (it is recorded)".into()));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(GatewayError::BadRequest(format!(
            "reason: at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.trim().to_owned())
}
