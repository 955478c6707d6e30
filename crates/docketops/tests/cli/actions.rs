//! Governed actions against the real API server: the product brief's example end to end (Python
//! `requests`, a real gateway process, SQLite and PostgreSQL), denials of each kind, bad requests, metrics
//! and `policy replay`; ledger mode from a config file, and OPA down failing closed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::trust::assert_trust_agrees;
use super::{KubeWorld, Server, TestApp, entry_kinds, stdout};

on_both!(governed_actions_end_to_end);

/// The product brief's example against the real API server: an agent with a staging scope scales
/// `web-api` to 5 through the gateway; then denials of each kind, bad requests, and the ledger verifies.
async fn governed_actions_end_to_end(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);

    let (status, created) = server
        .post(
            "/api/v1/identities",
            &server.admin_key,
            &serde_json::json!({"name": "ci-bot", "kind": "agent", "roles": ["operator"],
                "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["Deployment"]}]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let agent = created["api_key"].as_str().unwrap().to_owned();

    let scale = |namespace: &str, replicas: u64, justification: Option<&str>| {
        let mut body = serde_json::json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
            "resource_name": "web-api", "parameters": {"replicas": replicas}});
        if let Some(j) = justification {
            body["justification"] = j.into();
        }
        body.to_string()
    };
    // The product brief's Python example (examples/scale.py, Python `requests`) against this gateway.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scale.py");
    let out = Command::new("python3")
        .arg(&example)
        .env("LEDGER_URL", &server.base)
        .env("API_KEY", &agent)
        .env("NAMESPACE", &ns)
        .output()
        .unwrap();
    let printed = stdout(&out);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("Status: COMPLETED\n"), "{printed}");
    assert!(printed.contains("Ledger ID: evt_"), "{printed}");
    assert!(
        printed.contains("Event Hash: sha256:") && printed.contains("Chain Hash: sha256:"),
        "{printed}"
    );
    assert!(printed.contains("Signature Verified: True\n"), "{printed}");
    let (_, newest) = server.get("/api/v1/actions?limit=1", Some(&agent)).await;
    let action_id = newest["actions"][0]["action_id"].as_str().unwrap().to_owned();
    let (status, first) = server.get(&format!("/api/v1/actions/{action_id}"), Some(&agent)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["action"]["status"], "COMPLETED", "{first}");
    assert!(
        printed.contains(first["action"]["last_entry_id"].as_str().unwrap()),
        "{printed}"
    );
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "the Deployment really has 5 replicas");

    // The same again through reqwest, for the response's JSON shape (5 → 5 changes nothing, and passes).
    let (status, result) = server
        .post(
            "/api/v1/actions",
            &agent,
            &scale(&ns, 5, Some("Scale up for load test")),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["risk"], "MEDIUM");
    assert_eq!(result["decision"]["outcome"], "allow");
    assert_eq!(result["decision"]["mode"], "enforce");
    assert!(result["ledger_entry_id"].as_str().unwrap().starts_with("evt_"));
    for field in ["event_hash", "chain_hash"] {
        let hash = result[field].as_str().unwrap();
        assert!(hash.starts_with("sha256:") && hash.len() == 71, "{field}: {hash}");
    }
    assert_eq!(result["signature_verified"], true);
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "the Deployment really has 5 replicas");

    // The action with its chain of entries, in order.
    let action_id = result["action_id"].as_str().unwrap();
    let (status, action) = server.get(&format!("/api/v1/actions/{action_id}"), Some(&agent)).await;
    assert_eq!(status, 200, "{action}");
    let kinds = entry_kinds(&action);
    assert_eq!(
        kinds,
        [
            "action.requested",
            "risk.classified",
            "policy.decided",
            "action.executed",
            "outcome.verified"
        ]
    );
    assert_eq!(action["action"]["status"], "COMPLETED");
    assert_eq!(result["entries"].as_array().unwrap().len(), 5);
    // Rollout waiting is off here, so the change's own answer settled the verification (no read-back), and
    // it names the resourceVersion the change left.
    let payload = |kind: &str| -> Value {
        let entry = action["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap();
        match &entry["payload"] {
            Value::String(text) => serde_json::from_str(text).unwrap(),
            object => object.clone(),
        }
    };
    let verified = payload("outcome.verified");
    assert_eq!(verified["observed_in"], "answer", "{verified}");
    assert_eq!(
        verified["observed_resource_version"],
        live["metadata"]["resourceVersion"]
    );
    assert_eq!(
        payload("action.executed")["execution"]["resource_version"],
        live["metadata"]["resourceVersion"]
    );

    // Denials: guardrail (kube-system), scope (another namespace), policy (an agent without justification).
    for (body, reason) in [
        (scale("kube-system", 1, Some("x")), "namespace_blocked"),
        (scale(&world.other_ns, 1, Some("x")), "scope"),
        (scale(&ns, 4, None), "justification"),
    ] {
        let (status, denied) = server.post("/api/v1/actions", &agent, &body).await;
        assert_eq!(status, 200, "{denied}");
        assert_eq!(denied["status"], "DENIED", "{denied}");
        assert!(
            denied["decision"]["reasons"].to_string().contains(reason),
            "{reason}: {denied}"
        );
        assert_eq!(denied["signature_verified"], true);
    }
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "no denied action touched the Deployment");
    // HIGH risk (scale to zero) waits for an approval.
    let (_, pending) = server
        .post("/api/v1/actions", &agent, &scale(&ns, 0, Some("night")))
        .await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    assert_eq!(pending["risk"], "HIGH");

    // Bad requests: 400 with the field named, recorded; malformed JSON; no key; wrong role.
    let (status, bad) = server
        .post(
            "/api/v1/actions",
            &agent,
            r#"{"action_type": "REBOOT", "namespace": "x", "resource_kind": "Deployment"}"#,
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("action_type"),
        "{bad}"
    );
    let (status, _) = server.post("/api/v1/actions", &agent, r#"{"action_type": "#).await;
    assert_eq!(status, 400);
    let injection = scale(&ns, 1, Some("x")).replace("web-api", "web-api/../../secrets");
    let (status, bad) = server.post("/api/v1/actions", &agent, &injection).await;
    assert_eq!(status, 400, "{bad}");
    let (status, _) = server
        .post("/api/v1/actions", "dkt_agent_nope", &scale(&ns, 1, Some("x")))
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post("/api/v1/actions", &server.admin_key, &scale(&ns, 1, Some("x")))
        .await;
    assert_eq!(status, 403, "the admin has no operator role");

    let (_, page) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let rejected = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "action.rejected")
        .count();
    assert_eq!(rejected, 3, "both invalid actions and the malformed JSON are recorded");

    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "docketops_actions_total{status=\"COMPLETED\"} 2",
        "docketops_actions_total{status=\"DENIED\"} 3",
        "docketops_actions_total{status=\"PENDING_APPROVAL\"} 1",
        "docketops_policy_decisions_total{outcome=\"allow\",mode=\"enforce\"} 2",
        "docketops_risk_classifications_total{level=\"HIGH\"} 1",
        "docketops_http_requests_total{method=\"POST\",route=\"/api/v1/actions\",status=\"400\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.contains("docketops_ledger_appended_entries"), "{metrics}");
    let agent_id = created["identity"]["id"].as_str().unwrap();
    assert_trust_agrees(app, &server, agent_id).await;
    drop(server);

    // Replaying the recorded decisions: the shipped policy decides as before; a candidate that freezes
    // everything would change every decision.
    let out = app.run(&["policy", "replay"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("replayed 4 decisions") && text.contains("0 would change"),
        "{text}"
    );
    let frozen = app.dir.path().join("frozen.rego");
    std::fs::write(
        &frozen,
        "package docketops.policy\nimport rego.v1\ndecision := {\"outcome\": \"deny\", \"reasons\": [\"change freeze\"]}\n",
    )
    .unwrap();
    let out = app.run(&["policy", "replay", "--policy", frozen.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("changed ") && text.contains("allow -> deny  (change freeze)"),
        "{text}"
    );
    assert!(text.contains("3 would change"), "{text}");
    let out = app.run(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// Settings from a config file ([guardrails], [risk], policy_mode = "ledger"): in ledger mode a policy
/// deny is recorded and the action still runs; an unreachable OPA server in enforce mode fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_mode_from_config_and_opa_down_fails_closed() {
    let app = TestApp::new("sqlite", "ledger_mode").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 1).await;
    let config = app.dir.path().join("docketops.toml");
    std::fs::write(
        &config,
        format!(
            r#"policy_mode = "ledger"
rollout_timeout = 0

[guardrails]
allowed_namespaces = ["{ns}"]

[risk.tiers]
production = ["prod-*"]

[[risk.rules]]
id = "web-api-is-critical"
level = "HIGH"
reason = "web-api serves customers"
namespaces = ["{ns}"]
action_types = ["SCALE"]
"#
        ),
    )
    .unwrap();
    let mut args = world.serve_args();
    args.retain(|a| a != "--rollout-timeout" && a != "0");
    args.extend(["--config".to_owned(), config.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let (_, created) = server
        .post(
            "/api/v1/identities",
            &server.admin_key,
            &serde_json::json!({"name": "bot", "kind": "agent", "roles": ["operator"],
                "scopes": [{"namespaces": ["*"], "access": "mutate", "kinds": ["*"]}]})
            .to_string(),
        )
        .await;
    let agent = created["api_key"].as_str().unwrap().to_owned();
    let body = serde_json::json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
        "resource_name": "web-api", "parameters": {"replicas": 3}})
    .to_string();
    let (status, result) = server.post("/api/v1/actions", &agent, &body).await;
    assert_eq!(status, 200, "{result}");
    // No justification: the default policy denies; in ledger mode that is recorded, not enforced.
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["decision"]["outcome"], "deny");
    assert_eq!(result["decision"]["mode"], "ledger");
    assert_eq!(result["risk"], "HIGH", "the rule from the config file fired");
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 3);
    // The guardrail allow-list from the file holds in every mode.
    let other = body.replace(&ns, &world.other_ns);
    let (_, denied) = server.post("/api/v1/actions", &agent, &other).await;
    assert_eq!(denied["status"], "DENIED", "{denied}");
    assert!(
        denied["decision"]["reasons"]
            .to_string()
            .contains("namespace_not_allowed"),
        "{denied}"
    );
    drop(server);

    // Enforce mode with an OPA server that is not there: fail closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let opa = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut args = world.serve_args();
    args.extend(["--opa-url".to_owned(), opa]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let justified = body.replace("\"parameters\"", "\"justification\": \"test\", \"parameters\"");
    let (status, result) = server.post("/api/v1/actions", &agent, &justified).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "DENIED", "{result}");
    assert!(
        result["decision"]["reasons"]
            .to_string()
            .contains("policy evaluation failed"),
        "{result}"
    );
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 3, "nothing ran");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
