//! The kill switch against the real API server, with two gateways on one database: a freeze made on one
//! stops a loop of actions submitted to the other at once (the delay is measured and printed), a pending
//! approval in the frozen scope cannot be granted, an agent's key cannot lift it (not even an admin
//! agent's), reads still work, `docketops freeze`/`unfreeze` drive it, and every step verifies in the ledger.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{KubeWorld, Server, TestApp, create_identities, stdout, verify_json};

on_both!(
    a_freeze_stops_every_replica_at_once,
    a_budget_stops_a_delete_loop_across_two_gateways
);

/// One action of the loop: when it was sent and answered, and the answer.
struct Sent {
    sent: Instant,
    answered: Instant,
    status: String,
    policy: String,
}

async fn delete(server: &Server, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .delete(format!("{}{path}", server.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Scales `web` again and again through `server` until `stop`, keeping every answer.
fn scale_loop(base: String, key: String, ns: String, log: Arc<Mutex<Vec<Sent>>>, stop: Arc<Mutex<bool>>) {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for n in 0u64.. {
            if *stop.lock().unwrap() {
                break;
            }
            let body = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                              "resource_name": "web", "parameters": {"replicas": 1 + n % 3},
                              "justification": "load test"});
            let sent = Instant::now();
            let response = client
                .post(format!("{base}/api/v1/actions"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let answer: Value = response.json().await.unwrap();
            log.lock().unwrap().push(Sent {
                sent,
                answered: Instant::now(),
                status: answer["status"].as_str().unwrap_or_default().to_owned(),
                policy: answer["decision"]["policy"].as_str().unwrap_or_default().to_owned(),
            });
        }
    });
}

async fn wait_for(log: &Mutex<Vec<Sent>>, status: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.lock().unwrap().iter().filter(|s| s.status == status).count() < count {
        assert!(Instant::now() < deadline, "no {count} {status} actions in a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_freeze_stops_every_replica_at_once(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web", 1).await;
    world.deployment("doomed", 1).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Server::start_with(app, &args);
    // The second replica: the same database; the first one's admin key works on both.
    let b = Server::start_with(app, &args);
    let admin = a.admin_key.clone();
    let ids = create_identities(
        &a,
        &ns,
        &[
            ("loop-bot", "agent", &["operator"]),
            ("admin-bot", "agent", &["admin", "operator"]),
            ("approver", "human", &["approver"]),
        ],
    )
    .await;
    let (agent, approver, admin_bot) = (&ids["loop-bot"].0, &ids["approver"].0, &ids["admin-bot"].0);

    // A HIGH-risk DELETE waits for an approval (on replica B).
    let doomed = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                        "resource_name": "doomed", "justification": "retire it"});
    let (status, pending) = b.post("/api/v1/actions", agent, &doomed.to_string()).await;
    assert_eq!(
        (status, pending["status"].as_str()),
        (200, Some("PENDING_APPROVAL")),
        "{pending}"
    );
    let pending_id = pending["action_id"].as_str().unwrap().to_owned();

    // A loop of changes on replica B; the freeze is made on replica A.
    let (log, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(false)));
    scale_loop(b.base.clone(), agent.clone(), ns.clone(), log.clone(), stop.clone());
    wait_for(&log, "COMPLETED", 3).await;
    let freeze = json!({"scope": {"kind": "namespace", "namespace": ns}, "reason": "loop-bot runs away (test)"});
    let freeze_sent = Instant::now();
    let (status, frozen) = a.post("/api/v1/freeze", &admin, &freeze.to_string()).await;
    let frozen_at = Instant::now();
    assert_eq!(status, 201, "{frozen}");
    let freeze_id = frozen["freeze"]["id"].as_str().unwrap().to_owned();
    wait_for(&log, "DENIED", 3).await;
    *stop.lock().unwrap() = true;
    {
        let log = log.lock().unwrap();
        let first_refused = log.iter().find(|s| s.policy == "freeze.active").unwrap();
        // A freeze refusal cannot come before the freeze was asked for: the delay is never clamped.
        assert!(first_refused.answered > freeze_sent);
        let delay = first_refused.answered - freeze_sent;
        println!(
            "freeze sent to replica A → first refusal answered by replica B: {delay:?} (the freeze's own request \
             took {:?})",
            frozen_at - freeze_sent
        );
        assert!(
            delay < Duration::from_secs(1),
            "the freeze took {delay:?} to stop replica B"
        );
        for sent in log.iter().filter(|s| s.sent >= frozen_at) {
            assert_eq!(
                (sent.status.as_str(), sent.policy.as_str()),
                ("DENIED", "freeze.active")
            );
        }
        assert!(log.iter().all(|s| s.status == "COMPLETED" || s.status == "DENIED"));
    }
    let (status, again) = a.post("/api/v1/freeze", &admin, &freeze.to_string()).await;
    assert_eq!(status, 409, "one active freeze per scope: {again}");

    // The pending approval cannot be granted while frozen; the Deployment stays.
    let approve = format!("/api/v1/approvals/{pending_id}/approve");
    let (status, refused) = b.post(&approve, approver, "{}").await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("frozen"),
        "{refused}"
    );
    let (_, action) = b.get(&format!("/api/v1/actions/{pending_id}"), Some(agent)).await;
    assert_eq!(action["action"]["status"], "PENDING_APPROVAL", "{action}");

    // Reads still work.
    let read = json!({"action_type": "GET", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web"});
    let (_, got) = b.post("/api/v1/actions", agent, &read.to_string()).await;
    assert_eq!(got["status"], "COMPLETED", "{got}");

    // No agent lifts a freeze, not even one with the admin role.
    let lift = json!({"reason": "I am done"});
    for key in [agent, admin_bot] {
        let (status, answer) = delete(&a, &format!("/api/v1/freeze/{freeze_id}"), key, &lift).await;
        assert_eq!(status, 403, "{answer}");
    }
    let by_scope = json!({"scope": {"kind": "namespace", "namespace": ns}, "reason": "I am done"});
    let (status, answer) = delete(&a, "/api/v1/freeze", admin_bot, &by_scope).await;
    assert_eq!(status, 403, "{answer}");

    // The CLI: list, then lift by scope with a person's admin key.
    let cli = |args: &[&str]| {
        app.command()
            .args(args)
            .env("DOCKETOPS_URL", &b.base)
            .env("DOCKETOPS_API_KEY", &admin)
            .output()
            .unwrap()
    };
    let listed = cli(&["freeze", "--list"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed["freezes"][0]["id"], freeze_id.as_str(), "{listed}");
    let out = cli(&[
        "unfreeze",
        "--scope",
        "namespace",
        "--namespace",
        &ns,
        "--reason",
        "contained",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["unfreeze", "--id", &freeze_id, "--reason", "twice"]);
    assert!(!out.status.success(), "a lifted freeze cannot be lifted again");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Lifted: the approval now executes, and the loop's changes run again.
    let (status, approved) = b.post(&approve, approver, "{}").await;
    assert_eq!(
        (status, approved["status"].as_str()),
        (200, Some("COMPLETED")),
        "{approved}"
    );
    let scale = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                       "resource_name": "web", "parameters": {"replicas": 2}, "justification": "after"});
    let (_, scaled) = a.post("/api/v1/actions", agent, &scale.to_string()).await;
    assert_eq!(scaled["status"], "COMPLETED", "{scaled}");

    // Every step is in the ledger, which verifies.
    let (_, page) = a.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let kinds: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["freeze.enabled", "freeze.refused", "freeze.lifted", "approval.refused"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let (code, report) = verify_json(app, &[]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
}

/// An agent in a loop deleting ConfigMaps through two gateways on one database (ledger mode: policy only
/// observes) is stopped exactly at its budget of 5 deletes — not 5 per gateway —, the refusals carry the
/// counters and the limit, and once the window has passed it can act again.
async fn a_budget_stops_a_delete_loop_across_two_gateways(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.config_maps(9).await;
    let window = 6;
    let budgets = format!(
        "policy_mode = \"ledger\"\n[[budgets.limits]]\nper = \"identity\"\nwindow_seconds = {window}\ndeletes = 5\n"
    );
    let args = world.serve_args_with_config(app.dir.path(), "budgets.toml", &budgets);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = (Server::start_with(app, &args), Server::start_with(app, &args));
    let ids = create_identities(&a, &ns, &[("loop-bot", "agent", &["operator"])]).await;
    let agent = &ids["loop-bot"].0;
    let delete = |n: usize| {
        json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "ConfigMap",
               "resource_name": format!("cm-{n}"), "justification": "cleanup loop"})
        .to_string()
    };
    let started = Instant::now();
    let mut answers = Vec::new();
    for n in 0..8 {
        let server = if n % 2 == 0 { &a } else { &b };
        let (status, answer) = server.post("/api/v1/actions", agent, &delete(n)).await;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    assert!(
        started.elapsed() < Duration::from_secs(window),
        "the loop must run within one window"
    );
    let statuses: Vec<&str> = answers.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["COMPLETED"; 5]
            .iter()
            .chain(&["DENIED"; 3])
            .copied()
            .collect::<Vec<_>>()
    );
    let refused = &answers[5];
    assert_eq!(refused["decision"]["policy"], "budget.exceeded", "{refused}");
    let reason = refused["decision"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("deletes would be 6 within 6 s (the limit is 5)"),
        "{reason}"
    );
    let entry = b.last_entry(refused["action_id"].as_str().unwrap(), agent).await;
    assert_eq!(entry["kind"], "budget.exceeded", "{entry}");
    assert_eq!(
        (
            entry["payload"]["used"]["deletes"].as_i64(),
            entry["payload"]["limit"].as_i64()
        ),
        (Some(5), Some(5))
    );
    let left = world.admin_get(&format!("/api/v1/namespaces/{ns}/configmaps")).await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("cm-"))
        .collect();
    assert_eq!(names, ["cm-5", "cm-6", "cm-7", "cm-8"], "exactly five were deleted");

    // After the window the agent may act again.
    tokio::time::sleep(Duration::from_secs(window) + Duration::from_millis(500)).await;
    let (_, again) = a.post("/api/v1/actions", agent, &delete(8)).await;
    assert_eq!(again["status"], "COMPLETED", "{again}");
    let (code, report) = verify_json(app, &[]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
}
