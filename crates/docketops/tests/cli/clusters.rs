//! Several clusters behind one gateway and one ledger: the test environment's two real API servers
//! (cluster A and cluster B, separate objects on one etcd) and a third cluster that is down.

use std::time::Duration;

use serde_json::{Value, json};

use super::{KubeWorld, Server, TestApp, create_identities, kube_test_env_b};

/// The entries of an action, by the auditor key.
async fn entries(server: &Server, key: &str, id: &str) -> Vec<Value> {
    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(key)).await;
    action["entries"].as_array().cloned().unwrap_or_default()
}

fn replicas(deployment: &Value) -> u64 {
    deployment["spec"]["replicas"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_go_to_the_cluster_they_name() {
    let app = TestApp::new("sqlite", "clusters").await;
    let a = KubeWorld::new().await;
    let b = KubeWorld::mirror(&a, kube_test_env_b()).await;
    let ns = a.app_ns.clone();
    a.deployment("web-api", 2).await;
    b.deployment("web-api", 2).await;
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api");

    // A third cluster whose API server is down: a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let down_kubeconfig = dir.path().join("down.kubeconfig");
    std::fs::write(
        &down_kubeconfig,
        json!({"apiVersion": "v1", "kind": "Config",
               "clusters": [{"name": "down", "cluster": {"server": format!("https://127.0.0.1:{down_port}"),
                                                         "insecure-skip-tls-verify": true}}],
               "users": [{"name": "u", "user": {"token": "not-used"}}],
               "contexts": [{"name": "down", "context": {"cluster": "down", "user": "u"}}],
               "current-context": "down"})
        .to_string(),
    )
    .unwrap();
    let config = dir.path().join("docketops.toml");
    std::fs::write(
        &config,
        format!(
            "default_cluster = \"a\"\n\
             [clusters.a]\nkubeconfig = {:?}\n\
             [clusters.b]\nkubeconfig = {:?}\n\
             [clusters.down]\nkubeconfig = {:?}\n",
            a.kubeconfig.display().to_string(),
            b.kubeconfig.display().to_string(),
            down_kubeconfig.display().to_string(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let server = Server::start_with(
        &app,
        &[
            "--config",
            &config,
            "--release",
            &a.release,
            "--gateway-namespace",
            &a.gateway_ns,
            "--rollout-timeout",
            "0",
            "--kube-timeout",
            "3",
        ],
    );
    let made = create_identities(&server, &ns, &[("agent", "agent", &["operator"])]).await;
    let agent = made["agent"].0.clone();
    // An agent whose scope covers cluster A only.
    let only_a = json!({"name": "agent-a", "kind": "agent", "roles": ["operator"],
        "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["*"], "clusters": ["a"]}]});
    let (status, created) = server
        .post("/api/v1/identities", &server.admin_key, &only_a.to_string())
        .await;
    assert_eq!(status, 201, "{created}");
    let agent_a = created["api_key"].as_str().unwrap().to_owned();
    let admin = server.admin_key.clone();
    let scale = |cluster: Option<&str>, replicas: u32| {
        let mut body = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                              "resource_name": "web-api", "parameters": {"replicas": replicas},
                              "justification": "multi-cluster test"});
        if let Some(cluster) = cluster {
            body["cluster"] = json!(cluster);
        }
        body.to_string()
    };

    // Routed to cluster B: B changes, A does not, and A's API server never saw the action.
    let (status, done) = server.post("/api/v1/actions", &agent, &scale(Some("b"), 5)).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("COMPLETED")), "{done}");
    assert_eq!(replicas(&b.admin_get(&path).await), 5);
    assert_eq!(replicas(&a.admin_get(&path).await), 2);
    let id = done["action_id"].as_str().unwrap().to_owned();
    let recorded = entries(&server, &admin, &id).await;
    assert!(recorded.len() >= 5, "{recorded:?}");
    for entry in &recorded {
        assert_eq!(
            entry["payload"]["cluster"], "b",
            "every entry names the cluster: {entry}"
        );
    }
    let decided = recorded.iter().find(|e| e["kind"] == "policy.decided").unwrap();
    assert_eq!(
        decided["payload"]["input"]["action"]["cluster"], "b",
        "the policy saw the cluster"
    );
    let audit_id = recorded[0]["id"].as_str().unwrap().to_owned();
    // The API servers write their audit logs asynchronously: give them a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit_a = std::fs::read_to_string(std::env::var("DOCKETOPS_TEST_KUBE_AUDIT_LOG").unwrap()).unwrap();
    let audit_b = std::fs::read_to_string(std::env::var("DOCKETOPS_TEST_KUBE_B_AUDIT_LOG").unwrap()).unwrap();
    assert!(
        audit_b.contains(&audit_id),
        "cluster B's audit log has the action's calls"
    );
    assert!(
        !audit_a.contains(&audit_id),
        "cluster A never saw the action routed to B"
    );

    // No cluster named: the default (A).
    let (_, done) = server.post("/api/v1/actions", &agent, &scale(None, 3)).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(replicas(&a.admin_get(&path).await), 3);
    assert_eq!(replicas(&b.admin_get(&path).await), 5);
    let (_, listed) = server.get("/api/v1/actions", Some(&admin)).await;
    let clusters: Vec<&str> = listed["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["cluster"].as_str())
        .collect();
    assert_eq!(clusters, ["a", "b"], "newest first: {listed}");

    // An unknown cluster is a bad request, recorded.
    let (status, body) = server.post("/api/v1/actions", &agent, &scale(Some("zzz"), 4)).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown cluster \"zzz\"") && message.contains("a, b, down"),
        "{message}"
    );

    // The cluster that is down fails its own action, clearly; the others go on working.
    let (status, failed) = server.post("/api/v1/actions", &agent, &scale(Some("down"), 4)).await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"]["code"], "unreachable", "{failed}");
    let (_, done) = server.post("/api/v1/actions", &agent, &scale(Some("b"), 6)).await;
    assert_eq!(done["status"], "COMPLETED", "cluster B is unaffected: {done}");
    assert_eq!(replicas(&b.admin_get(&path).await), 6);

    // A scope that names clusters: agent-a may act on A, not on B.
    let (_, denied) = server.post("/api/v1/actions", &agent_a, &scale(Some("b"), 7)).await;
    assert_eq!(denied["status"], "DENIED", "{denied}");
    let reason = denied["decision"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("scope:") && reason.contains("on cluster \"b\""),
        "{reason}"
    );
    assert_eq!(replicas(&b.admin_get(&path).await), 6);
    let (_, done) = server.post("/api/v1/actions", &agent_a, &scale(Some("a"), 4)).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(replicas(&a.admin_get(&path).await), 4);

    drop(server);
    assert_eq!(
        app.run(&["verify"]).status.code(),
        Some(0),
        "one ledger for all clusters verifies"
    );
    app.finish().await;
}
