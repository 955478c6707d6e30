//! `docketops seed-history`: history appended while a gateway serves the same database; it verifies, and
//! the gateway pages through the seeded identities.

use std::process::Stdio;

use super::{Server, TestApp, stdout};

async fn seed_history_appends_while_a_gateway_serves(backend: &str) {
    let app = TestApp::new(backend, &format!("seed_history_{backend}")).await;
    let server = Server::start(&app);

    let refused = app.run(&["seed-history", "--actions", "10"]);
    assert!(!refused.status.success(), "seeding needs --yes");

    let seeding = app
        .command()
        .args([
            "seed-history",
            "--actions",
            "1500",
            "--identities",
            "250",
            "--chunk",
            "100",
            "--yes",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The gateway keeps writing meanwhile: the appender's lock serializes the two processes.
    for i in 0..5 {
        let body = format!(r#"{{"name": "during-seed-{i}", "kind": "agent", "roles": ["operator"]}}"#);
        let (status, created) = server.post("/api/v1/identities", &server.admin_key, &body).await;
        assert_eq!(status, 201, "{created}");
    }
    let out = seeding.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = stdout(&out);
    assert!(
        summary.contains("250 identities, 1500 actions") && summary.contains("entries/s"),
        "{summary}"
    );

    let verify = app.run(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));

    let mut seen = 0;
    let mut path = "/api/v1/identities?limit=100".to_string();
    loop {
        let (status, page) = server.admin_get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen += page["identities"].as_array().unwrap().len();
        match page["next_after"].as_str() {
            Some(next) => path = format!("/api/v1/identities?limit=100&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        1 + 5 + 250,
        "the bootstrap admin, five made meanwhile, the seeded ones"
    );
    let (_, actions) = server.admin_get("/api/v1/actions?limit=1000").await;
    assert_eq!(actions["actions"].as_array().map(Vec::len), Some(1000));
    let (_, pending) = server.admin_get("/api/v1/approvals?status=pending").await;
    assert!(
        pending["approvals"]
            .as_array()
            .is_some_and(|a| { a.iter().all(|p| p["action"]["status"] == "PENDING_APPROVAL") })
    );
    drop(server);
    app.finish().await;
}

#[tokio::test]
async fn seed_history_appends_while_a_gateway_serves_sqlite() {
    seed_history_appends_while_a_gateway_serves("sqlite").await;
}

#[tokio::test]
async fn seed_history_appends_while_a_gateway_serves_postgres() {
    seed_history_appends_while_a_gateway_serves("postgres").await;
}
