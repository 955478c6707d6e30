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

/// A POST with any content type (or none) and any body.
async fn post_raw(server: &Server, path: &str, key: &str, content_type: Option<&str>, body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .bearer_auth(key)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The kinds of every ledger entry, in order.
async fn ledger_kinds(server: &Server) -> Vec<String> {
    let (status, page) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    entries.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

/// The key routes refuse any body but none or `{}` (400, 415 for a non-JSON type) and then do nothing.
async fn key_routes_refuse_bodies(server: &Server) {
    let root = server.admin_key.clone();
    let (_, target, first_key) = create_as(server, &root, "target", &["operator"], "team-a").await;
    let before = ledger_kinds(server).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: [(Option<&str>, String, u16); 6] = [
        (Some("application/json"), "{not json".into(), 400),
        (Some("application/json"), deep, 400),
        (Some("application/json"), "[]".into(), 400),
        (Some("application/json"), r#"{"reason": "x"}"#.into(), 400),
        (Some("text/plain"), "{not json".into(), 415),
        (None, "{}".into(), 415),
    ];
    let routes = [
        format!("/api/v1/identities/{target}/keys"),
        format!("/api/v1/identities/{target}/keys/{first_key}/rotate"),
        format!("/api/v1/identities/{target}/keys/{first_key}/revoke"),
    ];
    for route in &routes {
        for (content_type, body, expected) in &bodies {
            let (status, answer) = post_raw(server, route, &root, *content_type, body.clone()).await;
            assert_eq!(status, *expected, "{route} {content_type:?} {:.40}: {answer}", body);
            assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
        }
    }
    assert_eq!(ledger_kinds(server).await, before, "nothing was recorded");
    let (_, shown) = server.admin_get(&format!("/api/v1/identities/{target}")).await;
    let keys = shown["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{shown}");
    assert_eq!(keys[0]["status"], "active", "{shown}");
    // The routes still act on no body and on `{}`.
    let (status, issued) = post_raw(server, &routes[0], &root, Some("application/json"), "{}".into()).await;
    assert_eq!(status, 201, "{issued}");
    let (status, rotated) = post_raw(server, &routes[1], &root, None, String::new()).await;
    assert_eq!(status, 201, "{rotated}");
}

/// Scope namespaces must be names, `*` or `prefix*`; kinds known kinds or `*`. Nothing is created otherwise.
async fn scopes_are_validated(server: &Server) {
    let create = |name: &str, namespaces: Value, kinds: Value| {
        let body = json!({"name": name, "kind": "agent", "roles": ["operator"],
                          "scopes": [{"namespaces": namespaces, "access": "mutate", "kinds": kinds}]});
        let key = server.admin_key.clone();
        async move { server.post("/api/v1/identities", &key, &body.to_string()).await }
    };
    let refused = [
        (json!(["../x"]), json!(["*"]), "namespace \"../x\""),
        (json!(["*kube*"]), json!(["*"]), "namespace \"*kube*\""),
        (json!(["Staging"]), json!(["*"]), "namespace \"Staging\""),
        (json!(["-team*"]), json!(["*"]), "namespace \"-team*\""),
        (json!(["staging"]), json!(["*kube*"]), "unknown kind \"*kube*\""),
        (json!(["staging"]), json!(["deployment"]), "unknown kind \"deployment\""),
    ];
    for (namespaces, kinds, message) in refused {
        let (status, answer) = create("bad-scope", namespaces, kinds).await;
        assert_eq!(status, 400, "{answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{text}");
    }
    let (_, list) = server.admin_get("/api/v1/identities").await;
    assert!(!list.to_string().contains("bad-scope"), "{list}");
    for (name, namespaces) in [("all-ns", json!(["*"])), ("prefix-ns", json!(["team-*", "staging"]))] {
        let (status, answer) = create(name, namespaces, json!(["Deployment", "*"])).await;
        assert_eq!(status, 201, "{answer}");
    }
}

/// An admin cannot revoke its own last active key (409); with another key it can, and that one is then last.
async fn own_last_key_stays(server: &Server) {
    let root = server.admin_key.clone();
    let (_, list) = server.admin_get("/api/v1/identities").await;
    let me = list["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "bootstrap-admin")
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .unwrap();
    let (_, shown) = server.admin_get(&format!("/api/v1/identities/{me}")).await;
    let only = shown["keys"][0]["id"].as_str().unwrap().to_owned();
    let revoke = |key_id: String, with: String| {
        let path = format!("/api/v1/identities/{me}/keys/{key_id}/revoke");
        async move { server.post(&path, &with, "").await }
    };
    let (status, answer) = revoke(only.clone(), root.clone()).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("last active key"),
        "{answer}"
    );
    let (status, _) = server.get("/api/v1/identities", Some(&root)).await;
    assert_eq!(status, 200, "the key still works");
    let (status, second) = server.post(&format!("/api/v1/identities/{me}/keys"), &root, "").await;
    assert_eq!(status, 201, "{second}");
    let (second_key, second_id) = (
        second["api_key"].as_str().unwrap().to_owned(),
        second["key"]["id"].as_str().unwrap().to_owned(),
    );
    let (status, answer) = revoke(only, second_key.clone()).await;
    assert_eq!(status, 200, "with another key it may go: {answer}");
    let (status, answer) = revoke(second_id, second_key.clone()).await;
    assert_eq!(status, 409, "{answer}");
    let (status, _) = server.get("/api/v1/identities", Some(&second_key)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_routes_refuse_bad_input() {
    let app = TestApp::new("sqlite", "identity_input").await;
    let server = Server::start(&app);
    key_routes_refuse_bodies(&server).await;
    scopes_are_validated(&server).await;
    own_last_key_stays(&server).await;
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
