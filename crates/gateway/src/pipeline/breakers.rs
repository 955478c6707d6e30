//! Circuit breakers (docs/safety.md): an agent that collects too many denied or failed actions within a
//! window is suspended automatically (`identity.suspended`, with the breaker's reason), and the approvers are
//! told through the approval webhook. Off unless `[breakers]` configures one. People are never suspended by a
//! breaker: it must not lock out the admins who would answer the incident.

use std::time::Duration;

use domain::{ActionStatus, EntryKind, IdentityKind, IdentityStatus};
use serde::Deserialize;
use serde_json::json;

use crate::identity::{Caller, Directory};
use crate::{GatewayError, now_minus};

use super::Pipeline;

/// `[breakers]`: which counts suspend an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Breakers {
    /// Suspend after this many `DENIED` actions (guardrail, freeze or policy) within the window.
    pub denials: Option<Trip>,
    /// Suspend after this many `FAILED` actions within the window.
    pub failures: Option<Trip>,
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

impl Breakers {
    /// Checks the configuration: each count at least 1, each window 1 s to 30 days.
    pub fn validate(&self) -> Result<(), String> {
        for (name, trip) in [("denials", self.denials), ("failures", self.failures)] {
            if let Some(trip) = trip
                && (trip.count == 0 || !(1..=MAX_WINDOW_SECONDS).contains(&trip.window_seconds))
            {
                return Err(format!(
                    "[breakers] {name}: count at least 1, window_seconds 1 to {MAX_WINDOW_SECONDS}"
                ));
            }
        }
        Ok(())
    }
}

/// The longest window a breaker or a budget may have (30 days).
pub const MAX_WINDOW_SECONDS: u64 = 30 * 24 * 3600;

impl Pipeline {
    /// After an action of `caller` ended with `status`: suspends the agent if a breaker trips. The count is
    /// read from the database (every gateway on it counts the same actions); one indexed range, only when the
    /// action ended denied or failed and a breaker is configured.
    pub(super) async fn check_breakers(&self, caller: &Caller, status: ActionStatus) -> Result<(), GatewayError> {
        let (name, trip) = match status {
            ActionStatus::Denied => ("denials", self.parts.breakers.denials),
            ActionStatus::Failed => ("failures", self.parts.breakers.failures),
            _ => return Ok(()),
        };
        let Some(trip) = trip.filter(|t| t.count > 0) else {
            return Ok(());
        };
        if caller.identity.kind != IdentityKind::Agent || caller.identity.status != IdentityStatus::Active {
            return Ok(());
        }
        let id = &caller.identity.id;
        // Counted from the window's start, or from the identity's last change (a reactivation starts afresh).
        let mut since = now_minus(Duration::from_secs(trip.window_seconds));
        if let Some(row) = self.parts.store.identity(id).await?
            && row.updated_at > since
        {
            since = row.updated_at;
        }
        let count = self.parts.store.count_recent_actions(id, status, &since).await?;
        if count < i64::from(trip.count) {
            return Ok(());
        }
        let reason = format!(
            "circuit breaker `{name}`: {count} {} actions within {} s (the limit is {})",
            status.as_str(),
            trip.window_seconds,
            trip.count
        );
        let directory = Directory::new(self.parts.store.clone(), self.parts.ledger.clone());
        match directory
            .set_status("system", id, IdentityStatus::Suspended, Some(reason.clone()))
            .await
        {
            Ok((_, entry)) => {
                tracing::warn!(identity = %id, breaker = name, %count, "circuit breaker suspended an agent");
                if let Some(hook) = &self.parts.approval_webhook {
                    hook.send(
                        json!({"event": EntryKind::IdentitySuspended.as_str(), "identity": {"id": id,
                        "name": caller.identity.name}, "breaker": name, "reason": reason,
                        "ledger_entry_id": entry.id}),
                    );
                }
                Ok(())
            }
            // Suspended (or revoked) meanwhile, by another gateway's breaker or an admin.
            Err(GatewayError::Conflict(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
