//! Recording an action's decision (`risk.classified`, `policy.decided`) — with its budget reservation when
//! a budget applies, in the same ledger transaction, so budgets cost an action no round trip of its own —
//! and, for an action that goes on to execute, its stored intent beside it.

use domain::EntryKind;
use serde_json::Value;

use super::budgets::PendingBudget;
use super::{ActionResponse, Pipeline, Trail};
use crate::GatewayError;

/// What recording the decision came to.
pub(super) enum Decided {
    /// Recorded; whether this gateway owns the action's execution (its intent stored).
    Recorded { owned: bool },
    /// A budget refused the mutation: `budget.exceeded` was recorded instead of the decision.
    Refused(Box<ActionResponse>),
}

impl Pipeline {
    /// Records risk and decision (reserving `budget` with them); an action that goes on to execute stores its
    /// intent in the same round trip (both must be durable before the change is sent; neither depends on the
    /// other — an intent stored for a mutation a budget then refused is harmless: the action's entries end
    /// it, and recovery only brings its row in line).
    pub(super) async fn record_decision(
        &self,
        trail: &mut Trail,
        actor: &str,
        recorded: Vec<(EntryKind, Value)>,
        to_execute: Option<&executor::Preview>,
        budget: Option<PendingBudget>,
    ) -> Result<Decided, GatewayError> {
        let action_id = trail.action_id.clone();
        let intent = async {
            match to_execute {
                Some(preview) => self.store_intent(&action_id, preview).await,
                None => Ok(false),
            }
        };
        let record = async {
            match budget {
                Some(budget) => self.record_reserving(trail, actor, recorded, budget).await,
                None => self.record_all(trail, actor, recorded).await.map(|()| None),
            }
        };
        let (refused, owned) = tokio::join!(record, intent);
        if let Some(refused) = refused? {
            return Ok(Decided::Refused(Box::new(refused)));
        }
        Ok(Decided::Recorded { owned: owned? })
    }
}
