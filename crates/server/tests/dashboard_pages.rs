//! The dashboard's actions list and action page in-process, on a real SQLite ledger, a fake cluster and the
//! default policy: a policy-denied SCALE shows the diff its preview made and the policy's reason; the list
//! has one row per action, filters by status and pages by the API's cursor; someone who is not an auditor
//! sees only their own actions; what a filter echoes is escaped. The overview counts what happened (from the
//! activity tables) and shows auditors the denials by reason, the most active identities and the last
//! verification.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::{ActionStatus, Role};
use gateway::testing::{FakeCluster, TestApp};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use server::AppState;
use tower::ServiceExt;

struct Dashboard {
    router: Router,
    app: TestApp,
}

impl Dashboard {
    async fn new() -> Dashboard {
        let cluster = Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2));
        let app = TestApp::new()
            .with_cluster(cluster)
            .with_identity("agent", &[Role::Operator], &["mutate:staging:Deployment"])
            .with_identity("other-agent", &[Role::Operator], &["mutate:staging:Deployment"])
            .with_identity("lead", &[Role::Auditor, Role::Admin], &[])
            .build()
            .await;
        let router = server::router(AppState {
            store: app.store.clone(),
            ledger: app.ledger.clone(),
            signing_key: app.signing_key.clone(),
            directory: app.directory.clone(),
            pipeline: app.pipeline.clone(),
            metrics: Arc::new(gateway::Metrics::new(None)),
            max_body_bytes: server::DEFAULT_MAX_BODY_BYTES,
            dashboard: server::dashboard::DashboardState::new(false),
            identity_providers: server::IdentityProviders::default(),
            audit_webhook_token: None,
            transparency: Arc::new(gateway::Transparency::new(
                app.store.clone(),
                ledger_core::LedgerSigningKey::generate(),
                gateway::TransparencyConfig::local("test.example/ledger"),
            )),
        });
        Dashboard { router, app }
    }

    /// A SCALE of staging/web to `replicas` through the API as `name`: the action's id and status.
    async fn scale(&self, name: &str, replicas: u32, justification: Option<&str>) -> (String, String) {
        let body = json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
                          "resource_name": "web", "parameters": {"replicas": replicas},
                          "justification": justification});
        let request = Request::post("/api/v1/actions")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.app.api_key(name)))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        (
            answer["action_id"].as_str().unwrap().to_owned(),
            answer["status"].as_str().unwrap().to_owned(),
        )
    }

    /// `GET path` with the `cookie` header (empty: none), or a POST of the url-encoded `form`: the status,
    /// the cookies set (name=value) and the body.
    async fn send(&self, path: &str, cookie: &str, form: Option<&str>) -> (StatusCode, Vec<String>, String) {
        let mut request = Request::builder().uri(path).header(header::HOST, "gateway.test");
        if !cookie.is_empty() {
            request = request.header(header::COOKIE, cookie);
        }
        if form.is_some() {
            request = request
                .method("POST")
                .header(header::ORIGIN, "https://gateway.test")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let body = form.map_or_else(Body::empty, |f| Body::from(f.to_owned()));
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, cookies, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Signs `name` in through the sign-in form: its session's cookie header.
    async fn sign_in(&self, name: &str) -> String {
        let (_, cookies, page) = self.send("/login", "", None).await;
        let login = cookies.iter().find(|c| c.starts_with("dkt_login=")).unwrap().clone();
        let form = format!("csrf={}&api_key={}", csrf_in(&page), self.app.api_key(name));
        let (status, cookies, _) = self.send("/login", &login, Some(&form)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        cookies.into_iter().find(|c| c.starts_with("dkt_session=")).unwrap()
    }

    /// `GET path` as the session `cookie`, answered 200: the page.
    async fn page(&self, path: &str, cookie: &str) -> String {
        let (status, _, page) = self.send(path, cookie, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        page
    }
}

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// The action ids of the list's rows, in order (each row links to its action twice: time and summary).
fn row_ids(page: &str) -> Vec<String> {
    page.split("<tr class=\"action-row\">")
        .skip(1)
        .map(|row| {
            let at = row.find("href=\"/actions/").expect("a row links to its action") + "href=\"/actions/".len();
            row[at..].split('"').next().unwrap().to_owned()
        })
        .collect()
}

/// The `href` of the "Older actions" link, entities decoded, if the page has one.
fn older_link(page: &str) -> Option<String> {
    let end = page.find("\" rel=\"next\">Older actions</a>")?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

#[tokio::test]
async fn a_denied_scale_shows_the_diff_policy_saw_and_why_it_was_denied() {
    let dashboard = Dashboard::new().await;
    let (id, status) = dashboard.scale("agent", 5, None).await;
    assert_eq!(
        status,
        ActionStatus::Denied.as_str(),
        "the default policy denies an unjustified agent"
    );
    let agent = dashboard.sign_in("agent").await;
    let page = dashboard.page(&format!("/actions/{id}"), &agent).await;
    assert!(page.contains("<code>/spec/replicas</code>"), "{page}");
    assert!(
        page.contains("<td><code>2</code></td><td><code>5</code></td>"),
        "from 2 to 5: {page}"
    );
    assert!(
        !page.contains("No changes were previewed") && !page.contains("No preview is recorded"),
        "{page}"
    );
    let why = &page[page.find("id=\"why\"").expect("an explanation beside the status")..];
    let why = &why[..why.find("</ul>").unwrap()];
    assert!(why.contains("mutations by agents need a justification"), "{why}");
    assert!(why.contains("denied it in enforce mode"), "{why}");

    // A completed SCALE shows its own diff; one to the current count previews no change, and says so.
    let (done, status) = dashboard.scale("agent", 3, Some("load test")).await;
    assert_eq!(status, ActionStatus::Completed.as_str());
    let page = dashboard.page(&format!("/actions/{done}"), &agent).await;
    assert!(
        page.contains("<td><code>2</code></td><td><code>3</code></td>"),
        "{page}"
    );
    let (same, _) = dashboard.scale("agent", 3, Some("again")).await;
    let page = dashboard.page(&format!("/actions/{same}"), &agent).await;
    assert!(page.contains("A preview was made and it changes nothing"), "{page}");
}

#[tokio::test]
async fn the_actions_list_has_one_row_per_action_filters_by_status_and_pages() {
    let dashboard = Dashboard::new().await;
    let mut denied = Vec::new();
    for replicas in [4, 5] {
        denied.push(dashboard.scale("agent", replicas, None).await.0);
    }
    let (completed, status) = dashboard.scale("agent", 3, Some("load test")).await;
    assert_eq!(status, ActionStatus::Completed.as_str());
    let admin = dashboard.sign_in("admin").await;

    let page = dashboard.page("/actions", &admin).await;
    let all = row_ids(&page);
    // Newest first, one row each, though each action wrote several entries.
    assert_eq!(all, [completed.clone(), denied[1].clone(), denied[0].clone()], "{page}");
    assert!(
        page.contains("SCALE Deployment staging/web") && page.contains("<time datetime=\""),
        "{page}"
    );
    assert!(older_link(&page).is_none(), "one page holds them all");

    let filter = format!("/actions?status={}", ActionStatus::Denied.as_str());
    let page = dashboard.page(&filter, &admin).await;
    assert_eq!(row_ids(&page), [denied[1].clone(), denied[0].clone()], "{page}");
    assert!(
        !page.contains(&format!("status-{}\"", ActionStatus::Completed.as_str())),
        "{page}"
    );
    let filter = format!("/actions?status={}", ActionStatus::Completed.as_str());
    assert_eq!(row_ids(&dashboard.page(&filter, &admin).await), [completed.as_str()]);

    // Pages of two: the second starts after the first's last row, and is the last.
    let first = dashboard.page("/actions?limit=2", &admin).await;
    assert_eq!(row_ids(&first), all[..2]);
    let next = older_link(&first).expect("a link to older actions");
    assert_eq!(next, format!("/actions?limit=2&before={}", all[1]));
    let second = dashboard.page(&next, &admin).await;
    assert_eq!(row_ids(&second), all[2..]);
    assert!(older_link(&second).is_none(), "{second}");
    // The default page is 50: 51 actions make two pages.
    for _ in 0..48 {
        dashboard.scale("agent", 6, None).await;
    }
    let page = dashboard.page("/actions", &admin).await;
    assert_eq!(row_ids(&page).len(), 50);
    let next = older_link(&page).expect("a second page");
    assert_eq!(row_ids(&dashboard.page(&next, &admin).await), [denied[0].clone()]);
}

#[tokio::test]
async fn someone_who_is_not_an_auditor_sees_only_their_own_actions() {
    let dashboard = Dashboard::new().await;
    let (own, _) = dashboard.scale("agent", 4, None).await;
    let (other, _) = dashboard.scale("other-agent", 5, None).await;
    let agent = dashboard.sign_in("agent").await;
    let page = dashboard.page("/actions", &agent).await;
    assert_eq!(row_ids(&page), [own.as_str()], "{page}");
    assert!(!page.contains("name=\"identity\""), "only auditors filter by identity");
    // Asking for the other identity's actions changes nothing, and its action's id is no cursor.
    let other_id = dashboard.app.caller("other-agent").identity.id.clone();
    let page = dashboard.page(&format!("/actions?identity={other_id}"), &agent).await;
    assert_eq!(row_ids(&page), [own.as_str()], "{page}");
    let (status, _, _) = dashboard.send(&format!("/actions?before={other}"), &agent, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let admin = dashboard.sign_in("admin").await;
    assert_eq!(row_ids(&dashboard.page("/actions", &admin).await), [other.clone(), own]);
    let page = dashboard.page(&format!("/actions?identity={other_id}"), &admin).await;
    assert_eq!(row_ids(&page), [other], "{page}");
    assert!(page.contains("<select id=\"a-identity\" name=\"identity\">"), "{page}");
}

#[tokio::test]
async fn what_a_filter_echoes_is_escaped() {
    let dashboard = Dashboard::new().await;
    dashboard.scale("agent", 4, None).await;
    let admin = dashboard.sign_in("admin").await;
    let injected = "%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let page = dashboard.page(&format!("/actions?namespace={injected}"), &admin).await;
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(
        page.contains("value=\"&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;\""),
        "{page}"
    );
    assert!(row_ids(&page).is_empty(), "no namespace has that name");
    let (status, _, page) = dashboard
        .send(&format!("/actions?status={injected}"), &admin, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!page.contains("<script>alert(1)"), "{page}");
}

/// The overview's totals row of `words`: (this hour, last 24 h).
fn total(page: &str, words: &str) -> (u64, u64) {
    let marker = format!("</span>{words}</td>");
    let row = &page[page.find(&marker).unwrap_or_else(|| panic!("a {words} row: {page}"))..];
    let numbers: Vec<u64> = row
        .split("<td class=\"num\">")
        .skip(1)
        .take(2)
        .map(|cell| cell.split('<').next().unwrap().parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

#[tokio::test]
async fn the_overview_counts_what_happened_and_shows_auditors_why() {
    let dashboard = Dashboard::new().await;
    let lead = dashboard.sign_in("lead").await;
    let empty = dashboard.page("/", &lead).await;
    assert_eq!(total(&empty, "completed"), (0, 0));
    assert!(empty.contains("Not verified by this gateway yet."), "{empty}");

    let (_, denied) = dashboard.scale("agent", 5, None).await;
    assert_eq!(denied, ActionStatus::Denied.as_str());
    for (name, replicas) in [("agent", 3), ("other-agent", 4), ("other-agent", 6)] {
        let (_, status) = dashboard.scale(name, replicas, Some("load test")).await;
        assert_eq!(status, ActionStatus::Completed.as_str());
    }
    // Counted off the request path: nothing shows until the catch-up has run.
    assert_eq!(total(&dashboard.page("/", &lead).await, "completed").1, 0);
    let counted = dashboard.app.store.activity_catch_up(|_| {}).await.unwrap();
    assert_eq!(counted.folded_seq, counted.head_seq);

    let page = dashboard.page("/", &lead).await;
    assert_eq!(total(&page, "completed").1, 3, "{page}");
    assert_eq!(total(&page, "denied").1, 1);
    assert_eq!(total(&page, "failed").1, 0);
    assert!(page.contains("<strong>4</strong> in 24 h"), "four requested: {page}");
    assert_eq!(page.matches("<g class=\"bar\">").count(), 24);
    assert!(
        page.contains(" denied</title>") && page.contains(" completed"),
        "a bar reads out its counts: {page}"
    );
    let denials = &page[page.find("id=\"denials\"").expect("denials by reason")..];
    assert!(
        denials.contains("<td>Policy</td><td>mutations by agents need a justification</td><td class=\"num\">1</td>"),
        "{denials}"
    );
    let active = &page[page.find("id=\"most-active\"").expect("the most active identities")..];
    let active = &active[..active.find("</table>").unwrap()];
    assert!(active.contains(">agent</a></td><td class=\"num\">2</td>"), "{active}");
    assert!(
        active.contains(">other-agent</a></td><td class=\"num\">2</td>"),
        "{active}"
    );
    assert!(page.contains("No bypasses detected in the last 24 h."));
    assert!(page.contains("id=\"freeze-form\""), "an admin may freeze from here");

    // A verification through the API is the one the overview names.
    let request = Request::get("/api/v1/ledger/verify")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", dashboard.app.api_key("lead")),
        )
        .body(Body::empty())
        .unwrap();
    let response = dashboard.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = dashboard.page("/", &lead).await;
    let verified = &page[page.find("id=\"last-verification\"").unwrap()..];
    let verified = &verified[..verified.find("</p>").unwrap()];
    assert!(
        verified.contains("class=\"ok\">valid: ") && verified.contains(" entries, just now by "),
        "{verified}"
    );

    // Someone who is not an auditor sees the counts, not who did what or why.
    let agent = dashboard.sign_in("agent").await;
    let page = dashboard.page("/", &agent).await;
    assert_eq!(total(&page, "completed").1, 3);
    assert!(
        !page.contains("id=\"denials\"") && !page.contains("id=\"most-active\""),
        "{page}"
    );
    assert!(!page.contains("id=\"freeze-form\""));
    // The timeline moved to /timeline.
    assert!(
        dashboard
            .page("/timeline", &agent)
            .await
            .contains("Filter the timeline")
    );
}
