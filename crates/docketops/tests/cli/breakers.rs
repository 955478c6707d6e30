//! Circuit breakers end to end (docs/safety.md): a real gateway process on the real API server, on SQLite and on
//! PostgreSQL. An agent whose actions keep being denied is suspended at its third denial (its key answers 401
//! "suspended", `identity.suspended` by `system` carries the breaker's reason, the approval webhook is told); an
//! admin reactivates it and it acts again, counting afresh. An agent that keeps hitting its blast-radius budget
//! is suspended by `budget_hits`. The ledger verifies.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{KubeWorld, Server, TestApp, create_identities, verify_json};

on_both!(a_breaker_suspends_an_agent_at_its_third_denial);

const CONFIG: &str = r#"
# Policy only observes (a delete would wait for an approval); guardrails and budgets still refuse.
policy_mode = "ledger"

[breakers]
denials = { count = 3, window_seconds = 600 }
budget_hits = { count = 2, window_seconds = 600 }

[[budgets.limits]]
per = "identity"
window_seconds = 600
deletes = 1
"#;

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

/// The `identity.suspended` entries of the ledger for `identity_id`.
async fn suspensions(server: &Server, identity_id: &str) -> Vec<Value> {
    let (_, page) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "identity.suspended" && e["payload"]["identity_id"] == identity_id)
        .cloned()
        .collect()
}

/// Waits until the webhook was told of `count` suspensions.
async fn told(received: &Mutex<Vec<Value>>, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events: Vec<Value> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "identity.suspended")
            .cloned()
            .collect();
        if events.len() >= count {
            return events;
        }
        assert!(Instant::now() < deadline, "the webhook was told of {events:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_breaker_suspends_an_agent_at_its_third_denial(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web", 1).await;
    world.config_maps(3).await;
    let (hook, received) = webhook_receiver().await;
    let mut args = world.serve_args_with_config(app.dir.path(), "breakers.toml", CONFIG);
    args.extend(["--approval-webhook".into(), hook]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);
    let ids = create_identities(
        &server,
        &ns,
        &[("runaway", "agent", &["operator"]), ("deleter", "agent", &["operator"])],
    )
    .await;
    let (key, id) = (&ids["runaway"].0, &ids["runaway"].1);
    let scale = |replicas: u32| {
        json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web",
               "parameters": {"replicas": replicas}, "justification": "breaker test"})
        .to_string()
    };
    // Denied: outside its scope (another namespace), then a blocked namespace, then outside its scope again.
    let denied = |n: usize| {
        let namespace = if n % 2 == 1 {
            "kube-system"
        } else {
            world.other_ns.as_str()
        };
        json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
               "resource_name": "web", "parameters": {"replicas": 2}, "justification": "probing"})
        .to_string()
    };
    let (status, first) = server.post("/api/v1/actions", key, &scale(2)).await;
    assert_eq!((status, first["status"].as_str()), (200, Some("COMPLETED")), "{first}");
    for n in 0..3 {
        let (status, answer) = server.post("/api/v1/actions", key, &denied(n)).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("DENIED")),
            "denial {n}: {answer}"
        );
        let suspended = suspensions(&server, id).await;
        assert_eq!(
            suspended.len(),
            usize::from(n == 2),
            "after denial {}: {suspended:?}",
            n + 1
        );
    }

    // Suspended at the third: its key answers 401 with the reason, and nothing it asks reaches the cluster.
    let (status, refused) = server.post("/api/v1/actions", key, &scale(3)).await;
    assert_eq!(status, 401, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("suspended"), "{message}");
    let entry = &suspensions(&server, id).await[0];
    assert_eq!(entry["actor"], "system", "{entry}");
    assert_eq!(
        entry["payload"]["reason"], "circuit breaker `denials`: 3 DENIED actions within 600 s (the limit is 3)",
        "{entry}"
    );
    let webhook = &told(&received, 1).await[0];
    assert_eq!(
        (
            &webhook["identity"]["id"],
            &webhook["breaker"],
            &webhook["ledger_entry_id"]
        ),
        (&json!(id), &json!("denials"), &entry["id"]),
        "{webhook}"
    );
    let deployment = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .await;
    assert_eq!(deployment["spec"]["replicas"], 2, "the refused scale did not run");

    // An admin reactivates it: it acts again, and one more denial does not suspend it (counting afresh).
    let (status, reactivated) = server
        .post(
            &format!("/api/v1/identities/{id}/reactivate"),
            &server.admin_key,
            &json!({"reason": "loop fixed"}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{reactivated}");
    let (status, again) = server.post("/api/v1/actions", key, &scale(3)).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("COMPLETED")), "{again}");
    let (_, answer) = server.post("/api/v1/actions", key, &denied(0)).await;
    assert_eq!(answer["status"], "DENIED", "{answer}");
    let (status, still) = server.post("/api/v1/actions", key, &scale(1)).await;
    assert_eq!((status, still["status"].as_str()), (200, Some("COMPLETED")), "{still}");
    let deployment = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .await;
    assert_eq!(deployment["spec"]["replicas"], 1);

    budget_hits_suspend(&server, &world, &ids["deleter"], &received).await;
    let (code, report) = verify_json(app, &[]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
}

/// `budget_hits = 2` with a budget of one delete: the first delete runs, the next two are refused by the budget,
/// and the second refusal suspends the agent (before `denials` would, at three).
async fn budget_hits_suspend(
    server: &Server,
    world: &KubeWorld,
    (key, id): &(String, String),
    told_to: &Mutex<Vec<Value>>,
) {
    let delete = |n: usize| {
        json!({"action_type": "DELETE", "namespace": world.app_ns, "resource_kind": "ConfigMap",
               "resource_name": format!("cm-{n}"), "justification": "cleanup loop"})
        .to_string()
    };
    let (_, deleted) = server.post("/api/v1/actions", key, &delete(0)).await;
    assert_eq!(deleted["status"], "COMPLETED", "{deleted}");
    for n in 1..=2 {
        let (status, refused) = server.post("/api/v1/actions", key, &delete(n)).await;
        assert_eq!(status, 200, "{refused}");
        assert_eq!(refused["decision"]["policy"], "budget.exceeded", "{refused}");
        assert_eq!(
            suspensions(server, id).await.len(),
            usize::from(n == 2),
            "after budget hit {n}"
        );
    }
    let (status, refused) = server.post("/api/v1/actions", key, &delete(1)).await;
    assert_eq!(status, 401, "{refused}");
    let entry = &suspensions(server, id).await[0];
    assert_eq!(entry["actor"], "system", "{entry}");
    assert_eq!(
        entry["payload"]["reason"],
        "circuit breaker `budget_hits`: 2 actions refused by a blast-radius budget (budget.exceeded) within 600 s \
         (the limit is 2)",
        "{entry}"
    );
    let webhook = &told(told_to, 2).await[1];
    assert_eq!(
        (&webhook["identity"]["id"], &webhook["breaker"]),
        (&json!(id), &json!("budget_hits"))
    );
    let left = world
        .admin_get(&format!("/api/v1/namespaces/{}/configmaps", world.app_ns))
        .await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("cm-"))
        .collect();
    assert_eq!(names, ["cm-1", "cm-2"], "only the first delete ran");
}
