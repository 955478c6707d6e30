//! Sign-in for people through real identity providers: an OpenID provider (`oidc-provider`, started by
//! `scripts/oidc-testenv`) and OpenLDAP (`slapd`, started by `scripts/ldap-testenv`), each with the seeded
//! users alice (platform-admins), bob (approvers, auditors), carol (developers) and mallory (no group).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Server, TestApp};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `scripts/ldap-testenv up`, `scripts/oidc-testenv up` and eval their `env` (scripts/test does)")
    })
}

/// A minimal browser: follows nothing by itself, keeps cookies per host (enough for these flows).
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<(String, String), String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn host(url: &str) -> String {
        let url = reqwest::Url::parse(url).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port_or_known_default().unwrap())
    }

    fn cookie_header(&self, url: &str) -> String {
        let host = Self::host(url);
        self.cookies
            .iter()
            .filter(|((h, _), _)| *h == host)
            .map(|((_, name), value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, url: &str, response: &reqwest::Response) {
        let host = Self::host(url);
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let removed = attributes.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if removed {
                self.cookies.remove(&(host.clone(), name.trim().to_owned()));
            } else {
                self.cookies
                    .insert((host.clone(), name.trim().to_owned()), value.to_owned());
            }
        }
    }

    /// One request; returns status, Location (resolved against `url`) and body.
    async fn send(
        &mut self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> (u16, Option<String>, String) {
        let mut request = self.http.request(method, url).header("cookie", self.cookie_header(url));
        if let Some(form) = form {
            let origin = reqwest::Url::parse(url).unwrap().origin().ascii_serialization();
            request = request.header("origin", origin).form(form);
        }
        let response = request.send().await.unwrap();
        self.keep_cookies(url, &response);
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| {
            reqwest::Url::parse(url)
                .unwrap()
                .join(l.to_str().unwrap())
                .unwrap()
                .to_string()
        });
        (status, location, response.text().await.unwrap_or_default())
    }

    /// GETs `url` and follows redirects (GET) until a page answers; returns its status, URL and body.
    async fn follow(&mut self, mut url: String) -> (u16, String, String) {
        for _ in 0..20 {
            let (status, location, body) = self.send(reqwest::Method::GET, &url, None).await;
            match location {
                Some(next) if (300..400).contains(&status) => url = next,
                _ => return (status, url, body),
            }
        }
        panic!("too many redirects from {url}");
    }
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// The roles the dashboard header shows for the signed-in user ("Signed in as NAME (roles)").
fn signed_in_as(body: &str) -> Option<(String, String)> {
    let start = body.find("Signed in as <strong>")? + "Signed in as <strong>".len();
    let rest = &body[start..];
    let name = rest.split("</strong>").next()?.to_owned();
    let roles = rest.split("</strong> (").nth(1)?.split(')').next()?.to_owned();
    Some((name, roles))
}

fn ldap_config(url: &str, starttls: bool) -> String {
    format!(
        "[ldap]\nurl = {url:?}\nstarttls = {starttls}\nca_file = {:?}\nuser_dn_template = {:?}\ngroup_base = {:?}\n\
         [[ldap.groups]]\ngroup = \"platform-admins\"\nroles = [\"admin\", \"auditor\"]\n\
         [[ldap.groups]]\ngroup = \"approvers\"\nroles = [\"approver\"]\n\
         [[ldap.groups]]\ngroup = \"auditors\"\nroles = [\"auditor\"]\n\
         [[ldap.groups]]\ngroup = \"developers\"\nroles = [\"operator\"]\n\
         scopes = [{{namespaces = [\"dev\"], access = \"mutate\", kinds = [\"Deployment\"]}}]\n",
        var("DOCKETOPS_TEST_LDAP_CA_FILE"),
        var("DOCKETOPS_TEST_LDAP_USER_DN_TEMPLATE"),
        var("DOCKETOPS_TEST_LDAP_GROUP_BASE"),
    )
}

/// Signs in on the dashboard's directory form; returns the final status and page.
async fn ldap_sign_in(base: &str, user: &str, password: &str) -> (u16, String) {
    let mut browser = Browser::new();
    let (_, _, page) = browser.follow(format!("{base}/login")).await;
    let csrf = hidden(&page, "csrf");
    let form = [("csrf", csrf.as_str()), ("username", user), ("password", password)];
    let (status, location, body) = browser
        .send(reqwest::Method::POST, &format!("{base}/login/ldap"), Some(&form))
        .await;
    match location {
        Some(next) if status == 303 => {
            let (status, _, body) = browser.follow(next).await;
            (status, body)
        }
        _ => (status, body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_users_get_the_roles_their_groups_map_to() {
    let app = TestApp::new("sqlite", "ldap").await;
    let dir = tempfile::tempdir().unwrap();
    let ldaps = dir.path().join("ldaps.toml");
    std::fs::write(&ldaps, ldap_config(&var("DOCKETOPS_TEST_LDAPS_URL"), false)).unwrap();
    let ldaps = ldaps.display().to_string();
    let server = Server::start_with(&app, &["--config", &ldaps]);
    let base = server.base.clone();

    for (user, roles) in [
        ("alice", "admin, auditor"),
        ("bob", "approver, auditor"),
        ("carol", "operator"),
    ] {
        let (status, page) = ldap_sign_in(&base, user, "secret").await;
        assert_eq!(status, 200, "{user}: {page}");
        assert_eq!(
            signed_in_as(&page),
            Some((format!("ldap:{user}"), roles.to_owned())),
            "{user} gets exactly the roles of their groups"
        );
    }
    // No mapped group: signed in at the directory, refused here.
    let (status, page) = ldap_sign_in(&base, "mallory", "secret").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("none of their groups grants a role"), "{page}");
    // Wrong password, unknown user, and a name that tries to be a filter or a DN: all plain refusals.
    for (user, password) in [
        ("bob", "wrong"),
        ("nobody", "secret"),
        ("*)(uid=*", "secret"),
        ("bob,ou=groups", "secret"),
    ] {
        let (status, page) = ldap_sign_in(&base, user, password).await;
        assert_eq!(status, 401, "{user}: {page}");
        assert!(page.contains("wrong user name or password"), "{user}: {page}");
    }

    // The identities are in the ledger, with where they came from; carol's scope came from her group.
    let (status, identities) = server.admin_get("/api/v1/identities").await;
    assert_eq!(status, 200, "{identities}");
    let carol = identities["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "ldap:carol")
        .cloned()
        .expect("carol is an identity");
    assert_eq!(carol["kind"], "human");
    assert_eq!(
        carol["scopes"],
        json!([{"namespaces": ["dev"], "access": "mutate", "kinds": ["Deployment"]}])
    );
    let (_, entries) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let created: Vec<&Value> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "identity.created" && e["payload"].to_string().contains("\"ldap\""))
        .collect();
    assert_eq!(created.len(), 3, "alice, bob and carol once each: {created:?}");

    // A second sign-in is the same identity (no new entry), whatever case the name is typed in.
    let (status, page) = ldap_sign_in(&base, "BOB", "secret").await;
    assert_eq!(status, 200);
    assert_eq!(signed_in_as(&page).map(|(name, _)| name).as_deref(), Some("ldap:bob"));
    let (_, entries) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let again = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "identity.created" && e["payload"].to_string().contains("\"ldap\""))
        .count();
    assert_eq!(again, 3);

    // The directory takes bob out of approvers: at his next sign-in he is an auditor only, recorded.
    // (A groupOfNames needs a member: the admin stands in while bob is out.)
    let membership = |group: &str, user: &str, change: &str| {
        let (user, admin) = (
            var("DOCKETOPS_TEST_LDAP_USER_DN_TEMPLATE").replace("{username}", user),
            var("DOCKETOPS_TEST_LDAP_ADMIN_DN"),
        );
        let (add, delete) = if change == "delete" {
            (admin, user)
        } else {
            (user, admin)
        };
        let ldif = format!(
            "dn: cn={group},{}\nchangetype: modify\nadd: member\nmember: {add}\n-\ndelete: member\nmember: {delete}\n",
            var("DOCKETOPS_TEST_LDAP_GROUP_BASE"),
        );
        let mut child = std::process::Command::new("ldapmodify")
            .args([
                "-H",
                &var("DOCKETOPS_TEST_LDAPS_URL"),
                "-x",
                "-D",
                &var("DOCKETOPS_TEST_LDAP_ADMIN_DN"),
            ])
            .args(["-w", &var("DOCKETOPS_TEST_LDAP_ADMIN_PASSWORD")])
            .env("LDAPTLS_CACERT", var("DOCKETOPS_TEST_LDAP_CA_FILE"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "ldapmodify {change}");
    };
    membership("approvers", "bob", "delete");
    let (status, page) = ldap_sign_in(&base, "bob", "secret").await;
    membership("approvers", "bob", "add");
    assert_eq!(status, 200, "{page}");
    assert_eq!(signed_in_as(&page).map(|(_, roles)| roles).as_deref(), Some("auditor"));
    let (_, entries) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let updated = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "identity.updated")
        .cloned()
        .expect("the change of rights is recorded");
    assert_eq!(updated["payload"]["roles"], json!(["auditor"]));
    assert_eq!(updated["payload"]["previous"]["roles"], json!(["approver", "auditor"]));
    // carol leaves her only mapped group: refused, and the rights she had are taken away, on record.
    membership("developers", "carol", "delete");
    let (status, page) = ldap_sign_in(&base, "carol", "secret").await;
    membership("developers", "carol", "add");
    assert_eq!(status, 403, "{page}");
    let (_, identities) = server.admin_get("/api/v1/identities").await;
    let carol = identities["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "ldap:carol")
        .cloned()
        .unwrap();
    assert_eq!(carol["roles"], json!([]), "{carol}");
    assert_eq!(carol["scopes"], json!([]), "{carol}");
    drop(server);

    // StartTLS on ldap:// works the same.
    let starttls = dir.path().join("starttls.toml");
    std::fs::write(&starttls, ldap_config(&var("DOCKETOPS_TEST_LDAP_URL"), true)).unwrap();
    let starttls = starttls.display().to_string();
    let server = Server::start_with(&app, &["--config", &starttls]);
    let (status, page) = ldap_sign_in(&server.base, "bob", "secret").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        signed_in_as(&page).map(|(_, roles)| roles).as_deref(),
        Some("approver, auditor")
    );
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// Signs `user` in at the provider's login form reached by following `start`, then follows the redirects
/// until `stop(url)` says to stop (that URL is returned without fetching it) or a page answers.
async fn provider_login(
    browser: &mut Browser,
    start: String,
    user: &str,
    password: &str,
    stop: impl Fn(&str) -> bool,
) -> (u16, String, String) {
    let (status, page_url, page) = browser.follow(start).await;
    assert_eq!(status, 200, "the provider's login page: {page}");
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form on {page_url}:\n{page}"))
        .replace("&amp;", "&");
    let action = reqwest::Url::parse(&page_url)
        .unwrap()
        .join(&action)
        .unwrap()
        .to_string();
    let form = [("login", user), ("password", password)];
    let (mut status, mut location, mut body) = browser.send(reqwest::Method::POST, &action, Some(&form)).await;
    let mut url = action;
    while let Some(next) = location.filter(|_| (300..400).contains(&status)) {
        if stop(&next) {
            return (status, next, body);
        }
        url = next;
        (status, location, body) = browser.send(reqwest::Method::GET, &url, None).await;
    }
    (status, url, body)
}

/// An ID token for `user` through the public CLI client (authorization code + PKCE, no secret).
pub(crate) async fn cli_id_token(user: &str) -> String {
    id_token_from(&var("DOCKETOPS_TEST_OIDC_ISSUER"), user).await
}

async fn id_token_from(issuer: &str, user: &str) -> String {
    let client = var("DOCKETOPS_TEST_OIDC_CLI_CLIENT_ID");
    let redirect = var("DOCKETOPS_TEST_OIDC_CLI_REDIRECT_URI");
    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pkce = auth::Pkce::new();
    let mut start = reqwest::Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    start
        .query_pairs_mut()
        .append_pair("client_id", &client)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile email groups")
        .append_pair("state", "cli-state")
        .append_pair("nonce", "cli-nonce")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let mut browser = Browser::new();
    let (_, back, _) = provider_login(&mut browser, start.to_string(), user, "secret", |url| {
        url.starts_with(&redirect)
    })
    .await;
    let back = reqwest::Url::parse(&back).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no code in {back}"));
    let token: Value = reqwest::Client::new()
        .post(discovery["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", client.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {token}"))
        .to_owned()
}

/// A token signed with a key of our own (not the issuer's), claiming `issuer`.
fn forged_token(issuer: &str, audience: &str) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(Default::default()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": issuer, "sub": "alice", "aud": audience, "exp": now + 600, "iat": now,
                        "preferred_username": "alice", "groups": ["platform-admins"]});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("not-the-issuers".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub(crate) fn oidc_config() -> String {
    oidc_config_for(
        &var("DOCKETOPS_TEST_OIDC_ISSUER"),
        &var("DOCKETOPS_TEST_OIDC_DASHBOARD_CLIENT_SECRET"),
    )
}

fn oidc_config_for(issuer: &str, secret: &str) -> String {
    format!(
        "[oidc]\nissuer = {:?}\nclient_id = {:?}\nclient_secret = {:?}\naudiences = [{:?}, {:?}]\nleeway_seconds = 0\n\
         [[oidc.groups]]\ngroup = \"platform-admins\"\nroles = [\"admin\", \"auditor\"]\n\
         [[oidc.groups]]\ngroup = \"approvers\"\nroles = [\"approver\"]\n\
         [[oidc.groups]]\ngroup = \"auditors\"\nroles = [\"auditor\"]\n\
         [[oidc.groups]]\ngroup = \"developers\"\nroles = [\"operator\"]\n",
        issuer,
        var("DOCKETOPS_TEST_OIDC_DASHBOARD_CLIENT_ID"),
        secret,
        var("DOCKETOPS_TEST_OIDC_DASHBOARD_CLIENT_ID"),
        var("DOCKETOPS_TEST_OIDC_CLI_CLIENT_ID"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_connect_users_get_the_roles_their_groups_map_to() {
    let app = TestApp::new("sqlite", "oidc").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oidc.toml");
    std::fs::write(&config, oidc_config()).unwrap();
    let config = config.display().to_string();
    let server = Server::start_with(&app, &["--config", &config]);
    let base = server.base.clone();

    // The dashboard: authorization code + PKCE through the real provider, back to a session.
    for (user, roles) in [
        ("alice", "admin, auditor"),
        ("bob", "approver, auditor"),
        ("carol", "operator"),
    ] {
        let mut browser = Browser::new();
        let (status, _, page) =
            provider_login(&mut browser, format!("{base}/login/oidc"), user, "secret", |_| false).await;
        assert_eq!(status, 200, "{user}: {page}");
        assert_eq!(
            signed_in_as(&page),
            Some((format!("oidc:{user}"), roles.to_owned())),
            "{user}: exactly the roles of their groups"
        );
    }
    let mut browser = Browser::new();
    let (status, _, page) = provider_login(&mut browser, format!("{base}/login/oidc"), "mallory", "secret", |_| {
        false
    })
    .await;
    assert_eq!(status, 403, "mallory has no mapped group: {page}");
    // A callback this browser did not start (login CSRF) is refused.
    let (status, _, page) = Browser::new()
        .follow(format!("{base}/auth/oidc/callback?code=stolen&state=forged"))
        .await;
    assert_eq!(status, 403, "{page}");

    // The API with the provider's ID tokens as bearer tokens.
    let verify = |token: String| {
        let base = base.clone();
        async move {
            let response = reqwest::Client::new()
                .get(format!("{base}/api/v1/ledger/verify"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = verify(cli_id_token("bob").await).await;
    assert_eq!(status, 200, "bob is an auditor: {body}");
    let (status, body) = verify(cli_id_token("carol").await).await;
    assert_eq!(status, 403, "carol is an operator only: {body}");
    let (status, body) = verify(cli_id_token("mallory").await).await;
    assert_eq!(status, 403, "{body}");
    // Tokens the gateway must not accept: another issuer, the right issuer but not its key, garbage.
    let issuer = var("DOCKETOPS_TEST_OIDC_ISSUER");
    let audience = var("DOCKETOPS_TEST_OIDC_CLI_CLIENT_ID");
    for (token, expected) in [
        (forged_token("https://evil.example", &audience), "is not trusted"),
        (forged_token(&issuer, &audience), "does not publish"),
        ("e30.e30.e30".to_owned(), ""),
    ] {
        let (status, body) = verify(token).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(expected), "{body}");
    }
    drop(server);

    // An expired token: a second provider whose ID tokens live 2 s, and a gateway that trusts it.
    let short = ShortLivedProvider::start().await;
    let config = dir.path().join("short.toml");
    std::fs::write(&config, oidc_config_for(&short.issuer, &short.secret)).unwrap();
    let config = config.display().to_string();
    let server = Server::start_with(&app, &["--config", &config]);
    let token = id_token_from(&short.issuer, "bob").await;
    let check = |token: String| {
        let base = server.base.clone();
        async move {
            let response = reqwest::Client::new()
                .get(format!("{base}/api/v1/ledger/verify"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = check(token.clone()).await;
    assert_eq!(status, 200, "fresh: {body}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (status, body) = check(token).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    drop(server);
    drop(short);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// A second OpenID provider (its own state directory) whose ID tokens expire after 2 seconds.
struct ShortLivedProvider {
    state: tempfile::TempDir,
    issuer: String,
    secret: String,
}

impl ShortLivedProvider {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oidc-testenv")
    }

    async fn start() -> ShortLivedProvider {
        let state = tempfile::tempdir().unwrap();
        let run = |command: &str| {
            let out = std::process::Command::new(Self::script())
                .arg(command)
                .env("DOCKETOPS_OIDC_STATE", state.path())
                .env("OIDC_ID_TOKEN_TTL", "2")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "oidc-testenv {command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        run("up");
        let env: HashMap<String, String> = run("env")
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        ShortLivedProvider {
            issuer: env["DOCKETOPS_TEST_OIDC_ISSUER"].clone(),
            secret: env["DOCKETOPS_TEST_OIDC_DASHBOARD_CLIENT_SECRET"].clone(),
            state,
        }
    }
}

impl Drop for ShortLivedProvider {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .arg("down")
            .env("DOCKETOPS_OIDC_STATE", self.state.path())
            .output();
    }
}
