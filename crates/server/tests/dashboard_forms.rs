//! The dashboard's forms in-process, on a real SQLite ledger: the sign-in form's double-submit cookie, the
//! session cookie sign-in sets (clearing the sign-in cookies, the OIDC one on its own path) and sign-out
//! clears, every `Set-Cookie` checked attribute by attribute, with and without `Secure`; and the kill
//! switch's page (freeze and lift, and who may).

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use server::AppState;
use tower::ServiceExt;

/// A cookie the response sets: its value and its attributes (lowercase).
type SetCookies = BTreeMap<String, (String, BTreeSet<String>)>;

fn router(app: &gateway::testing::TestApp, secure_cookies: bool) -> Router {
    server::router(AppState {
        store: app.store.clone(),
        ledger: app.ledger.clone(),
        signing_key: app.signing_key.clone(),
        directory: app.directory.clone(),
        pipeline: app.pipeline.clone(),
        metrics: std::sync::Arc::new(gateway::Metrics::new(None)),
        max_body_bytes: server::DEFAULT_MAX_BODY_BYTES,
        dashboard: server::dashboard::DashboardState::new(secure_cookies),
        identity_providers: server::IdentityProviders::default(),
        audit_webhook_token: None,
        transparency: std::sync::Arc::new(gateway::Transparency::new(
            app.store.clone(),
            ledger_core::LedgerSigningKey::generate(),
            gateway::TransparencyConfig::local("test.example/ledger"),
        )),
    })
}

/// One request with `cookie` (a `Cookie` header value) and, for a POST, the url-encoded `form`; the status,
/// the cookies set, the Location and the body.
async fn send(
    router: &Router,
    path: &str,
    cookie: &str,
    form: Option<&[(&str, &str)]>,
) -> (StatusCode, SetCookies, Option<String>, String) {
    let mut request = Request::builder().uri(path).header(header::HOST, "gateway.test");
    if !cookie.is_empty() {
        request = request.header(header::COOKIE, cookie);
    }
    let body = match form {
        Some(fields) => {
            request = request
                .method("POST")
                .header(header::ORIGIN, "https://gateway.test")
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
    let cookies = set_cookies(&response);
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, cookies, location, String::from_utf8_lossy(&bytes).into_owned())
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

fn set_cookies(response: &Response<Body>) -> SetCookies {
    let mut cookies = SetCookies::new();
    for value in response.headers().get_all(header::SET_COOKIE) {
        let mut parts = value.to_str().unwrap().split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        let attributes = parts.map(str::to_ascii_lowercase).collect();
        let previous = cookies.insert(name.to_owned(), (value.to_owned(), attributes));
        assert!(previous.is_none(), "{name} is set twice");
    }
    cookies
}

/// The attributes every dashboard cookie has, with `Path` and `Max-Age`, and `Secure` when asked.
fn attributes(path: &str, max_age: u64, same_site: &str, secure: bool) -> BTreeSet<String> {
    let mut attributes: BTreeSet<String> = [
        "httponly".to_owned(),
        format!("path={path}"),
        format!("max-age={max_age}"),
        format!("samesite={same_site}"),
    ]
    .into();
    if secure {
        attributes.insert("secure".to_owned());
    }
    attributes
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_and_out_set_and_clear_the_cookies() {
    let app = gateway::testing::TestApp::new().build().await;
    let admin_key = app.api_key("admin").to_owned();
    for secure in [false, true] {
        let router = router(&app, secure);
        let (status, cookies, _, page) = send(&router, "/login", "", None).await;
        assert_eq!(status, StatusCode::OK);
        let (login_token, login_attributes) = &cookies["dkt_login"];
        assert_eq!(login_attributes, &attributes("/", 3600, "strict", secure));
        assert_eq!(login_token.len(), 64);
        assert_eq!(&csrf_in(&page), login_token, "the form carries the cookie's token");
        let login_cookie = format!("dkt_login={login_token}");

        // A form whose token is not the cookie's is refused, and a new form (and cookie) is given.
        let stale = "0".repeat(64);
        let wrong = [("csrf", stale.as_str()), ("api_key", admin_key.as_str())];
        let (status, cookies, _, _) = send(&router, "/login", &login_cookie, Some(&wrong)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(cookies.contains_key("dkt_login"));

        let form = [("csrf", login_token.as_str()), ("api_key", admin_key.as_str())];
        let (status, cookies, location, _) = send(&router, "/login", &login_cookie, Some(&form)).await;
        assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/")));
        let (session, session_attributes) = &cookies["dkt_session"];
        assert_eq!(session.len(), 64);
        assert_eq!(session_attributes, &attributes("/", 8 * 3600, "strict", secure));
        assert_eq!(
            cookies["dkt_login"],
            (String::new(), attributes("/", 0, "strict", secure))
        );
        let oidc_removal = attributes("/auth/oidc", 0, "strict", secure);
        assert_eq!(cookies["dkt_oidc"], (String::new(), oidc_removal));
        assert_eq!(cookies.len(), 3);

        let session_cookie = format!("a=1; dkt_session={session}");
        let (status, _, _, page) = send(&router, "/", &session_cookie, None).await;
        assert_eq!(status, StatusCode::OK, "the session cookie signs in");
        let csrf = csrf_in(&page);
        let logout = [("csrf", csrf.as_str())];
        let (status, cookies, location, _) = send(&router, "/logout", &session_cookie, Some(&logout)).await;
        assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")));
        assert_eq!(
            cookies,
            SetCookies::from([(
                "dkt_session".to_owned(),
                (String::new(), attributes("/", 0, "strict", secure))
            )])
        );
        let (status, _, location, _) = send(&router, "/", &session_cookie, None).await;
        assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")));
    }
}

/// Signs in with `key` through the sign-in form: the session's cookie header.
async fn sign_in(router: &Router, key: &str) -> String {
    let (_, cookies, _, page) = send(router, "/login", "", None).await;
    let login_cookie = format!("dkt_login={}", cookies["dkt_login"].0);
    let form = [("csrf", csrf_in(&page)), ("api_key", key.to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, cookies, _, _) = send(router, "/login", &login_cookie, Some(&form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    format!("dkt_session={}", cookies["dkt_session"].0)
}

#[tokio::test]
async fn the_kill_switch_page_freezes_and_lifts_for_those_allowed() {
    let app = gateway::testing::TestApp::new()
        .with_identity("agent", &[domain::Role::Operator], &["mutate:staging:Deployment"])
        .build()
        .await;
    let router = router(&app, false);
    let admin = sign_in(&router, app.api_key("admin")).await;
    let (status, _, _, page) = send(&router, "/safety", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Nothing is frozen") && page.contains("action=\"/safety/freeze\""),
        "{page}"
    );
    let csrf = csrf_in(&page);
    let freeze = [
        ("csrf", csrf.as_str()),
        ("kind", "namespace"),
        ("namespace", "staging"),
        ("cluster", ""),
        ("identity_id", ""),
        ("reason", "incident <b>42</b>"),
    ];
    let mut forged = freeze;
    forged[0] = ("csrf", "0");
    let (status, _, _, _) = send(&router, "/safety/freeze", &admin, Some(&forged)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a form without the session's token is refused"
    );
    assert!(app.pipeline.active_freezes().await.unwrap().is_empty());
    let (status, _, location, _) = send(&router, "/safety/freeze", &admin, Some(&freeze)).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/safety")));
    let active = app.pipeline.active_freezes().await.unwrap();
    assert_eq!(active.len(), 1);
    let (_, _, _, page) = send(&router, "/safety", &admin, None).await;
    assert!(page.contains("namespace staging (every cluster)"), "{page}");
    assert!(
        page.contains("incident &#60;b&#62;42&#60;/b&#62;"),
        "the reason is escaped: {page}"
    );

    // The agent sees why it is stopped, but gets no form and may not freeze.
    let agent = sign_in(&router, app.api_key("agent")).await;
    let (_, _, _, page) = send(&router, "/safety", &agent, None).await;
    assert!(
        page.contains("namespace staging") && !page.contains("/safety/freeze\""),
        "{page}"
    );
    let agent_csrf = csrf_in(&page);
    let mut by_agent = freeze;
    by_agent[0] = ("csrf", agent_csrf.as_str());
    by_agent[1] = ("kind", "agents");
    let (status, _, _, _) = send(&router, "/safety/freeze", &agent, Some(&by_agent)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let lift = [("csrf", csrf.as_str()), ("reason", "contained")];
    let path = format!("/safety/freezes/{}/lift", active[0].id);
    let (status, _, _, _) = send(&router, &path, &admin, Some(&lift)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(app.pipeline.active_freezes().await.unwrap().is_empty());
}
