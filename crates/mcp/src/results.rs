//! Gateway answers shaped into tool results an LLM can act on: the ledger ids and hashes, the decision and
//! its reasons, and what to do next (wait for a human approver, ask why a request was denied).
//!
//! Secret values never leave through MCP: whatever the gateway's guardrails reveal to its REST callers
//! (`reveal_secret_data`), the data of a Secret is redacted here again before a result is returned.

use domain::{ActionStatus, EntryKind, redact};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use crate::backend::ToolError;

/// A result as JSON text (what every MCP client shows a model) and as structured content.
pub(crate) fn success(value: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

/// A tool error (`isError: true`) with the gateway's message.
pub(crate) fn failure(error: &ToolError) -> CallToolResult {
    let value = error.to_json();
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("error: {error}"))]);
    result.structured_content = Some(value);
    result
}

/// What the waiting requester is told: it cannot approve its own action, a human approver must.
fn approval_note(action_id: &str) -> Value {
    json!({
        "message": "This action needs a human approval before it runs. A human approver must approve it in the \
                    DocketOps dashboard (Approvals) or through the gateway's API \
                    (POST /api/v1/approvals/{action_id}/approve). It cannot be approved through MCP.",
        "wait": {"tool": "get_action_status", "arguments": {"action_id": action_id, "wait_seconds": 60},
                 "note": "answers as soon as the action has a final status (at most 60 s per call; call again \
                          while it is PENDING_APPROVAL)"},
    })
}

/// The response of a submitted action (`POST /api/v1/actions`), with guidance for its status.
pub(crate) fn action_submitted(mut response: Value, secret: bool) -> Value {
    if secret {
        withhold_secret_data(&mut response);
    }
    let action_id = response["action_id"].as_str().unwrap_or_default().to_owned();
    match ActionStatus::parse(response["status"].as_str().unwrap_or_default()) {
        Some(ActionStatus::PendingApproval) => response["approval"] = approval_note(&action_id),
        Some(ActionStatus::Denied) => {
            response["next"] = json!(format!(
                "The request was denied and will not run. explain_denial with action_id {action_id} shows the \
                 guardrail or policy reasons recorded in the ledger."
            ))
        }
        _ => {}
    }
    response
}

/// `GET /api/v1/actions/{id}` (the action and its entries) as a status: the newest entry's ids and hashes,
/// the decision and its reasons, the outcome, and guidance while it waits. Entry payloads stay out, except
/// the few fields named here.
pub(crate) fn action_status(answer: &Value) -> Value {
    let action = &answer["action"];
    let entries = answer["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    let status = action["status"].as_str().unwrap_or_default();
    let action_id = action["action_id"].as_str().unwrap_or_default();
    let mut view = Map::new();
    for field in [
        "action_id",
        "status",
        "risk",
        "cluster",
        "action_type",
        "namespace",
        "resource_kind",
        "resource_name",
        "created_at",
        "updated_at",
    ] {
        view.insert(field.into(), action[field].clone());
    }
    view.insert(
        "final".into(),
        json!(ActionStatus::parse(status).is_some_and(ActionStatus::is_final)),
    );
    if let Some(decision) = decision(entries) {
        view.insert("decision".into(), decision);
    }
    if let Some(last) = entries.last() {
        view.insert("ledger_entry_id".into(), last["id"].clone());
        view.insert("event_hash".into(), last["event_hash"].clone());
        view.insert("chain_hash".into(), last["chain_hash"].clone());
        if let Some(id) = last["id"].as_str() {
            view.insert("receipt_url".into(), json!(format!("/api/v1/ledger/receipts/{id}")));
        }
    }
    for entry in entries {
        let payload = &entry["payload"];
        match EntryKind::parse(entry["kind"].as_str().unwrap_or_default()) {
            Some(EntryKind::OutcomeVerified) => {
                view.insert("verification".into(), json!({"passed": payload["passed"]}));
            }
            Some(EntryKind::ActionFailed) => {
                view.insert(
                    "error".into(),
                    json!({"stage": payload["stage"], "error": payload["error"]}),
                );
            }
            Some(EntryKind::ApprovalRequested) => {
                view.insert(
                    "approval".into(),
                    json!({"approvals_required": payload["approvals_required"], "expires_at": payload["expires_at"]}),
                );
            }
            _ => {}
        }
    }
    if status == ActionStatus::PendingApproval {
        let mut note = approval_note(action_id);
        if let Some(Value::Object(approval)) = view.get("approval") {
            for (key, value) in approval {
                note[key] = value.clone();
            }
        }
        view.insert("approval".into(), note);
    }
    view.insert(
        "entries".into(),
        entries
            .iter()
            .map(|e| json!({"id": e["id"], "kind": e["kind"], "timestamp": e["timestamp"]}))
            .collect(),
    );
    if action["resource_kind"] == "Secret" {
        let mut value = Value::Object(view);
        withhold_secret_data(&mut value);
        return value;
    }
    Value::Object(view)
}

/// The decision that stands for an action: a guardrail's, else policy's (with the trust gate's), then what
/// approvers said.
fn decision(entries: &[Value]) -> Option<Value> {
    let mut decision = None;
    for entry in entries {
        let payload = &entry["payload"];
        match EntryKind::parse(entry["kind"].as_str().unwrap_or_default()) {
            Some(EntryKind::GuardrailDenied) => {
                decision = Some(json!({"outcome": "deny", "by": "guardrail",
                    "reasons": [format!("{}: {}", payload["rule"].as_str().unwrap_or_default(),
                                        payload["message"].as_str().unwrap_or_default())]}));
            }
            Some(EntryKind::FreezeRefused) => {
                decision = Some(json!({"outcome": "deny", "by": "freeze", "reasons": [freeze_reason(payload)]}));
            }
            Some(EntryKind::BudgetExceeded) => {
                decision = Some(json!({"outcome": "deny", "by": "budget", "reasons": [budget_reason(payload)]}));
            }
            Some(EntryKind::PolicyDecided) => {
                let (outcome, reasons) = match payload.get("trust_gate") {
                    Some(gate) => (gate["outcome"].clone(), json!([gate["reason"]])),
                    None => (payload["outcome"].clone(), payload["reasons"].clone()),
                };
                decision = Some(json!({"outcome": outcome, "by": "policy", "mode": payload["mode"],
                                       "reasons": reasons}));
            }
            _ => {}
        }
    }
    decision
}

/// A budget refusal in words, from its `budget.exceeded` payload.
fn budget_reason(payload: &Value) -> String {
    format!(
        "budget {} {}: {} would make {} within {} s (limit {})",
        payload["subject"].as_str().unwrap_or_default(),
        payload["metric"].as_str().unwrap_or_default(),
        "this change",
        payload["would_be"],
        payload["window_seconds"],
        payload["limit"]
    )
}

/// A freeze refusal in words, from its `freeze.refused` payload.
fn freeze_reason(payload: &Value) -> String {
    format!(
        "frozen by {} ({}): {}",
        payload["frozen_by"].as_str().unwrap_or_default(),
        payload["freeze_id"].as_str().unwrap_or_default(),
        payload["reason"].as_str().unwrap_or_default()
    )
}

/// Why an action did not run (or did): the guardrail or policy reasons, the risk rules that fired, what an
/// approver said, from the action's ledger entries.
pub(crate) fn explanation(answer: &Value) -> Value {
    let action = &answer["action"];
    let entries = answer["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    let status = action["status"].as_str().unwrap_or_default();
    let mut explained = json!({
        "action_id": action["action_id"], "status": status,
        "target": {"cluster": action["cluster"], "action_type": action["action_type"], "namespace": action["namespace"],
                   "resource_kind": action["resource_kind"], "resource_name": action["resource_name"]},
    });
    let mut denied_by = Value::Null;
    let mut reasons: Vec<Value> = Vec::new();
    let mut cited = Vec::new();
    for entry in entries {
        let payload = &entry["payload"];
        let kind = entry["kind"].as_str().unwrap_or_default();
        match EntryKind::parse(kind) {
            Some(EntryKind::GuardrailDenied) => {
                denied_by = json!("guardrail");
                explained["guardrail"] = json!({"rule": payload["rule"], "message": payload["message"]});
                reasons.push(json!(format!(
                    "{}: {}",
                    payload["rule"].as_str().unwrap_or_default(),
                    payload["message"].as_str().unwrap_or_default()
                )));
            }
            Some(EntryKind::FreezeRefused) => {
                denied_by = json!("freeze");
                explained["freeze"] = json!({"freeze_id": payload["freeze_id"], "scope": payload["scope"],
                    "reason": payload["reason"], "frozen_by": payload["frozen_by"], "stage": payload["stage"]});
                reasons.push(json!(freeze_reason(payload)));
            }
            Some(EntryKind::BudgetExceeded) => {
                denied_by = json!("budget");
                explained["budget"] = payload.clone();
                reasons.push(json!(budget_reason(payload)));
            }
            Some(EntryKind::RiskClassified) => {
                explained["risk"] = json!({"level": payload["level"], "rules": payload["rules"]});
            }
            Some(EntryKind::PolicyDecided) => {
                explained["policy"] = json!({"outcome": payload["outcome"], "mode": payload["mode"],
                    "policy": payload["policy"], "revision": payload["revision"], "decision_id": payload["decision_id"],
                    "input_sha256": payload["input_sha256"], "reasons": payload["reasons"]});
                if let Some(gate) = payload.get("trust_gate") {
                    explained["policy"]["trust_gate"] = gate.clone();
                }
                if status == ActionStatus::Denied && denied_by.is_null() {
                    denied_by = json!("policy");
                    if let Some(list) = payload["reasons"].as_array() {
                        reasons.extend(list.iter().cloned());
                    }
                }
            }
            Some(EntryKind::ApprovalDenied) => {
                denied_by = json!("approver");
                reasons.push(json!(format!(
                    "rejected by approver {}{}",
                    payload["approver"].as_str().unwrap_or_default(),
                    payload["comment"]
                        .as_str()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                )));
            }
            Some(EntryKind::ApprovalExpired) => {
                denied_by = json!("approval_window");
                reasons.push(json!("no approver decided before the approval window ended"));
            }
            _ => continue,
        }
        cited.push(
            json!({"id": entry["id"], "kind": kind, "event_hash": entry["event_hash"],
                          "chain_hash": entry["chain_hash"]}),
        );
    }
    explained["denied"] = json!(!denied_by.is_null());
    explained["denied_by"] = denied_by.clone();
    explained["reasons"] = json!(reasons);
    explained["ledger_entries"] = json!(cited);
    explained["advice"] = json!(advice(denied_by.as_str(), status));
    explained
}

/// What the agent should do next, by what denied the action.
fn advice(denied_by: Option<&str>, status: &str) -> &'static str {
    match denied_by {
        Some("guardrail") => {
            "A guardrail denial is final for this target: the namespace is blocked, the kind or action type is not \
             allowed there, or the identity's scopes do not cover it. Choose a target within your scopes, or ask an \
             administrator to change the scopes; retrying the same request is denied again."
        }
        Some("policy") => {
            "The policy denied this request. Address the reasons (for example, give a justification) and submit a \
             new action; a denied action does not run later."
        }
        Some("approver") => "A human approver rejected this action; it will not run.",
        Some("budget") => {
            "A blast-radius budget stopped this change: too much was changed within its window. Stop and report \
             to a person; usage starts to free up at `frees_at` in the budget's details, and retrying before then is \
             refused again."
        }
        Some("freeze") => {
            "An operator froze this scope (the kill switch): no change runs there until a person lifts the freeze. \
             Stop changing things in this scope and report the reason above to a person; retrying is refused \
             again while the freeze holds. Reads still work."
        }
        Some("approval_window") => {
            "The action expired while waiting for an approval; submit it again if it is still needed."
        }
        _ if status == ActionStatus::PendingApproval => {
            "Not denied: the action waits for a human approval (dashboard or API); get_action_status with \
             wait_seconds waits for it."
        }
        _ => "Not denied.",
    }
}

/// Redacts Secret data anywhere in `value`: the values of every `data`/`stringData` object, and kubectl's
/// last-applied annotation (which holds a copy of them).
pub(crate) fn withhold_secret_data(value: &mut Value) {
    redact::redact_anywhere(value, redact::Strings::Keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_data_is_redacted_wherever_it_is() {
        let mut value = json!({"result": [{"kind": "Secret", "data": {"password": "c2VjcmV0"},
            "stringData": {"token": "plain"},
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"c2VjcmV0\"}}"}}}]});
        withhold_secret_data(&mut value);
        let text = value.to_string();
        assert!(!text.contains("c2VjcmV0") && !text.contains("plain"), "{text}");
        assert_eq!(value["result"][0]["data"]["password"], redact::REDACTED);
    }

    #[test]
    fn a_pending_action_says_how_to_wait_and_who_approves() {
        let shaped = action_submitted(
            json!({"action_id": "act_1", "status": "PENDING_APPROVAL", "risk": "HIGH"}),
            false,
        );
        assert_eq!(shaped["approval"]["wait"]["tool"], "get_action_status");
        assert_eq!(shaped["approval"]["wait"]["arguments"]["action_id"], "act_1");
        assert!(
            shaped["approval"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be approved through MCP")
        );
    }

    #[test]
    fn a_guardrail_denial_is_explained_from_its_entry() {
        let answer = json!({
        "action": {"action_id": "act_1", "status": "DENIED", "action_type": "SCALE", "namespace": "kube-system",
                   "resource_kind": "Deployment", "resource_name": "coredns"},
        "entries": [
            {"id": "evt_1", "kind": "action.requested", "payload": {}},
            {"id": "evt_2", "kind": "guardrail.denied", "event_hash": "sha256:a", "chain_hash": "sha256:b",
             "payload": {"rule": "namespace_blocked", "message": "kube-system is blocked"}},
        ]});
        let explained = explanation(&answer);
        assert_eq!(explained["denied"], true);
        assert_eq!(explained["denied_by"], "guardrail");
        assert_eq!(explained["reasons"][0], "namespace_blocked: kube-system is blocked");
        assert_eq!(explained["ledger_entries"][0]["id"], "evt_2");
        let status = action_status(&answer);
        assert_eq!(status["decision"]["by"], "guardrail");
        assert_eq!(status["ledger_entry_id"], "evt_2");
        assert_eq!(status["final"], true);
    }

    #[test]
    fn a_freeze_refusal_is_explained_from_its_entry() {
        let answer = json!({
        "action": {"action_id": "act_1", "status": "DENIED", "action_type": "DELETE", "namespace": "shop",
                   "resource_kind": "ConfigMap", "resource_name": "c1"},
        "entries": [
            {"id": "evt_1", "kind": "action.requested", "payload": {}},
            {"id": "evt_2", "kind": "freeze.refused", "event_hash": "sha256:a", "chain_hash": "sha256:b",
             "payload": {"freeze_id": "frz_1", "scope": {"kind": "namespace", "namespace": "shop"},
                         "reason": "incident 42", "frozen_by": "usr_1", "stage": "submit"}},
        ]});
        let explained = explanation(&answer);
        assert_eq!(
            (explained["denied"].clone(), explained["denied_by"].clone()),
            (json!(true), json!("freeze"))
        );
        assert_eq!(explained["reasons"][0], "frozen by usr_1 (frz_1): incident 42");
        assert_eq!(explained["freeze"]["scope"]["namespace"], "shop");
        assert!(explained["advice"].as_str().unwrap().contains("lifts the freeze"));
        assert_eq!(action_status(&answer)["decision"]["by"], "freeze");
    }
}
