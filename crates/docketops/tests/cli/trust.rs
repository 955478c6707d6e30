//! Trust scores: earned through verified actions, gating MEDIUM risk, recomputed from an export by
//! `docketops trust`, rebuilt, and failing closed when stale.

use serde_json::Value;
use storage::tamper;

use super::{KubeWorld, Server, TestApp, create_identities, stdout};

/// The API's trust score and changes (paged, newest first), `docketops trust --bundle` on an export, and
/// the API again after `docketops trust rebuild` (run beside the serving gateway) agree.
pub(super) async fn assert_trust_agrees(app: &TestApp, server: &Server, identity: &str) {
    let from_api = || async {
        let mut changes = Vec::new();
        let mut path = format!("/api/v1/identities/{identity}?limit=2");
        loop {
            let (status, page) = server.admin_get(&path).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["trust_score"], page["trust"]["score"], "{page}");
            changes.extend(page["trust"]["changes"].as_array().unwrap().iter().cloned());
            match page["trust"]["next_before_seq"].as_u64() {
                Some(before) => path = format!("/api/v1/identities/{identity}?limit=2&before_seq={before}"),
                None => {
                    changes.reverse();
                    return (page["trust_score"].as_i64().unwrap(), Value::from(changes));
                }
            }
        }
    };
    let (score, changes) = from_api().await;
    let bundle = app.dir.path().join("trust-export.jsonl");
    let out = app.run(&["export", "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.run(&["trust", "--bundle", bundle.to_str().unwrap(), "--identity", identity]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["score"].as_i64().unwrap(), &report["changes"]),
        (score, &changes)
    );
    assert!(!changes.as_array().unwrap().is_empty(), "{report}");

    let out = app.run(&["trust", "rebuild", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("trust scores rebuilt from"), "{}", stdout(&out));
    assert_eq!(from_api().await, (score, changes), "the rebuilt numbers are the same");
    let (status, bad) = server
        .admin_get(&format!("/api/v1/identities/{identity}?limit=201"))
        .await;
    assert_eq!(status, 400, "{bad}");
}

/// Trust: with a gate of 5 for MEDIUM risk, a new agent's MEDIUM action waits for an approval; once approved
/// and verified it has earned 5 and the next one runs; a failure lowers the score; `docketops trust` on an
/// export reproduces the server's number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_is_earned_and_recomputable() {
    let app = TestApp::new("sqlite", "trust").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 1).await;
    let config = app.dir.path().join("trust.toml");
    std::fs::write(&config, "[trust]\nmedium_min = 5\n").unwrap();
    let mut args = world.serve_args();
    args.extend(["--config".to_owned(), config.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[("agent", "agent", &["operator"]), ("bob", "human", &["approver"])],
    )
    .await;
    let keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    let ids: std::collections::HashMap<&str, String> = made.iter().map(|(n, (_, i))| (n.as_str(), i.clone())).collect();
    let scale = |replicas: u64| {
        serde_json::json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
            "resource_name": "web-api", "parameters": {"replicas": replicas}, "justification": "trust test"})
        .to_string()
    };
    let trust = || async {
        let (_, me) = server
            .get(&format!("/api/v1/identities/{}", ids["agent"]), Some(&keys["agent"]))
            .await;
        me["trust_score"].as_i64().unwrap_or_else(|| panic!("{me}"))
    };
    assert_eq!(trust().await, 0, "a new identity starts at 0");

    let (_, gated) = server.post("/api/v1/actions", &keys["agent"], &scale(2)).await;
    assert_eq!(gated["status"], "PENDING_APPROVAL", "{gated}");
    assert!(
        gated["decision"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("trust 0 is below the 5"),
        "{gated}"
    );
    let id = gated["action_id"].as_str().unwrap();
    let (_, approved) = server
        .post(&format!("/api/v1/approvals/{id}/approve"), &keys["bob"], "{}")
        .await;
    assert_eq!(approved["status"], "COMPLETED", "{approved}");
    assert_eq!(trust().await, 5, "one verified MEDIUM success");

    let (_, allowed) = server.post("/api/v1/actions", &keys["agent"], &scale(3)).await;
    assert_eq!(allowed["status"], "COMPLETED", "earned: {allowed}");
    assert_eq!(trust().await, 10);

    let missing = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
        "resource_name": "does-not-exist", "justification": "oops"});
    let (_, failed) = server
        .post("/api/v1/actions", &keys["agent"], &missing.to_string())
        .await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let score = trust().await;
    assert_eq!(score, 5, "a failure lowers the score");

    let bundle = app.dir.path().join("export.jsonl");
    let out = app.run(&["export", "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.run(&[
        "trust",
        "--bundle",
        bundle.to_str().unwrap(),
        "--identity",
        &ids["agent"],
        "--score-only",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout(&out).trim(),
        score.to_string(),
        "the auditor's number is the server's"
    );
    let out = app.run(&[
        "trust",
        "--bundle",
        bundle.to_str().unwrap(),
        "--identity",
        &ids["agent"],
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changes"].as_array().unwrap().len(), 3, "{report}");
    assert_trust_agrees(&app, &server, &ids["agent"]).await;

    // Scores that miss entries (as after an upgrade, until the catch-up) may be too high: the gate fails
    // closed and the recorded policy input says why.
    let (_, earned) = server.post("/api/v1/actions", &keys["agent"], &scale(4)).await;
    assert_eq!(earned["status"], "COMPLETED", "{earned}");
    let store = app.store().await;
    let head = store.head().await.unwrap().unwrap().seq;
    tamper::set_trust_state(&store, head - 1, ledger_core::trust::SCORING_VERSION)
        .await
        .unwrap();
    let (_, stale) = server.post("/api/v1/actions", &keys["agent"], &scale(5)).await;
    assert_eq!(stale["status"], "PENDING_APPROVAL", "{stale}");
    assert!(
        stale["decision"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("trust 0 is below the 5"),
        "{stale}"
    );
    let (_, action) = server
        .admin_get(&format!("/api/v1/actions/{}", stale["action_id"].as_str().unwrap()))
        .await;
    let decided = action["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "policy.decided")
        .unwrap();
    assert_eq!(
        decided["payload"]["input"]["identity"]["trust_stale"], true,
        "{decided}"
    );
    drop(server);
    app.finish().await;
}
