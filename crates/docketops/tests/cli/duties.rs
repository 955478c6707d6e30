//! Separation of duties end to end (a real gateway, the real API server): an approver the requester could
//! act as (it created the approver through another admin, or issued or rotated a key the approver holds) is
//! refused with 403 and an `approval.refused` entry, and the action stays pending; an independent approver
//! still executes it. Also the identity routes' refusals of bad input.

use serde_json::{Value, json};

use super::{KubeWorld, Server, TestApp, create_identities, entry_kinds};

/// Creates an identity as `creator` (an admin's key): (API key, id, first key id).
async fn create_as(server: &Server, creator: &str, name: &str, roles: &[&str], ns: &str) -> (String, String, String) {
    let body = json!({"name": name, "kind": "human", "roles": roles,
        "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["*"]}]});
    let (status, created) = server.post("/api/v1/identities", creator, &body.to_string()).await;
    assert_eq!(status, 201, "{created}");
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    (
        text(&created["api_key"]),
        text(&created["identity"]["id"]),
        text(&created["key"]["id"]),
    )
}

async fn sod_refuses_who_the_requester_could_act_as(backend: &str) {
    let app = TestApp::new(backend, &format!("duties_{backend}")).await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web", 1).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let root = server.admin_key.clone();
    // The requester: an admin and operator made by the bootstrap admin.
    let made = create_identities(&server, &ns, &[("admin-1", "human", &["admin", "operator"])]).await;
    let (requester, _) = made["admin-1"].clone();
    // Two hops: admin-1 creates admin-2, which creates an approver.
    let (admin2, _, _) = create_as(&server, &requester, "admin-2", &["admin"], &ns).await;
    let (two_hop, _, _) = create_as(&server, &admin2, "two-hop", &["approver"], &ns).await;
    // Approvers made by the bootstrap admin; admin-1 issues a key to one and rotates the other's key.
    let (_, issued_id, _) = create_as(&server, &root, "issued", &["approver"], &ns).await;
    let (_, rotated_id, rotated_first) = create_as(&server, &root, "rotated", &["approver"], &ns).await;
    let (independent, _, _) = create_as(&server, &root, "independent", &["approver"], &ns).await;
    let (status, key) = server
        .post(&format!("/api/v1/identities/{issued_id}/keys"), &requester, "")
        .await;
    assert_eq!(status, 201, "{key}");
    let issued = key["api_key"].as_str().unwrap().to_owned();
    let rotate = format!("/api/v1/identities/{rotated_id}/keys/{rotated_first}/rotate");
    let (status, key) = server.post(&rotate, &requester, "").await;
    assert_eq!(status, 201, "{key}");
    let rotated = key["api_key"].as_str().unwrap().to_owned();

    let body = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                      "resource_name": "web", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &requester, &body.to_string()).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    assert_eq!(pending["risk"], "HIGH");
    let id = pending["action_id"].as_str().unwrap().to_owned();

    let refusals = [
        (
            &two_hop,
            "approve",
            "the approver was created by admin-2; admin-2 was created by the requester",
        ),
        (&two_hop, "reject", "admin-2 was created by the requester"),
        (&issued, "approve", "issued by the requester"),
        (&rotated, "approve", "issued by the requester"),
        (&rotated, "reject", "issued by the requester"),
    ];
    for (key, verdict, why) in refusals {
        let path = format!("/api/v1/approvals/{id}/{verdict}");
        let (status, body) = server.post(&path, key, r#"{"comment": "looks fine"}"#).await;
        assert_eq!(status, 403, "{verdict}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("separation of duties") && message.contains(why),
            "{verdict}: {message}"
        );
    }
    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(&requester)).await;
    assert_eq!(action["action"]["status"], "PENDING_APPROVAL", "{action}");
    let kinds = entry_kinds(&action);
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval.refused").count(),
        5,
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"action.executed"), "{kinds:?}");
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .await;
    assert_eq!(still["metadata"]["name"], "web", "nothing ran: {still}");

    // An approver nobody in the requester's lineage made or keyed decides: it executes.
    let (status, done) = server
        .post(&format!("/api/v1/approvals/{id}/approve"), &independent, "{}")
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sod_refuses_who_the_requester_could_act_as_sqlite() {
    sod_refuses_who_the_requester_could_act_as("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sod_refuses_who_the_requester_could_act_as_postgres() {
    sod_refuses_who_the_requester_could_act_as("postgres").await;
}
