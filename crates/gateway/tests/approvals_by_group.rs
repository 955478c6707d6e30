//! Two-person rules by group, in milliseconds (a fake cluster; the end-to-end test runs them against a real
//! API server): the shipped template `two-approvals-for-high` with groups, two approvers of the same group are
//! not enough, one of each group executes the action, and the entries say which group each approval met.

use std::sync::Arc;

use domain::{ActionStatus, EntryKind, ResourceKind, Role};
use gateway::testing::{FakeCluster, TestApp};
use gateway::{GatewayError, Verdict};
use policy::EmbeddedEngine;
use policy::templates::Library;
use serde_json::{Map, Value, json};

/// The default policy with `two-approvals-for-high` rendered for groups `sre` and `security`.
fn policy_by_group() -> EmbeddedEngine {
    let library = Library::shipped().unwrap();
    let params: Map<String, Value> = serde_json::from_value(json!({"groups": ["sre", "security"]})).unwrap();
    let rendered = library
        .find("two-approvals-for-high")
        .unwrap()
        .render(&params, None)
        .unwrap();
    let sources = vec![
        ("default.rego".to_owned(), policy::DEFAULT_POLICY.to_owned()),
        ("groups.rego".to_owned(), rendered.text),
    ];
    EmbeddedEngine::from_sources(sources).unwrap()
}

async fn app(cluster: &Arc<FakeCluster>) -> TestApp {
    TestApp::new()
        .with_cluster(cluster.clone())
        .with_policy(policy_by_group())
        .with_identity("agent", &[Role::Operator], &["mutate:staging:Deployment"])
        .with_identity("sre-1", &[Role::Approver], &[])
        .with_identity("sre-2", &[Role::Approver], &[])
        .with_identity("sec-1", &[Role::Approver], &[])
        .with_identity("both", &[Role::Approver], &[])
        .with_groups("sre-1", &["sre"])
        .with_groups("sre-2", &["SRE", "dev"])
        .with_groups("sec-1", &["security"])
        .with_groups("both", &["sre", "security"])
        .build()
        .await
}

/// Scaling to zero is HIGH risk: held for approvals.
fn scale_to_zero() -> Value {
    json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
           "resource_name": "web", "parameters": {"replicas": 0}, "justification": "drain"})
}

async fn approve(app: &TestApp, who: &str, action_id: &str) -> Result<gateway::ActionResponse, GatewayError> {
    app.pipeline
        .decide_approval(app.caller(who), action_id, Verdict::Approve, None, None)
        .await
}

async fn payloads(app: &TestApp, action_id: &str, kind: EntryKind) -> Vec<Value> {
    let entries = app.store.entries_of_action(action_id).await.unwrap();
    entries
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect()
}

fn replicas(cluster: &FakeCluster) -> Value {
    cluster
        .object(ResourceKind::Deployment, Some("staging"), "web")
        .unwrap()["spec"]["replicas"]
        .clone()
}

#[tokio::test]
async fn two_approvers_of_one_group_are_not_enough_one_of_each_executes() {
    let cluster = Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2));
    let app = app(&cluster).await;
    let held = app.pipeline.submit(app.caller("agent"), scale_to_zero()).await.unwrap();
    assert_eq!(held.status, ActionStatus::PendingApproval);
    let requested = &payloads(&app, &held.action_id, EntryKind::ApprovalRequested).await[0];
    assert_eq!(requested["approval_groups"], json!(["security", "sre"]));
    assert_eq!(requested["approvals_required"], 2);

    // The first SRE meets `sre`; a second SRE meets nothing still missing: refused, recorded, nothing runs.
    let first = approve(&app, "sre-1", &held.action_id).await.unwrap();
    assert_eq!(first.status, ActionStatus::PendingApproval);
    let second = approve(&app, "sre-2", &held.action_id).await;
    let Err(GatewayError::Forbidden(why)) = second else {
        panic!("a second approver of the same group must be refused: {second:?}");
    };
    assert!(why.contains("still missing: security"), "{why}");
    assert_eq!(cluster.changes(), 0);
    assert_eq!(replicas(&cluster), json!(2));
    let refused = payloads(&app, &held.action_id, EntryKind::ApprovalRefused).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["approver"], json!(app.caller("sre-2").identity.id));

    // One of security: complete, executed once.
    let done = approve(&app, "sec-1", &held.action_id).await.unwrap();
    assert_eq!(done.status, ActionStatus::Completed, "{done:?}");
    assert_eq!(replicas(&cluster), json!(0));
    let granted = payloads(&app, &held.action_id, EntryKind::ApprovalGranted).await;
    let met: Vec<(&Value, &Value)> = granted
        .iter()
        .map(|g| (&g["meets_group"], &g["groups_missing"]))
        .collect();
    assert_eq!(
        met,
        [(&json!("sre"), &json!(["security"])), (&json!("security"), &json!([]))]
    );
}

#[tokio::test]
async fn an_approver_in_both_groups_counts_once() {
    let cluster = Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2));
    let app = app(&cluster).await;
    let held = app.pipeline.submit(app.caller("agent"), scale_to_zero()).await.unwrap();
    let first = approve(&app, "both", &held.action_id).await.unwrap();
    assert_eq!(first.status, ActionStatus::PendingApproval, "one person is not two");
    // An SRE completes it: `both` then counts for security.
    let done = approve(&app, "sre-2", &held.action_id).await.unwrap();
    assert_eq!(done.status, ActionStatus::Completed, "{done:?}");
    assert_eq!(cluster.changes(), 1);
    let granted = payloads(&app, &held.action_id, EntryKind::ApprovalGranted).await;
    assert_eq!(granted[1]["meets_group"], json!("sre"));
    assert_eq!(granted[1]["groups_missing"], json!([]));
}

#[tokio::test]
async fn without_groups_the_count_alone_decides_as_before() {
    let cluster = Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2));
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], &["mutate:staging:Deployment"])
        .with_identity("sre-1", &[Role::Approver], &[])
        .with_groups("sre-1", &["sre"])
        .build()
        .await;
    let held = app.pipeline.submit(app.caller("agent"), scale_to_zero()).await.unwrap();
    let requested = &payloads(&app, &held.action_id, EntryKind::ApprovalRequested).await[0];
    assert!(requested.get("approval_groups").is_none(), "{requested}");
    let done = approve(&app, "sre-1", &held.action_id).await.unwrap();
    assert_eq!(done.status, ActionStatus::Completed);
    let granted = &payloads(&app, &held.action_id, EntryKind::ApprovalGranted).await[0];
    assert!(
        granted.get("meets_group").is_none() && granted.get("groups_missing").is_none(),
        "{granted}"
    );
}

#[tokio::test]
async fn one_person_cannot_approve_twice_through_an_identity_it_made() {
    let cluster = Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2));
    let app = app(&cluster).await;
    let held = app.pipeline.submit(app.caller("agent"), scale_to_zero()).await.unwrap();
    approve(&app, "sre-1", &held.action_id).await.unwrap();
    // sre-1 makes itself a second approver in the other group.
    let alias = gateway::NewIdentity {
        name: "sec-alias".into(),
        kind: domain::IdentityKind::Human,
        roles: vec!["approver".into()],
        scopes: Vec::new(),
        groups: vec!["security".into()],
    };
    let (_, key) = app
        .directory
        .create(&app.caller("sre-1").identity.id, alias)
        .await
        .unwrap();
    let alias = app.directory.authenticate(&key.api_key).await.unwrap();
    let second = app
        .pipeline
        .decide_approval(&alias, &held.action_id, Verdict::Approve, None, None)
        .await;
    let Err(GatewayError::Forbidden(why)) = second else {
        panic!("an identity sre-1 made must not be the second approver: {second:?}");
    };
    assert!(why.contains("independent"), "{why}");
    assert_eq!(cluster.changes(), 0);
    // An independent approver of security completes it.
    let done = approve(&app, "sec-1", &held.action_id).await.unwrap();
    assert_eq!(done.status, ActionStatus::Completed, "{done:?}");
}
