//! Approvals against the real API server: one approver, two approvers asked for by a policy, and two
//! gateways racing to execute one approved action.

use std::time::Duration;

use serde_json::Value;

use super::{KubeWorld, Server, TestApp, create_identities, entry_kinds};

/// Approvals against the real API server: a HIGH-risk DELETE waits, an approver approves it, it executes once,
/// and the chain holds approval.requested → approval.granted → action.executed → outcome.verified; approval
/// by the requester, by a non-approver, a replayed approval, an approval after expiry and an approval of a
/// target that changed are refused with clear errors and recorded; a rejection ends an action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_end_to_end() {
    let app = TestApp::new("sqlite", "approvals").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    for name in ["web-api", "api-2", "api-3", "api-4"] {
        world.deployment(name, 2).await;
    }
    // The approval webhook: a bare HTTP listener that keeps what it is sent.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let (hook_tx, hook_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in hook.incoming() {
            let Ok(mut stream) = stream else { break };
            stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 8192];
            // Read the head and the whole body (Content-Length), then answer 204.
            loop {
                let n = stream.read(&mut buffer).unwrap_or(0);
                received.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    head.lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .is_some_and(|length| body.len() >= length)
                });
                if n == 0 || complete {
                    break;
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            let _ = hook_tx.send(String::from_utf8_lossy(&received).to_string());
        }
    });
    let mut args = world.serve_args();
    args.extend([
        "--approval-window".to_owned(),
        "4".to_owned(),
        "--approval-webhook".to_owned(),
        hook_url,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("alice", "human", &["operator", "approver"]),
            ("bob", "human", &["approver"]),
            ("carol", "human", &["operator"]),
        ],
    )
    .await;
    let keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    let submit = |key: String, body: Value| {
        let server = &server;
        async move { server.post("/api/v1/actions", &key, &body.to_string()).await }
    };
    let delete = |name: &str| {
        serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                           "resource_name": name, "justification": "decommission"})
    };
    let approve = |key: String, id: String| {
        let server = &server;
        async move {
            server
                .post(&format!("/api/v1/approvals/{id}/approve"), &key, r#"{"comment": "ok"}"#)
                .await
        }
    };

    // Alice (operator and approver) asks to delete web-api: HIGH risk, so it waits.
    let (_, pending) = submit(keys["alice"].clone(), delete("web-api")).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    assert_eq!(pending["risk"], "HIGH");
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let notified = hook_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook was called");
    assert!(notified.starts_with("POST /hook "), "{notified}");
    let payload: Value = serde_json::from_str(notified.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(payload["event"], "approval.requested");
    assert_eq!(payload["action_id"], id.as_str());
    assert_eq!(payload["risk"], "HIGH");
    assert_eq!(payload["action"]["resource_name"], "web-api");
    assert!(payload["digest"].as_str().unwrap().starts_with("sha256:"));
    let (status, list) = server.get("/api/v1/approvals?status=pending", Some(&keys["bob"])).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["approvals"][0]["action"]["action_id"], id.as_str());
    assert!(list["approvals"][0]["digest"].as_str().unwrap().starts_with("sha256:"));

    // Refused: the requester herself, a non-approver.
    let (status, body) = approve(keys["alice"].clone(), id.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("its own action"),
        "{body}"
    );
    let (status, body) = approve(keys["carol"].clone(), id.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("not an approver"),
        "{body}"
    );

    // Bob approves while Alice long-polls for the result: it executes, once, and her wait ends with it.
    let wait_path = format!("/api/v1/actions/{id}?wait=20");
    let waiting = server.get(&wait_path, Some(&keys["alice"]));
    let approving = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        approve(keys["bob"].clone(), id.clone()).await
    };
    let ((_, waited), (status, done)) = tokio::join!(waiting, approving);
    assert_eq!(
        waited["action"]["status"], "COMPLETED",
        "the long poll saw the end: {waited}"
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["signature_verified"], true);
    let gone = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(gone["code"], 404, "{gone}");
    // A replayed approval does nothing twice.
    let (status, body) = approve(keys["bob"].clone(), id.clone()).await;
    assert_eq!(status, 409, "{body}");
    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(&keys["alice"])).await;
    let kinds = entry_kinds(&action);
    let order: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| {
            [
                "approval.requested",
                "approval.granted",
                "action.executed",
                "outcome.verified",
            ]
            .contains(k)
        })
        .collect();
    assert_eq!(
        order,
        [
            "approval.requested",
            "approval.granted",
            "action.executed",
            "outcome.verified"
        ],
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval.refused").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "action.executed").count(), 1);

    // The target changes behind the approver's back: refused, and a fresh approval is requested.
    let (_, pending) = submit(keys["agent"].clone(), delete("api-2")).await;
    let id2 = pending["action_id"].as_str().unwrap().to_owned();
    world.deployment("api-2", 7).await;
    let (status, body) = approve(keys["bob"].clone(), id2.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("changed"), "{body}");
    // An approval names the digest it approves: the old one no longer applies, the fresh one does.
    let (_, list) = server.get("/api/v1/approvals?status=pending", Some(&keys["bob"])).await;
    let fresh = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["action_id"] == id2.as_str())
        .map(|a| a["digest"].as_str().unwrap().to_owned())
        .unwrap();
    let stale = format!(r#"{{"digest": "sha256:{}"}}"#, "0".repeat(64));
    let (status, body) = server
        .post(&format!("/api/v1/approvals/{id2}/approve"), &keys["bob"], &stale)
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("names digest"),
        "{body}"
    );
    let named = format!(r#"{{"digest": "{fresh}", "comment": "reviewed the new diff"}}"#);
    let (status, done) = server
        .post(&format!("/api/v1/approvals/{id2}/approve"), &keys["bob"], &named)
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "the fresh approval applies: {done}");

    // A rejection ends the action.
    let (_, pending) = submit(keys["agent"].clone(), delete("api-3")).await;
    let id3 = pending["action_id"].as_str().unwrap().to_owned();
    let (status, rejected) = server
        .post(
            &format!("/api/v1/approvals/{id3}/reject"),
            &keys["bob"],
            r#"{"comment": "no"}"#,
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "REJECTED");
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/api-3"))
        .await;
    assert_eq!(still["metadata"]["name"], "api-3");

    // After the window (4 s here) the action becomes EXPIRED by itself (nobody lists or decides it
    // meanwhile; plain GETs do not expire anything) and can no longer be approved.
    let (_, pending) = submit(keys["agent"].clone(), delete("api-4")).await;
    let id4 = pending["action_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let status_of_4 = || async {
        let (_, action) = server
            .get(&format!("/api/v1/actions/{id4}"), Some(&keys["agent"]))
            .await;
        action["action"]["status"].as_str().unwrap().to_owned()
    };
    while status_of_4().await == "PENDING_APPROVAL" && started.elapsed() < Duration::from_secs(12) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status_of_4().await, "EXPIRED");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before the window passed"
    );
    let (status, body) = approve(keys["bob"].clone(), id4.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("EXPIRED"), "{body}");
    let (_, action) = server
        .get(&format!("/api/v1/actions/{id4}"), Some(&keys["agent"]))
        .await;
    let kinds = entry_kinds(&action);
    assert!(
        kinds.contains(&"approval.expired") && kinds.contains(&"approval.refused"),
        "{kinds:?}"
    );
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/api-4"))
        .await;
    assert_eq!(still["metadata"]["name"], "api-4");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// A policy that asks for two approvals: one approval leaves the action pending, the same approver cannot
/// count twice, and the second distinct approver's approval executes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_can_ask_for_two_approvals() {
    let app = TestApp::new("sqlite", "two_approvals").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/two_approvals_for_high.rego");
    let mut args = world.serve_args();
    args.extend(["--policy".to_owned(), policy.to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("bob", "human", &["approver"]),
            ("dave", "human", &["approver"]),
            ("root", "human", &["admin", "operator"]),
        ],
    )
    .await;
    let mut keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    // An admin that also submits actions makes itself an approver: that approver cannot decide its actions.
    let puppet = serde_json::json!({"name": "puppet", "kind": "human", "roles": ["approver"], "scopes": []});
    let (status, created) = server
        .post("/api/v1/identities", &keys["root"], &puppet.to_string())
        .await;
    assert_eq!(status, 201, "{created}");
    keys.insert("puppet", created["api_key"].as_str().unwrap().to_owned());
    world.deployment("own-app", 1).await;
    let own = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                 "resource_name": "own-app", "justification": "mine"});
    let (_, own) = server.post("/api/v1/actions", &keys["root"], &own.to_string()).await;
    assert_eq!(own["status"], "PENDING_APPROVAL", "{own}");
    let own_path = format!("/api/v1/approvals/{}/approve", own["action_id"].as_str().unwrap());
    let (status, body) = server.post(&own_path, &keys["puppet"], "{}").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("created by the requester"),
        "{body}"
    );

    let body = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                  "resource_name": "web-api", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &keys["agent"], &body.to_string()).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let (_, list) = server.get("/api/v1/approvals?status=pending", Some(&keys["bob"])).await;
    let listed = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["action_id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["approvals_required"], 2, "{list}");
    let path = format!("/api/v1/approvals/{id}/approve");

    let (status, first) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "PENDING_APPROVAL", "one of two approvals: {first}");
    let (status, again) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(status, 409, "the same approver counts once: {again}");
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(still["metadata"]["name"], "web-api", "nothing runs on one approval");

    let (status, done) = server.post(&path, &keys["dave"], "{}").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(&keys["agent"])).await;
    let entries = action["entries"].as_array().unwrap();
    let decided = entries.iter().find(|e| e["kind"] == "policy.decided").unwrap();
    assert_eq!(decided["payload"]["approvals"], 2, "{decided}");
    let granted: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "approval.granted").collect();
    assert_eq!(granted.len(), 2, "{action}");
    assert_eq!(granted[0]["payload"]["approvals"], 1);
    assert_eq!(granted[1]["payload"]["approvals"], 2);
    assert_ne!(granted[0]["payload"]["approver"], granted[1]["payload"]["approver"]);
    let executed = entries.iter().position(|e| e["kind"] == "action.executed").unwrap();
    let last_grant = entries.iter().rposition(|e| e["kind"] == "approval.granted").unwrap();
    assert!(last_grant < executed, "executed only after the second approval");

    // One approval given, then the target changes: that approval no longer counts, and its approver can
    // approve the fresh digest (the action then still needs a second approver).
    world.deployment("api-b", 2).await;
    let body = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                  "resource_name": "api-b", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &keys["agent"], &body.to_string()).await;
    let path = format!("/api/v1/approvals/{}/approve", pending["action_id"].as_str().unwrap());
    let (status, first) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(first["status"], "PENDING_APPROVAL", "{status} {first}");
    world.deployment("api-b", 4).await;
    let (status, changed) = server.post(&path, &keys["dave"], "{}").await;
    assert_eq!(status, 409, "the target changed: {changed}");
    let (status, again) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(status, 200, "bob approves the fresh digest: {again}");
    assert_eq!(
        again["status"], "PENDING_APPROVAL",
        "bob's old approval does not count twice: {again}"
    );
    let (status, done) = server.post(&path, &keys["dave"], "{}").await;
    assert_eq!((status, done["status"].as_str()), (200, Some("COMPLETED")), "{done}");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// Two gateway processes on one PostgreSQL: two approvers approve the same action at the same moment, one
/// through each gateway; the action executes exactly once (three rounds, to give the race a chance).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_execute_an_approved_action_once() {
    let app = TestApp::new("postgres", "approval_race").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = Server::start_with(&app, &args);
    let second = Server::start_with(&app, &args);
    let made = create_identities(
        &first,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("bob", "human", &["approver"]),
            ("dave", "human", &["approver"]),
        ],
    )
    .await;
    let keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    for round in 0..3 {
        let name = format!("race-{round}");
        world.deployment(&name, 1).await;
        let body = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                      "resource_name": name, "justification": "race"});
        let (_, pending) = first.post("/api/v1/actions", &keys["agent"], &body.to_string()).await;
        assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
        let id = pending["action_id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/approvals/{id}/approve");
        let (a, b) = tokio::join!(
            first.post(&path, &keys["bob"], "{}"),
            second.post(&path, &keys["dave"], "{}")
        );
        // Both answers are fine (the one that lost the claim reports the action's status as it finds it,
        // which may already be COMPLETED); what matters is that the ledger holds one execution.
        for (status, answer) in [&a, &b] {
            assert!(*status == 200 || *status == 409, "{status} {answer}");
        }
        let (_, action) = first.get(&format!("/api/v1/actions/{id}"), Some(&keys["agent"])).await;
        let executed = action["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "action.executed")
            .count();
        assert_eq!(executed, 1, "{action}");
        assert_eq!(action["action"]["status"], "COMPLETED");
    }
    drop(first);
    drop(second);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
