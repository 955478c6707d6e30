//! The MCP server, driven by a real MCP client (the official Python SDK, `mcp` from PyPI, in a venv that
//! scripts/ensure-mcp-client makes once) against a real gateway process and the real API server: over
//! streamable HTTP at `/mcp` with a bearer API key, and over stdio through `docketops mcp --url … --key …`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::{BIN, KubeWorld, Server, TestApp, create_identities};

/// Every tool the server offers; none approves or rejects.
const TOOLS: [&str; 11] = [
    "apply_manifest",
    "delete_resource",
    "explain_denial",
    "get_action_status",
    "get_resource",
    "list_my_pending_approvals",
    "list_resources",
    "patch_resource",
    "restart_workload",
    "scale_workload",
    "set_image",
];

/// The venv's python with the `mcp` package, made once per test process by scripts/ensure-mcp-client.
fn client_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-mcp-client");
        let out = Command::new(&script).output().expect("scripts/ensure-mcp-client runs");
        assert!(
            out.status.success(),
            "scripts/ensure-mcp-client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(stdout.lines().last().expect("the venv's python").trim())
    })
}

/// Runs tests/data/mcp_client.py with `args` (`http URL KEY` or `stdio BIN URL KEY`) on `steps`: its JSON
/// answer (server info and one result per step, or `{"error": …}`).
pub(super) fn run_client(args: &[&str], steps: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mcp_client.py");
    let mut child = Command::new(client_python())
        .arg(&script)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(steps.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the MCP client failed: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
}

pub(super) fn call(tool: &str, arguments: Value) -> Value {
    json!({"op": "call", "tool": tool, "arguments": arguments})
}

/// The structured result of a successful tool call.
fn ok(result: &Value) -> &Value {
    assert_eq!(result["is_error"], false, "{result}");
    assert!(
        result["text"].as_str().is_some_and(|t| t.starts_with('{')),
        "JSON text too: {result}"
    );
    &result["structured"]
}

/// The ledger ids and hashes every action result carries, checked against the gateway's own copy of the entry.
async fn assert_ledger_ids(server: &Server, result: &Value) {
    let id = result["ledger_entry_id"].as_str().unwrap_or_default();
    assert!(id.starts_with("evt_"), "{result}");
    for field in ["event_hash", "chain_hash"] {
        let hash = result[field].as_str().unwrap_or_default();
        assert!(hash.starts_with("sha256:") && hash.len() == 71, "{field}: {result}");
    }
    let (status, entry) = server.admin_get(&format!("/api/v1/ledger/entries/{id}")).await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["event_hash"], result["event_hash"]);
    assert_eq!(entry["chain_hash"], result["chain_hash"]);
    assert_eq!(entry["action_id"], result["action_id"]);
}

/// Over streamable HTTP: the tools and their schemas; a SCALE of web-api that really happens and comes back
/// with its ledger ids; a kube-system call denied by the guardrails, and explained; Secret data withheld even
/// where the gateway's guardrails reveal it to REST callers; a HIGH-risk DELETE that comes back
/// PENDING_APPROVAL and completes once a human approver approves it through the HTTP API, while the agent waits
/// with get_action_status; a wrong key refused; a key without the operator role answered with a tool error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_http_governs_every_tool_call() {
    let app = TestApp::new("sqlite", "mcp_http").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    world.deployment("old-api", 2).await;
    world
        .admin_apply(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-creds", "namespace": ns}, "data": {"password": "aHVudGVyMg=="}}))
        .await;
    // The gateway reveals Secret values to REST callers here; MCP must withhold them all the same.
    let config = app.dir.path().join("docketops.toml");
    std::fs::write(&config, "[guardrails]\nreveal_secret_data = true\n").unwrap();
    let mut args = world.serve_args();
    args.extend(["--config".to_owned(), config.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("mcp-agent", "agent", &["operator"]),
            ("approver", "human", &["approver"]),
        ],
    )
    .await;
    let agent = made["mcp-agent"].0.clone();
    let approver = made["approver"].0.clone();
    let url = format!("{}/mcp", server.base);
    let as_agent = |steps: Value| run_client(&["http", &url, &agent], &steps);
    // Everything the tools answered, to check for credentials at the end.
    let mut answered = String::new();

    let answer = as_agent(json!([
        {"op": "list_tools"},
        call("scale_workload", json!({"namespace": ns, "resource_name": "web-api", "replicas": 5,
                                      "justification": "Scale up for load test"})),
        call("scale_workload", json!({"namespace": "kube-system", "resource_name": "coredns", "replicas": 1,
                                      "justification": "x"})),
        call("get_resource", json!({"namespace": ns, "resource_kind": "Secret", "resource_name": "db-creds"})),
        call("list_resources", json!({"namespace": ns, "resource_kind": "Secret"})),
        call("delete_resource", json!({"namespace": ns, "resource_kind": "Deployment", "resource_name": "old-api",
                                       "justification": "decommission"})),
        call("list_my_pending_approvals", json!({})),
    ]));
    assert!(answer.get("error").is_none(), "{answer}");
    answered.push_str(&answer.to_string());
    assert_eq!(answer["server_info"]["name"], "docketops", "{answer}");
    assert!(
        answer["instructions"].as_str().unwrap().contains("PENDING_APPROVAL"),
        "{answer}"
    );
    let results = answer["results"].as_array().unwrap();

    // The tools, each with a description and an input schema an LLM can fill in.
    let tools = results[0]["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for tool in tools {
        assert!(tool["description"].as_str().unwrap().len() > 40, "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    let scale = tools.iter().find(|t| t["name"] == "scale_workload").unwrap();
    assert_eq!(scale["inputSchema"]["properties"]["replicas"]["type"], "integer");
    let required = scale["inputSchema"]["required"].to_string();
    for field in ["namespace", "resource_name", "replicas", "justification"] {
        assert!(required.contains(field), "{scale}");
    }
    let delete = tools.iter().find(|t| t["name"] == "delete_resource").unwrap();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    let get = tools.iter().find(|t| t["name"] == "get_resource").unwrap();
    assert_eq!(get["annotations"]["readOnlyHint"], true);

    // SCALE: through the whole pipeline, with the ledger's ids and hashes, and the Deployment really changed.
    let scaled = ok(&results[1]);
    assert_eq!(scaled["status"], "COMPLETED", "{scaled}");
    assert_eq!(scaled["risk"], "MEDIUM");
    assert_eq!(scaled["decision"]["outcome"], "allow");
    assert_eq!(scaled["signature_verified"], true);
    assert_eq!(scaled["entries"].as_array().unwrap().len(), 5, "{scaled}");
    assert_ledger_ids(&server, scaled).await;
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "the Deployment really has 5 replicas");
    let scaled_id = scaled["action_id"].as_str().unwrap();
    let (_, action) = server.get(&format!("/api/v1/actions/{scaled_id}"), Some(&agent)).await;
    let kinds = super::entry_kinds(&action);
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

    // kube-system: denied by the guardrails, a result (not an error), with the reason and its ledger entry.
    let denied = ok(&results[2]);
    assert_eq!(denied["status"], "DENIED", "{denied}");
    assert!(
        denied["decision"]["reasons"].to_string().contains("namespace_blocked"),
        "{denied}"
    );
    assert!(denied["next"].as_str().unwrap().contains("explain_denial"), "{denied}");
    assert_ledger_ids(&server, denied).await;
    let denied_id = denied["action_id"].as_str().unwrap().to_owned();

    // Secrets: metadata only through MCP, although this gateway reveals the values to REST callers.
    let secret = ok(&results[3]);
    assert_eq!(secret["status"], "COMPLETED", "{secret}");
    assert_eq!(secret["result"]["metadata"]["name"], "db-creds", "{secret}");
    assert_eq!(secret["result"]["data"]["password"], "<redacted>", "{secret}");
    let listed = ok(&results[4]);
    assert_eq!(listed["result"][0]["metadata"]["name"], "db-creds", "{listed}");
    for result in &results[3..5] {
        assert!(!result.to_string().contains("aHVudGVyMg=="), "{result}");
    }
    let (status, rest) = server
        .post(
            "/api/v1/actions",
            &agent,
            &json!({"action_type": "GET", "namespace": ns, "resource_kind": "Secret", "resource_name": "db-creds"})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(
        rest["result"]["data"]["password"], "aHVudGVyMg==",
        "the REST API reveals it here: {rest}"
    );

    // DELETE is HIGH risk: pending, with how to wait, and in the agent's own pending list.
    let pending = ok(&results[5]);
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    assert_eq!(pending["risk"], "HIGH");
    assert!(
        pending["approval"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be approved through MCP"),
        "{pending}"
    );
    assert_eq!(pending["approval"]["wait"]["tool"], "get_action_status");
    assert_ledger_ids(&server, pending).await;
    let delete_id = pending["action_id"].as_str().unwrap().to_owned();
    assert_eq!(
        pending["approval"]["wait"]["arguments"]["action_id"],
        delete_id.as_str()
    );
    let mine = ok(&results[6]);
    assert_eq!(mine["pending"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["pending"][0]["action_id"], delete_id.as_str());

    // The agent waits for the outcome while a human approver approves through the HTTP API.
    let waiting = {
        let (url, agent, delete_id, denied_id) = (url.clone(), agent.clone(), delete_id.clone(), denied_id.clone());
        tokio::task::spawn_blocking(move || {
            run_client(
                &["http", &url, &agent],
                &json!([
                    call("get_action_status", json!({"action_id": delete_id, "wait_seconds": 30})),
                    call("explain_denial", json!({"action_id": denied_id})),
                    call("list_my_pending_approvals", json!({})),
                ]),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, approved) = server
        .post(
            &format!("/api/v1/approvals/{delete_id}/approve"),
            &approver,
            r#"{"comment": "ok to remove"}"#,
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let answer = waiting.await.unwrap();
    assert!(answer.get("error").is_none(), "{answer}");
    answered.push_str(&answer.to_string());
    let results = answer["results"].as_array().unwrap();
    let done = ok(&results[0]);
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["final"], true);
    assert_eq!(done["verification"]["passed"], true, "{done}");
    let entry_kinds = done["entries"].to_string();
    for kind in [
        "approval.requested",
        "approval.granted",
        "action.executed",
        "outcome.verified",
    ] {
        assert!(entry_kinds.contains(kind), "{kind}: {done}");
    }
    assert_eq!(done["ledger_entry_id"], approved["ledger_entry_id"], "{done}");
    let gone = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/old-api"))
        .await;
    assert_eq!(gone["code"], 404, "{gone}");

    let explained = ok(&results[1]);
    assert_eq!(explained["denied"], true, "{explained}");
    assert_eq!(explained["denied_by"], "guardrail");
    assert_eq!(explained["guardrail"]["rule"], "namespace_blocked");
    assert!(
        explained["ledger_entries"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("evt_"),
        "{explained}"
    );
    assert!(explained["advice"].as_str().unwrap().contains("final"), "{explained}");
    assert_eq!(ok(&results[2])["pending"], json!([]));

    // A wrong key never reaches MCP; a key without the operator role gets tool errors with the gateway's reason.
    let refused = run_client(&["http", &url, "dkt_agent_wrong"], &json!([{"op": "list_tools"}]));
    assert!(refused.get("error").is_some(), "{refused}");
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&agent[..agent.len() - 1])
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let answer = run_client(
        &["http", &url, &approver],
        &json!([call(
            "scale_workload",
            json!({"namespace": ns, "resource_name": "web-api", "replicas": 3,
                                              "justification": "approvers cannot act"})
        )]),
    );
    let forbidden = &answer["results"][0];
    assert_eq!(forbidden["is_error"], true, "{forbidden}");
    assert!(
        forbidden["text"].as_str().unwrap().contains("operator role"),
        "{forbidden}"
    );
    assert_eq!(forbidden["structured"]["error"]["status"], 403);

    // Nothing the tools returned holds the gateway's Kubernetes credentials.
    let kubeconfig: Value = serde_json::from_str(&std::fs::read_to_string(&world.kubeconfig).unwrap()).unwrap();
    let token = kubeconfig["users"][0]["user"]["token"].as_str().unwrap();
    assert!(!answered.contains(token), "a tool result holds the gateway's token");

    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// Over stdio: an agent host launches `docketops mcp --url … --key …`, which lists the same tools and reads
/// through the gateway's HTTP API; a wrong key there is a tool error with the gateway's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_stdio_through_the_gateway_api() {
    let app = TestApp::new("sqlite", "mcp_stdio").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(&server, &ns, &[("stdio-agent", "agent", &["operator"])]).await;
    let agent = made["stdio-agent"].0.clone();

    let read = call(
        "get_resource",
        json!({"namespace": ns, "resource_kind": "Deployment", "resource_name": "web-api",
               "justification": "check the replicas"}),
    );
    let answer = run_client(
        &["stdio", BIN, &server.base, &agent],
        &json!([{"op": "list_tools"}, read]),
    );
    assert!(answer.get("error").is_none(), "{answer}");
    let results = answer["results"].as_array().unwrap();
    let mut names: Vec<&str> = results[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    let got = ok(&results[1]);
    assert_eq!(got["status"], "COMPLETED", "{got}");
    assert_eq!(got["risk"], "LOW");
    assert_eq!(got["result"]["spec"]["replicas"], 2, "{got}");
    assert_eq!(got["signature_verified"], true);
    assert_ledger_ids(&server, got).await;

    let answer = run_client(&["stdio", BIN, &server.base, "dkt_agent_wrong"], &json!([read]));
    let refused = &answer["results"][0];
    assert_eq!(refused["is_error"], true, "{answer}");
    assert_eq!(refused["structured"]["error"]["status"], 401, "{refused}");
    assert!(
        !refused.to_string().contains("dkt_agent_wrong"),
        "the key is never echoed: {refused}"
    );
    drop(server);
    app.finish().await;
}
