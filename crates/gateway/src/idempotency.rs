//! `Idempotency-Key` on submissions: a client that lost the answer retries with the same key and gets the
//! first action back instead of running it twice (the IETF httpapi draft's semantics: the same key with a
//! different request is refused with 422).

use domain::{ActionStatus, EntryKind};
use std::time::{Duration, Instant};

use serde_json::Value;
use storage::ActionRow;

use crate::GatewayError;
use crate::identity::Caller;
use crate::pipeline::{ActionResponse, DecisionView, Pipeline, Trail, request_sha256};

/// How long a retry waits for the first submission to leave `RUNNING`.
const WAIT: Duration = Duration::from_secs(60);

/// Keys are 1 to 255 visible ASCII characters (a UUID is typical).
pub(crate) fn check_key(key: &str) -> Result<(), GatewayError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GatewayError::BadRequest(
            "Idempotency-Key: 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(())
}

impl Pipeline {
    /// The answer to a retried submission: the first action as it stands once it has left `RUNNING`.
    pub(crate) async fn replay(
        &self,
        caller: &Caller,
        first: &ActionRow,
        body: &Value,
    ) -> Result<ActionResponse, GatewayError> {
        let deadline = Instant::now() + WAIT;
        let mut row = first.clone();
        while row.status == ActionStatus::Running && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            row = self.parts.store.action(&first.id).await?.unwrap_or(row);
        }
        let entries = self.parts.store.entries_of_action(&row.id).await?;
        let requested = entries.iter().find(|e| e.kind == EntryKind::ActionRequested);
        let first_sha = requested.map(|e| payload(e)["request_sha256"].clone());
        if first_sha != Some(Value::String(request_sha256(body))) || row.identity_id != caller.identity.id {
            return Err(GatewayError::Unprocessable(format!(
                "this Idempotency-Key was used for another request ({}); use a new key",
                row.id
            )));
        }
        let decision = entries.iter().rev().find_map(decision_of);
        let error = entries
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::ActionFailed)
            .map(|e| payload(e)["error"].clone());
        let trail = Trail {
            action_id: row.id.clone(),
            cluster: row.cluster.clone(),
            entries,
        };
        self.respond(&trail, row.status, row.risk.clone(), decision, None, error)
    }
}

/// The decision an entry records, as the first answer showed it.
fn decision_of(entry: &ledger_core::Entry) -> Option<DecisionView> {
    let payload = &payload(entry);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match EntryKind::parse(&entry.kind)? {
        EntryKind::PolicyDecided => {
            let gated = payload.get("trust_gate");
            Some(DecisionView {
                outcome: text(gated.map_or(&payload["outcome"], |g| &g["outcome"])),
                mode: text(&payload["mode"]),
                policy: text(&payload["policy"]),
                reasons: match gated {
                    Some(g) => vec![text(&g["reason"])],
                    None => serde_json::from_value(payload["reasons"].clone()).unwrap_or_default(),
                },
            })
        }
        EntryKind::FreezeRefused => {
            let scope = serde_json::from_value(payload["scope"].clone()).unwrap_or(domain::FreezeScope::All {});
            let (by, id, reason) = (
                text(&payload["frozen_by"]),
                text(&payload["freeze_id"]),
                text(&payload["reason"]),
            );
            Some(DecisionView {
                outcome: "deny".into(),
                mode: "freeze".into(),
                policy: "freeze.active".into(),
                reasons: vec![crate::pipeline::freeze_refusal(&scope, &by, &id, &reason)],
            })
        }
        EntryKind::BudgetExceeded => Some(DecisionView {
            outcome: "deny".into(),
            mode: "budget".into(),
            policy: EntryKind::BudgetExceeded.as_str().into(),
            reasons: vec![format!(
                "budget exceeded: {} {} would be {} within {} s (the limit is {})",
                text(&payload["subject"]),
                text(&payload["metric"]),
                payload["would_be"],
                payload["window_seconds"],
                payload["limit"]
            )],
        }),
        EntryKind::GuardrailDenied => Some(DecisionView {
            outcome: "deny".into(),
            mode: "guardrail".into(),
            policy: "guardrails".into(),
            reasons: vec![format!("{}: {}", text(&payload["rule"]), text(&payload["message"]))],
        }),
        _ => None,
    }
}

/// An entry's payload as JSON (stored as its canonical text).
pub(crate) fn payload(entry: &ledger_core::Entry) -> Value {
    serde_json::from_str(&entry.payload).unwrap_or(Value::Null)
}
