//! Identity administration in the dashboard, in-process on a real SQLite ledger: an identity created with the
//! form (scopes from rows, no JSON) gets the scopes the rows name and a key, shown once, that works against the
//! API; suspend, reactivate, revoke, issue, rotate and revoke keys through the forms take effect on the API at
//! once and are ledger entries; and every form refuses a missing or forged CSRF token, another origin, a
//! non-admin, and an admin suspending itself.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::{Access, EntryKind, IdentityStatus, Role, Scope};
use http_body_util::BodyExt;
use serde_json::Value;
use server::AppState;
use tower::ServiceExt;

fn router(app: &gateway::testing::TestApp) -> Router {
    server::router(AppState {
        store: app.store.clone(),
        ledger: app.ledger.clone(),
        signing_key: app.signing_key.clone(),
        directory: app.directory.clone(),
        pipeline: app.pipeline.clone(),
        metrics: std::sync::Arc::new(gateway::Metrics::new(None)),
        max_body_bytes: server::DEFAULT_MAX_BODY_BYTES,
        dashboard: server::dashboard::DashboardState::new(false),
        identity_providers: server::IdentityProviders::default(),
        audit_webhook_token: None,
        transparency: std::sync::Arc::new(gateway::Transparency::new(
            app.store.clone(),
            ledger_core::LedgerSigningKey::generate(),
            gateway::TransparencyConfig::local("test.example/ledger"),
        )),
    })
}

/// The origin the gateway's own pages post from.
const OWN_ORIGIN: &str = "https://gateway.test";

/// A response: status, `Location`, `Set-Cookie` values, body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

/// One request with `cookie`; a POST (from `origin`) when `form` is given, its fields url-encoded.
async fn send_from(router: &Router, path: &str, cookie: &str, form: Option<&[(&str, &str)]>, origin: &str) -> Answer {
    let mut request = Request::builder().uri(path).header(header::HOST, "gateway.test");
    if !cookie.is_empty() {
        request = request.header(header::COOKIE, cookie);
    }
    let body = match form {
        Some(fields) => {
            request = request
                .method("POST")
                .header(header::ORIGIN, origin)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let encoded: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("{name}={}", url_encode(value)))
                .collect();
            Body::from(encoded.join("&"))
        }
        None => Body::empty(),
    };
    let response = router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    if form.is_some() {
        let cache = response.headers().get(header::CACHE_CONTROL);
        assert_eq!(
            cache.unwrap(),
            "no-store",
            "a form's answer (a new key) is never stored"
        );
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        cookies,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn send(router: &Router, path: &str, cookie: &str, form: Option<&[(&str, &str)]>) -> Answer {
    send_from(router, path, cookie, form, OWN_ORIGIN).await
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_in(html: &str) -> String {
    attribute_after(html, "name=\"csrf\"", "value")
}

/// The value of attribute `name` after `marker` in `html` (HTML-escaped text is not unescaped: keys and ids
/// need no escaping).
fn attribute_after(html: &str, marker: &str, name: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in {html}"));
    let attribute = format!("{name}=\"");
    let start = at + html[at..].find(&attribute).expect("the attribute") + attribute.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The text after `marker` in `html`, up to the next tag.
fn text_after(html: &str, marker: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in {html}")) + marker.len();
    html[at..].split('<').next().unwrap().to_owned()
}

/// The key a key page shows once, in its `new-key` input.
fn new_key_in(html: &str) -> String {
    assert!(html.contains("will not be shown again"), "{html}");
    assert!(
        html.contains("<label for=\"new-key\""),
        "the key's input is labelled: {html}"
    );
    let key = attribute_after(html, "id=\"new-key\"", "value");
    assert!(
        html[..html.find("id=\"new-key\"").unwrap()].ends_with("<input "),
        "{html}"
    );
    key
}

/// Signs in with `key` through the sign-in form: the session's cookie header.
async fn sign_in(router: &Router, key: &str) -> String {
    let login = send(router, "/login", "", None).await;
    let token = login
        .cookies
        .iter()
        .find_map(|c| c.strip_prefix("dkt_login="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("the sign-in cookie");
    let csrf = csrf_in(&login.body);
    let form = [("csrf", csrf.as_str()), ("api_key", key)];
    let answer = send(router, "/login", &format!("dkt_login={token}"), Some(&form)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let session = answer
        .cookies
        .iter()
        .find_map(|c| c.strip_prefix("dkt_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("the session cookie");
    format!("dkt_session={session}")
}

/// `GET /api/v1/identities/{id}` with `key` as the bearer (anyone may read itself): the status.
async fn api_status(router: &Router, id: &str, key: &str) -> StatusCode {
    let request = Request::builder()
        .uri(format!("/api/v1/identities/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

/// `POST` to the API with `key` as the bearer and no body: the status.
async fn api_post(router: &Router, path: &str, key: &str) -> StatusCode {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

/// The ledger's entries of `kind` about identity `id` (in the payload's `identity.id` or `identity_id`).
async fn entries_about(app: &gateway::testing::TestApp, kind: EntryKind, id: &str) -> Vec<(String, Value)> {
    let entries = app.store.entries_after(0, 1000).await.unwrap();
    entries
        .into_iter()
        .filter(|entry| entry.kind == kind.as_str())
        .map(|entry| (entry.actor, serde_json::from_str::<Value>(&entry.payload).unwrap()))
        .filter(|(_, payload)| payload["identity_id"] == id || payload["identity"]["id"] == id)
        .collect()
}

/// The new-identity form's fields for `name`: an operator agent with a mutate row, an unused row and a read
/// row.
fn new_agent_form<'a>(csrf: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", name),
        ("kind", "agent"),
        ("role", "operator"),
        ("groups", "sre\nplatform"),
        ("s0_access", "mutate"),
        ("s0_namespaces", "staging, team-*"),
        ("s0_kind", "Deployment"),
        ("s0_kind", "StatefulSet"),
        ("s0_clusters", ""),
        ("s1_access", "none"),
        ("s1_namespaces", ""),
        ("s1_clusters", ""),
        ("s2_access", "read"),
        ("s2_namespaces", "*"),
        ("s2_kind", "*"),
        ("s2_clusters", "prod-eu"),
    ]
}

#[tokio::test]
async fn a_form_created_agent_gets_the_rows_scopes_and_a_key_that_works() {
    let app = gateway::testing::TestApp::new().build().await;
    let router = router(&app);
    let admin = sign_in(&router, app.api_key("admin")).await;
    let list = send(&router, "/identities", &admin, None).await;
    assert!(list.body.contains("href=\"/identities/new\""), "{}", list.body);
    let page = send(&router, "/identities/new", &admin, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("name=\"s2_kind\" value=\"CronJob\""),
        "{}",
        page.body
    );
    let csrf = csrf_in(&page.body);

    let created = send(&router, "/identities", &admin, Some(&new_agent_form(&csrf, "deployer"))).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let key = new_key_in(&created.body);
    let identity = app.directory.list(None, 100).await.unwrap();
    let identity = identity
        .iter()
        .find(|i| i.name == "deployer")
        .expect("the new identity");
    assert!(created.body.contains(&identity.id), "{}", created.body);

    // The rows became these scopes; the unused row none.
    let staging = Scope::new(&["staging", "team-*"], Access::Mutate, &["Deployment", "StatefulSet"]);
    let mut everywhere = Scope::new(&["*"], Access::Read, &["*"]);
    everywhere.clusters = vec!["prod-eu".to_owned()];
    assert_eq!(identity.scopes, [staging, everywhere]);
    assert_eq!(
        (identity.roles.as_slice(), identity.groups.len()),
        ([Role::Operator].as_slice(), 2)
    );
    assert_eq!(identity.status, IdentityStatus::Active);

    // The key shown authenticates against the API; a wrong one does not.
    assert_eq!(api_status(&router, &identity.id, &key).await, StatusCode::OK);
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        api_status(&router, &identity.id, &wrong).await,
        StatusCode::UNAUTHORIZED
    );

    // Recorded in the ledger, by the admin.
    let entries = entries_about(&app, EntryKind::IdentityCreated, &identity.id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, app.caller("admin").identity.id);

    // The same name again: the form comes back with the gateway's message and what was typed.
    let again = send(&router, "/identities", &admin, Some(&new_agent_form(&csrf, "deployer"))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(
        again.body.contains("id=\"form-error\"") && !again.body.contains("new-key"),
        "{}",
        again.body
    );
}

#[tokio::test]
async fn a_refused_form_comes_back_with_the_message_and_the_values() {
    let app = gateway::testing::TestApp::new().build().await;
    let router = router(&app);
    let admin = sign_in(&router, app.api_key("admin")).await;
    let csrf = csrf_in(&send(&router, "/identities/new", &admin, None).await.body);
    let before = app.directory.list(None, 100).await.unwrap().len();

    let mut bad_namespace = new_agent_form(&csrf, "typo");
    bad_namespace[6] = ("s0_namespaces", "Staging");
    let answer = send(&router, "/identities", &admin, Some(&bad_namespace)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    let body = &answer.body;
    assert!(
        body.contains("scope row 1") && body.contains("id=\"form-error\""),
        "{body}"
    );
    assert!(
        body.contains("value=\"typo\"") && body.contains("value=\"Staging\""),
        "{body}"
    );
    assert!(
        body.contains("value=\"operator\" checked"),
        "the roles stay ticked: {body}"
    );
    assert!(
        body.contains("name=\"s0_kind\" value=\"StatefulSet\" checked"),
        "{body}"
    );
    assert!(body.contains("value=\"mutate\" selected"), "{body}");
    assert!(body.contains("prod-eu") && body.contains("sre\nplatform"), "{body}");

    // What only the directory checks (no role) comes back the same way.
    let no_role: Vec<_> = new_agent_form(&csrf, "nobody")
        .into_iter()
        .filter(|(name, _)| *name != "role")
        .collect();
    let answer = send(&router, "/identities", &admin, Some(&no_role)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(answer.body.contains("at least one role") && answer.body.contains("value=\"nobody\""));
    assert_eq!(
        app.directory.list(None, 100).await.unwrap().len(),
        before,
        "nothing was created"
    );
}

#[tokio::test]
async fn forms_refuse_forged_tokens_other_origins_non_admins_and_an_admin_on_itself() {
    let app = gateway::testing::TestApp::new()
        .with_identity("auditor", &[Role::Auditor], &[])
        .with_identity("agent", &[Role::Operator], &["mutate:staging:Deployment"])
        .build()
        .await;
    let router = router(&app);
    let admin = sign_in(&router, app.api_key("admin")).await;
    let csrf = csrf_in(&send(&router, "/identities/new", &admin, None).await.body);
    let count = || async { app.directory.list(None, 100).await.unwrap().len() };
    let before = count().await;

    let mut missing = new_agent_form(&csrf, "forged");
    missing.remove(0);
    let mut wrong = new_agent_form(&csrf, "forged");
    wrong[0] = ("csrf", "0");
    for (form, what) in [(&missing, "no token"), (&wrong, "a wrong token")] {
        let answer = send(&router, "/identities", &admin, Some(form)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}: {}", answer.body);
    }
    let good = new_agent_form(&csrf, "forged");
    let answer = send_from(&router, "/identities", &admin, Some(&good), "https://evil.test").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "another origin");

    // An auditor has its own token, but not the role; it reads identities without any control.
    let auditor = sign_in(&router, app.api_key("auditor")).await;
    assert_eq!(
        send(&router, "/identities/new", &auditor, None).await.status,
        StatusCode::FORBIDDEN
    );
    let agent = app.caller("agent").identity.id.clone();
    let page = send(&router, &format!("/identities/{agent}"), &auditor, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("/status\"") && !page.body.contains("/keys"),
        "{}",
        page.body
    );
    let auditor_csrf = csrf_in(&page.body);
    let by_auditor = new_agent_form(&auditor_csrf, "forged");
    let answer = send(&router, "/identities", &auditor, Some(&by_auditor)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "an auditor");
    let suspend = [("csrf", auditor_csrf.as_str()), ("to", "suspended"), ("reason", "x")];
    let path = format!("/identities/{agent}/status");
    assert_eq!(
        send(&router, &path, &auditor, Some(&suspend)).await.status,
        StatusCode::FORBIDDEN
    );
    let issue = [("csrf", auditor_csrf.as_str())];
    let keys = format!("/identities/{agent}/keys");
    assert_eq!(
        send(&router, &keys, &auditor, Some(&issue)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count().await, before, "nothing was created");

    // The key and status forms check the token and the origin too.
    let forged = [("csrf", "0"), ("to", "suspended"), ("reason", "x")];
    assert_eq!(
        send(&router, &path, &admin, Some(&forged)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&router, &keys, &admin, Some(&[("csrf", "0")])).await.status,
        StatusCode::FORBIDDEN
    );
    let suspend = [("csrf", csrf.as_str()), ("to", "suspended"), ("reason", "x")];
    let answer = send_from(&router, &path, &admin, Some(&suspend), "https://evil.test").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(app.directory.get(&agent).await.unwrap().status, IdentityStatus::Active);
    assert!(entries_about(&app, EntryKind::KeyIssued, &agent).await.is_empty());

    // An admin cannot suspend or revoke itself, here as on the API (one rule); its own page offers neither.
    let me = app.caller("admin").identity.id.clone();
    let own = send(&router, &format!("/identities/{me}"), &admin, None).await;
    assert!(
        own.body.contains("id=\"own-identity\"") && !own.body.contains("/status\""),
        "{}",
        own.body
    );
    let revoke = [
        ("csrf", csrf.as_str()),
        ("to", "revoked"),
        ("reason", "x"),
        ("confirm", "yes"),
    ];
    for form in [&suspend[..], &revoke[..]] {
        let answer = send(&router, &format!("/identities/{me}/status"), &admin, Some(form)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
        assert!(
            answer.body.contains("cannot suspend or revoke itself"),
            "{}",
            answer.body
        );
    }
    let suspend_self = format!("/api/v1/identities/{me}/suspend");
    assert_eq!(
        api_post(&router, &suspend_self, app.api_key("admin")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.directory.get(&me).await.unwrap().status, IdentityStatus::Active);
}

#[tokio::test]
async fn suspend_reactivate_rotate_issue_and_revoke_take_effect_on_the_api_and_are_recorded() {
    let app = gateway::testing::TestApp::new()
        .with_identity("agent", &[Role::Operator], &["mutate:staging:Deployment"])
        .build()
        .await;
    let router = router(&app);
    let admin = sign_in(&router, app.api_key("admin")).await;
    let agent = app.caller("agent").identity.id.clone();
    let first_key = app.api_key("agent").to_owned();
    assert_eq!(api_status(&router, &agent, &first_key).await, StatusCode::OK);
    let page = send(&router, &format!("/identities/{agent}"), &admin, None).await;
    assert!(
        page.body.contains(&format!("action=\"/identities/{agent}/status\"")) && page.body.contains("Issue a new key"),
        "{}",
        page.body
    );
    let csrf = csrf_in(&page.body);
    let status = format!("/identities/{agent}/status");
    let change = |to: &'static str, confirm: bool| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("to", to.to_owned()),
            ("reason", format!("drill {to}")),
        ];
        if confirm {
            form.push(("confirm", "yes".to_owned()));
        }
        form
    };
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let router = router.clone();
        let admin = admin.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&router, &path, &admin, Some(&form)).await
        }
    };

    let answer = post(status.clone(), change(IdentityStatus::Suspended.as_str(), false)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location.unwrap(), format!("/identities/{agent}"));
    assert_eq!(api_status(&router, &agent, &first_key).await, StatusCode::UNAUTHORIZED);
    let suspended = entries_about(&app, EntryKind::IdentitySuspended, &agent).await;
    assert_eq!(suspended.len(), 1);
    assert_eq!(suspended[0].1["reason"], "drill suspended");

    // Revoking needs the box ticked.
    let answer = post(status.clone(), change(IdentityStatus::Revoked.as_str(), false)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.directory.get(&agent).await.unwrap().status,
        IdentityStatus::Suspended
    );

    let answer = post(status.clone(), change(IdentityStatus::Active.as_str(), false)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(api_status(&router, &agent, &first_key).await, StatusCode::OK);
    assert_eq!(
        entries_about(&app, EntryKind::IdentityReactivated, &agent).await.len(),
        1
    );

    // Rotate: a new key, shown once; the old one stops working at once.
    let keys = app.directory.keys(&agent, None, 100).await.unwrap();
    let rotate = format!("/identities/{agent}/keys/{}/rotate", keys[0].id);
    let answer = post(rotate, vec![("csrf", csrf.clone())]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let second_key = new_key_in(&answer.body);
    assert_ne!(second_key, first_key);
    assert_eq!(api_status(&router, &agent, &first_key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api_status(&router, &agent, &second_key).await, StatusCode::OK);
    let rotated = entries_about(&app, EntryKind::KeyRotated, &agent).await;
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].1["replaces"], keys[0].id.as_str());

    // Issue another; revoke it from its row; both recorded.
    let answer = post(format!("/identities/{agent}/keys"), vec![("csrf", csrf.clone())]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let third_key = new_key_in(&answer.body);
    let third_id = text_after(&answer.body, "<code id=\"key-id\">");
    assert!(third_id.starts_with("key_"), "{third_id}");
    assert_eq!(api_status(&router, &agent, &third_key).await, StatusCode::OK);
    assert_eq!(entries_about(&app, EntryKind::KeyIssued, &agent).await.len(), 1);
    let page = send(&router, &format!("/identities/{agent}"), &admin, None).await;
    let revoke_key = format!("/identities/{agent}/keys/{third_id}/revoke");
    assert!(page.body.contains(&format!("action=\"{revoke_key}\"")), "{}", page.body);
    let answer = post(revoke_key, vec![("csrf", csrf.clone())]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(api_status(&router, &agent, &third_key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api_status(&router, &agent, &second_key).await, StatusCode::OK);
    assert_eq!(entries_about(&app, EntryKind::KeyRevoked, &agent).await.len(), 1);

    // Revoke the identity for good: every key stops; the page offers nothing more.
    let answer = post(status, change(IdentityStatus::Revoked.as_str(), true)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(api_status(&router, &agent, &second_key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(entries_about(&app, EntryKind::IdentityRevoked, &agent).await.len(), 1);
    let page = send(&router, &format!("/identities/{agent}"), &admin, None).await;
    assert!(
        !page.body.contains("/status\"") && !page.body.contains("Issue a new key"),
        "{}",
        page.body
    );
}
