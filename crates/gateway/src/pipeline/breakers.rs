//! Circuit breakers (docs/safety.md): an agent that collects too many denied or failed actions, budget refusals
//! or changes made around the gateway within a window is suspended automatically (`identity.suspended`, actor
//! `system`, with the breaker's reason), and the approvers are told through the approval webhook. Off unless
//! `[breakers]` configures one. People are never suspended by a breaker: it must not lock out the admins who
//! would answer the incident.
//!
//! Every count is read from the database, so every gateway on it counts the same things, and each is bounded by
//! an index: an agent's actions within the window (`actions_identity_created`), or the bypasses recorded within
//! it (`ledger_entries_kind_seq`, newest first). Counting starts afresh after a reactivation (from the
//! identity's `updated_at` when it is later than the window's start).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use domain::{ActionStatus, EntryKind, IdentityKind, IdentityStatus};
use ledger_core::Entry;
use serde::Deserialize;
use serde_json::{Value, json};
use storage::{Ledger, Store};

use crate::audit::BypassDetected;
use crate::identity::{Caller, Directory};
use crate::{ApprovalWebhook, GatewayError, now_minus};

use super::Pipeline;

/// `[breakers]`: which counts suspend an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Breakers {
    /// Suspend after this many `DENIED` actions (guardrail, freeze, budget or policy) within the window.
    pub denials: Option<Trip>,
    /// Suspend after this many `FAILED` actions within the window.
    pub failures: Option<Trip>,
    /// Suspend after this many actions refused by a blast-radius budget (`budget.exceeded`) within the window.
    /// A budget refusal is a denial as well, so it counts towards `denials` too.
    pub budget_hits: Option<Trip>,
    /// Suspend after this many changes that bypassed the gateway (`audit.bypass_detected`) made by Kubernetes
    /// users that `service_accounts` maps to the agent, within the window. Needs `service_accounts`.
    pub bypasses: Option<Trip>,
    /// `[breakers.service_accounts]`: Kubernetes user names mapped to the agent (its identity id) whose doing a
    /// change sent with their credentials is.
    pub service_accounts: ServiceAccounts,
}

/// When a breaker trips: `count` actions within `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trip {
    /// How many (at least 1).
    pub count: u32,
    /// Within how many seconds, counted back from the last one.
    pub window_seconds: u64,
}

/// Kubernetes user names (`system:serviceaccount:NAMESPACE:NAME`, or any user) mapped to agents' identity ids
/// (`[breakers.service_accounts]`). Shared, not copied, between the pipeline and the audit policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ServiceAccounts(Arc<BTreeMap<String, String>>);

impl ServiceAccounts {
    /// The mapping `user → agent id`.
    pub fn new(map: BTreeMap<String, String>) -> ServiceAccounts {
        ServiceAccounts(Arc::new(map))
    }

    /// The agent a change by `user` counts against, if any.
    pub fn agent_of(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }

    /// Every user mapped to `agent_id`.
    pub fn users_of(&self, agent_id: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, agent)| agent.as_str() == agent_id)
            .map(|(user, _)| user.as_str())
            .collect()
    }

    /// Whether no user is mapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Breakers {
    /// Checks the configuration: each count at least 1, each window 1 s to 30 days; every service account a
    /// user name mapped to a well-formed agent id (`agt_` and 32 lowercase hex digits); `bypasses` needs
    /// service accounts to attribute bypasses with. Whether each id names an existing agent is checked when a
    /// bypass is attributed to it (an unknown one is logged then): identities come and go while the gateway runs.
    pub fn validate(&self) -> Result<(), String> {
        let trips = [
            ("denials", self.denials),
            ("failures", self.failures),
            ("budget_hits", self.budget_hits),
            ("bypasses", self.bypasses),
        ];
        for (name, trip) in trips {
            if let Some(trip) = trip
                && (trip.count == 0 || !(1..=MAX_WINDOW_SECONDS).contains(&trip.window_seconds))
            {
                return Err(format!(
                    "[breakers] {name}: count at least 1, window_seconds 1 to {MAX_WINDOW_SECONDS}"
                ));
            }
        }
        for (user, agent) in self.service_accounts.0.iter() {
            if user.trim().is_empty() || user.chars().any(char::is_whitespace) {
                return Err(format!(
                    "[breakers.service_accounts] {user:?}: a Kubernetes user name, without spaces"
                ));
            }
            if !is_agent_id(agent) {
                return Err(format!(
                    "[breakers.service_accounts] {user:?} = {agent:?}: not an agent's identity id (agt_ and 32 \
                     lowercase hex digits)"
                ));
            }
        }
        if self.bypasses.is_some() && self.service_accounts.is_empty() {
            return Err("[breakers] bypasses: map the agents' Kubernetes users in [breakers.service_accounts]".into());
        }
        Ok(())
    }
}

/// Whether `id` is spelt as an agent's identity id: `agt_` and a UUID in 32 lowercase hex digits.
fn is_agent_id(id: &str) -> bool {
    id.strip_prefix(IdentityKind::Agent.id_prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The longest window a breaker or a budget may have (30 days).
pub const MAX_WINDOW_SECONDS: u64 = 30 * 24 * 3600;

/// What a breaker counts of an agent's actions.
#[derive(Debug, Clone, Copy)]
enum Counter {
    /// Its actions that ended with this status.
    Status(ActionStatus),
    /// Its actions a blast-radius budget refused.
    BudgetHits,
}

/// Where counting starts: the window's start, or the identity's last change when later (a reactivation starts
/// afresh).
fn counted_since(trip: Trip, updated_at: Option<&str>) -> String {
    let start = now_minus(Duration::from_secs(trip.window_seconds));
    match updated_at {
        Some(updated) if updated > start.as_str() => updated.to_owned(),
        _ => start,
    }
}

impl Pipeline {
    /// After an action of `caller` ended with `status`: suspends the agent if a breaker trips. The counts are
    /// read from the database (every gateway on it counts the same actions), each one indexed range, only when
    /// the action ended denied or failed and a breaker for that is configured. A denial is counted by
    /// `budget_hits` first (it only counts budget refusals), then by `denials`; the first to trip suspends.
    pub(super) async fn check_breakers(&self, caller: &Caller, status: ActionStatus) -> Result<(), GatewayError> {
        let breakers = &self.parts.breakers;
        let candidates = match status {
            ActionStatus::Denied => vec![
                ("budget_hits", breakers.budget_hits, Counter::BudgetHits),
                ("denials", breakers.denials, Counter::Status(status)),
            ],
            ActionStatus::Failed => vec![("failures", breakers.failures, Counter::Status(status))],
            _ => return Ok(()),
        };
        let checks: Vec<(&str, Trip, Counter)> = candidates
            .into_iter()
            .filter_map(|(name, trip, counter)| Some((name, trip.filter(|t| t.count > 0)?, counter)))
            .collect();
        if checks.is_empty()
            || caller.identity.kind != IdentityKind::Agent
            || caller.identity.status != IdentityStatus::Active
        {
            return Ok(());
        }
        let id = &caller.identity.id;
        let updated_at = self.parts.store.identity(id).await?.map(|row| row.updated_at);
        for (name, trip, counter) in checks {
            let since = counted_since(trip, updated_at.as_deref());
            let count = match counter {
                Counter::Status(status) => self.parts.store.count_recent_actions(id, status, &since).await?,
                Counter::BudgetHits => self.parts.store.count_budget_hits(id, &since).await?,
            };
            if count < i64::from(trip.count) {
                continue;
            }
            let what = match counter {
                Counter::Status(status) => format!("{} actions", status.as_str()),
                Counter::BudgetHits => format!(
                    "actions refused by a blast-radius budget ({})",
                    EntryKind::BudgetExceeded.as_str()
                ),
            };
            let reason = format!(
                "circuit breaker `{name}`: {count} {what} within {} s (the limit is {})",
                trip.window_seconds, trip.count
            );
            let tripped = Tripped {
                breaker: name,
                identity_id: id,
                identity_name: &caller.identity.name,
                count,
                reason,
            };
            let (store, ledger) = (&self.parts.store, &self.parts.ledger);
            return suspend(store, ledger, self.parts.approval_webhook.as_ref(), tripped).await;
        }
        Ok(())
    }

    /// How `cluster`'s audit events are judged (`None` for an unknown cluster), with the `bypasses` breaker and
    /// the approval webhook attached when `[breakers]` configures it: the policy the audit webhook should record
    /// bypasses with, so that a bypass by an agent's Kubernetes user counts against the agent.
    pub fn audit_policy(&self, cluster: &str) -> Option<crate::audit::AuditPolicy> {
        let policy = self.parts.clusters.audit_policy(cluster)?;
        Some(policy.with_breakers(&self.parts.breakers, self.parts.approval_webhook.clone()))
    }
}

/// Bypass entries read back per page while counting.
const BYPASS_PAGE: u32 = 200;

/// How much earlier than the window's start recorded entries are still read: an entry's timestamp is taken
/// just before the appender gives it its seq, so timestamps may be slightly out of seq order.
const TIMESTAMP_SLACK: Duration = Duration::from_secs(60);

impl Breakers {
    /// After `entry` recorded `bypass` (the audit reconciliation): when the Kubernetes user who sent the change
    /// is mapped to an agent in `service_accounts`, counts that agent's bypasses within the window and
    /// suspends it at the `bypasses` breaker's count. An unknown id or a person's is logged and counts for no
    /// one (people are never suspended by a breaker).
    pub(crate) async fn bypass_recorded(
        &self,
        store: &Store,
        ledger: &Ledger,
        webhook: Option<&ApprovalWebhook>,
        bypass: &BypassDetected<'_>,
        entry: &Entry,
    ) -> Result<(), GatewayError> {
        let Some(trip) = self.bypasses.filter(|t| t.count > 0) else {
            return Ok(());
        };
        let Some(agent_id) = self.service_accounts.agent_of(bypass.user) else {
            return Ok(());
        };
        let Some(row) = store.identity(agent_id).await? else {
            tracing::warn!(user = %bypass.user, identity = %agent_id,
                "[breakers.service_accounts] maps this Kubernetes user to an unknown identity: its bypass counts for no one");
            return Ok(());
        };
        if IdentityKind::parse(&row.kind) != Some(IdentityKind::Agent) {
            tracing::warn!(user = %bypass.user, identity = %agent_id,
                "[breakers.service_accounts] maps this Kubernetes user to a person: breakers never suspend people");
            return Ok(());
        }
        if IdentityStatus::parse_or_revoked(&row.status) != IdentityStatus::Active {
            return Ok(());
        }
        let since = counted_since(trip, Some(&row.updated_at));
        let users = self.service_accounts.users_of(agent_id);
        let count = count_bypasses(store, &users, &since, trip.window_seconds).await?;
        tracing::info!(identity = %agent_id, user = %bypass.user, %count, limit = trip.count,
            "a bypass of the gateway counted against an agent");
        if count < i64::from(trip.count) {
            return Ok(());
        }
        let object = [bypass.resource, bypass.subresource, bypass.name]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        let reason = format!(
            "circuit breaker `bypasses`: {count} changes that bypassed the gateway within {} s by Kubernetes users \
             mapped to this agent (the limit is {}); the last: {} by {} of {object} in namespace {} on cluster {} \
             (audit id {}, {} {})",
            trip.window_seconds,
            trip.count,
            bypass.verb,
            bypass.user,
            bypass.namespace.unwrap_or("-"),
            bypass.cluster,
            bypass.audit_id,
            EntryKind::AuditBypassDetected.as_str(),
            entry.id
        );
        let tripped = Tripped {
            breaker: "bypasses",
            identity_id: agent_id,
            identity_name: &row.name,
            count,
            reason,
        };
        suspend(store, ledger, webhook, tripped).await
    }
}

/// How many changes sent by one of `users` that bypassed the gateway the API server saw since `since`.
///
/// Counted from the ledger itself (its `audit.bypass_detected` entries), not from a table of its own: bypasses
/// are rare (each is a change made around the gateway), so the entries of that kind are read back newest first
/// through `ledger_entries_kind_seq` until one was recorded before the window (with a minute's slack). The cost
/// is the bypasses of every user recorded within the window, never the ledger; nothing else must be kept in
/// step, and every gateway on the database counts the same entries. A bypass counts at the time the API server
/// saw it (`at`, else when it was recorded), so an old audit log recorded late trips nothing; every change seen
/// within the window was recorded after the window started, so reading back that far finds them all.
async fn count_bypasses(store: &Store, users: &[&str], since: &str, window_seconds: u64) -> Result<i64, GatewayError> {
    let recorded_after = now_minus(Duration::from_secs(window_seconds) + TIMESTAMP_SLACK);
    let mut count = 0;
    let mut before = None;
    loop {
        let page = store
            .entries_of_kind_before(EntryKind::AuditBypassDetected, before, BYPASS_PAGE)
            .await?;
        for entry in &page {
            if entry.timestamp < recorded_after {
                return Ok(count);
            }
            let payload: Value = serde_json::from_str(&entry.payload).unwrap_or(Value::Null);
            let by_user = payload["user"].as_str().is_some_and(|user| users.contains(&user));
            let seen_at = payload["at"]
                .as_str()
                .and_then(ledger_time)
                .unwrap_or_else(|| entry.timestamp.clone());
            if by_user && seen_at.as_str() >= since {
                count += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == BYPASS_PAGE as usize => before = Some(last.seq),
            _ => return Ok(count),
        }
    }
}

/// An RFC 3339 time (the API server's `stageTimestamp`) in the ledger's timestamp form, comparable as text.
fn ledger_time(text: &str) -> Option<String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(domain::time::format_timestamp(at))
}

/// A breaker that tripped on an agent.
struct Tripped<'a> {
    breaker: &'static str,
    identity_id: &'a str,
    identity_name: &'a str,
    count: i64,
    reason: String,
}

/// Suspends the agent (`identity.suspended` by `system`, with the breaker's reason) and tells the approval
/// webhook. Suspended (or revoked) meanwhile, by another gateway's breaker or an admin: nothing to do.
async fn suspend(
    store: &Store,
    ledger: &Ledger,
    webhook: Option<&ApprovalWebhook>,
    tripped: Tripped<'_>,
) -> Result<(), GatewayError> {
    let Tripped {
        breaker,
        identity_id: id,
        identity_name: name,
        count,
        reason,
    } = tripped;
    let directory = Directory::new(store.clone(), ledger.clone());
    match directory
        .set_status("system", id, IdentityStatus::Suspended, Some(reason.clone()))
        .await
    {
        Ok((_, entry)) => {
            tracing::warn!(identity = %id, breaker, %count, %reason, "circuit breaker suspended an agent");
            if let Some(hook) = webhook {
                hook.send(json!({"event": EntryKind::IdentitySuspended.as_str(),
                    "identity": {"id": id, "name": name}, "breaker": breaker, "reason": reason,
                    "ledger_entry_id": entry.id}));
            }
            Ok(())
        }
        Err(GatewayError::Conflict(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "agt_0196f0a0b1c27d3e8f9a0b1c2d3e4f50";

    fn parse(toml_like: Value) -> Result<Breakers, String> {
        let breakers: Breakers = serde_json::from_value(toml_like).map_err(|e| e.to_string())?;
        breakers.validate().map(|()| breakers)
    }

    #[test]
    fn the_configuration_is_checked() {
        let ok = parse(json!({"budget_hits": {"count": 2, "window_seconds": 60},
            "bypasses": {"count": 1, "window_seconds": 600},
            "service_accounts": {"system:serviceaccount:agents:deployer": AGENT}}))
        .unwrap();
        assert_eq!(
            ok.service_accounts.agent_of("system:serviceaccount:agents:deployer"),
            Some(AGENT)
        );
        assert_eq!(
            ok.service_accounts.users_of(AGENT),
            ["system:serviceaccount:agents:deployer"]
        );
        assert_eq!(ok.service_accounts.agent_of("admin"), None);
        assert_eq!(ok, ok.clone(), "compared by value");
        let refused = [
            json!({"budget_hits": {"count": 0, "window_seconds": 60}}),
            json!({"bypasses": {"count": 1, "window_seconds": 0}, "service_accounts": {"u": AGENT}}),
            json!({"bypasses": {"count": 1, "window_seconds": 60}}),
            json!({"service_accounts": {"u": "usr_0196f0a0b1c27d3e8f9a0b1c2d3e4f50"}}),
            json!({"service_accounts": {"u": "agt_0196F0A0B1C27D3E8F9A0B1C2D3E4F50"}}),
            json!({"service_accounts": {"u": "agt_123"}}),
            json!({"service_accounts": {"": AGENT}}),
            json!({"service_accounts": {"a user": AGENT}}),
        ];
        for config in refused {
            assert!(parse(config.clone()).is_err(), "{config}");
        }
        assert!(
            parse(json!({"bypass": {"count": 1, "window_seconds": 60}})).is_err(),
            "a typo"
        );
        assert_eq!(parse(json!({})).unwrap(), Breakers::default());
    }

    #[test]
    fn api_server_times_compare_as_ledger_times() {
        assert_eq!(
            ledger_time("2026-11-27T10:00:00.123456Z").as_deref(),
            Some("2026-11-27T10:00:00.123456Z")
        );
        assert_eq!(
            ledger_time("2026-11-27T11:00:00+01:00").as_deref(),
            Some("2026-11-27T10:00:00.000000Z")
        );
        assert_eq!(ledger_time("yesterday"), None);
    }
}
