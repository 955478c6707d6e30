//! `/api/v1/identities/{id}/budget` in-process (tower's `oneshot`) over a real SQLite ledger and a fake
//! cluster: who may set, read and clear an identity's own budget, what is refused and with which status, and a
//! mutation refused by it through `POST /api/v1/actions`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::{EntryKind, Role};
use gateway::testing::{FakeCluster, TestApp};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use server::AppState;
use tower::ServiceExt;

struct Api {
    router: Router,
    app: TestApp,
}

impl Api {
    async fn new() -> Api {
        let cluster = Arc::new(FakeCluster::new("local").with_deployment("staging", "web", 2));
        let app = TestApp::new()
            .with_cluster(cluster)
            .with_identity("agent", &[Role::Operator], &["mutate:staging:Deployment"])
            .with_identity("other-agent", &[Role::Operator], &["mutate:staging:Deployment"])
            .with_identity("approver", &[Role::Approver], &[])
            .with_identity("admin-agent", &[Role::Admin, Role::Operator], &[])
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
        Api { router, app }
    }

    fn id(&self, name: &str) -> String {
        self.app.caller(name).identity.id.clone()
    }

    /// `method path` as `name` (no key: `None`) with `body`: the status and the JSON answer.
    async fn call(&self, method: &str, path: &str, name: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(name) = name {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.app.api_key(name)));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn budget_path(id: &str) -> String {
    format!("/api/v1/identities/{id}/budget")
}

fn scale(replicas: u32) -> Value {
    json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
           "resource_name": "web", "parameters": {"replicas": replicas}, "justification": "load test"})
}

/// The whole life of an identity's budget over HTTP: set (recorded), read by the admin and by the identity
/// itself, a mutation refused by it naming the `budget.set` entry, cleared (recorded), cleared again (409).
#[tokio::test]
async fn an_admin_sets_reads_and_clears_a_budget_and_it_refuses_past_its_limit() {
    let api = Api::new().await;
    let path = budget_path(&api.id("agent"));
    let body = json!({"limits": [{"window_seconds": 600, "mutations": 1}], "reason": "new agent"});
    let (status, set) = api.call("PUT", &path, Some("admin"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let entry = set["ledger_entry_id"].as_str().unwrap().to_owned();
    assert_eq!(
        set["budget"]["own"],
        json!([{"per": "identity", "subject": format!("identity:{}", api.id("agent")),
        "window_seconds": 600, "mutations": 1,
        "used": {"mutations": 0, "deletes": 0, "objects": 0, "replicas": 0, "frees_at": null}}])
    );
    assert_eq!(set["budget"]["set"]["ledger_entry_id"], entry.as_str());
    let head = api.app.store.head().await.unwrap().unwrap();
    assert_eq!(
        (head.id.as_str(), head.kind.as_str()),
        (entry.as_str(), EntryKind::BudgetSet.as_str())
    );

    for (name, expected) in [
        ("agent", StatusCode::OK),
        ("admin", StatusCode::OK),
        ("other-agent", StatusCode::FORBIDDEN),
    ] {
        let (status, view) = api.call("GET", &path, Some(name), None).await;
        assert_eq!(status, expected, "{name}: {view}");
    }

    let (status, first) = api.call("POST", "/api/v1/actions", Some("agent"), Some(scale(3))).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (StatusCode::OK, Some("COMPLETED")),
        "{first}"
    );
    let (_, second) = api.call("POST", "/api/v1/actions", Some("agent"), Some(scale(4))).await;
    assert_eq!(second["status"], "DENIED", "{second}");
    assert_eq!(second["decision"]["policy"], EntryKind::BudgetExceeded.as_str());
    let reason = second["decision"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains(&format!("its own budget, budget.set {entry}")),
        "{reason}"
    );
    let (_, view) = api.call("GET", &path, Some("agent"), None).await;
    assert_eq!(view["own"][0]["used"]["mutations"], 1, "{view}");

    let (status, cleared) = api
        .call("DELETE", &path, Some("admin"), Some(json!({"reason": "fine now"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["budget"]["own"], json!([]));
    let (_, third) = api.call("POST", "/api/v1/actions", Some("agent"), Some(scale(4))).await;
    assert_eq!(third["status"], "COMPLETED", "{third}");
    let (status, again) = api
        .call("DELETE", &path, Some("admin"), Some(json!({"reason": "again"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
}

/// Every refusal, with its status: no key, not an admin, an agent's key with the admin role, on itself, an
/// unknown identity, invalid limits, unknown fields, a null counter, a blank reason. None is recorded.
#[tokio::test]
async fn refusals_have_their_statuses_and_record_nothing() {
    let api = Api::new().await;
    let agent = budget_path(&api.id("agent"));
    let good = json!({"limits": [{"window_seconds": 600, "mutations": 1}], "reason": "r"});
    let before = api.app.store.head().await.unwrap().unwrap().id;
    let cases: Vec<(&str, String, Option<&str>, Value, StatusCode)> = vec![
        ("PUT", agent.clone(), None, good.clone(), StatusCode::UNAUTHORIZED),
        (
            "PUT",
            agent.clone(),
            Some("approver"),
            good.clone(),
            StatusCode::FORBIDDEN,
        ),
        (
            "PUT",
            agent.clone(),
            Some("admin-agent"),
            good.clone(),
            StatusCode::FORBIDDEN,
        ),
        (
            "PUT",
            budget_path(&api.id("admin")),
            Some("admin"),
            good.clone(),
            StatusCode::FORBIDDEN,
        ),
        (
            "PUT",
            budget_path("agt_00000000"),
            Some("admin"),
            good.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            budget_path("agt_00000000"),
            Some("admin"),
            json!({"reason": "r"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            agent.clone(),
            Some("agent"),
            json!({"reason": "r"}),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            budget_path("agt_00000000"),
            Some("admin"),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        ("GET", agent.clone(), None, Value::Null, StatusCode::UNAUTHORIZED),
    ];
    let invalid = [
        json!({"limits": [], "reason": "r"}),
        json!({"limits": [{"window_seconds": 0, "mutations": 1}], "reason": "r"}),
        json!({"limits": [{"window_seconds": 60}], "reason": "r"}),
        json!({"limits": [{"window_seconds": 60, "deletes": -1}], "reason": "r"}),
        json!({"limits": [{"window_seconds": 60, "deletes": null, "mutations": 1}], "reason": "r"}),
        json!({"limits": [{"window_seconds": 60, "mutations": 1, "per": "identity"}], "reason": "r"}),
        json!({"limits": [{"window_seconds": 60, "mutations": 1}], "reason": "r", "extra": true}),
        json!({"limits": [{"window_seconds": 60, "mutations": 1}], "reason": "  "}),
        json!({"limits": [{"window_seconds": 60, "mutations": 1}]}),
    ];
    let cases = cases.into_iter().chain(
        invalid
            .into_iter()
            .map(|body| ("PUT", agent.clone(), Some("admin"), body, StatusCode::BAD_REQUEST)),
    );
    for (method, path, name, body, expected) in cases {
        let body = Some(body).filter(|b| !b.is_null());
        let (status, answer) = api.call(method, &path, name, body.clone()).await;
        assert_eq!(status, expected, "{method} {path} as {name:?} with {body:?}: {answer}");
        assert!(
            answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    assert_eq!(
        api.app.store.head().await.unwrap().unwrap().id,
        before,
        "nothing recorded"
    );
}

/// The OpenAPI document states every status the three operations can answer.
#[tokio::test]
async fn the_document_states_every_status() {
    let api = Api::new().await;
    let (_, doc) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    let operations = &doc["paths"]["/api/v1/identities/{id}/budget"];
    for (method, statuses) in [
        ("get", &["200", "400", "401", "403", "404", "503"][..]),
        ("put", &["200", "400", "401", "403", "404", "413", "415"][..]),
        ("delete", &["200", "400", "401", "403", "404", "409", "413", "415"][..]),
    ] {
        let responses = operations[method]["responses"].as_object().unwrap();
        let mut documented: Vec<&str> = responses.keys().map(String::as_str).collect();
        documented.sort_unstable();
        assert_eq!(documented, statuses, "{method}");
    }
    let limit = &doc["components"]["schemas"]["IdentityLimit"];
    assert_eq!(limit["additionalProperties"], false, "{limit}");
    assert_eq!(limit["minProperties"], 2, "{limit}");
}
