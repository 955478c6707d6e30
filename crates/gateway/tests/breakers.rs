//! The circuit breakers on budget refusals and on bypasses (docs/safety.md), in milliseconds: a whole pipeline
//! over a fresh SQLite ledger and a fake cluster (`gateway::testing`). The breaker on denials is also in
//! `pipeline.rs`, and end to end against the real API server in the CLI's `breakers` tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{ActionStatus, EntryKind, IdentityStatus, Role};
use gateway::audit::{AuditEvent, record_bypasses};
use gateway::testing::{FakeCluster, TestApp};
use gateway::{ApprovalWebhook, Breakers};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AGENT_SCOPES: &[&str] = &["mutate:staging:Deployment"];
const DEPLOYER: &str = "system:serviceaccount:agents:deployer";

fn scale(replicas: u32, namespace: &str) -> Value {
    json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
           "resource_name": "web", "parameters": {"replicas": replicas}, "justification": "load test"})
}

fn cluster() -> Arc<FakeCluster> {
    Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2))
}

fn breakers(config: Value) -> Breakers {
    let breakers: Breakers = serde_json::from_value(config).unwrap();
    breakers.validate().unwrap();
    breakers
}

async fn status_of(app: &TestApp, name: &str) -> IdentityStatus {
    app.directory.get(&app.caller(name).identity.id).await.unwrap().status
}

async fn reactivate(app: &TestApp, name: &str) {
    let admin = app.caller("admin").identity.id.clone();
    app.directory
        .set_status(
            &admin,
            &app.caller(name).identity.id,
            IdentityStatus::Active,
            Some("investigated".into()),
        )
        .await
        .unwrap();
}

async fn ledger_verifies(app: &TestApp) {
    let report = storage::verify_ledger(&app.store, Default::default(), |_| {})
        .await
        .unwrap();
    assert!(report.valid, "{report:?}");
}

/// `budget_hits` counts only budget refusals (not the guardrail's), suspends at its count with its own reason,
/// and counts afresh after a reactivation.
#[tokio::test]
async fn a_budget_breaker_suspends_an_agent_after_n_budget_refusals() {
    let cluster = cluster();
    let budget: gateway::Budgets =
        serde_json::from_value(json!({"limits": [{"per": "identity", "window_seconds": 600, "mutations": 1}]}))
            .unwrap();
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_budgets(budget)
        .with_breakers(breakers(json!({
            "budget_hits": {"count": 2, "window_seconds": 600},
            "denials": {"count": 10, "window_seconds": 600}})))
        .build()
        .await;
    let agent = app.caller("agent");
    // Three guardrail denials: denials, not budget hits.
    for _ in 0..3 {
        let denied = app.pipeline.submit(agent, scale(3, "kube-system")).await.unwrap();
        assert_eq!(denied.status, ActionStatus::Denied);
    }
    assert_eq!(status_of(&app, "agent").await, IdentityStatus::Active);
    let first = app.pipeline.submit(agent, scale(3, "staging")).await.unwrap();
    assert_eq!(first.status, ActionStatus::Completed, "{first:?}");
    let hit = app.pipeline.submit(agent, scale(4, "staging")).await.unwrap();
    assert_eq!(
        hit.decision.as_ref().unwrap().policy,
        EntryKind::BudgetExceeded.as_str()
    );
    assert_eq!(status_of(&app, "agent").await, IdentityStatus::Active, "one budget hit");
    let hit = app.pipeline.submit(agent, scale(4, "staging")).await.unwrap();
    assert_eq!(hit.status, ActionStatus::Denied);
    assert_eq!(
        status_of(&app, "agent").await,
        IdentityStatus::Suspended,
        "the second budget hit"
    );
    let suspended = app.store.head().await.unwrap().unwrap();
    assert_eq!(
        (suspended.kind.as_str(), suspended.actor.as_str()),
        (EntryKind::IdentitySuspended.as_str(), "system")
    );
    let payload: Value = serde_json::from_str(&suspended.payload).unwrap();
    assert_eq!(
        payload["reason"],
        "circuit breaker `budget_hits`: 2 actions refused by a blast-radius budget (budget.exceeded) within 600 s \
         (the limit is 2)",
        "{payload}"
    );
    let refused = app.directory.authenticate(app.api_key("agent")).await;
    assert!(matches!(&refused, Err(gateway::GatewayError::Unauthorized(m)) if m.contains("suspended")));

    // Reactivated: the two hits before it do not count again; two new ones do.
    reactivate(&app, "agent").await;
    let hit = app.pipeline.submit(agent, scale(4, "staging")).await.unwrap();
    assert_eq!(hit.status, ActionStatus::Denied);
    assert_eq!(
        status_of(&app, "agent").await,
        IdentityStatus::Active,
        "counting afresh"
    );
    app.pipeline.submit(agent, scale(4, "staging")).await.unwrap();
    assert_eq!(status_of(&app, "agent").await, IdentityStatus::Suspended);
    assert_eq!(cluster.changes(), 1, "only the first scale reached the cluster");
    ledger_verifies(&app).await;
}

/// Without `budget_hits`, a budget refusal still counts as a denial.
#[tokio::test]
async fn budget_refusals_count_as_denials_too() {
    let budget: gateway::Budgets =
        serde_json::from_value(json!({"limits": [{"per": "identity", "window_seconds": 600, "deletes": 0}]})).unwrap();
    let app = TestApp::new()
        .with_cluster(cluster())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_budgets(budget)
        .with_breakers(breakers(json!({"denials": {"count": 2, "window_seconds": 600}})))
        .build()
        .await;
    let delete = json!({"action_type": "DELETE", "namespace": "staging", "resource_kind": "Deployment",
                        "resource_name": "web", "justification": "cleanup"});
    for n in 1..=2 {
        let denied = app.pipeline.submit(app.caller("agent"), delete.clone()).await.unwrap();
        assert_eq!(denied.decision.unwrap().policy, EntryKind::BudgetExceeded.as_str());
        let expected = if n < 2 {
            IdentityStatus::Active
        } else {
            IdentityStatus::Suspended
        };
        assert_eq!(status_of(&app, "agent").await, expected, "after {n}");
    }
    let suspended = app.store.head().await.unwrap().unwrap();
    assert!(
        suspended
            .payload
            .contains("circuit breaker `denials`: 2 DENIED actions"),
        "{}",
        suspended.payload
    );
}

fn bypass(user: &str, audit_id: &str, at: &str) -> AuditEvent {
    serde_json::from_value(json!({
        "auditID": audit_id, "stage": "ResponseComplete", "verb": "patch",
        "requestURI": "/apis/apps/v1/namespaces/staging/deployments/web",
        "user": {"username": user, "groups": ["system:serviceaccounts"]},
        "objectRef": {"resource": "deployments", "namespace": "staging", "name": "web", "apiGroup": "apps"},
        "responseStatus": {"code": 200}, "stageTimestamp": at
    }))
    .unwrap()
}

/// A webhook receiver on a free port: every JSON body POSTed to it, in order.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (mut request, mut chunk) = (Vec::new(), [0u8; 4096]);
            while let Ok(n @ 1..) = socket.read(&mut chunk).await {
                request.extend_from_slice(&chunk[..n]);
                let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    let body = serde_json::from_slice(&request[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                    keep.lock().unwrap().push(body);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    socket.write_all(answer).await.ok();
                    break;
                }
            }
        }
    });
    (url, received)
}

/// Bypasses sent with an agent's Kubernetes user count against it (not an admin's, not a change older than the
/// window, not a replayed batch); at the count it is suspended with a reason naming the bypass, the webhook is
/// told, and after a reactivation counting starts afresh. A user mapped to an unknown id counts for no one.
#[tokio::test]
async fn bypasses_by_an_agents_kubernetes_user_suspend_it() {
    let app = TestApp::new()
        .with_cluster(cluster())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .build()
        .await;
    let agent_id = app.caller("agent").identity.id.clone();
    let config = breakers(json!({
        "bypasses": {"count": 2, "window_seconds": 600},
        "service_accounts": {DEPLOYER: agent_id,
                             "system:serviceaccount:agents:ghost": "agt_0196f0a0b1c27d3e8f9a0b1c2d3e4f50"}}));
    let (url, received) = webhook_receiver().await;
    let policy = app
        .pipeline
        .audit_policy("local")
        .expect("the fake cluster's policy")
        .with_breakers(&config, Some(ApprovalWebhook::new(&url).unwrap()));
    assert!(app.pipeline.audit_policy("elsewhere").is_none());
    let now = gateway::now();
    let two_hours_ago = gateway::now_minus(Duration::from_secs(7200));
    let first = [
        bypass(DEPLOYER, "old", &two_hours_ago),
        bypass("admin", "by-admin", &now),
        bypass("system:serviceaccount:agents:ghost", "by-ghost", &now),
        bypass(DEPLOYER, "first", &now),
    ];
    let report = record_bypasses(&app.store, &app.ledger, &policy, &first).await.unwrap();
    assert_eq!(report.bypasses_recorded, 4, "{report:?}");
    assert_eq!(
        status_of(&app, "agent").await,
        IdentityStatus::Active,
        "one bypass within the window"
    );
    let replayed = record_bypasses(&app.store, &app.ledger, &policy, &first).await.unwrap();
    assert_eq!(replayed.bypasses_already_recorded, 4);
    assert_eq!(
        status_of(&app, "agent").await,
        IdentityStatus::Active,
        "a replay counts nothing"
    );

    record_bypasses(&app.store, &app.ledger, &policy, &[bypass(DEPLOYER, "second", &now)])
        .await
        .unwrap();
    assert_eq!(
        status_of(&app, "agent").await,
        IdentityStatus::Suspended,
        "the second bypass"
    );
    let suspended = app.store.head().await.unwrap().unwrap();
    assert_eq!(
        (suspended.kind.as_str(), suspended.actor.as_str()),
        (EntryKind::IdentitySuspended.as_str(), "system")
    );
    let payload: Value = serde_json::from_str(&suspended.payload).unwrap();
    let reason = payload["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("circuit breaker `bypasses`: 2 changes that bypassed the gateway within 600 s")
            && reason.contains(&format!(
                "the last: patch by {DEPLOYER} of deployments/web in namespace staging"
            ))
            && reason.contains("audit id second"),
        "{reason}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the webhook was not told");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let told = received.lock().unwrap()[0].clone();
    assert_eq!(
        (
            &told["event"],
            &told["breaker"],
            &told["identity"]["id"],
            &told["reason"]
        ),
        (
            &json!("identity.suspended"),
            &json!("bypasses"),
            &json!(agent_id),
            &json!(reason)
        ),
        "{told}"
    );
    assert_eq!(told["ledger_entry_id"], json!(suspended.id));

    // Reactivated: the two before do not count again.
    reactivate(&app, "agent").await;
    record_bypasses(
        &app.store,
        &app.ledger,
        &policy,
        &[bypass(DEPLOYER, "third", &gateway::now())],
    )
    .await
    .unwrap();
    assert_eq!(
        status_of(&app, "agent").await,
        IdentityStatus::Active,
        "counting afresh"
    );
    ledger_verifies(&app).await;
}

/// Without `with_breakers` (or without a `bypasses` breaker) a bypass is recorded and suspends no one.
#[tokio::test]
async fn without_a_bypass_breaker_nothing_is_suspended() {
    let app = TestApp::new()
        .with_cluster(cluster())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .build()
        .await;
    let agent_id = app.caller("agent").identity.id.clone();
    let only_denials = breakers(json!({"denials": {"count": 1, "window_seconds": 600},
                                       "service_accounts": {DEPLOYER: agent_id}}));
    let now = gateway::now();
    for (n, policy) in [
        app.pipeline.audit_policy("local").unwrap(),
        app.pipeline
            .audit_policy("local")
            .unwrap()
            .with_breakers(&only_denials, None),
    ]
    .iter()
    .enumerate()
    {
        let events = [
            bypass(DEPLOYER, &format!("a{n}"), &now),
            bypass(DEPLOYER, &format!("b{n}"), &now),
        ];
        let report = record_bypasses(&app.store, &app.ledger, policy, &events).await.unwrap();
        assert_eq!(report.bypasses_recorded, 2);
    }
    assert_eq!(status_of(&app, "agent").await, IdentityStatus::Active);
}
