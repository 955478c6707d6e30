//! Blast-radius budgets an admin sets for one identity, and budgets by group (docs/safety.md), in milliseconds:
//! a whole pipeline over a fresh SQLite ledger and a fake cluster (`gateway::testing`). The configured budgets'
//! own tests are in `pipeline.rs`; the HTTP side in the server's `budgets` tests, the CLI's end to end in the
//! CLI's `budgets` tests.

use std::sync::Arc;

use domain::payload::IdentityLimit;
use domain::{ActionStatus, EntryKind, Role};
use gateway::testing::{FakeCluster, TestApp};
use gateway::{ActionResponse, Budgets, GatewayError, NewIdentity};
use serde_json::{Value, json};

const AGENT_SCOPES: &[&str] = &["mutate:staging:Deployment"];

fn scale(replicas: u32) -> Value {
    json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
           "resource_name": "web", "parameters": {"replicas": replicas}, "justification": "load test"})
}

fn cluster() -> Arc<FakeCluster> {
    Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2))
}

fn budgets(limits: Value) -> Budgets {
    let budgets: Budgets = serde_json::from_value(json!({ "limits": limits })).unwrap();
    budgets.validate().unwrap();
    budgets
}

fn limits(value: Value) -> Vec<IdentityLimit> {
    serde_json::from_value(value).unwrap()
}

async fn app_with(budgets: Budgets) -> TestApp {
    TestApp::new()
        .with_cluster(cluster())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_identity("other-agent", &[Role::Operator], AGENT_SCOPES)
        .with_identity("approver", &[Role::Approver], &[])
        .with_identity("second-admin", &[Role::Admin], &[])
        .with_identity("admin-agent", &[Role::Admin, Role::Operator], AGENT_SCOPES)
        .with_budgets(budgets)
        .build()
        .await
}

/// `n` scales by `name`, alternating 3 and 2 replicas; their statuses.
async fn scales(app: &TestApp, name: &str, n: usize) -> Vec<ActionResponse> {
    let mut answers = Vec::new();
    for i in 0..n {
        let replicas = if i % 2 == 0 { 3 } else { 2 };
        answers.push(app.pipeline.submit(app.caller(name), scale(replicas)).await.unwrap());
    }
    answers
}

fn statuses(answers: &[ActionResponse]) -> Vec<ActionStatus> {
    answers.iter().map(|a| a.status).collect()
}

async fn head_payload(app: &TestApp) -> (String, Value) {
    let head = app.store.head().await.unwrap().unwrap();
    (head.kind, serde_json::from_str(&head.payload).unwrap())
}

/// With no budget configured, an identity's own limit still applies: the refusal is `budget.exceeded` naming
/// the `budget.set` entry; clearing it gives the identity back to the (absent) configured budgets.
#[tokio::test]
async fn an_identity_budget_refuses_past_its_limit_and_clear_restores_the_defaults() {
    let app = app_with(Budgets::default()).await;
    let agent = app.caller("agent").identity.id.clone();
    let admin = app.caller("admin");
    let (view, set) = app
        .pipeline
        .set_identity_budget(
            admin,
            &agent,
            limits(json!([{"window_seconds": 600, "mutations": 2}])),
            "new agent",
        )
        .await
        .unwrap();
    assert_eq!(view.own.len(), 1);
    assert_eq!(view.set.as_ref().unwrap().ledger_entry_id, set.id);
    let (kind, payload) = head_payload(&app).await;
    assert_eq!(kind, EntryKind::BudgetSet.as_str());
    assert_eq!(
        payload,
        json!({"identity_id": agent, "limits": [{"window_seconds": 600, "mutations": 2}], "previous": [],
               "reason": "new agent"})
    );

    let answers = scales(&app, "agent", 3).await;
    use ActionStatus::{Completed, Denied};
    assert_eq!(statuses(&answers), [Completed, Completed, Denied]);
    let reason = &answers[2].decision.as_ref().unwrap().reasons[0];
    assert!(
        reason.contains(&format!("identity:{agent} (its own budget, budget.set {})", set.id))
            && reason.contains("mutations would be 3 within 600 s (the limit is 2)"),
        "{reason}"
    );
    let refused = app.store.entries_of_action(&answers[2].action_id).await.unwrap();
    let exceeded: Value = serde_json::from_str(&refused.last().unwrap().payload).unwrap();
    assert_eq!(
        (exceeded["set_in"].as_str(), exceeded["per"].as_str()),
        (Some(set.id.as_str()), Some("identity"))
    );
    // Another identity is not bounded by it.
    assert_eq!(statuses(&scales(&app, "other-agent", 3).await), [Completed; 3]);

    let (view, cleared) = app
        .pipeline
        .clear_identity_budget(admin, &agent, "trusted now")
        .await
        .unwrap();
    assert!(view.own.is_empty() && view.set.is_none());
    let (_, payload) = head_payload(&app).await;
    assert_eq!(
        payload,
        json!({"identity_id": agent, "limits": [], "previous": [{"window_seconds": 600, "mutations": 2}],
               "reason": "trusted now"})
    );
    assert_eq!(app.store.head().await.unwrap().unwrap().id, cleared.id);
    assert_eq!(statuses(&scales(&app, "agent", 2).await), [Completed; 2]);
    let again = app.pipeline.clear_identity_budget(admin, &agent, "twice").await;
    assert!(matches!(again, Err(GatewayError::Conflict(_))), "{again:?}");
}

/// The identity's own limits and the configured ones are all checked on the same usage: the strictest wins,
/// whichever it is; a second `budget.set` records the limits it replaced.
#[tokio::test]
async fn own_and_configured_limits_combine_and_the_strictest_wins() {
    let app = app_with(budgets(
        json!([{"per": "identity", "window_seconds": 600, "mutations": 4}]),
    ))
    .await;
    let agent = app.caller("agent").identity.id.clone();
    let admin = app.caller("admin");
    let tight = limits(json!([{"window_seconds": 600, "deletes": 0}, {"window_seconds": 60, "mutations": 2}]));
    app.pipeline
        .set_identity_budget(admin, &agent, tight, "tight")
        .await
        .unwrap();
    use ActionStatus::{Completed, Denied};
    assert_eq!(
        statuses(&scales(&app, "agent", 3).await),
        [Completed, Completed, Denied]
    );

    // Looser than the configured budget: the configured one (4 mutations, counting the 2 admitted) refuses.
    let loose = limits(json!([{"window_seconds": 600, "mutations": 100}]));
    app.pipeline
        .set_identity_budget(admin, &agent, loose, "loose")
        .await
        .unwrap();
    let (_, payload) = head_payload(&app).await;
    assert_eq!(payload["previous"].as_array().unwrap().len(), 2, "{payload}");
    let answers = scales(&app, "agent", 3).await;
    assert_eq!(statuses(&answers), [Completed, Completed, Denied]);
    let reason = &answers[2].decision.as_ref().unwrap().reasons[0];
    assert!(
        !reason.contains("its own budget") && reason.contains("(the limit is 4)"),
        "{reason}"
    );

    let view = app.pipeline.identity_budget(admin, &agent).await.unwrap();
    let view = serde_json::to_value(&view).unwrap();
    assert_eq!(view["own"][0]["used"]["mutations"], 4, "{view}");
    assert_eq!(view["configured"][0]["per"], "identity", "{view}");
    assert_eq!(view["configured"][0]["used"]["mutations"], 4, "{view}");
}

/// Only an admin changes a budget, never through an agent's key (even one with the admin role), never its own,
/// never a person an agent could act as; limits are checked as the configuration's; unknown identities are 404.
#[tokio::test]
async fn who_may_change_a_budget_and_what_is_refused() {
    let app = app_with(Budgets::default()).await;
    let agent = app.caller("agent").identity.id.clone();
    let ok = || limits(json!([{"window_seconds": 600, "mutations": 2}]));
    let set = |name: &'static str, id: String, limits: Vec<IdentityLimit>, reason: &'static str| {
        let (pipeline, caller) = (app.pipeline.clone(), app.caller(name).clone());
        async move { pipeline.set_identity_budget(&caller, &id, limits, reason).await }
    };
    let forbidden = |result: Result<_, GatewayError>, what: &str| match result {
        Err(GatewayError::Forbidden(message)) => message,
        other => panic!("{what}: {other:?}"),
    };
    forbidden(set("approver", agent.clone(), ok(), "r").await, "not an admin");
    let message = forbidden(
        set("admin-agent", agent.clone(), ok(), "r").await,
        "an agent with the admin role",
    );
    assert!(message.contains("agent's key"), "{message}");
    let admin_agent = app.caller("admin-agent").identity.id.clone();
    forbidden(set("admin-agent", admin_agent, ok(), "r").await, "an agent on itself");
    let second = app.caller("second-admin").identity.id.clone();
    let message = forbidden(set("second-admin", second, ok(), "r").await, "an admin on itself");
    assert!(message.contains("own budget"), "{message}");
    // A person the agent created could be the agent's hands: refused.
    let new = NewIdentity {
        name: "made-by-agent".into(),
        kind: domain::IdentityKind::Human,
        roles: vec!["admin".into()],
        scopes: Vec::new(),
        groups: Vec::new(),
    };
    let (_, issued) = app
        .directory
        .create(&app.caller("admin-agent").identity.id, new)
        .await
        .unwrap();
    let puppet = app.directory.authenticate(&issued.api_key).await.unwrap();
    let result = app.pipeline.set_identity_budget(&puppet, &agent, ok(), "r").await;
    let message = forbidden(result, "a person an agent created");
    assert!(message.contains("an agent could act as"), "{message}");

    for (bad, what) in [
        (json!([]), "no limit"),
        (json!([{"window_seconds": 0, "mutations": 1}]), "a zero window"),
        (
            json!([{"window_seconds": 2_592_001, "mutations": 1}]),
            "a window over 30 days",
        ),
        (json!([{"window_seconds": 60}]), "no counter"),
        (json!([{"window_seconds": 60, "deletes": -1}]), "a negative limit"),
        (
            json!([{"window_seconds": 60, "deletes": 9_007_199_254_740_992_i64}]),
            "a limit over 2^53 - 1",
        ),
        (
            json!(vec![json!({"window_seconds": 60, "mutations": 1}); 11]),
            "eleven limits",
        ),
    ] {
        let result = set("admin", agent.clone(), limits(bad), "r").await;
        assert!(matches!(result, Err(GatewayError::BadRequest(_))), "{what}: {result:?}");
    }
    let blank = set("admin", agent.clone(), ok(), " \t ").await;
    assert!(matches!(blank, Err(GatewayError::BadRequest(_))), "{blank:?}");
    let unknown = set("admin", "agt_0000".into(), ok(), "r").await;
    assert!(matches!(unknown, Err(GatewayError::NotFound(_))), "{unknown:?}");
    // Nothing refused was recorded or stored.
    let (kind, _) = head_payload(&app).await;
    assert_ne!(kind, EntryKind::BudgetSet.as_str());
    let view = app.pipeline.identity_budget(app.caller("admin"), &agent).await.unwrap();
    assert!(view.own.is_empty());

    // Reading: the admin and the identity itself; nobody else.
    assert!(app.pipeline.identity_budget(app.caller("agent"), &agent).await.is_ok());
    let other = app.pipeline.identity_budget(app.caller("other-agent"), &agent).await;
    assert!(matches!(other, Err(GatewayError::Forbidden(_))), "{other:?}");
}

/// `per = "group:NAME"`: one budget shared by every identity in the group (named without regard to ASCII
/// case); identities outside it are not counted.
#[tokio::test]
async fn a_group_budget_is_shared_by_the_groups_members() {
    let app = TestApp::new()
        .with_cluster(cluster())
        .with_identity("sre-1", &[Role::Operator], AGENT_SCOPES)
        .with_identity("sre-2", &[Role::Operator], AGENT_SCOPES)
        .with_identity("outsider", &[Role::Operator], AGENT_SCOPES)
        .with_groups("sre-1", &["SRE"])
        .with_groups("sre-2", &["sre", "oncall"])
        .with_budgets(budgets(
            json!([{"per": "group:Sre", "window_seconds": 600, "mutations": 3}]),
        ))
        .build()
        .await;
    use ActionStatus::{Completed, Denied};
    assert_eq!(statuses(&scales(&app, "sre-1", 2).await), [Completed; 2]);
    let answers = scales(&app, "sre-2", 2).await;
    assert_eq!(statuses(&answers), [Completed, Denied]);
    let refused = app.store.entries_of_action(&answers[1].action_id).await.unwrap();
    let exceeded: Value = serde_json::from_str(&refused.last().unwrap().payload).unwrap();
    assert_eq!(
        (exceeded["per"].as_str(), exceeded["subject"].as_str()),
        (Some("group:Sre"), Some("group:sre"))
    );
    assert_eq!(statuses(&scales(&app, "outsider", 4).await), [Completed; 4]);

    let view = app
        .pipeline
        .identity_budget(app.caller("admin"), &app.caller("sre-2").identity.id)
        .await;
    let view = serde_json::to_value(view.unwrap()).unwrap();
    assert_eq!(view["configured"][0]["used"]["mutations"], 3, "{view}");
    let view = app
        .pipeline
        .identity_budget(app.caller("admin"), &app.caller("outsider").identity.id)
        .await;
    assert_eq!(serde_json::to_value(view.unwrap()).unwrap()["configured"], json!([]));
}

/// A refusal replaces the decision in the ledger writer's commit, while the action's intent was stored beside
/// it (it would have executed): nothing reaches the cluster, the ledger ends with `budget.exceeded`, and a
/// gateway that stopped right there (the row left RUNNING) is recovered as DENIED without sending or recording
/// anything more.
#[tokio::test]
async fn a_refused_mutation_sends_nothing_even_when_recovered() {
    let cluster = cluster();
    let app = TestApp::new()
        .with_cluster(cluster.clone())
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_budgets(budgets(
            json!([{"per": "identity", "window_seconds": 600, "mutations": 1}]),
        ))
        .build()
        .await;
    use ActionStatus::{Completed, Denied};
    let answers = scales(&app, "agent", 2).await;
    assert_eq!(statuses(&answers), [Completed, Denied]);
    assert_eq!(cluster.changes(), 1, "only the admitted SCALE reached the cluster");
    let refused = &answers[1].action_id;
    let kinds = |entries: &[ledger_core::Entry]| entries.iter().map(|e| e.kind.clone()).collect::<Vec<_>>();
    let entries = app.store.entries_of_action(refused).await.unwrap();
    assert_eq!(
        kinds(&entries),
        [EntryKind::ActionRequested.as_str(), EntryKind::BudgetExceeded.as_str()],
        "the refusal stands where the decision would"
    );
    assert!(
        app.store.intent(refused).await.unwrap().is_some(),
        "the intent was stored beside the decision's commit"
    );

    // The gateway stops before the row's final status: recovery resolves it from the ledger alone.
    let mut row = app.store.action(refused).await.unwrap().unwrap();
    row.status = ActionStatus::Running;
    app.store.update_action(&row).await.unwrap();
    assert_eq!(app.pipeline.recover_interrupted().await.unwrap(), 1);
    let row = app.store.action(refused).await.unwrap().unwrap();
    assert_eq!(row.status, Denied);
    let after = app.store.entries_of_action(refused).await.unwrap();
    assert_eq!(kinds(&after), kinds(&entries), "recovery recorded nothing more");
    assert_eq!(cluster.changes(), 1, "and sent nothing");
}

/// A group budget's name is checked at start like the rest of the configuration.
#[test]
fn group_names_are_checked() {
    for bad in ["group:", "group:a\u{7}b", "role:nobody", "groups:sre"] {
        let parsed: Result<Budgets, _> =
            serde_json::from_value(json!({"limits": [{"per": bad, "window_seconds": 60, "mutations": 1}]}));
        assert!(parsed.is_err(), "{bad}");
    }
    let long = format!("group:{}", "g".repeat(257));
    let parsed: Result<Budgets, _> =
        serde_json::from_value(json!({"limits": [{"per": long, "window_seconds": 60, "mutations": 1}]}));
    assert!(parsed.is_err());
    let too_big = json!({"limits": [{"per": "global", "window_seconds": 60, "replicas": 9_007_199_254_740_992_i64}]});
    assert!(serde_json::from_value::<Budgets>(too_big).unwrap().validate().is_err());
}

/// While no identity has a budget of its own, a store answers without a query; a budget set through another
/// store (another gateway) on the same database applies there within `NO_ROWS_TTL`, and at once through the
/// store that set it.
#[tokio::test]
async fn a_budget_set_through_another_gateway_applies_within_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let first = storage::Store::connect(&url).await.unwrap();
    first.migrate().await.unwrap();
    let second = storage::Store::connect(&url).await.unwrap();
    assert_eq!(first.identity_budget("agt_1").await.unwrap(), None);
    let row = |id: &str| storage::IdentityBudgetRow {
        identity_id: id.into(),
        limits: r#"[{"window_seconds":60,"mutations":1}]"#.into(),
        longest_window_seconds: 60,
        reason: "r".into(),
        set_by: "usr_1".into(),
        set_at: gateway::now(),
        recorded_entry: "evt_1".into(),
    };
    second.put_identity_budget(&row("agt_1")).await.unwrap();
    assert!(
        second.identity_budget("agt_1").await.unwrap().is_some(),
        "at once where it was set"
    );
    assert_eq!(
        first.identity_budget("agt_1").await.unwrap(),
        None,
        "remembered as none"
    );
    tokio::time::sleep(storage::NO_ROWS_TTL + std::time::Duration::from_millis(200)).await;
    assert!(
        first.identity_budget("agt_1").await.unwrap().is_some(),
        "asked again after the TTL"
    );
    assert_eq!(first.longest_identity_budget_window().await.unwrap(), Some(60));
    assert!(second.delete_identity_budget("agt_1").await.unwrap());
    assert_eq!(second.identity_budget("agt_1").await.unwrap(), None);
    assert_eq!(
        first.identity_budget("agt_1").await.unwrap(),
        None,
        "rows remembered: looked up"
    );
}

/// A stored budget nobody can read (an edited database) fails the identity's mutations closed, with
/// `action.failed` at stage `budget`; an admin can still clear it.
#[tokio::test]
async fn an_unreadable_budget_fails_mutations_closed_until_cleared() {
    let app = app_with(Budgets::default()).await;
    let agent = app.caller("agent").identity.id.clone();
    let row = storage::IdentityBudgetRow {
        identity_id: agent.clone(),
        limits: "not json".into(),
        longest_window_seconds: 60,
        reason: "edited".into(),
        set_by: "usr_1".into(),
        set_at: gateway::now(),
        recorded_entry: "evt_1".into(),
    };
    app.store.put_identity_budget(&row).await.unwrap();
    let answer = app.pipeline.submit(app.caller("agent"), scale(3)).await.unwrap();
    assert_eq!(answer.status, ActionStatus::Failed, "{answer:?}");
    let entries = app.store.entries_of_action(&answer.action_id).await.unwrap();
    let failed: Value = serde_json::from_str(&entries.last().unwrap().payload).unwrap();
    assert_eq!(
        (failed["stage"].as_str(), failed["error"]["code"].as_str()),
        (Some("budget"), Some("budget_unreadable"))
    );
    let view = app.pipeline.identity_budget(app.caller("admin"), &agent).await;
    assert!(matches!(view, Err(GatewayError::Unavailable(_))), "{view:?}");
    app.pipeline
        .clear_identity_budget(app.caller("admin"), &agent, "repaired")
        .await
        .unwrap();
    assert_eq!(statuses(&scales(&app, "agent", 1).await), [ActionStatus::Completed]);
}

fn scale_of(name: &str, replicas: u32) -> Value {
    json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
           "resource_name": name, "parameters": {"replicas": replicas}, "justification": "load test"})
}

/// `workloads_percent`: with ten Deployments in the namespace, 20 % lets an agent change two of them in the
/// window (again and again), and refuses a third one in percent, with the numbers it was counted from.
#[tokio::test]
async fn a_share_of_the_namespaces_workloads_is_limited_in_percent() {
    let mut cluster = FakeCluster::new("local");
    for n in 0..10 {
        cluster = cluster.with_deployment("staging", &format!("web-{n}"), 1);
    }
    let app = TestApp::new()
        .with_cluster(Arc::new(cluster))
        .with_identity("agent", &[Role::Operator], AGENT_SCOPES)
        .with_identity("other-agent", &[Role::Operator], AGENT_SCOPES)
        .with_budgets(budgets(
            json!([{"per": "identity", "window_seconds": 600, "workloads_percent": 20}]),
        ))
        .build()
        .await;
    let agent = app.caller("agent");
    for (name, replicas) in [("web-0", 2), ("web-1", 2), ("web-0", 3), ("web-1", 3)] {
        let answer = app.pipeline.submit(agent, scale_of(name, replicas)).await.unwrap();
        assert_eq!(answer.status, ActionStatus::Completed, "{name}: {answer:?}");
    }
    let third = app.pipeline.submit(agent, scale_of("web-2", 2)).await.unwrap();
    assert_eq!(third.status, ActionStatus::Denied, "{third:?}");
    let reason = &third.decision.as_ref().unwrap().reasons[0];
    assert!(
        reason.contains("workloads_percent would be 30 within 600 s (the limit is 20)"),
        "{reason}"
    );
    let (kind, payload) = head_payload(&app).await;
    assert_eq!(kind, EntryKind::BudgetExceeded.as_str());
    assert_eq!(payload["metric"], "workloads_percent");
    assert_eq!(
        (
            payload["used"]["workloads"].clone(),
            payload["used"]["namespace_workloads"].clone()
        ),
        (json!(2), json!(10))
    );
    // Per identity: another agent's share is its own.
    let other = app
        .pipeline
        .submit(app.caller("other-agent"), scale_of("web-2", 2))
        .await
        .unwrap();
    assert_eq!(other.status, ActionStatus::Completed, "{other:?}");
}

/// `workloads_percent` is checked like the other limits: 0 to 100.
#[test]
fn a_workload_share_is_a_percentage() {
    let budgets: Budgets =
        serde_json::from_value(json!({"limits": [{"per": "global", "window_seconds": 60, "workloads_percent": 101}]}))
            .unwrap();
    let refused = budgets.validate().unwrap_err();
    assert!(refused.contains("workloads_percent 101: 0 to 100"), "{refused}");
}
