//! Elastic Common Schema: each entry as an ECS document of ECS [`ECS_VERSION`], the Kubernetes object in
//! `orchestrator.*` and the ledger's own fields in `docketops.*`. The table of fields is in `docs/siem.md`.

use domain::EntryKind;
use serde_json::{Value, json};

use super::facts::{Activity, Facts, Status};
use super::{LOG_NAME, PRODUCT, ledger_fields, summary};

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// `event.category`: identities and keys are `iam`, everything else `configuration`.
fn category(kind: Option<EntryKind>) -> &'static str {
    match kind {
        Some(
            EntryKind::IdentityCreated
            | EntryKind::IdentityUpdated
            | EntryKind::IdentitySuspended
            | EntryKind::IdentityReactivated
            | EntryKind::IdentityRevoked
            | EntryKind::KeyIssued
            | EntryKind::KeyRotated
            | EntryKind::KeyRevoked,
        ) => "iam",
        _ => "configuration",
    }
}

/// `event.type`: the activity, then `allowed`, `denied` or `error` where the step decided or failed.
fn types(facts: &Facts<'_>) -> Vec<&'static str> {
    let mut types = vec![match facts.activity {
        Activity::Create => "creation",
        Activity::Read => "access",
        Activity::Update => "change",
        Activity::Delete => "deletion",
        Activity::Other | Activity::Unknown => "info",
    }];
    if facts.allowed {
        types.push("allowed");
    }
    match (facts.status, facts.kind) {
        (Status::Failure, Some(EntryKind::ActionFailed | EntryKind::ActionExecuted | EntryKind::OutcomeVerified)) => {
            types.push("error")
        }
        (Status::Failure, _) => types.push("denied"),
        _ => {}
    }
    types
}

fn outcome(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Failure => "failure",
        Status::Pending | Status::Unknown => "unknown",
    }
}

/// The document for one entry.
pub(crate) fn event(facts: &Facts<'_>) -> Value {
    let entry = facts.entry;
    let alert = facts.kind == Some(EntryKind::AuditBypassDetected);
    let mut event = json!({
        "kind": if alert { "alert" } else { "event" },
        "category": [category(facts.kind)],
        "type": types(facts),
        "outcome": outcome(facts.status),
        "action": entry.kind,
        "id": entry.id,
        "dataset": LOG_NAME,
        "module": "docketops",
        "provider": "docketops",
        "severity": facts.severity as u32,
    });
    if let Ok(seq) = i64::try_from(entry.seq) {
        event["sequence"] = json!(seq);
    }
    if let Some(detail) = &facts.detail {
        event["reason"] = json!(detail);
    }
    let mut user = json!({"id": entry.actor});
    if let Some(name) = &facts.user_name {
        user["name"] = json!(name);
    }
    let mut document = json!({
        "@timestamp": entry.timestamp,
        "ecs": {"version": ECS_VERSION},
        "message": summary(facts),
        "event": event,
        "user": user,
        "observer": {"product": PRODUCT, "vendor": PRODUCT, "version": env!("CARGO_PKG_VERSION")},
        "docketops": ledger_fields(facts),
    });
    if let Some(orchestrator) = orchestrator(facts) {
        document["orchestrator"] = orchestrator;
    }
    if let Some(code) = facts.response_code {
        document["http"] = json!({"response": {"status_code": code}});
    }
    document
}

/// The Kubernetes object the action is about (a list names no object), and its cluster.
fn orchestrator(facts: &Facts<'_>) -> Option<Value> {
    let target = facts.target;
    if target.is_none() && facts.cluster.is_none() {
        return None;
    }
    let mut orchestrator = json!({"type": "kubernetes"});
    if let Some(cluster) = &facts.cluster {
        orchestrator["cluster"] = json!({"name": cluster});
    }
    if let Some(target) = target {
        if let Some(namespace) = &target.namespace {
            orchestrator["namespace"] = json!(namespace);
        }
        let mut resource = serde_json::Map::new();
        if let Some(kind) = &target.resource_kind {
            resource.insert("type".into(), json!(kind));
        }
        if let Some(name) = &target.resource_name {
            resource.insert("name".into(), json!(name));
        }
        if !resource.is_empty() {
            orchestrator["resource"] = Value::Object(resource);
        }
    }
    if let Some(api_version) = facts.api_version() {
        orchestrator["api_version"] = json!(api_version);
    }
    Some(orchestrator)
}
