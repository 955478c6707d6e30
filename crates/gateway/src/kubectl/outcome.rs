//! Between a planned action and the pipeline: the action request it sends, and whether its outcome is what
//! kubectl counts as success. Anything but a completed (or, for a dry run, previewed) action is refused with
//! a message that names the action, so kubectl's error leads to the ledger.

use domain::ActionStatus;
use serde_json::{Value, json};

use super::{PlannedAction, Refusal, ResourcePath};
use crate::ActionResponse;

/// The action request (SPEC §3) for `action` on `target`'s kind and namespace. Without the caller's own
/// `justification` the request says which kubectl command it came from.
pub fn action_request(
    target: &ResourcePath,
    action: &PlannedAction,
    verb: &str,
    justification: Option<&str>,
    dry_run: bool,
) -> Value {
    let justification = justification.map_or_else(|| format!("kubectl {verb} via the DocketOps proxy"), str::to_owned);
    let mut body = json!({"action_type": action.action_type.as_str(), "resource_kind": target.kind.as_str(),
        "parameters": action.parameters, "justification": justification});
    if let Some(ns) = &target.namespace {
        body["namespace"] = json!(ns);
    }
    if let Some(name) = &action.name {
        body["resource_name"] = json!(name);
    }
    // Reads (a client-side apply's GET, the read-back) stay reads: only mutations are previewed.
    if dry_run && action.action_type.is_mutation() {
        body["dry_run"] = json!(true);
    }
    body
}

/// Success for kubectl (the action completed, or a dry run was previewed), or the refusal to answer with:
/// a denial or a pending approval is 403, a failure keeps the API server's status where it had one.
pub fn judge_outcome(target: &ResourcePath, action: &PlannedAction, response: &ActionResponse) -> Result<(), Refusal> {
    let action_type = action.action_type;
    let what = target.describe(action.name.as_deref());
    let id = &response.action_id;
    match response.status {
        ActionStatus::Completed | ActionStatus::Previewed => Ok(()),
        ActionStatus::Denied => {
            let reasons = response
                .decision
                .as_ref()
                .map(|d| d.reasons.join("; "))
                .unwrap_or_default();
            Err(Refusal::forbidden(format!(
                "DocketOps denied {action_type} {what}: {reasons} (action {id})"
            )))
        }
        ActionStatus::PendingApproval => Err(Refusal::forbidden(format!(
            "DocketOps: action {id} ({action_type} {what}) needs an approval; it runs once approved (wait: GET /api/v1/actions/{id}?wait=60)"
        ))),
        other => {
            let error = response.error.clone().unwrap_or(Value::Null);
            let code = error.get("code").and_then(Value::as_str).unwrap_or("failed");
            let status = error
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (400..600).contains(s))
                .unwrap_or(match code {
                    "guardrail_denied" => 403,
                    "target_mismatch" => 422,
                    "timeout" => 504,
                    "unreachable" => 503,
                    _ => 500,
                });
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| code.to_owned(), str::to_owned);
            Err(Refusal::new(
                status,
                format!("DocketOps: {action_type} {what} {other} ({code}): {message} (action {id})"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{ActionType, ResourceKind};
    use serde_json::Map;

    use super::*;
    use crate::DecisionView;

    fn target() -> ResourcePath {
        ResourcePath::parse("/apis/apps/v1/namespaces/web/deployments/api").unwrap()
    }

    fn scale() -> PlannedAction {
        PlannedAction {
            action_type: ActionType::Scale,
            name: Some("api".into()),
            parameters: Map::from_iter([("replicas".into(), json!(3))]),
        }
    }

    fn response(status: ActionStatus, error: Option<Value>) -> ActionResponse {
        ActionResponse {
            action_id: "act_1".into(),
            status,
            risk: None,
            decision: Some(DecisionView {
                outcome: "deny".into(),
                mode: "enforce".into(),
                policy: "default".into(),
                reasons: vec!["too many replicas".into(), "weekend".into()],
            }),
            ledger_entry_id: "ent_1".into(),
            event_hash: String::new(),
            chain_hash: String::new(),
            signature_verified: true,
            entries: Vec::new(),
            receipt_url: String::new(),
            result: None,
            error,
        }
    }

    #[test]
    fn the_request_names_the_paths_object_and_the_kubectl_command() {
        let body = action_request(&target(), &scale(), "scale", None, false);
        assert_eq!(
            body,
            json!({"action_type": "SCALE", "resource_kind": "Deployment", "namespace": "web",
                "resource_name": "api", "parameters": {"replicas": 3},
                "justification": "kubectl scale via the DocketOps proxy"})
        );
        let own = action_request(&target(), &scale(), "scale", Some("load test"), true);
        assert_eq!(
            (&own["justification"], &own["dry_run"]),
            (&json!("load test"), &json!(true))
        );
        // A read stays a read in a dry run; a cluster-wide list names neither namespace nor object.
        let nodes = ResourcePath::parse("/api/v1/nodes").unwrap();
        assert_eq!(nodes.kind, ResourceKind::Node);
        let list = PlannedAction {
            action_type: ActionType::List,
            name: None,
            parameters: Map::new(),
        };
        let body = action_request(&nodes, &list, "list", None, true);
        assert_eq!(
            body,
            json!({"action_type": "LIST", "resource_kind": "Node", "parameters": {},
                "justification": "kubectl list via the DocketOps proxy"})
        );
    }

    #[test]
    fn completed_and_previewed_actions_succeed() {
        for status in [ActionStatus::Completed, ActionStatus::Previewed] {
            assert_eq!(judge_outcome(&target(), &scale(), &response(status, None)), Ok(()));
        }
    }

    #[test]
    fn denials_and_pending_approvals_are_forbidden() {
        let denied = judge_outcome(&target(), &scale(), &response(ActionStatus::Denied, None)).unwrap_err();
        assert_eq!((denied.code, denied.reason), (403, "Forbidden"));
        assert_eq!(
            denied.message,
            "DocketOps denied SCALE Deployment web/api: too many replicas; weekend (action act_1)"
        );
        let pending = judge_outcome(&target(), &scale(), &response(ActionStatus::PendingApproval, None)).unwrap_err();
        assert_eq!(pending.code, 403);
        assert!(pending.message.contains("needs an approval"), "{pending:?}");
        assert!(
            pending.message.contains("GET /api/v1/actions/act_1?wait=60"),
            "{pending:?}"
        );
    }

    #[test]
    fn a_failure_keeps_the_api_servers_status_or_maps_its_code() {
        let failed = |error: Value| {
            judge_outcome(&target(), &scale(), &response(ActionStatus::Failed, Some(error))).unwrap_err()
        };
        let conflict = failed(json!({"code": "conflict", "status": 409, "message": "the object changed"}));
        assert_eq!((conflict.code, conflict.reason), (409, "Conflict"));
        assert_eq!(
            conflict.message,
            "DocketOps: SCALE Deployment web/api FAILED (conflict): the object changed (action act_1)"
        );
        // Not an error status: the code decides.
        assert_eq!(failed(json!({"code": "timeout", "status": 200})).code, 504);
        assert_eq!(failed(json!({"code": "guardrail_denied"})).code, 403);
        assert_eq!(failed(json!({"code": "target_mismatch"})).reason, "Invalid");
        assert_eq!(failed(json!({"code": "unreachable"})).code, 503);
        let unknown = failed(json!({}));
        assert_eq!((unknown.code, unknown.reason), (500, "InternalError"));
        assert!(unknown.message.contains("FAILED (failed): failed"), "{unknown:?}");
        let expired = judge_outcome(&target(), &scale(), &response(ActionStatus::Expired, None)).unwrap_err();
        assert_eq!(expired.code, 500);
    }
}
