//! Reconciliation with the API server's own audit log: every gateway execution must appear there, and every
//! change in a governed namespace made by anyone but the gateway's executors is a bypass, recorded in the
//! ledger as `audit.bypass_detected`.
//!
//! The gateway's calls are recognizable: the gateway's service account impersonating an executor account,
//! with the `docketops-action` extra and `Audit-ID` = the id of the action's `action.requested` entry.

use domain::EntryKind;
use domain::payload::Payload;
use std::collections::{BTreeMap, HashMap};

use executor::{Accounts, Guardrails};
use ledger_core::NewEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::{Ledger, Store};

use crate::{ApprovalWebhook, Breakers, GatewayError};

/// One `audit.k8s.io/v1` Event (the fields reconciliation reads; the rest is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// The request's `Audit-ID`: the gateway sends the id of the action's `action.requested` entry; other
    /// clients may choose any.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`; only the last two are judged.
    #[serde(default)]
    pub stage: String,
    /// The Kubernetes verb (`get`, `patch`, `delete`, …).
    #[serde(default)]
    pub verb: String,
    /// The request's path and query (a dry run shows here as `dryRun=`).
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    /// Who sent the request.
    pub user: UserInfo,
    /// Whom the request acted as, when it impersonated someone.
    #[serde(default)]
    pub impersonated_user: Option<UserInfo>,
    /// The object the request was about.
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    /// The API server's answer.
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    /// When the event's stage was reached, as the API server wrote it (RFC 3339).
    #[serde(default)]
    pub stage_timestamp: Option<String>,
    /// The client addresses the API server saw.
    #[serde(rename = "sourceIPs", default)]
    pub source_ips: Vec<String>,
    /// The client's `User-Agent`.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// A Kubernetes user in an audit event: the one who sent a request or the one it impersonated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserInfo {
    /// The user name (`system:serviceaccount:<namespace>:<name>` for a service account).
    #[serde(default)]
    pub username: String,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Extra attributes; the gateway's calls carry the action id under `docketops-action`.
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The object an audit event's request was about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The resource, plural and lowercase (`deployments`).
    #[serde(default)]
    pub resource: Option<String>,
    /// The object's namespace; none for cluster-scoped objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The object's name; none for lists and collection deletes.
    #[serde(default)]
    pub name: Option<String>,
    /// The resource's API group; empty or none for the core group.
    #[serde(default)]
    pub api_group: Option<String>,
    /// The subresource (`scale`, `status`), if the request went to one.
    #[serde(default)]
    pub subresource: Option<String>,
}

/// The status of the API server's answer to an audited request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResponseStatus {
    /// The HTTP status code; below 400 means the request took effect.
    #[serde(default)]
    pub code: Option<u16>,
}

/// What an audit event is to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A call of the gateway's executor for this action.
    Gateway {
        /// The action the call was for (the impersonation's `docketops-action` extra).
        action_id: String,
    },
    /// A change in a governed namespace that did not go through the gateway.
    Bypass,
    /// Anything else: reads, other namespaces, failed or dry-run requests, control-plane components.
    Ignored,
}

const MUTATING_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Users whose changes are the cluster running itself, not people or agents going around the gateway.
pub const DEFAULT_IGNORED_USERS: [&str; 6] = [
    "system:apiserver",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:node:*",
    "system:serviceaccount:kube-system:*",
    "system:serviceaccount:kube-node-lease:*",
];

/// How one cluster's audit events are judged.
#[derive(Debug, Clone)]
pub struct AuditPolicy {
    /// The cluster's name, as executions record it.
    pub cluster: String,
    /// The gateway's and the executors' account names: calls by them are the gateway's own.
    pub accounts: Accounts,
    /// A namespace the guardrails let the gateway govern is a governed namespace.
    pub guardrails: Guardrails,
    /// User name patterns (`*` as a wildcard) whose changes are never bypasses; the sender and the
    /// impersonated user must both match.
    pub ignored_users: Vec<String>,
    /// `[breakers]` and the webhook to tell, when recorded bypasses count against agents ([`Self::with_breakers`]).
    breakers: Option<(Breakers, Option<ApprovalWebhook>)>,
}

impl AuditPolicy {
    /// A policy for `cluster` that ignores [`DEFAULT_IGNORED_USERS`].
    pub fn new(cluster: &str, accounts: Accounts, guardrails: Guardrails) -> AuditPolicy {
        AuditPolicy {
            cluster: cluster.to_owned(),
            accounts,
            guardrails,
            ignored_users: DEFAULT_IGNORED_USERS.map(String::from).to_vec(),
            breakers: None,
        }
    }

    /// Holds each bypass [`record_bypasses`] records against the agent its sender is mapped to
    /// (`[breakers.service_accounts]`), suspending the agent at the `[breakers] bypasses` count and telling
    /// `webhook`. Without a `bypasses` breaker nothing changes.
    pub fn with_breakers(mut self, breakers: &Breakers, webhook: Option<ApprovalWebhook>) -> Self {
        self.breakers = breakers.bypasses.is_some().then(|| (breakers.clone(), webhook));
        self
    }

    fn is_executor(&self, username: &str) -> bool {
        let release = &self.accounts.release;
        username == self.accounts.cluster_reader().username()
            || username.strip_prefix("system:serviceaccount:").is_some_and(|rest| {
                rest.split_once(':').is_some_and(|(_, name)| {
                    name == format!("{release}-reader") || name == format!("{release}-operator")
                })
            })
    }

    /// What `event` is to the gateway. Only final-stage events count: a request is judged once.
    pub fn classify(&self, event: &AuditEvent) -> Verdict {
        // One event per request: the final stage (or Panic) carries the outcome.
        if event.stage != "ResponseComplete" && event.stage != "Panic" {
            return Verdict::Ignored;
        }
        if event.user.username == self.accounts.gateway().username()
            && let Some(impersonated) = &event.impersonated_user
            && self.is_executor(&impersonated.username)
            && let Some(action_id) = impersonated
                .extra
                .get(executor::rbac::EXTRA_ACTION)
                .and_then(|v| v.first())
        {
            return Verdict::Gateway {
                action_id: action_id.clone(),
            };
        }
        let changed = MUTATING_VERBS.contains(&event.verb.as_str())
            && event
                .response_status
                .as_ref()
                .and_then(|s| s.code)
                .is_some_and(|c| c < 400)
            && !event.request_uri.contains("dryRun=");
        let governed = event
            .object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref())
            .is_some_and(|ns| self.guardrails.check_namespace(ns).is_ok());
        let acting = event
            .impersonated_user
            .as_ref()
            .map_or(&event.user.username, |u| &u.username);
        // Both who sent the request and whom it impersonated must be the cluster itself: an admin acting
        // `--as` a control-plane account is still an admin.
        let is_ignored = |user: &str| {
            self.ignored_users
                .iter()
                .any(|pattern| executor::guardrails::matches_pattern(pattern, user))
        };
        let ignored = is_ignored(&event.user.username) && is_ignored(acting);
        if changed && governed && !ignored {
            Verdict::Bypass
        } else {
            Verdict::Ignored
        }
    }
}

/// Events from an audit log file (JSON lines); returns them and how many lines could not be read.
pub fn parse_log(text: &str) -> (Vec<AuditEvent>, usize) {
    let mut events = Vec::new();
    let mut unreadable = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<AuditEvent>(line) {
            Ok(event) => events.push(event),
            Err(_) => unreadable += 1,
        }
    }
    (events, unreadable)
}

/// Events from a webhook body (`{"kind": "EventList", "items": [...]}`).
pub fn parse_event_list(body: &Value) -> Result<Vec<AuditEvent>, String> {
    if body["kind"] != "EventList" {
        return Err("expected an audit.k8s.io EventList".into());
    }
    let items = body["items"].as_array().ok_or("an EventList needs items")?;
    items
        .iter()
        .map(|item| serde_json::from_value(item.clone()).map_err(|e| format!("an audit event cannot be read: {e}")))
        .collect()
}

/// The ledger's side: each executed action with the `Audit-ID` its calls carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Execution {
    /// The executed action.
    pub action_id: String,
    /// The id of the action's `action.requested` entry, which its calls sent as `Audit-ID`; empty if the
    /// ledger has no such entry.
    pub audit_id: String,
    /// The cluster the action ran on.
    pub cluster: String,
    /// The timestamp of the `action.executed` entry.
    pub executed_at: String,
}

/// The executed actions of the ledger (its `action.executed` entries), with their audit ids.
pub async fn executions(store: &Store, default_cluster: &str) -> Result<Vec<Execution>, GatewayError> {
    let mut requested: HashMap<String, String> = HashMap::new();
    let mut found = Vec::new();
    let mut after = 0i64;
    loop {
        let page = store.entries_after(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq as i64;
        for entry in &page {
            let Some(action_id) = &entry.action_id else { continue };
            match EntryKind::parse(&entry.kind) {
                Some(EntryKind::ActionRequested) => {
                    requested.insert(action_id.clone(), entry.id.clone());
                }
                Some(EntryKind::ActionExecuted) => {
                    let payload: Value = serde_json::from_str(&entry.payload).unwrap_or(Value::Null);
                    found.push(Execution {
                        action_id: action_id.clone(),
                        audit_id: requested.get(action_id).cloned().unwrap_or_default(),
                        cluster: payload["cluster"].as_str().unwrap_or(default_cluster).to_owned(),
                        executed_at: entry.timestamp.clone(),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(found)
}

/// Both directions for one cluster's audit events.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    /// The cluster the events came from.
    pub cluster: String,
    /// How many audit events were read.
    pub events_read: usize,
    /// Executions in the events' time range, and which of them the API server recorded.
    pub executions_checked: usize,
    /// How many of the checked executions have a gateway call with their audit id among the events.
    pub executions_matched: usize,
    /// Checked executions the API server has no record of.
    pub unmatched_executions: Vec<Execution>,
    /// Executions older than the first event (the log was rotated): not judged.
    pub executions_before_log: usize,
    /// Events that changed a governed namespace without going through the gateway.
    pub bypasses: Vec<AuditEvent>,
}

impl Reconciliation {
    /// Whether every checked execution was matched and nothing bypassed the gateway.
    pub fn clean(&self) -> bool {
        self.unmatched_executions.is_empty() && self.bypasses.is_empty()
    }
}

/// Checks both directions for `policy`'s cluster: each execution on it since the first event must appear among
/// `events` as a gateway call, and every bypass among `events` is listed. Records nothing.
pub fn reconcile(policy: &AuditPolicy, events: &[AuditEvent], executions: &[Execution]) -> Reconciliation {
    let seen_ids: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| matches!(policy.classify(e), Verdict::Gateway { .. }))
        .map(|e| e.audit_id.as_str())
        .collect();
    let first_event = events.iter().filter_map(|e| e.stage_timestamp.as_deref()).min();
    let mut report = Reconciliation {
        cluster: policy.cluster.clone(),
        events_read: events.len(),
        executions_checked: 0,
        executions_matched: 0,
        unmatched_executions: Vec::new(),
        executions_before_log: 0,
        bypasses: events
            .iter()
            .filter(|e| policy.classify(e) == Verdict::Bypass)
            .cloned()
            .collect(),
    };
    for execution in executions.iter().filter(|e| e.cluster == policy.cluster) {
        if first_event.is_none_or(|first| execution.executed_at.as_str() < first) {
            report.executions_before_log += 1;
            continue;
        }
        report.executions_checked += 1;
        if seen_ids.contains(execution.audit_id.as_str()) {
            report.executions_matched += 1;
        } else {
            report.unmatched_executions.push(execution.clone());
        }
    }
    report
}

/// What identifies one audit event for recording it once: a hash of its content, not its audit id alone (a
/// client chooses its request's `Audit-ID`, so reusing one must not hide a second change).
fn event_key(event: &AuditEvent) -> String {
    use sha2::Digest as _;
    let content = serde_json::to_vec(event).expect("audit events serialize");
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&content)))
}

/// What recording a batch of events did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// How many events the batch held.
    pub events: usize,
    /// Bypasses this call recorded in the ledger.
    pub bypasses_recorded: usize,
    /// Bypasses recorded before (or being recorded by another caller), so skipped.
    pub bypasses_already_recorded: usize,
}

/// `audit.bypass_detected`: a change that reached the cluster without passing through the gateway, as
/// the API server's audit log tells it.
#[derive(Debug, Clone, Serialize)]
pub struct BypassDetected<'a> {
    /// The cluster whose audit log told it.
    pub cluster: &'a str,
    /// The API server's audit id.
    pub audit_id: &'a str,
    /// The Kubernetes verb.
    pub verb: &'a str,
    /// Who sent it.
    pub user: &'a str,
    /// Their groups.
    pub groups: &'a [String],
    /// Whom they impersonated, if anyone.
    pub impersonated_user: Option<&'a str>,
    /// The object's namespace.
    pub namespace: Option<&'a str>,
    /// The object's resource (plural).
    pub resource: Option<&'a str>,
    /// The subresource (`scale`, `status`…).
    pub subresource: Option<&'a str>,
    /// The object's name.
    pub name: Option<&'a str>,
    /// The request's URI.
    pub request_uri: &'a str,
    /// The API server's answer.
    pub response_code: Option<u16>,
    /// When the API server saw it.
    pub at: Option<&'a str>,
    /// The client addresses.
    pub source_ips: &'a [String],
    /// The client's `User-Agent`.
    pub user_agent: Option<&'a str>,
}

impl<'a> BypassDetected<'a> {
    /// The entry for `event`, seen in `cluster`'s audit log.
    pub fn of(cluster: &'a str, event: &'a AuditEvent) -> Self {
        let object = event.object_ref.as_ref();
        BypassDetected {
            cluster,
            audit_id: &event.audit_id,
            verb: &event.verb,
            user: &event.user.username,
            groups: &event.user.groups,
            impersonated_user: event.impersonated_user.as_ref().map(|u| u.username.as_str()),
            namespace: object.and_then(|o| o.namespace.as_deref()),
            resource: object.and_then(|o| o.resource.as_deref()),
            subresource: object.and_then(|o| o.subresource.as_deref()),
            name: object.and_then(|o| o.name.as_deref()),
            request_uri: &event.request_uri,
            response_code: event.response_status.as_ref().and_then(|s| s.code),
            at: event.stage_timestamp.as_deref(),
            source_ips: &event.source_ips,
            user_agent: event.user_agent.as_deref(),
        }
    }
}

impl Payload for BypassDetected<'_> {
    fn kind(&self) -> EntryKind {
        EntryKind::AuditBypassDetected
    }
}

/// Records each bypass among `events` once (`audit.bypass_detected`, keyed by cluster and audit id, so a
/// replayed batch or a re-read log records nothing twice). With [`AuditPolicy::with_breakers`], each bypass
/// recorded counts against the agent its sender is mapped to (the `bypasses` circuit breaker).
pub async fn record_bypasses(
    store: &Store,
    ledger: &Ledger,
    policy: &AuditPolicy,
    events: &[AuditEvent],
) -> Result<IngestReport, GatewayError> {
    let mut report = IngestReport {
        events: events.len(),
        ..IngestReport::default()
    };
    for event in events.iter().filter(|e| policy.classify(e) == Verdict::Bypass) {
        let key = event_key(event);
        // A claim left by a recorder that crashed before its entry may be taken over after a minute.
        let stale_before = crate::now_minus(std::time::Duration::from_secs(60));
        if !store
            .claim_audit_event(&policy.cluster, &key, &crate::now(), &stale_before)
            .await?
        {
            report.bypasses_already_recorded += 1;
            continue;
        }
        let bypass = BypassDetected::of(&policy.cluster, event);
        let entry = match ledger.append(NewEvent::of("audit", &bypass)).await {
            Ok(entry) => entry,
            Err(error) => {
                // Not recorded: let the next delivery or run try again.
                store.release_audit_event(&policy.cluster, &key).await.ok();
                return Err(error.into());
            }
        };
        store
            .mark_audit_event_recorded(&policy.cluster, &key, &entry.id)
            .await?;
        report.bypasses_recorded += 1;
        tracing::warn!(cluster = %policy.cluster, user = %event.user.username, verb = %event.verb,
            audit_id = %event.audit_id, "change that bypassed the gateway recorded");
        // Recorded either way: a breaker that cannot be checked now is logged, not a reason to record it again.
        if let Some((breakers, webhook)) = &policy.breakers
            && let Err(error) = breakers
                .bypass_recorded(store, ledger, webhook.as_ref(), &bypass, &entry)
                .await
        {
            tracing::warn!(%error, audit_id = %event.audit_id, "the bypasses circuit breaker could not be checked");
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(user: &str, verb: &str, namespace: &str, code: u16) -> AuditEvent {
        serde_json::from_value(json!({
            "auditID": format!("{user}-{verb}-{namespace}"), "stage": "ResponseComplete", "verb": verb,
            "requestURI": format!("/apis/apps/v1/namespaces/{namespace}/deployments/web"),
            "user": {"username": user}, "objectRef": {"resource": "deployments", "namespace": namespace, "name": "web"},
            "responseStatus": {"code": code}, "stageTimestamp": "2026-11-27T10:00:00.000000Z"
        }))
        .unwrap()
    }

    fn policy() -> AuditPolicy {
        AuditPolicy::new(
            "default",
            Accounts {
                release: "dkt".into(),
                gateway_namespace: "gw".into(),
            },
            Guardrails {
                gateway_namespace: "gw".into(),
                ..Guardrails::default()
            },
        )
    }

    #[test]
    fn changes_around_the_gateway_are_bypasses() {
        let policy = policy();
        assert_eq!(policy.classify(&event("admin", "patch", "web", 200)), Verdict::Bypass);
        assert_eq!(policy.classify(&event("admin", "delete", "web", 200)), Verdict::Bypass);
        // Not changes, not governed, or the cluster itself.
        assert_eq!(policy.classify(&event("admin", "get", "web", 200)), Verdict::Ignored);
        assert_eq!(policy.classify(&event("admin", "patch", "web", 403)), Verdict::Ignored);
        assert_eq!(
            policy.classify(&event("admin", "patch", "kube-system", 200)),
            Verdict::Ignored
        );
        assert_eq!(policy.classify(&event("admin", "patch", "gw", 200)), Verdict::Ignored);
        assert_eq!(
            policy.classify(&event("system:kube-controller-manager", "update", "web", 200)),
            Verdict::Ignored
        );
        let mut dry = event("admin", "patch", "web", 200);
        dry.request_uri.push_str("?dryRun=All");
        assert_eq!(policy.classify(&dry), Verdict::Ignored);
    }

    #[test]
    fn the_gateways_impersonated_calls_are_its_own() {
        let policy = policy();
        let mut call = event("system:serviceaccount:gw:dkt-gateway", "patch", "web", 200);
        call.impersonated_user = Some(UserInfo {
            username: "system:serviceaccount:web:dkt-operator".into(),
            groups: vec![],
            extra: BTreeMap::from([("docketops-action".to_owned(), vec!["act_1".to_owned()])]),
        });
        assert_eq!(
            policy.classify(&call),
            Verdict::Gateway {
                action_id: "act_1".into()
            }
        );
        // An admin acting as a control-plane account is still an admin.
        let mut disguised = event("admin", "patch", "web", 200);
        disguised.impersonated_user = Some(UserInfo {
            username: "system:serviceaccount:kube-system:x".into(),
            groups: vec![],
            extra: BTreeMap::new(),
        });
        assert_eq!(policy.classify(&disguised), Verdict::Bypass);
        // The gateway's account impersonating someone else is not the executor: a change is a bypass.
        call.impersonated_user.as_mut().unwrap().username = "system:serviceaccount:web:someone".into();
        assert_eq!(policy.classify(&call), Verdict::Bypass);
    }

    /// The gateway's connection was cut mid-call: the API server logs the change with a 5xx (it could not
    /// answer). Recovery records the action's `action.executed`, and reconciliation matches the two by Audit-ID.
    #[test]
    fn a_5xx_gateway_call_matches_its_recovered_execution() {
        let policy = policy();
        let mut call = event("system:serviceaccount:gw:dkt-gateway", "patch", "web", 500);
        call.audit_id = "evt_requested".into();
        call.impersonated_user = Some(UserInfo {
            username: "system:serviceaccount:web:dkt-operator".into(),
            groups: vec![],
            extra: BTreeMap::from([("docketops-action".to_owned(), vec!["act_1".to_owned()])]),
        });
        let recovered = Execution {
            action_id: "act_1".into(),
            audit_id: "evt_requested".into(),
            cluster: "default".into(),
            executed_at: "2026-11-27T10:00:01.000000Z".into(),
        };
        let report = reconcile(&policy, &[call], &[recovered]);
        assert_eq!(report.executions_matched, 1, "{report:?}");
        assert!(report.clean(), "{report:?}");
    }
}
