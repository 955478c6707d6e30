//! Audit reconciliation with the real API server's audit log and audit webhook: the gateway's executions
//! reconcile, and a change made with the admin token directly is reported (and recorded) as a bypass.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BIN, KubeWorld, Server, TestApp, create_identities};

/// The bypass entries of the ledger for the Deployment `name`.
async fn bypasses_of(server: &Server, name: &str) -> Vec<Value> {
    let (_, entries) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "audit.bypass_detected" && e["payload"]["name"] == name)
        .cloned()
        .collect()
}

/// The admin's merge patch of `direct` (its creation, a server-side apply, is a bypass too).
fn is_the_patch(entry: &Value) -> bool {
    entry["payload"]["verb"] == "patch"
        && !entry["payload"]["request_uri"]
            .as_str()
            .unwrap_or_default()
            .contains("fieldManager")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_around_the_gateway_are_reported_and_executions_reconcile() {
    // Two gateways on one PostgreSQL: one serves the API to the test, the other (HTTPS, as API servers send
    // credentials over TLS only) receives cluster A's audit webhook.
    let app = TestApp::new("postgres", "audit").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    world.deployment("direct", 1).await;
    let port = std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_WEBHOOK_PORT").expect("kube-testenv's audit webhook port");
    let token = std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_WEBHOOK_TOKEN").unwrap();
    // Only this test's namespace is governed, so other tests' objects in the shared API server do not count.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("audit.toml");
    std::fs::write(&config, format!("[guardrails]\nallowed_namespaces = [{ns:?}]\n")).unwrap();
    let config = config.display().to_string();
    let mut args = world.serve_args();
    args.extend([
        "--config".into(),
        config.clone(),
        "--audit-webhook-token".into(),
        token.clone(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let cert = std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_WEBHOOK_CERT").unwrap();
    let key = std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_WEBHOOK_KEY").unwrap();
    let mut receiver_args = args.clone();
    receiver_args.extend(["--tls-cert", &cert, "--tls-key", &key]);
    // The API server's webhook posts to this port.
    let receiver = Server::start_on(&app, &format!("127.0.0.1:{port}"), &receiver_args);
    assert!(receiver.base.starts_with("https://"), "{}", receiver.base);
    let made = create_identities(&server, &ns, &[("agent", "agent", &["operator"])]).await;
    let agent = made["agent"].0.clone();

    // Through the gateway: not a bypass.
    let scale = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                       "resource_name": "web-api", "parameters": {"replicas": 3}, "justification": "load"});
    let (_, done) = server.post("/api/v1/actions", &agent, &scale.to_string()).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    // Around it, with the admin token: a bypass.
    let patched = world
        .http
        .patch(format!(
            "{}/apis/apps/v1/namespaces/{ns}/deployments/direct",
            world.env.server
        ))
        .bearer_auth(&world.env.token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"replicas": 4}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success(), "{}", patched.text().await.unwrap());

    // The webhook delivers within seconds; the bypass is recorded once, and the gateway's own calls are not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let recorded = loop {
        let found = bypasses_of(&server, "direct").await;
        if found.iter().any(is_the_patch) || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let patch: Vec<&Value> = recorded.iter().filter(|e| is_the_patch(e)).collect();
    assert_eq!(patch.len(), 1, "the admin's patch, recorded once: {recorded:?}");
    assert_eq!(patch[0]["payload"]["user"], "admin");
    assert_eq!(patch[0]["payload"]["namespace"], ns.as_str());
    // web-api's only bypass is its creation by the admin; the gateway's scale of it is the gateway's own.
    let web_api = bypasses_of(&server, "web-api").await;
    assert!(
        web_api.iter().all(|e| e["payload"]["user"] == "admin"
            && e["payload"]["request_uri"]
                .as_str()
                .is_some_and(|uri| uri.contains("fieldManager=tests"))),
        "{web_api:?}"
    );
    // A replayed delivery records nothing twice.
    let audit_id = patch[0]["payload"]["audit_id"].as_str().unwrap().to_owned();
    let log = std::fs::read_to_string(std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_LOG").unwrap()).unwrap();
    let event: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["auditID"] == audit_id.as_str() && e["stage"] == "ResponseComplete")
        .expect("the same event is in the audit log");
    let replay = reqwest::Client::new()
        .post(format!("{}/api/v1/audit/events", server.base))
        .bearer_auth(&token)
        .json(&json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [event]}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 200);
    let answer: Value = replay.json().await.unwrap();
    assert_eq!(answer["bypasses_already_recorded"], 1, "{answer}");
    assert_eq!(
        bypasses_of(&server, "direct")
            .await
            .iter()
            .filter(|e| is_the_patch(e))
            .count(),
        1
    );
    // Without the token (or an auditor key) the endpoint refuses.
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v1/audit/events", server.base))
        .bearer_auth("wrong")
        .json(&json!({"kind": "EventList", "items": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    drop(receiver);
    drop(server);

    // Offline, from the audit log file: the gateway's executions all reconcile, the patch is a bypass.
    let out = app
        .command()
        .args(["audit", "reconcile", "--json", "--config", &config, "--audit-log"])
        .arg(std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_LOG").unwrap())
        .args(["--release", &world.release, "--gateway-namespace", &world.gateway_ns])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "bypasses make the exit status 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reconciliation = &report["reconciliation"];
    assert!(
        reconciliation["executions_checked"].as_u64().unwrap() >= 1,
        "{reconciliation}"
    );
    assert_eq!(
        reconciliation["executions_matched"], reconciliation["executions_checked"],
        "{reconciliation}"
    );
    assert_eq!(reconciliation["unmatched_executions"], json!([]));
    let bypasses = reconciliation["bypasses"].as_array().unwrap();
    assert!(
        bypasses.iter().any(|b| b["auditID"] == audit_id.as_str()),
        "the admin's patch is reported offline too"
    );
    let gateway_user = format!("system:serviceaccount:{}:{}-gateway", world.gateway_ns, world.release);
    assert!(bypasses.iter().all(|b| b["user"]["username"] != gateway_user.as_str()));
    assert!(BIN.ends_with("docketops"));
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
