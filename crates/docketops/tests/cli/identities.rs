//! `docketops identities` on the database, and a gateway started on it afterwards.

use serde_json::Value;

use super::{Server, TestApp, entry_kinds, stdout};

/// `docketops identities` on the database: create (key printed once), list, suspend, revoke, each a ledger
/// entry; bad scopes are refused; a gateway started afterwards still creates its bootstrap admin and
/// refuses the CLI-made agent's key once it is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_from_the_command_line() {
    let app = TestApp::new("sqlite", "identities_cli").await;
    let out = app.run(&[
        "identities",
        "create",
        "--name",
        "ci-bot",
        "--kind",
        "agent",
        "--role",
        "operator",
        "--scope",
        "mutate:staging:Deployment",
        "--scope",
        "read:*:*",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let mut lines = text.lines();
    let identity: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let key = lines.next().unwrap().to_owned();
    assert!(key.starts_with("dkt_agent_"), "{text}");
    assert_eq!(identity["scopes"][0]["access"], "mutate");
    assert_eq!(identity["created_by"].as_str().unwrap().split(':').next(), Some("cli"));
    let id = identity["id"].as_str().unwrap().to_owned();

    let out = app.run(&[
        "identities",
        "create",
        "--name",
        "x",
        "--kind",
        "agent",
        "--role",
        "operator",
        "--scope",
        "write:a:Pod",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown access"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.run(&[
        "identities",
        "create",
        "--name",
        "ci-bot",
        "--kind",
        "agent",
        "--role",
        "operator",
    ]);
    assert_eq!(out.status.code(), Some(2), "duplicate name");

    let listed = stdout(&app.run(&["identities", "list"]));
    assert_eq!(listed.lines().count(), 1);
    assert!(!listed.contains(&key), "keys are never listed");

    // A gateway on this database: no admin yet, so it creates the bootstrap admin; the agent's key works.
    let server = Server::start(&app);
    let (status, me) = server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await;
    assert_eq!(status, 200, "{me}");
    let out = app.run(&["identities", "suspend", &id, "--reason", "rotation drill"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await.0, 401);
    assert!(app.run(&["identities", "reactivate", &id]).status.success());
    assert_eq!(server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await.0, 200);
    assert!(app.run(&["identities", "revoke", &id]).status.success());
    assert_eq!(server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await.0, 401);
    assert_eq!(
        app.run(&["identities", "reactivate", &id]).status.code(),
        Some(2),
        "revoked for good"
    );

    let (_, page) = server.admin_get("/api/v1/ledger/entries?limit=100").await;
    let kinds = entry_kinds(&page);
    assert_eq!(
        kinds,
        [
            "ledger.initialized",
            "identity.created",
            "identity.created",
            "identity.suspended",
            "identity.reactivated",
            "identity.revoked"
        ]
    );
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
