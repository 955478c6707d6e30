//! The console's day-to-day pages in a real browser (`support::browser`), against a gateway with the real API
//! server: the actions list, a denied action's diff and reason, and identity administration — an agent created
//! in the browser acts through the API with the key shown once, and is suspended in the browser. Screenshots
//! are kept in `target/test-artifacts/dashboard/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use super::support::browser::{Driver, assert_controls_are_labelled, screenshot, sign_in, text_of, wait_for_text};
use super::{KubeWorld, Server, TestApp, create_identities};

async fn click(browser: &Client, css: &str) {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// The identity whose page the browser shows, read through the API as `admin`.
async fn identity_shown(server: &Server, admin: &str, browser: &Client) -> serde_json::Value {
    let url = browser.current_url().await.unwrap();
    let id = url.path().trim_start_matches("/identities/").to_owned();
    let (status, identity) = server.get(&format!("/api/v1/identities/{id}"), Some(admin)).await;
    assert_eq!(status, 200, "{url}: {identity}");
    identity["identity"].clone()
}

/// The rows of the actions list on the page.
async fn action_rows(browser: &Client) -> usize {
    browser
        .find_all(Locator::Css("#actions tr.action-row"))
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_actions_explains_denials_and_administers_identities() {
    let app = TestApp::new("sqlite", "console").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("ada", "human", &["admin", "auditor"]),
        ],
    )
    .await;
    let agent = made["agent"].0.clone();

    // One SCALE the default policy denies (an agent without a justification), one that completes.
    let scale = |replicas: u32, justification: Option<&str>| {
        let mut body = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                              "resource_name": "web-api", "parameters": {"replicas": replicas}});
        if let Some(why) = justification {
            body["justification"] = json!(why);
        }
        body.to_string()
    };
    let (_, denied) = server.post("/api/v1/actions", &agent, &scale(5, None)).await;
    assert_eq!(denied["status"], "DENIED", "{denied}");
    let denied_id = denied["action_id"].as_str().unwrap().to_owned();
    let (_, done) = server.post("/api/v1/actions", &agent, &scale(3, Some("load"))).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");

    let base = server.base.clone();
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, &made["ada"].0).await;
    wait_for_text(&browser, "Signed in as ada", 10).await;

    // The overview is the landing page: once the background count has caught up (every 5 s), the day's
    // totals, the chart, the denial's reason, the most active identity and the freeze form.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while browser.find(Locator::Css("#denials")).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the overview never counted the denial"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.goto(&format!("{base}/")).await.unwrap();
    }
    let denials = text_of(&browser, "#denials").await;
    assert!(
        denials.contains("mutations by agents need a justification"),
        "{denials}"
    );
    let active = text_of(&browser, "#most-active").await;
    assert!(active.contains("agent"), "{active}");
    let bars = browser.find_all(Locator::Css("#hourly-chart g.bar")).await.unwrap();
    assert_eq!(bars.len(), 24);
    let drawn = browser
        .find_all(Locator::Css(
            "#hourly-chart rect.t-completed, #hourly-chart rect.t-denied",
        ))
        .await
        .unwrap();
    // One part each, in one bar or (across an hour's turn) two.
    assert_eq!(drawn.len(), 2, "a completed and a denied part");
    assert!(
        browser.find(Locator::Css("#freeze-form")).await.is_ok(),
        "an admin freezes from here"
    );
    assert_controls_are_labelled(&browser, "overview").await;
    screenshot(&browser, "11-overview").await;

    // The actions list: one row per action (each wrote several entries), filtered by status.
    browser.goto(&format!("{base}/actions")).await.unwrap();
    wait_for_text(&browser, "web-api", 10).await;
    assert_eq!(action_rows(&browser).await, 2, "one row per action");
    assert_controls_are_labelled(&browser, "actions").await;
    screenshot(&browser, "07-actions").await;
    browser
        .find(Locator::Css("#a-status"))
        .await
        .unwrap()
        .select_by_label("DENIED")
        .await
        .unwrap();
    click(&browser, "form.filters button[type=submit]").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !browser.current_url().await.unwrap().as_str().contains("status=DENIED") || action_rows(&browser).await != 1 {
        assert!(std::time::Instant::now() < deadline, "the DENIED filter shows one row");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The denied action's page shows the diff its preview made and the policy's reason in words.
    click(&browser, &format!("#actions a[href='/actions/{denied_id}']")).await;
    let page = wait_for_text(&browser, "Chain of entries", 10).await;
    assert!(page.contains("/spec/replicas"), "the previewed diff:\n{page}");
    assert!(page.contains("justification"), "the reason:\n{page}");
    assert_eq!(text_of(&browser, "#action-status").await, "DENIED");
    screenshot(&browser, "08-denied-with-diff").await;

    // An agent created in the browser, its key shown once, used through the API.
    browser.goto(&format!("{base}/identities/new")).await.unwrap();
    wait_for_text(&browser, "New identity", 10).await;
    assert_controls_are_labelled(&browser, "new identity").await;
    type_into(&browser, "#name", "bot-7").await;
    click(&browser, "input[name=kind][value=agent]").await;
    click(&browser, "input[name=role][value=operator]").await;
    browser
        .find(Locator::Css("#s0_access"))
        .await
        .unwrap()
        .select_by_value("mutate")
        .await
        .unwrap();
    type_into(&browser, "#s0_namespaces", &ns).await;
    click(&browser, "input[name=s0_kind][value=Deployment]").await;
    click(&browser, "form.admin-form > button[type=submit]").await;
    let key = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#new-key"))
        .await
        .expect("the new key is shown")
        .prop("value")
        .await
        .unwrap()
        .expect("a key");
    assert!(key.starts_with("dkt_agent_"), "{key}");
    screenshot(&browser, "09-key-shown-once").await;
    let (status, acted) = server.post("/api/v1/actions", &key, &scale(4, Some("more load"))).await;
    assert_eq!((status, acted["status"].as_str()), (200, Some("COMPLETED")), "{acted}");

    // Suspended in the browser: its next call is refused.
    click(&browser, "main p a[href^='/identities/']").await;
    wait_for_text(&browser, "Change status", 10).await;
    assert_controls_are_labelled(&browser, "identity administration").await;
    type_into(&browser, "#reason-suspended", "rotating the agent's duties").await;
    click(
        &browser,
        "form.admin-status:has(input[name=to][value=suspended]) button[type=submit]",
    )
    .await;
    // The page that follows offers to reactivate it (the one before did not).
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.admin-status input[name=to][value=active]"))
        .await
        .expect("the suspended identity's page");
    let shown = identity_shown(&server, &made["ada"].0, &browser).await;
    assert_eq!(shown["status"], "suspended", "{shown}");
    screenshot(&browser, "10-suspended").await;
    let (status, refused) = server.post("/api/v1/actions", &key, &scale(2, Some("again"))).await;
    assert_eq!(status, 401, "a suspended agent's key: {refused}");

    browser.close().await.unwrap();
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}
