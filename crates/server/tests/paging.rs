//! Issue 14: lists are paged. `GET /api/v1/identities` over thousands of identities, in-process on a real
//! SQLite ledger seeded through `storage::seed` (identities recorded as the gateway records them).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gateway::{Directory, IdentityKind, NewIdentity};
use http_body_util::BodyExt;
use ledger_core::LedgerSigningKey;
use serde_json::Value;
use server::AppState;
use storage::seed::{SeedConfig, seed_history};
use storage::{AppendConfig, Ledger, Store};
use tower::ServiceExt;

struct App {
    router: Router,
    directory: Directory,
    admin_key: String,
    _dir: tempfile::TempDir,
}

async fn app(identities: u64) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("ledger.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let key = LedgerSigningKey::generate();
    let signing_key = key.public_key();
    let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
    ledger.initialize().await.unwrap();
    let directory = Directory::new(store.clone(), ledger.clone());
    let admin = NewIdentity {
        name: "test-admin".into(),
        kind: IdentityKind::Human,
        roles: vec!["admin".into(), "auditor".into()],
        scopes: Vec::new(),
        groups: Vec::new(),
    };
    let (_, issued) = directory.create("system", admin).await.unwrap();
    let mut seed = SeedConfig::new(100);
    seed.identities = identities;
    seed_history(&store, &ledger, &seed, &|_| {}).await.unwrap();
    let pipeline = gateway::Pipeline::new(gateway::PipelineParts {
        store: store.clone(),
        ledger: ledger.clone(),
        signing_key: signing_key.clone(),
        clusters: gateway::Clusters::none(),
        policy: std::sync::Arc::new(policy::PolicyEngine::Embedded(
            policy::EmbeddedEngine::default_policy().unwrap(),
        )),
        risk: policy::RiskConfig::default(),
        mode: gateway::PolicyMode::Enforce,
        metrics: std::sync::Arc::new(gateway::Metrics::new(None)),
        approval_window: std::time::Duration::from_secs(3600),
        trust_gates: gateway::TrustGates::default(),
        approval_webhook: None,
        instance_lease: gateway::ownership::DEFAULT_LEASE,
        freeze: Default::default(),
        breakers: Default::default(),
        budgets: Default::default(),
    });
    let router = server::router(AppState {
        store: store.clone(),
        ledger,
        signing_key,
        directory: directory.clone(),
        pipeline: std::sync::Arc::new(pipeline),
        metrics: std::sync::Arc::new(gateway::Metrics::new(None)),
        max_body_bytes: server::DEFAULT_MAX_BODY_BYTES,
        dashboard: server::dashboard::DashboardState::new(false),
        identity_providers: server::IdentityProviders::default(),
        audit_webhook_token: None,
        transparency: std::sync::Arc::new(gateway::Transparency::new(
            store.clone(),
            ledger_core::LedgerSigningKey::generate(),
            gateway::TransparencyConfig::local("test.example/ledger"),
        )),
    });
    App {
        router,
        directory,
        admin_key: issued.api_key,
        _dir: dir,
    }
}

impl App {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin_key))
            .body(Body::empty())
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn create(&self, name: &str) -> String {
        let new = NewIdentity {
            name: name.into(),
            kind: IdentityKind::Agent,
            roles: vec!["operator".into()],
            scopes: Vec::new(),
            groups: Vec::new(),
        };
        self.directory.create("system", new).await.unwrap().0.id
    }
}

/// Pages through every identity with `limit`; identities created while paging appear once, at the end.
#[tokio::test]
async fn identities_page_to_the_end_and_the_cursor_is_stable() {
    let app = app(2_500).await;
    let (status, first) = app.get("/api/v1/identities").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["identities"].as_array().unwrap().len(), 100, "the default page");
    assert!(first["next_after"].is_string());

    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut created_during = Vec::new();
    loop {
        let path = match &after {
            Some(after) => format!("/api/v1/identities?limit=1000&after={after}"),
            None => "/api/v1/identities?limit=1000".to_string(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids = page["identities"].as_array().unwrap();
        assert!(ids.len() <= 1000);
        seen.extend(ids.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        if created_during.is_empty() {
            // New identities while a client pages: later pages show them, earlier ones stay valid.
            created_during.push(app.create("created-while-paging-1").await);
            created_during.push(app.create("created-while-paging-2").await);
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no identity twice");
    assert_eq!(
        seen.len(),
        1 + 2_500 + 2,
        "the admin, the seeded ones and the two created while paging"
    );
    assert_eq!(&seen[seen.len() - 2..], &created_during[..], "creation order");
}

#[tokio::test]
async fn identity_paging_refuses_bad_limits_and_unknown_cursors() {
    let app = app(20).await;
    for path in [
        "/api/v1/identities?limit=0",
        "/api/v1/identities?limit=1001",
        "/api/v1/identities?cursor=x",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{path}");
    }
    let (status, body) = app.get("/api/v1/identities?after=agt_nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, from_start) = app.get("/api/v1/identities?after=&limit=5").await;
    assert_eq!(
        (status, from_start["identities"].as_array().unwrap().len()),
        (StatusCode::OK, 5)
    );
    let (status, page) = app.get("/api/v1/identities?limit=21").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["identities"].as_array().unwrap().len(), 21);
    assert!(page["next_after"].is_string(), "a full page: more may follow");
    let (_, rest) = app
        .get(&format!(
            "/api/v1/identities?after={}",
            page["next_after"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rest["identities"].as_array().unwrap().len(), 0);
    assert!(rest["next_after"].is_null());
}

/// An identity's keys page the same way; the identity's own page shows the first ones.
#[tokio::test]
async fn keys_page_to_the_end() {
    let app = app(2).await;
    let id = app.create("many-keys").await;
    for _ in 0..4 {
        app.directory.issue_key("system", &id).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut path = format!("/api/v1/identities/{id}/keys?limit=2");
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let keys = page["keys"].as_array().unwrap();
        assert!(keys.len() <= 2);
        seen.extend(keys.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(next) => path = format!("/api/v1/identities/{id}/keys?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "the first key and four more: {seen:?}");
    let (_, shown) = app.get(&format!("/api/v1/identities/{id}")).await;
    assert_eq!(shown["keys"].as_array().unwrap().len(), 5);
    let (status, _) = app
        .get(&format!("/api/v1/identities/{id}/keys?after=key_nothing"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another identity's key is no cursor here either; this identity's last key ends the list.
    let other = app.create("other-keys").await;
    let (_, others) = app.get(&format!("/api/v1/identities/{other}/keys")).await;
    let foreign = others["keys"][0]["id"].as_str().unwrap().to_owned();
    let (status, page) = app.get(&format!("/api/v1/identities/{id}/keys?after={foreign}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    let (status, page) = app
        .get(&format!("/api/v1/identities/{id}/keys?after={}", seen[4]))
        .await;
    assert_eq!(
        (status, page["keys"].as_array().unwrap().len()),
        (StatusCode::OK, 0),
        "{page}"
    );
}

/// The action list pages newest first with `before`; a cursor naming no action is not found.
#[tokio::test]
async fn actions_page_to_the_end() {
    let app = app(10).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut path = "/api/v1/actions?limit=30".to_string();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for action in page["actions"].as_array().unwrap() {
            let created = action["created_at"].as_str().unwrap().to_owned();
            seen.push((created, action["action_id"].as_str().unwrap().to_owned()));
        }
        match page["next_before"].as_str() {
            Some(next) => path = format!("/api/v1/actions?limit=30&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 100, "every seeded action once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first across pages");
    let (status, _) = app.get("/api/v1/actions?before=act_nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
