//! The web dashboard in a real browser (`support::browser`: headless Chromium over WebDriver), against a
//! gateway with the real API server. Screenshots are kept in `target/test-artifacts/dashboard/`.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use super::support::browser::{Driver, assert_controls_are_labelled, screenshot, sign_in, text_of, wait_for_text};
use super::{KubeWorld, Server, TestApp, create_identities};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let app = TestApp::new("sqlite", "dashboard").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    world.deployment("old-api", 1).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("olivia", "human", &["approver", "auditor"]),
        ],
    )
    .await;
    let agent = made["agent"].0.clone();
    let olivia = made["olivia"].0.clone();
    let base = server.base.clone();
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // Anonymous visitors are sent to sign in; a wrong key is refused on the page, with the reason.
    browser.goto(&format!("{base}/")).await.unwrap();
    assert!(browser.current_url().await.unwrap().path().ends_with("/login"));
    assert_controls_are_labelled(&browser, "login").await;
    sign_in(&browser, &base, "dkt_human_notarealkeynotarealkeynotarealkeyxx").await;
    let refused = text_of(&browser, "#login-error").await;
    assert!(refused.contains("sign-in refused"), "{refused}");
    sign_in(&browser, &base, &olivia).await;
    let landing = wait_for_text(&browser, "Signed in as olivia", 10).await;
    assert!(
        landing.contains("How actions ended, per hour"),
        "the overview is the landing page: {landing}"
    );
    browser.goto(&format!("{base}/timeline")).await.unwrap();
    let header = wait_for_text(&browser, "Ledger timeline", 10).await;
    assert!(header.contains("Signed in as olivia"), "{header}");
    assert_controls_are_labelled(&browser, "timeline").await;
    screenshot(&browser, "01-timeline-signed-in").await;

    // An action submitted through the API appears in the open timeline without a reload.
    let marker: Value = browser
        .execute("window.__notReloaded = true; return true;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(true));
    let scale = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                       "resource_name": "web-api", "parameters": {"replicas": 3}, "justification": "load"});
    let (status, scaled) = server.post("/api/v1/actions", &agent, &scale.to_string()).await;
    assert_eq!(status, 200, "{scaled}");
    let scale_id = scaled["action_id"].as_str().unwrap().to_owned();
    let row = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(&format!("#timeline a[href='/actions/{scale_id}']")))
        .await
        .expect("the new action appears in the live timeline");
    let still_same_page: Value = browser
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(still_same_page, json!(true), "the row came without a page reload");
    screenshot(&browser, "02-timeline-live-update").await;

    // Its page: the whole chain with valid signatures and the dry-run diff.
    row.click().await.unwrap();
    let page = wait_for_text(&browser, "Chain of entries", 10).await;
    for kind in [
        "action.requested",
        "risk.classified",
        "policy.decided",
        "action.executed",
        "outcome.verified",
    ] {
        assert!(page.contains(kind), "{kind} missing from:\n{page}");
    }
    assert!(page.contains("/spec/replicas"), "the diff is shown:\n{page}");
    assert!(
        page.contains("signature valid") && !page.contains("signature invalid"),
        "{page}"
    );
    assert_eq!(text_of(&browser, "#action-status").await, "COMPLETED");

    // A HIGH-risk delete waits; olivia approves it in the browser and sees it complete.
    let delete = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                        "resource_name": "old-api", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &agent, &delete.to_string()).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    let delete_id = pending["action_id"].as_str().unwrap().to_owned();
    browser.goto(&format!("{base}/approvals")).await.unwrap();
    let card = wait_for_text(&browser, &delete_id, 10).await;
    assert!(card.contains("HIGH"), "{card}");
    assert_controls_are_labelled(&browser, "approvals").await;
    let form = format!("form[action='/approvals/{delete_id}']");
    browser
        .find(Locator::Css(&format!("{form} input[name=comment]")))
        .await
        .unwrap()
        .send_keys("checked the diff")
        .await
        .unwrap();
    screenshot(&browser, "03-approval-pending").await;
    browser
        .find(Locator::Css(&format!("{form} button[value=approve]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let done = wait_for_text(&browser, "approval.granted", 20).await;
    assert!(done.contains("outcome.verified"), "{done}");
    assert_eq!(text_of(&browser, "#action-status").await, "COMPLETED");
    screenshot(&browser, "04-approved-and-completed").await;
    let gone = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/old-api"))
        .await;
    assert_eq!(gone["code"], 404, "{gone}");
    let (_, action) = server.get(&format!("/api/v1/actions/{delete_id}"), Some(&agent)).await;
    let granted = action["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "approval.granted")
        .cloned()
        .unwrap();
    assert_eq!(granted["payload"]["comment"], "checked the diff");

    // Identities with trust, and a verification with its result.
    browser
        .goto(&format!("{base}/identities/{}", made["agent"].1))
        .await
        .unwrap();
    let identity = wait_for_text(&browser, "Trust history", 10).await;
    assert!(
        identity.contains("outcome.verified"),
        "trust changes are listed:\n{identity}"
    );
    browser
        .find(Locator::Css("svg.chart polyline"))
        .await
        .expect("a trust chart");
    screenshot(&browser, "05-identity-trust").await;
    browser.goto(&format!("{base}/verify")).await.unwrap();
    browser
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verified = wait_for_text(&browser, "The ledger is valid", 20).await;
    assert!(verified.contains("entries checked"), "{verified}");
    screenshot(&browser, "06-verified").await;

    // Forms without this session's CSRF token are refused, even with the session cookie.
    let cookies = browser.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == server::dashboard::SESSION_COOKIE)
        .expect("a session cookie")
        .value()
        .to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forged = http
        .post(format!("{base}/verify"))
        .header("cookie", format!("dkt_session={session}"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let cross_site = http
        .post(format!("{base}/logout"))
        .header("cookie", format!("dkt_session={session}"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    // A strict Content-Security-Policy on every page; the export downloads with the session.
    let page = http
        .get(format!("{base}/"))
        .header("cookie", format!("dkt_session={session}"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let export = http
        .get(format!("{base}/export"))
        .header("cookie", format!("dkt_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status().as_u16(), 200);
    let bundle = export.text().await.unwrap();
    assert!(bundle.lines().count() > 10, "{bundle}");

    // Signing out ends the session: the old cookie no longer opens pages.
    browser
        .find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "Sign in with your API key", 10).await;
    let after = http
        .get(format!("{base}/"))
        .header("cookie", format!("dkt_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 303, "the old session cookie is dead");

    browser.close().await.unwrap();
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
