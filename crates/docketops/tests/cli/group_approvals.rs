//! A two-person rule by group against the real API server and the real OpenID provider
//! (`scripts/oidc-testenv`), on both databases: the shipped template `two-approvals-for-high` rendered with
//! groups `sre` and `approvers` by `docketops policy templates render`; two approvers of `sre` (API keys,
//! groups given by the admin) are not enough; bob, who signs in through OpenID Connect and is in the
//! provider's group `approvers`, completes it; the entries say which group each approval met.

use serde_json::{Value, json};

use super::sso::{cli_id_token, oidc_config};
use super::{KubeWorld, Server, TestApp, create_identities};

on_both!(a_group_rule_needs_one_approver_of_each_group);

/// The default policy and the template rendered with groups, as files `serve --policy` loads.
fn render_policy(app: &TestApp, dir: &std::path::Path) -> Vec<String> {
    let default = dir.join("default.rego");
    let out = app.run(&["policy", "default"]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&default, &out.stdout).unwrap();
    let groups = dir.join("groups.rego");
    let out = app.run(&[
        "policy",
        "templates",
        "render",
        "two-approvals-for-high",
        "--set",
        "groups=sre,approvers",
        "--out",
        groups.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    vec![
        "--policy".into(),
        default.display().to_string(),
        "--policy".into(),
        groups.display().to_string(),
    ]
}

async fn approver_with_groups(server: &Server, name: &str, groups: &[&str]) -> String {
    let body = json!({"name": name, "kind": "human", "roles": ["approver"], "groups": groups});
    let (status, created) = server
        .post("/api/v1/identities", &server.admin_key, &body.to_string())
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["identity"]["groups"], json!(groups), "{created}");
    created["api_key"].as_str().unwrap().to_owned()
}

async fn a_group_rule_needs_one_approver_of_each_group(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let oidc = dir.path().join("oidc.toml");
    std::fs::write(&oidc, oidc_config()).unwrap();
    let mut args = world.serve_args();
    args.extend(render_policy(app, dir.path()));
    args.extend(["--config".into(), oidc.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);
    let made = create_identities(&server, &ns, &[("agent", "agent", &["operator"])]).await;
    let agent = made["agent"].0.clone();
    let sre_1 = approver_with_groups(&server, "sre-1", &["sre"]).await;
    let sre_2 = approver_with_groups(&server, "sre-2", &["SRE"]).await;
    // Invalid groups are refused.
    let bad = json!({"name": "bad", "kind": "human", "roles": ["approver"], "groups": ["ok", ""]});
    let (status, body) = server
        .post("/api/v1/identities", &server.admin_key, &bad.to_string())
        .await;
    assert_eq!(status, 400, "{body}");

    let delete = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                        "resource_name": "web-api", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &agent, &delete.to_string()).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let (_, list) = server.get("/api/v1/approvals?status=pending", Some(&sre_1)).await;
    let listed = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["action_id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{id} not pending: {list}"));
    assert_eq!(listed["approval_groups"], json!(["approvers", "sre"]), "{listed}");
    assert_eq!(listed["approvals_required"], 2, "{listed}");

    let path = format!("/api/v1/approvals/{id}/approve");
    let (status, first) = server.post(&path, &sre_1, "{}").await;
    assert_eq!(
        (status, first["status"].as_str()),
        (200, Some("PENDING_APPROVAL")),
        "{first}"
    );
    let (status, second) = server.post(&path, &sre_2, "{}").await;
    assert_eq!(status, 403, "two approvers of one group are not enough: {second}");
    let message = second["error"]["message"].as_str().unwrap();
    assert!(message.contains("still missing: approvers"), "{message}");
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(
        still["metadata"]["name"], "web-api",
        "nothing runs without an approver of each group"
    );

    // bob signs in through the OpenID provider, which reports his group `approvers`.
    let bob = cli_id_token("bob").await;
    let (status, done) = server.post(&path, &bob, "{}").await;
    assert_eq!((status, done["status"].as_str()), (200, Some("COMPLETED")), "{done}");
    let gone = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(gone["code"], 404, "deleted once both groups approved: {gone}");

    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(&agent)).await;
    let entries = action["entries"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&Value> { entries.iter().filter(|e| e["kind"] == kind).collect() };
    let granted: Vec<(&Value, &Value)> = of("approval.granted")
        .iter()
        .map(|e| (&e["payload"]["meets_group"], &e["payload"]["groups_missing"]))
        .collect();
    assert_eq!(
        granted,
        [
            (&json!("sre"), &json!(["approvers"])),
            (&json!("approvers"), &json!([]))
        ]
    );
    assert_eq!(of("approval.refused").len(), 1, "{action}");
    assert_eq!(
        of("policy.decided")[0]["payload"]["approval_groups"],
        json!(["approvers", "sre"])
    );
    // bob's identity carries the groups the provider reported.
    let (_, identities) = server
        .get("/api/v1/identities?limit=100", Some(&server.admin_key))
        .await;
    let bob = identities["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "oidc:bob")
        .cloned()
        .unwrap_or_else(|| panic!("no oidc:bob in {identities}"));
    assert!(bob["groups"].as_array().unwrap().contains(&json!("approvers")), "{bob}");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
}
