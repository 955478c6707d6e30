//! The incident walk-through of docs/safety.md, against the real API server on both databases: an agent starts
//! deleting ConfigMaps, its budget stops it at the limit, the `budget_hits` breaker suspends it, an admin freezes
//! the namespace, and the ledger shows each step in order (printed with `--nocapture`) and verifies.

use serde_json::{Value, json};

use super::{KubeWorld, Server, TestApp, create_identities, verify_json};

on_both!(an_incident_from_the_first_delete_to_the_freeze);

/// Policy only observes (ledger mode, as while a team rolls the gateway out): the budget and the breaker are
/// final in every mode, and they are what stops the agent here.
const CONFIG: &str = "\
policy_mode = \"ledger\"

[[budgets.limits]]
per = \"identity\"
window_seconds = 600
deletes = 3

[breakers]
budget_hits = { count = 2, window_seconds = 600 }
";

/// The ledger's entries from seq `after` on, as `(kind, payload)`.
async fn entries_since(server: &Server, after: u64) -> Vec<(String, Value)> {
    let (_, page) = server
        .admin_get(&format!("/api/v1/ledger/entries?after_seq={after}&limit=1000"))
        .await;
    page["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["payload"].clone()))
        .collect()
}

async fn head_seq(server: &Server) -> u64 {
    let (_, page) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

async fn an_incident_from_the_first_delete_to_the_freeze(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.config_maps(6).await;
    let args = world.serve_args_with_config(app.dir.path(), "incident.toml", CONFIG);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);
    let ids = create_identities(&server, &ns, &[("cleanup-bot", "agent", &["operator"])]).await;
    let (agent, agent_id) = (&ids["cleanup-bot"].0, &ids["cleanup-bot"].1);
    let start = head_seq(&server).await;

    // The agent starts deleting, one ConfigMap after another.
    let mut answers = Vec::new();
    for n in 0..6 {
        let delete = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "ConfigMap",
                            "resource_name": format!("cm-{n}"), "justification": "tidy up old config"});
        answers.push(server.post("/api/v1/actions", agent, &delete.to_string()).await);
    }
    let seen: Vec<(u16, &str)> = answers
        .iter()
        .map(|(code, a)| (*code, a["status"].as_str().unwrap_or("-")))
        .collect();
    // Three deletes within the budget; two refused by it (the second trips the breaker); then the key is dead.
    assert_eq!(
        seen,
        [
            (200, "COMPLETED"),
            (200, "COMPLETED"),
            (200, "COMPLETED"),
            (200, "DENIED"),
            (200, "DENIED"),
            (401, "-")
        ],
        "{answers:?}"
    );
    let message = answers[5].1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("suspended"), "{message}");

    // The admin freezes the namespace.
    let freeze = json!({"scope": {"kind": "namespace", "namespace": ns}, "reason": "incident 42: cleanup-bot"});
    let (code, frozen) = server
        .post("/api/v1/freeze", &server.admin_key, &freeze.to_string())
        .await;
    assert_eq!(code, 201, "{frozen}");

    let steps: Vec<(String, Value)> = entries_since(&server, start)
        .await
        .into_iter()
        .filter(|(kind, _)| {
            [
                "action.executed",
                "budget.exceeded",
                "identity.suspended",
                "freeze.enabled",
            ]
            .contains(&kind.as_str())
        })
        .collect();
    println!("the incident in the ledger:");
    for (kind, payload) in &steps {
        let detail = match kind.as_str() {
            "budget.exceeded" => format!(
                "{} {} would be {} (limit {}), used {}",
                payload["subject"], payload["metric"], payload["would_be"], payload["limit"], payload["used"]
            ),
            "identity.suspended" => format!("{}", payload["reason"]),
            "freeze.enabled" => format!("{} {}", payload["scope"], payload["reason"]),
            _ => String::new(),
        };
        println!("  {kind:<20} {detail}");
    }
    let kinds: Vec<&str> = steps.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "action.executed",
            "action.executed",
            "action.executed",
            "budget.exceeded",
            "budget.exceeded",
            "identity.suspended",
            "freeze.enabled"
        ]
    );
    let exceeded = &steps[3].1;
    assert_eq!(
        (
            exceeded["metric"].as_str(),
            exceeded["would_be"].as_i64(),
            exceeded["limit"].as_i64()
        ),
        (Some("deletes"), Some(4), Some(3)),
        "{exceeded}"
    );
    let suspended = &steps[5].1;
    assert_eq!(suspended["identity_id"], json!(agent_id));
    assert!(
        suspended["reason"].as_str().unwrap().contains("budget_hits"),
        "{suspended}"
    );
    let left = world.admin_get(&format!("/api/v1/namespaces/{ns}/configmaps")).await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("cm-"))
        .collect();
    assert_eq!(names, ["cm-3", "cm-4", "cm-5"], "three deleted, then nothing");
    drop(server);
    let (code, report) = verify_json(app, &[]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
}
