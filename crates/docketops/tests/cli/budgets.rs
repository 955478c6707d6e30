//! An identity's own budget end to end, against the real API server with two gateways on one database and no
//! configured budget: `docketops budget set` through one gateway bounds an agent's deletes through both (the
//! other one sees the first budget ever set within a second), the refusal names the `budget.set` entry, `show`
//! prints the usage, the agent's own key (even with the admin role) cannot loosen it, `clear` lifts it at
//! once on both, and the ledger verifies. And a budget on the share of a namespace's workloads, counted from the
//! real API server.

use std::time::Duration;

use serde_json::{Value, json};

use super::{KubeWorld, Server, TestApp, create_identities, stdout, verify_json};

on_both!(
    an_identity_budget_set_by_the_cli_bounds_an_agent_on_every_gateway,
    a_share_of_a_namespaces_workloads_is_bounded
);

async fn an_identity_budget_set_by_the_cli_bounds_an_agent_on_every_gateway(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.config_maps(8).await;
    let args = world.serve_args_with_config(app.dir.path(), "ledger-mode.toml", "policy_mode = \"ledger\"\n");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = (Server::start_with(app, &args), Server::start_with(app, &args));
    let ids = create_identities(
        &a,
        &ns,
        &[
            ("loop-bot", "agent", &["operator"]),
            ("admin-bot", "agent", &["admin", "operator"]),
        ],
    )
    .await;
    let ((agent, agent_id), admin_bot) = (&ids["loop-bot"], &ids["admin-bot"].0);
    let delete = |n: usize| {
        json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "ConfigMap",
               "resource_name": format!("cm-{n}"), "justification": "cleanup loop"})
        .to_string()
    };
    // Before any budget: gateway B runs a mutation (and remembers that no identity has a budget).
    let (_, first) = b.post("/api/v1/actions", agent, &delete(0)).await;
    assert_eq!(first["status"], "COMPLETED", "{first}");

    let cli = |key: &str, args: &[&str]| {
        let out = app
            .command()
            .arg("budget")
            .args(args)
            .env("DOCKETOPS_URL", &a.base)
            .env("DOCKETOPS_API_KEY", key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.success(),
            serde_json::from_str::<Value>(&stdout(&out)).unwrap_or(Value::Null),
            stderr,
        )
    };
    let set = [
        "set",
        "--identity",
        agent_id,
        "--window",
        "600",
        "--deletes",
        "2",
        "--limit",
        "window=3600,mutations=50",
        "--reason",
        "loop-bot deletes too much (test)",
    ];
    let (ok, answer, stderr) = cli(&a.admin_key, &set);
    assert!(ok, "{stderr}");
    let entry = answer["ledger_entry_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["budget"]["own"].as_array().unwrap().len(), 2, "{answer}");

    // The agent's own keys cannot loosen or lift it.
    for key in [agent, admin_bot] {
        let (ok, _, stderr) = cli(key, &["clear", "--identity", agent_id, "--reason", "mine"]);
        assert!(!ok && stderr.contains("403"), "{stderr}");
    }
    let (ok, _, stderr) = cli(admin_bot, &set);
    assert!(!ok && stderr.contains("403"), "{stderr}");

    // Gateway B sees the first budget ever set within a second; both count one usage.
    tokio::time::sleep(storage::NO_ROWS_TTL + Duration::from_millis(300)).await;
    let mut statuses = Vec::new();
    let mut refused = Value::Null;
    for n in 1..5 {
        let server = if n % 2 == 0 { &a } else { &b };
        let (status, answer) = server.post("/api/v1/actions", agent, &delete(n)).await;
        assert_eq!(status, 200, "{answer}");
        statuses.push(answer["status"].as_str().unwrap().to_owned());
        if answer["status"] == "DENIED" && refused.is_null() {
            refused = answer;
        }
    }
    assert_eq!(statuses, ["COMPLETED", "COMPLETED", "DENIED", "DENIED"]);
    let reason = refused["decision"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains(&format!("its own budget, budget.set {entry}"))
            && reason.contains("deletes would be 3 within 600 s (the limit is 2)"),
        "{reason}"
    );
    let (ok, shown, stderr) = cli(&a.admin_key, &["show", "--identity", agent_id]);
    assert!(ok, "{stderr}");
    assert_eq!(shown["own"][0]["used"]["deletes"], 2, "{shown}");
    assert_eq!(shown["set"]["ledger_entry_id"], entry.as_str(), "{shown}");

    // Cleared: both gateways let it act again at once.
    let (ok, _, stderr) = cli(
        &a.admin_key,
        &["clear", "--identity", agent_id, "--reason", "contained (test)"],
    );
    assert!(ok, "{stderr}");
    for (server, n) in [(&b, 5), (&a, 6)] {
        let (_, again) = server.post("/api/v1/actions", agent, &delete(n)).await;
        assert_eq!(again["status"], "COMPLETED", "{again}");
    }
    let (ok, _, stderr) = cli(&a.admin_key, &["clear", "--identity", agent_id, "--reason", "twice"]);
    assert!(!ok && stderr.contains("409"), "{stderr}");

    let (_, page) = a.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let sets = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "budget.set")
        .count();
    assert_eq!(sets, 2, "set and cleared: {page}");
    let (code, report) = verify_json(app, &[]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
}

/// `workloads_percent` against the real API server: the namespace holds four Deployments and a StatefulSet (five
/// workloads; its ConfigMaps are none), counted by the gateway's metadata LISTs; 40 % lets the agent change two
/// of them in the window, as often as it likes, and refuses a third in percent, with the counts.
async fn a_share_of_a_namespaces_workloads_is_bounded(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    for n in 0..4 {
        world.deployment(&format!("web-{n}"), 1).await;
    }
    world
        .admin_apply(&json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "store", "namespace": ns},
            "spec": {"serviceName": "store", "replicas": 1, "selector": {"matchLabels": {"app": "store"}},
                     "template": {"metadata": {"labels": {"app": "store"}},
                                  "spec": {"containers": [{"name": "db", "image": "registry.example/db:1"}]}}}}))
        .await;
    world.config_maps(3).await;
    let share = "policy_mode = \"ledger\"\n[[budgets.limits]]\nper = \"namespace\"\nwindow_seconds = 600\n\
                 workloads_percent = 40\n";
    let args = world.serve_args_with_config(app.dir.path(), "share.toml", share);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);
    let ids = create_identities(&server, &ns, &[("scale-bot", "agent", &["operator"])]).await;
    let agent = &ids["scale-bot"].0;
    let scale = |name: &str, replicas: u32| {
        json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": name,
               "parameters": {"replicas": replicas}, "justification": "rebalance"})
        .to_string()
    };
    for (name, replicas) in [("web-0", 2), ("web-1", 2), ("web-0", 3)] {
        let (_, answer) = server.post("/api/v1/actions", agent, &scale(name, replicas)).await;
        assert_eq!(answer["status"], "COMPLETED", "{name}: {answer}");
    }
    let (_, refused) = server.post("/api/v1/actions", agent, &scale("web-2", 2)).await;
    assert_eq!(refused["status"], "DENIED", "{refused}");
    let reason = refused["decision"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("workloads_percent would be 60 within 600 s (the limit is 40)"),
        "{reason}"
    );
    let entry = server.last_entry(refused["action_id"].as_str().unwrap(), agent).await;
    assert_eq!(entry["kind"], "budget.exceeded", "{entry}");
    assert_eq!(entry["payload"]["used"]["namespace_workloads"], 5, "{entry}");
    assert_eq!(entry["payload"]["used"]["workloads"], 2, "{entry}");
    let web2 = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-2"))
        .await;
    assert_eq!(web2["spec"]["replicas"], 1, "nothing reached the cluster");
    let (code, report) = verify_json(app, &[]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
}
