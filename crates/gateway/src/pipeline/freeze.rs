//! The kill switch (docs/safety.md): `freeze` stops every mutation in a scope until `lift_freeze`; both are
//! ledger entries. Every mutation reads the active freezes (a handful of rows, one indexed query) after the
//! guardrails and again just before its change is sent, so a freeze made on any replica stops actions on
//! every replica at once, including one already past its decision. Reads are never frozen.
//!
//! Who may: admins; approvers too when `[freeze] approvers_may_freeze` is set. An agent's key never lifts
//! a freeze, whatever its roles: the one being stopped must not be able to undo the stop.

use domain::payload::{FreezeEnabled, FreezeLifted, FreezeRefused};
use domain::{FreezeScope, FreezeTarget, IdentityKind};
use ledger_core::{Entry, NewEvent};
use serde::Serialize;
use storage::{FreezeRow, StorageError};

use crate::identity::{Caller, Role};
use crate::{GatewayError, new_id, now};

use super::{ActionResponse, DecisionView, Pipeline, Trail};
use domain::ActionStatus;

/// A freeze, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Freeze {
    /// `frz_…`.
    pub id: String,
    /// What it covers.
    pub scope: FreezeScope,
    /// Why.
    pub reason: String,
    /// Who froze it.
    pub frozen_by: String,
    /// When.
    pub frozen_at: String,
    /// Who lifted it, once lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<String>,
    /// When it was lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<String>,
    /// Why it was lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lift_reason: Option<String>,
}

impl Freeze {
    /// A stored freeze. A scope this release cannot read (a later release's kind) freezes everything:
    /// the safe reading of a stop nobody here understands.
    fn from_row(row: &FreezeRow) -> Freeze {
        let scope = serde_json::from_str(&row.scope).unwrap_or_else(|error| {
            tracing::error!(freeze = %row.id, %error, "unreadable freeze scope: read as freezing everything");
            FreezeScope::All {}
        });
        Freeze {
            id: row.id.clone(),
            scope,
            reason: row.reason.clone(),
            frozen_by: row.frozen_by.clone(),
            frozen_at: row.frozen_at.clone(),
            lifted_by: row.lifted_by.clone(),
            lifted_at: row.lifted_at.clone(),
            lift_reason: row.lift_reason.clone(),
        }
    }

    /// The refusal a frozen mutation gets, in words.
    pub(super) fn refusal(&self) -> String {
        refusal(&self.scope, &self.frozen_by, &self.id, &self.reason)
    }
}

/// A frozen mutation's refusal in words (also rebuilt from a `freeze.refused` entry for a replayed answer).
pub(crate) fn refusal(scope: &FreezeScope, frozen_by: &str, id: &str, reason: &str) -> String {
    format!("frozen: {} is frozen by {frozen_by} ({id}): {reason}", scope.describe())
}

/// The longest reason kept.
const MAX_REASON_CHARS: usize = 1000;

impl Pipeline {
    /// Freezes `scope`; `Conflict` (409) if it is frozen already.
    pub async fn freeze(
        &self,
        caller: &Caller,
        scope: FreezeScope,
        reason: &str,
    ) -> Result<(Freeze, Entry), GatewayError> {
        self.may_freeze(caller)?;
        scope.validate().map_err(GatewayError::BadRequest)?;
        self.check_names(&scope).await?;
        let reason = checked_reason(reason)?;
        let row = FreezeRow {
            id: new_id("frz"),
            scope: serde_json::to_string(&scope).expect("a scope serializes"),
            reason: reason.clone(),
            frozen_by: caller.actor().to_owned(),
            frozen_at: now(),
            recorded_entry: None,
            lifted_by: None,
            lifted_at: None,
            lift_reason: None,
            lifted_entry: None,
        };
        self.parts.store.insert_freeze(&row).await.map_err(|e| match e {
            StorageError::Conflict(message) => GatewayError::Conflict(format!("{}: {message}", scope.describe())),
            other => other.into(),
        })?;
        let enabled = FreezeEnabled {
            freeze_id: row.id.clone(),
            scope,
            reason,
        };
        let entry = match self.parts.ledger.append(NewEvent::of(caller.actor(), &enabled)).await {
            Ok(entry) => entry,
            Err(error) => {
                self.parts.store.remove_unrecorded_freeze(&row.id).await.ok();
                return Err(error.into());
            }
        };
        self.parts.store.mark_freeze_recorded(&row.id, &entry.id).await?;
        tracing::warn!(freeze = %row.id, scope = %enabled.scope.describe(), by = %row.frozen_by, "freeze enabled");
        Ok((Freeze::from_row(&row), entry))
    }

    /// Lifts the active freeze `id`. Never by an agent, nor by a person an agent could act as (an agent created
    /// them or issued their key): the one being stopped must not be able to undo the stop. The lift is recorded
    /// before it takes effect: if the row cannot be updated after `freeze.lifted` is written, the freeze holds
    /// (the safe side) and lifting again records it again.
    pub async fn lift_freeze(&self, caller: &Caller, id: &str, reason: &str) -> Result<(Freeze, Entry), GatewayError> {
        self.may_freeze(caller)?;
        if caller.identity.kind == IdentityKind::Agent {
            return Err(GatewayError::Forbidden(
                "an agent's key can never lift a freeze; ask a person with the admin role".into(),
            ));
        }
        if let Some(why) = crate::duties::controlled_by_agent(&self.parts.store, &caller.identity.id).await? {
            let why = why
                .replace("the approver", &caller.identity.name)
                .replace("the requester", "an agent");
            return Err(GatewayError::Forbidden(format!(
                "an agent could act as {} ({why}): a freeze is lifted by a person no agent controls",
                caller.identity.name
            )));
        }
        let reason = checked_reason(reason)?;
        let row = self.parts.store.freeze(id).await?;
        let row = row.ok_or_else(|| GatewayError::NotFound(format!("no freeze {id:?}")))?;
        match (&row.lifted_at, &row.recorded_entry) {
            (Some(_), _) => return Err(GatewayError::Conflict(format!("freeze {id} is lifted already"))),
            (None, None) => {
                return Err(GatewayError::Conflict(format!(
                    "freeze {id} is still being recorded; try again"
                )));
            }
            (None, Some(_)) => {}
        }
        let mut freeze = Freeze::from_row(&row);
        let lifted = FreezeLifted {
            freeze_id: freeze.id.clone(),
            scope: freeze.scope.clone(),
            reason: reason.clone(),
            frozen_by: freeze.frozen_by.clone(),
            frozen_at: freeze.frozen_at.clone(),
        };
        let entry = self.parts.ledger.append(NewEvent::of(caller.actor(), &lifted)).await?;
        let at = now();
        // Lifted meanwhile by someone else: this lift is recorded too, and the freeze is lifted either way.
        self.parts
            .store
            .lift_freeze(id, caller.actor(), &at, &reason, &entry.id)
            .await?;
        tracing::warn!(freeze = %id, by = %caller.actor(), "freeze lifted");
        (freeze.lifted_by, freeze.lifted_at, freeze.lift_reason) =
            (Some(caller.actor().to_owned()), Some(at), Some(reason));
        Ok((freeze, entry))
    }

    /// The active freezes, oldest first (any identity may read them: an agent should know why it is stopped).
    pub async fn active_freezes(&self) -> Result<Vec<Freeze>, GatewayError> {
        let rows = self.parts.store.active_freezes().await?;
        Ok(rows.iter().map(Freeze::from_row).collect())
    }

    /// The first active freeze that covers a mutation of `target`, if any. A person an agent could act as (it
    /// created them, or issued their key) is frozen with that agent: by a freeze of every agent, and by a freeze
    /// of that agent itself. Those lineage walks run only while such a freeze is active.
    pub(crate) async fn freeze_covering(&self, target: &FreezeTarget<'_>) -> Result<Option<Freeze>, GatewayError> {
        let store = &self.parts.store;
        for freeze in self.active_freezes().await? {
            let through_lineage = match &freeze.scope {
                _ if freeze.scope.covers(target) => true,
                FreezeScope::Agents {} => crate::duties::controlled_by_agent(store, target.identity_id)
                    .await?
                    .is_some(),
                FreezeScope::Identity { identity_id } => {
                    crate::duties::could_act_as(store, identity_id, target.identity_id)
                        .await?
                        .is_some()
                }
                _ => false,
            };
            if through_lineage {
                return Ok(Some(freeze));
            }
        }
        Ok(None)
    }

    /// Records the `freeze.enabled` of freezes whose gateway stopped between storing and recording them (a lease
    /// ago): such a freeze has been refusing mutations all along, so it is recorded rather than dropped.
    pub(crate) async fn record_unrecorded_freezes(&self) -> Result<(), GatewayError> {
        let before = crate::now_minus(self.owner.lease());
        for row in self.parts.store.unrecorded_freezes(&before).await? {
            let freeze = Freeze::from_row(&row);
            let enabled = FreezeEnabled {
                freeze_id: freeze.id,
                scope: freeze.scope,
                reason: freeze.reason,
            };
            let entry = self.parts.ledger.append(NewEvent::of(&row.frozen_by, &enabled)).await?;
            self.parts.store.mark_freeze_recorded(&row.id, &entry.id).await?;
            tracing::warn!(freeze = %row.id, "recorded a freeze whose gateway stopped before recording it");
        }
        Ok(())
    }

    /// A freeze must name a configured cluster and an existing identity: a typo would freeze nothing.
    async fn check_names(&self, scope: &FreezeScope) -> Result<(), GatewayError> {
        let cluster = match scope {
            FreezeScope::Cluster { cluster } => Some(cluster),
            FreezeScope::Namespace { cluster, .. } => cluster.as_ref(),
            _ => None,
        };
        if let Some(cluster) = cluster
            && !self.parts.clusters.names().contains(&cluster.as_str())
        {
            return Err(GatewayError::NotFound(format!(
                "cluster: no cluster {cluster:?} is configured (configured: {})",
                self.parts.clusters.names().join(", ")
            )));
        }
        if let FreezeScope::Identity { identity_id } = scope
            && self.parts.store.identity(identity_id).await?.is_none()
        {
            return Err(GatewayError::NotFound(format!(
                "identity_id: no identity {identity_id:?}"
            )));
        }
        Ok(())
    }

    /// Records that `freeze` stopped the action at `stage` and answers DENIED.
    pub(super) async fn deny_by_freeze(
        &self,
        trail: &mut Trail,
        actor: &str,
        freeze: &Freeze,
        stage: &str,
    ) -> Result<ActionResponse, GatewayError> {
        let refused = FreezeRefused {
            freeze_id: freeze.id.clone(),
            scope: freeze.scope.clone(),
            reason: freeze.reason.clone(),
            frozen_by: freeze.frozen_by.clone(),
            stage: stage.to_owned(),
        };
        self.record(trail, actor, &refused).await?;
        let decision = DecisionView {
            outcome: "deny".into(),
            mode: "freeze".into(),
            policy: "freeze.active".into(),
            reasons: vec![freeze.refusal()],
        };
        self.respond(trail, ActionStatus::Denied, None, Some(decision), None, None)
    }

    /// Whether `caller` may freeze (and, if it is not an agent, lift): `Forbidden` with why not.
    pub fn may_freeze(&self, caller: &Caller) -> Result<(), GatewayError> {
        let approver_may = self.parts.freeze.approvers_may_freeze && caller.identity.has_role(Role::Approver);
        match caller.identity.has_role(Role::Admin) || approver_may {
            true => Ok(()),
            false => Err(GatewayError::Forbidden(format!(
                "{} may not freeze or lift: it takes the admin role{}",
                caller.identity.name,
                if self.parts.freeze.approvers_may_freeze {
                    " or the approver role"
                } else {
                    ""
                }
            ))),
        }
    }
}

/// Freeze settings (`[freeze]` in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreezeSettings {
    /// Approvers may freeze and lift too (besides admins).
    pub approvers_may_freeze: bool,
}

fn checked_reason(reason: &str) -> Result<String, GatewayError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(GatewayError::BadRequest("reason: say why (it is recorded)".into()));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(GatewayError::BadRequest(format!(
            "reason: at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_owned())
}
