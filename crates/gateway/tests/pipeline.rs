//! The gateway's own rules, in milliseconds: a whole pipeline over a fresh SQLite ledger and a fake cluster
//! (`gateway::testing`). What a real cluster does is proven by the end-to-end tests against a kube-apiserver;
//! these prove what the gateway decides and records: the order of entries, guardrails, approvals (no
//! self-approval, exactly once across concurrent approvers, a changed target asks again) and trust gates.

use std::sync::Arc;

use domain::{ActionStatus, EntryKind, FreezeScope, ResourceKind, Role};
use gateway::testing::{FakeCluster, TestApp};
use gateway::{GatewayError, TrustGates, Verdict};
use serde_json::{Value, json};

const AGENT_SCOPES: &[&str] = &["mutate:staging:Deployment"];

fn scale(replicas: u32) -> Value {
    json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
           "resource_name": "web", "parameters": {"replicas": replicas}, "justification": "load test"})
}

async fn app(cluster: &Arc<FakeCluster>) -> TestApp {
    TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_identity("approver", &[Role::Approver], &[])
        .with_identity("second-approver", &[Role::Approver], &[])
        .build()
        .await
}

fn cluster() -> Arc<FakeCluster> {
    Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2))
}

async fn kinds(app: &TestApp, action_id: &str) -> Vec<String> {
    let entries = app.store.entries_of_action(action_id).await.unwrap();
    entries.into_iter().map(|e| e.kind).collect()
}

fn replicas(cluster: &FakeCluster) -> Value {
    cluster
        .object(ResourceKind::Deployment, Some("staging"), "web")
        .unwrap()["spec"]["replicas"]
        .clone()
}

#[tokio::test]
async fn an_allowed_change_runs_once_and_every_step_is_recorded_in_order() {
    let cluster = cluster();
    let app = app(&cluster).await;
    let answer = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    assert_eq!(answer.status, ActionStatus::Completed, "{answer:?}");
    assert_eq!((cluster.changes(), replicas(&cluster)), (1, json!(3)));
    let expected = [
        EntryKind::ActionRequested,
        EntryKind::RiskClassified,
        EntryKind::PolicyDecided,
        EntryKind::ActionExecuted,
        EntryKind::OutcomeVerified,
    ];
    assert_eq!(
        kinds(&app, &answer.action_id).await,
        expected.map(|k| k.as_str().to_owned())
    );
    assert!(answer.signature_verified);
}

/// The payloads' field names, as the ledger has spelt them since before they were typed: a renamed field
/// would change what auditors' tools read.
#[tokio::test]
async fn payloads_keep_the_field_names_the_ledger_has_always_used() {
    let cluster = cluster();
    let app = app(&cluster).await;
    let answer = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    let entries = app.store.entries_of_action(&answer.action_id).await.unwrap();
    let fields = |kind: EntryKind| {
        let entry = entries.iter().find(|e| e.kind == kind.as_str()).unwrap();
        let payload: Value = serde_json::from_str(&entry.payload).unwrap();
        let mut names: Vec<String> = payload.as_object().unwrap().keys().cloned().collect();
        names.sort();
        names.join(",")
    };
    assert_eq!(
        fields(EntryKind::ActionRequested),
        "cluster,identity,justification,key_id,request,request_sha256"
    );
    assert_eq!(
        fields(EntryKind::PolicyDecided),
        "cluster,decision_id,engine,input,input_sha256,mode,outcome,policy,reasons,revision"
    );
    assert_eq!(fields(EntryKind::ActionExecuted), "cluster,diff,execution,request");
    let mut body = scale(3);
    body["resource_kind"] = json!("NoSuchKind");
    let refused = app.pipeline.submit(app.caller("agent"), body).await;
    assert!(matches!(refused, Err(GatewayError::BadRequest(_))), "{refused:?}");
    let last = app.store.head().await.unwrap().unwrap();
    assert_eq!(last.kind, EntryKind::ActionRejected.as_str());
    let payload: Value = serde_json::from_str(&last.payload).unwrap();
    let mut names: Vec<&String> = payload.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["field", "key_id", "message", "request", "request_sha256"]);
}

#[tokio::test]
async fn a_guardrail_refusal_is_final_and_nothing_reaches_the_cluster() {
    let cluster = cluster();
    let app = app(&cluster).await;
    let mut body = scale(3);
    body["namespace"] = json!("kube-system");
    let answer = app.pipeline.submit(app.caller("agent"), body).await.unwrap();
    assert_eq!(answer.status, ActionStatus::Denied);
    assert_eq!(cluster.changes(), 0);
    let recorded = kinds(&app, &answer.action_id).await;
    assert_eq!(
        recorded,
        [EntryKind::ActionRequested.as_str(), EntryKind::GuardrailDenied.as_str()]
    );
}

#[tokio::test]
async fn an_agent_cannot_approve_itself_and_an_approval_executes_exactly_once() {
    let cluster = cluster();
    let app = app(&cluster).await;
    // Scaling to zero is HIGH risk: the default policy holds it for an approval.
    let held = app.pipeline.submit(app.caller("agent"), scale(0)).await.unwrap();
    assert_eq!(held.status, ActionStatus::PendingApproval);
    let own = app
        .pipeline
        .decide_approval(app.caller("agent"), &held.action_id, Verdict::Approve, None, None);
    assert!(matches!(own.await, Err(GatewayError::Forbidden(_))));
    assert!(
        kinds(&app, &held.action_id)
            .await
            .contains(&EntryKind::ApprovalRefused.as_str().to_owned())
    );
    assert_eq!(cluster.changes(), 0);

    let approve = |who: &'static str| {
        let (pipeline, caller) = (app.pipeline.clone(), app.caller(who).clone());
        let id = held.action_id.clone();
        async move {
            pipeline
                .decide_approval(&caller, &id, Verdict::Approve, None, None)
                .await
        }
    };
    // Two approvers at once: only the gateway task that moves the status executes; the other approval is
    // recorded and answered with the action's status as it stands.
    let (first, second) = tokio::join!(approve("approver"), approve("second-approver"));
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    assert_eq!(cluster.changes(), 1);
    let recorded = kinds(&app, &held.action_id).await;
    let executed = recorded.iter().filter(|k| **k == EntryKind::ActionExecuted).count();
    assert_eq!(executed, 1, "{recorded:?}");
    assert_eq!(replicas(&cluster), json!(0));
    let again = app
        .pipeline
        .decide_approval(app.caller("approver"), &held.action_id, Verdict::Approve, None, None);
    assert!(matches!(again.await, Err(GatewayError::Conflict(_))));
    assert_eq!(cluster.changes(), 1);
}

#[tokio::test]
async fn a_target_changed_after_the_request_asks_for_a_fresh_approval() {
    let cluster = cluster();
    let app = app(&cluster).await;
    let held = app.pipeline.submit(app.caller("agent"), scale(0)).await.unwrap();
    assert_eq!(held.status, ActionStatus::PendingApproval);
    // Someone else scales it meanwhile: what the approver would approve is not what was previewed.
    let mut changed = cluster
        .object(ResourceKind::Deployment, Some("staging"), "web")
        .unwrap();
    changed["spec"]["replicas"] = json!(7);
    cluster.put(ResourceKind::Deployment, Some("staging"), "web", changed);
    let approved = app
        .pipeline
        .decide_approval(app.caller("approver"), &held.action_id, Verdict::Approve, None, None);
    assert!(matches!(approved.await, Err(GatewayError::Conflict(m)) if m.contains("fresh approval")));
    assert_eq!(cluster.changes(), 0);
    let requested = kinds(&app, &held.action_id).await;
    let asked = requested.iter().filter(|k| **k == EntryKind::ApprovalRequested).count();
    assert_eq!(asked, 2, "{requested:?}");
    // The fresh request can be approved, and runs against the object as it is now.
    let answer = app
        .pipeline
        .decide_approval(app.caller("approver"), &held.action_id, Verdict::Approve, None, None);
    assert_eq!(answer.await.unwrap().status, ActionStatus::Completed);
    assert_eq!((cluster.changes(), replicas(&cluster)), (1, json!(0)));
}

#[tokio::test]
async fn a_rejection_ends_the_action_without_touching_the_cluster() {
    let cluster = cluster();
    let app = app(&cluster).await;
    let held = app.pipeline.submit(app.caller("agent"), scale(0)).await.unwrap();
    let comment = Some("not during the sale".to_owned());
    let rejected =
        app.pipeline
            .decide_approval(app.caller("approver"), &held.action_id, Verdict::Reject, comment, None);
    assert_eq!(rejected.await.unwrap().status, ActionStatus::Rejected);
    assert_eq!((cluster.changes(), replicas(&cluster)), (0, json!(2)));
    let row = app.store.action(&held.action_id).await.unwrap().unwrap();
    assert_eq!(row.status, ActionStatus::Rejected);
}

#[tokio::test]
async fn a_trust_gate_holds_an_allowed_change_of_an_identity_without_history() {
    let cluster = cluster();
    let gates = TrustGates {
        medium_min: 10,
        high_min: 50,
    };
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_trust_gates(gates)
        .build()
        .await;
    let answer = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    assert_eq!(answer.status, ActionStatus::PendingApproval);
    let reasons = answer.decision.unwrap().reasons.join(" ");
    assert!(reasons.contains("trust 0 is below the 10"), "{reasons}");
    assert_eq!(cluster.changes(), 0);
}

#[tokio::test]
async fn a_freeze_stops_mutations_in_scope_until_a_person_lifts_it() {
    let cluster = cluster();
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_identity("admin-agent", &[Role::Admin, Role::Operator], AGENT_SCOPES)
        .with_identity("approver", &[Role::Approver], &[])
        .build()
        .await;
    // Held for an approval before the freeze (scaling to zero is HIGH risk).
    let held = app.pipeline.submit(app.caller("agent"), scale(0)).await.unwrap();
    assert_eq!(held.status, ActionStatus::PendingApproval);
    let staging = FreezeScope::Namespace {
        namespace: "staging".into(),
        cluster: None,
    };
    let refused = app.pipeline.freeze(app.caller("agent"), staging.clone(), "no").await;
    assert!(
        matches!(refused, Err(GatewayError::Forbidden(_))),
        "an operator may not freeze"
    );
    let (freeze, _) = app
        .pipeline
        .freeze(app.caller("admin"), staging.clone(), "incident 7")
        .await
        .unwrap();
    let twice = app.pipeline.freeze(app.caller("admin"), staging, "again").await;
    assert!(matches!(twice, Err(GatewayError::Conflict(_))), "{twice:?}");

    let denied = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    assert_eq!(denied.status, ActionStatus::Denied);
    assert_eq!(denied.decision.as_ref().unwrap().policy, "freeze.active");
    assert_eq!(
        kinds(&app, &denied.action_id).await,
        [EntryKind::ActionRequested.as_str(), EntryKind::FreezeRefused.as_str()]
    );
    let approve = app
        .pipeline
        .decide_approval(app.caller("approver"), &held.action_id, Verdict::Approve, None, None)
        .await;
    assert!(
        matches!(&approve, Err(GatewayError::Conflict(m)) if m.contains("frozen")),
        "{approve:?}"
    );
    assert_eq!(cluster.changes(), 0);
    let read = json!({"action_type": "GET", "namespace": "staging", "resource_kind": "Deployment",
                      "resource_name": "web"});
    assert_eq!(
        app.pipeline.submit(app.caller("agent"), read).await.unwrap().status,
        ActionStatus::Completed
    );

    let by_agent = app
        .pipeline
        .lift_freeze(app.caller("admin-agent"), &freeze.id, "done")
        .await;
    assert!(
        matches!(by_agent, Err(GatewayError::Forbidden(_))),
        "an agent never lifts: {by_agent:?}"
    );
    app.pipeline
        .lift_freeze(app.caller("admin"), &freeze.id, "contained")
        .await
        .unwrap();
    assert!(app.pipeline.active_freezes().await.unwrap().is_empty());
    let approved = app
        .pipeline
        .decide_approval(app.caller("approver"), &held.action_id, Verdict::Approve, None, None)
        .await
        .unwrap();
    assert_eq!(approved.status, ActionStatus::Completed);
    assert_eq!((cluster.changes(), replicas(&cluster)), (1, json!(0)));
}

#[tokio::test]
async fn a_freeze_of_every_agent_stops_agents_and_scopes_freeze_apart() {
    let cluster = cluster();
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .build()
        .await;
    app.pipeline
        .freeze(app.caller("admin"), FreezeScope::Agents {}, "injection suspected")
        .await
        .unwrap();
    let denied = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    assert_eq!(denied.status, ActionStatus::Denied);
    assert_eq!(cluster.changes(), 0);
    // A name that matches nothing would freeze nothing: refused.
    let typo = FreezeScope::Cluster {
        cluster: "elsewhere".into(),
    };
    let refused = app.pipeline.freeze(app.caller("admin"), typo, "typo").await;
    assert!(matches!(refused, Err(GatewayError::NotFound(_))), "{refused:?}");
    let nobody = FreezeScope::Identity {
        identity_id: "agt_0123".into(),
    };
    let refused = app.pipeline.freeze(app.caller("admin"), nobody, "typo").await;
    assert!(matches!(refused, Err(GatewayError::NotFound(_))), "{refused:?}");
    let local = FreezeScope::Cluster {
        cluster: "local".into(),
    };
    assert!(
        app.pipeline
            .freeze(app.caller("admin"), local, "the cluster")
            .await
            .is_ok()
    );
    assert_eq!(app.pipeline.active_freezes().await.unwrap().len(), 2);
}

/// A freeze made while an action is past its guardrails (here: during its preview) still stops it before
/// its change is sent, and the answer says so.
#[tokio::test]
async fn a_freeze_made_mid_action_stops_the_change_before_it_is_sent() {
    let cluster = cluster();
    let app = app(&cluster).await;
    let (pipeline, admin) = (app.pipeline.clone(), app.caller("admin").clone());
    cluster.on_next_preview(move || async move {
        let scope = FreezeScope::Namespace {
            namespace: "staging".into(),
            cluster: None,
        };
        pipeline.freeze(&admin, scope, "mid-action").await.unwrap();
    });
    let answer = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    assert_eq!(answer.status, ActionStatus::Denied, "{answer:?}");
    assert_eq!(answer.decision.as_ref().unwrap().policy, "freeze.active");
    assert_eq!(cluster.changes(), 0, "nothing was sent");
    let recorded = kinds(&app, &answer.action_id).await;
    assert_eq!(
        recorded.last().map(String::as_str),
        Some(EntryKind::FreezeRefused.as_str()),
        "{recorded:?}"
    );
    assert!(
        recorded.contains(&EntryKind::PolicyDecided.as_str().to_owned()),
        "decided, then stopped"
    );
}

/// A person an agent created acts for that agent: a freeze of every agent (or of that agent) covers them, and
/// they may not lift a freeze.
#[tokio::test]
async fn a_person_an_agent_controls_is_frozen_with_it_and_cannot_lift() {
    let cluster = cluster();
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("admin-agent", &[Role::Admin, Role::Operator], AGENT_SCOPES)
        .build()
        .await;
    let new = gateway::NewIdentity {
        name: "puppet".into(),
        kind: gateway::IdentityKind::Human,
        roles: vec!["admin".into(), "operator".into()],
        scopes: vec![domain::Scope::parse_short("mutate:staging:Deployment").unwrap()],
        groups: Vec::new(),
    };
    let agent_id = app.caller("admin-agent").identity.id.clone();
    let (_, issued) = app.directory.create(&agent_id, new).await.unwrap();
    let puppet = app.directory.authenticate(&issued.api_key).await.unwrap();
    for scope in [
        FreezeScope::Agents {},
        FreezeScope::Identity {
            identity_id: agent_id.clone(),
        },
    ] {
        let (freeze, _) = app
            .pipeline
            .freeze(app.caller("admin"), scope, "runaway")
            .await
            .unwrap();
        let answer = app.pipeline.submit(&puppet, scale(3)).await.unwrap();
        assert_eq!(answer.status, ActionStatus::Denied, "{answer:?}");
        let lift = app.pipeline.lift_freeze(&puppet, &freeze.id, "let me").await;
        assert!(matches!(lift, Err(GatewayError::Forbidden(_))), "{lift:?}");
        app.pipeline
            .lift_freeze(app.caller("admin"), &freeze.id, "contained")
            .await
            .unwrap();
    }
    assert_eq!(cluster.changes(), 0);
    let answer = app.pipeline.submit(&puppet, scale(3)).await.unwrap();
    assert_eq!(answer.status, ActionStatus::Completed, "unfrozen: {answer:?}");
}

/// A circuit breaker suspends an agent at its N-th denial within the window; its key stops working with a
/// clear reason, and the suspension is recorded with the breaker's reason.
#[tokio::test]
async fn a_breaker_suspends_an_agent_after_n_denials() {
    let cluster = cluster();
    let trip = gateway::Trip {
        count: 3,
        window_seconds: 600,
    };
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_breakers(gateway::Breakers {
            denials: Some(trip),
            ..gateway::Breakers::default()
        })
        .build()
        .await;
    let mut blocked = scale(3);
    blocked["namespace"] = json!("kube-system");
    for n in 1..=3 {
        let denied = app.pipeline.submit(app.caller("agent"), blocked.clone()).await.unwrap();
        assert_eq!(denied.status, ActionStatus::Denied);
        let identity = app.directory.get(&app.caller("agent").identity.id).await.unwrap();
        let expected = if n < 3 {
            gateway::IdentityStatus::Active
        } else {
            gateway::IdentityStatus::Suspended
        };
        assert_eq!(identity.status, expected, "after {n} denials");
    }
    let refused = app.directory.authenticate(app.api_key("agent")).await;
    assert!(
        matches!(&refused, Err(GatewayError::Unauthorized(m)) if m.contains("suspended")),
        "{refused:?}"
    );
    let suspended = app.store.head().await.unwrap().unwrap();
    assert_eq!(suspended.kind, EntryKind::IdentitySuspended.as_str());
    assert!(
        suspended
            .payload
            .contains("circuit breaker `denials`: 3 DENIED actions within 600 s"),
        "{}",
        suspended.payload
    );
    assert_eq!(cluster.changes(), 0);
}

fn budget(per: &str, window_seconds: u64) -> gateway::BudgetLimit {
    gateway::BudgetLimit {
        per: gateway::Per::try_from(per.to_owned()).unwrap(),
        window_seconds,
        mutations: None,
        deletes: None,
        objects: None,
        replicas: None,
        workloads_percent: None,
    }
}

/// A budget stops an agent exactly at its limit, also under concurrent submissions, and says which counter,
/// the limit, and when the window frees up; nothing past the limit reaches the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_stops_a_loop_exactly_at_its_limit() {
    let cluster = cluster();
    let per_identity = gateway::BudgetLimit {
        mutations: Some(4),
        ..budget("identity", 600)
    };
    let per_namespace = gateway::BudgetLimit {
        replicas: Some(100),
        ..budget("namespace", 600)
    };
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_budgets(gateway::Budgets {
            limits: vec![per_identity, per_namespace],
        })
        .build()
        .await;
    let submit = |replicas: u32| {
        let (pipeline, caller) = (app.pipeline.clone(), app.caller("agent").clone());
        async move { pipeline.submit(&caller, scale(replicas)).await.unwrap() }
    };
    // Six at once (2 or 3 replicas, each allowed by policy): four are admitted, whatever the interleaving.
    let handles: Vec<_> = [3, 2, 3, 2, 3, 2]
        .into_iter()
        .map(|replicas| tokio::spawn(submit(replicas)))
        .collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    let refused: Vec<_> = answers.iter().filter(|a| a.status == ActionStatus::Denied).collect();
    assert_eq!(refused.len(), 2, "{answers:?}");
    let changes = cluster.changes();
    assert!(
        (1..=4).contains(&changes),
        "nothing past the budget reaches the cluster: {changes}"
    );
    let refused = refused[0];
    let decision = refused.decision.as_ref().unwrap();
    assert_eq!(decision.policy, "budget.exceeded");
    assert!(
        decision.reasons[0].contains("mutations would be 5 within 600 s (the limit is 4)"),
        "{decision:?}"
    );
    assert!(decision.reasons[0].contains("frees up from"), "{decision:?}");
    let recorded = kinds(&app, &refused.action_id).await;
    assert_eq!(
        recorded.last().map(String::as_str),
        Some(EntryKind::BudgetExceeded.as_str())
    );
    assert!(
        !recorded.contains(&EntryKind::PolicyDecided.as_str().to_owned()),
        "refused before policy"
    );
}

/// Replica change adds up in absolute value per namespace; reads and dry runs spend nothing.
#[tokio::test]
async fn a_replica_budget_adds_up_changes_and_reads_spend_nothing() {
    let cluster = cluster();
    let limit = gateway::BudgetLimit {
        replicas: Some(5),
        ..budget("namespace", 600)
    };
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_budgets(gateway::Budgets { limits: vec![limit] })
        .build()
        .await;
    let agent = app.caller("agent");
    let mut dry = scale(9);
    dry["dry_run"] = json!(true);
    assert_eq!(
        app.pipeline.submit(agent, dry).await.unwrap().status,
        ActionStatus::Previewed
    );
    let read = json!({"action_type": "GET", "namespace": "staging", "resource_kind": "Deployment",
                      "resource_name": "web"});
    assert_eq!(
        app.pipeline.submit(agent, read).await.unwrap().status,
        ActionStatus::Completed
    );
    // 2 → 5 (3), 5 → 3 (2): 5 in all, the limit; 3 → 4 would make 6.
    for (to, expected) in [
        (5, ActionStatus::Completed),
        (3, ActionStatus::Completed),
        (4, ActionStatus::Denied),
    ] {
        let answer = app.pipeline.submit(agent, scale(to)).await.unwrap();
        assert_eq!(answer.status, expected, "to {to}: {answer:?}");
    }
    assert_eq!(replicas(&cluster), json!(3));
}
