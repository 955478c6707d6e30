//! OCSF: each entry as an API Activity event (class 6003, category 6, Application Activity) of OCSF
//! [`OCSF_VERSION`]. The table of fields is in `docs/siem.md`.

use serde_json::{Value, json};

use super::facts::{Activity, ActorType, Facts, Severity, Status};
use super::{PRODUCT, ledger_fields, summary};

/// The OCSF schema version the events follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.3.0";
/// API Activity.
pub const OCSF_CLASS_UID: u32 = 6003;
const CATEGORY_UID: u32 = 6;

/// `activity_id` and its caption.
fn activity(activity: Activity) -> (u32, &'static str) {
    match activity {
        Activity::Unknown => (0, "Unknown"),
        Activity::Create => (1, "Create"),
        Activity::Read => (2, "Read"),
        Activity::Update => (3, "Update"),
        Activity::Delete => (4, "Delete"),
        Activity::Other => (99, "Other"),
    }
}

/// `status_id` and its caption (a pending step is Other, "Pending").
fn status(status: Status) -> (u32, &'static str) {
    match status {
        Status::Unknown => (0, "Unknown"),
        Status::Success => (1, "Success"),
        Status::Failure => (2, "Failure"),
        Status::Pending => (99, "Pending"),
    }
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Informational => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
    }
}

/// `actor.user.type_id` and its caption (an agent is Other, "Agent").
fn user_type(actor: ActorType) -> (u32, &'static str) {
    match actor {
        ActorType::Unknown => (0, "Unknown"),
        ActorType::User => (1, "User"),
        ActorType::Admin => (2, "Admin"),
        ActorType::System => (3, "System"),
        ActorType::Agent => (99, "Agent"),
    }
}

/// The event for one entry.
pub(crate) fn event(facts: &Facts<'_>) -> Value {
    let entry = facts.entry;
    let (activity_id, activity_name) = activity(facts.activity);
    let (status_id, status_name) = status(facts.status);
    let (user_type_id, user_type_name) = user_type(facts.actor_type);
    let mut user = json!({"uid": entry.actor, "type_id": user_type_id, "type": user_type_name});
    if let Some(name) = &facts.user_name {
        user["name"] = json!(name);
    }
    let mut event = json!({
        "class_uid": OCSF_CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": OCSF_CLASS_UID * 100 + activity_id,
        "type_name": format!("API Activity: {activity_name}"),
        "time": facts.time_ms.unwrap_or(0),
        "severity_id": facts.severity as u32,
        "severity": severity(facts.severity),
        "status_id": status_id,
        "status": status_name,
        "message": summary(facts),
        "metadata": metadata(facts),
        "actor": {"user": user},
        "api": api(facts),
        // Entries hold no network address: the caller is named by its identity.
        "src_endpoint": {"name": entry.actor},
        "observables": [
            {"name": "unmapped.docketops.chain_hash", "type_id": 8, "type": "Hash", "value": entry.chain_hash},
            {"name": "unmapped.docketops.event_hash", "type_id": 8, "type": "Hash", "value": entry.event_hash},
        ],
        "unmapped": {"docketops": ledger_fields(facts)},
    });
    if let Some(detail) = &facts.detail {
        event["status_detail"] = json!(detail);
    }
    if let Some(code) = facts.response_code {
        event["status_code"] = json!(code.to_string());
    }
    if let Some(resource) = resource(facts) {
        event["resources"] = json!([resource]);
    }
    event
}

fn metadata(facts: &Facts<'_>) -> Value {
    let entry = facts.entry;
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": env!("CARGO_PKG_VERSION")},
        "uid": entry.id,
        "log_name": super::LOG_NAME,
        "log_provider": "docketops",
        "event_code": entry.kind,
        "original_time": entry.timestamp,
    });
    if let Ok(seq) = i64::try_from(entry.seq) {
        metadata["sequence"] = json!(seq);
    }
    if let Some(action_id) = &entry.action_id {
        metadata["correlation_uid"] = json!(action_id);
    }
    metadata
}

/// The API call: the action's type (else the entry's kind) on the DocketOps gateway; the request's uid
/// is the action id (the entry id for entries of no action).
fn api(facts: &Facts<'_>) -> Value {
    let entry = facts.entry;
    let request_uid = entry.action_id.as_deref().unwrap_or(&entry.id);
    let mut api = json!({
        "operation": facts.operation(),
        "service": {"name": "docketops"},
        "request": {"uid": request_uid},
    });
    let mut response = serde_json::Map::new();
    if let Some(code) = facts.response_code {
        response.insert("code".into(), json!(code));
    }
    if let (Status::Failure, Some(detail)) = (facts.status, &facts.detail) {
        response.insert("error_message".into(), json!(detail));
    }
    if !response.is_empty() {
        api["response"] = Value::Object(response);
    }
    api
}

/// The Kubernetes object the action is about; a list (no name) is named `*`.
fn resource(facts: &Facts<'_>) -> Option<Value> {
    let target = facts.target?;
    let kind = target.resource_kind.as_ref()?;
    let mut resource = json!({"type": kind, "name": target.resource_name.as_deref().unwrap_or("*")});
    if let Some(namespace) = &target.namespace {
        resource["namespace"] = json!(namespace);
    }
    let mut data = serde_json::Map::new();
    if let Some(cluster) = &facts.cluster {
        data.insert("cluster".into(), json!(cluster));
    }
    if let Some(api_version) = facts.api_version() {
        data.insert("api_version".into(), json!(api_version));
    }
    if !data.is_empty() {
        resource["data"] = Value::Object(data);
    }
    Some(resource)
}
