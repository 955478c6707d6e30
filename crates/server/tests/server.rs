//! The HTTP API in-process (tower's `oneshot`) on a real SQLite ledger: shapes, auth and errors.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::EntryKind;
use http_body_util::BodyExt;
use ledger_core::NewEvent;
use serde_json::{Value, json};
use server::{AppState, apikey};
use tower::ServiceExt;

/// A router over a fresh SQLite ledger holding `entries` entries (genesis included), and its admin key.
struct TestApp {
    router: Router,
    admin_key: String,
    _app: gateway::testing::TestApp,
}

impl TestApp {
    async fn with_entries(entries: u64) -> TestApp {
        // Entry 1: genesis; entry 2: the admin identity (admin and auditor), whose key the tests use.
        // No Kubernetes cluster here: actions answer 503 (the gateway's and executor's own tests cover them).
        let app = gateway::testing::TestApp::new().build().await;
        let notes = (3..=entries)
            .map(|i| NewEvent::new(EntryKind::LedgerNote.as_str(), "tester", json!({"i": i})))
            .collect();
        app.ledger.append_all(notes).await.unwrap();
        let router = server::router(AppState {
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
        });
        TestApp {
            router,
            admin_key: app.api_key("admin").to_owned(),
            _app: app,
        }
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        let mut request = Request::get(path);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        (
            parts.status,
            body.collect().await.unwrap().to_bytes().to_vec(),
            parts.headers,
        )
    }

    async fn send(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map(|b| Body::from(b.to_owned())).unwrap_or_else(Body::empty);
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn admin_json(&self, path: &str) -> (StatusCode, Value) {
        let (status, body, _) = self.get(path, Some(&self.admin_key.clone())).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn every_ledger_route_needs_the_admin_key() {
    let app = TestApp::with_entries(3).await;
    let other = apikey::generate(apikey::KeyKind::Agent);
    for path in [
        "/api/v1/ledger/verify",
        "/api/v1/ledger/entries",
        "/api/v1/ledger/keys",
        "/api/v1/ledger/export",
    ] {
        for key in [None, Some(other.as_str()), Some("dkt_agent_short")] {
            let (status, body, headers) = app.get(path, key).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {key:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(body["error"]["message"].as_str().unwrap().len() > 5);
        }
    }
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn verify_has_the_spec_shape() {
    let app = TestApp::with_entries(5).await;
    let (status, report) = app.admin_json("/api/v1/ledger/verify").await;
    assert_eq!(status, StatusCode::OK);
    let mut fields: Vec<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["entries_checked", "first_invalid", "head", "keys", "valid"]);
    assert_eq!(report["valid"], true);
    assert_eq!(report["entries_checked"], 5);
    assert_eq!(report["head"]["seq"], 5);
    assert!(report["head"]["chain_hash"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(report["first_invalid"], Value::Null);
    assert_eq!(report["keys"][0]["entries_signed"], 5);
    let (status, strict) = app.admin_json("/api/v1/ledger/verify?strict=true").await;
    assert_eq!((status, &strict["head"]), (StatusCode::OK, &report["head"]));
    assert_eq!(
        app.admin_json("/api/v1/ledger/verify?strict=maybe").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn entries_page_to_the_end() {
    let app = TestApp::with_entries(7).await;
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let (status, page) = app
            .admin_json(&format!("/api/v1/ledger/entries?after_seq={after}&limit=3"))
            .await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_after_seq"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seen, (1..=7).collect::<Vec<_>>());
    let (_, first) = app.admin_json("/api/v1/ledger/entries?limit=1").await;
    let entry = &first["entries"][0];
    assert_eq!(entry["kind"], "ledger.initialized");
    assert!(
        entry["payload"].is_object(),
        "the payload is served as JSON, not as a string"
    );
    let (status, one) = app
        .admin_json(&format!("/api/v1/ledger/entries/{}", entry["id"].as_str().unwrap()))
        .await;
    assert_eq!((status, &one), (StatusCode::OK, entry));
}

#[tokio::test]
async fn errors_are_json_with_fitting_statuses() {
    let app = TestApp::with_entries(2).await;
    for (path, status, code) in [
        ("/nope", StatusCode::NOT_FOUND, "not_found"),
        (
            "/api/v1/ledger/entries?limit=5000",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/ledger/entries?after_seq=x",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/ledger/entries?after_seq=1&after_seq=2",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/ledger/entries/not-an-id",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/ledger/entries/evt_ffffffffffffffffffffffffffffffff",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let (got, body) = app.admin_json(path).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    let response = app
        .router
        .clone()
        .oneshot(
            Request::delete("/api/v1/ledger/entries")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.admin_key))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let huge = vec![b'x'; server::DEFAULT_MAX_BODY_BYTES + 1];
    let response = app
        .router
        .clone()
        .oneshot(
            Request::post("/api/v1/ledger/verify")
                .header(header::CONTENT_LENGTH, huge.len())
                .body(Body::from(huge))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn export_streams_a_bundle() {
    let app = TestApp::with_entries(4).await;
    let (status, body, headers) = app.get("/api/v1/ledger/export", Some(&app.admin_key.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/jsonl");
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    let header = ledger_core::bundle::BundleHeader::parse(lines[0]).unwrap();
    assert_eq!(header.head.unwrap().seq, 4);
    let entries: Vec<_> = lines[1..]
        .iter()
        .map(|l| ledger_core::bundle::parse_entry_line(l).unwrap())
        .collect();
    assert!(ledger_core::verify::verify_entries(&entries, Default::default()).valid);
}

/// Identities and keys end to end through the API: roles per route, every key state, and the ledger
/// records each change (and still verifies).
#[tokio::test]
async fn identities_keys_and_roles() {
    let app = TestApp::with_entries(2).await;
    let admin = app.admin_key.clone();
    let create = |body: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.send("POST", "/api/v1/identities", Some(&admin), Some(&body.to_string()))
                .await
        }
    };

    let (status, created) = create(json!({"name": "ci-bot", "kind": "agent", "roles": ["operator"],
        "scopes": [{"namespaces": ["staging"], "access": "mutate", "kinds": ["Deployment"]}]}))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let agent_id = created["identity"]["id"].as_str().unwrap().to_owned();
    assert!(agent_id.starts_with("agt_"));
    let agent_key = created["api_key"].as_str().unwrap().to_owned();
    assert!(agent_key.starts_with("dkt_agent_"));
    assert_eq!(created["identity"]["scopes"][0]["access"], "mutate");

    // The agent is authenticated but has no auditor or admin role: 403, not 401.
    let (status, body) = app.send("GET", "/api/v1/ledger/verify", Some(&agent_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("auditor"), "{body}");
    let (status, _) = app.send("GET", "/api/v1/identities", Some(&agent_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // ...but it may look at itself.
    let (status, me) = app
        .send("GET", &format!("/api/v1/identities/{agent_id}"), Some(&agent_key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert!(!me.to_string().contains(&agent_key), "the key is never shown again");

    // Bad requests: duplicate name, unknown role, unknown field, bad scope, malformed JSON.
    for (body, expected) in [
        (
            json!({"name": "ci-bot", "kind": "agent", "roles": ["operator"]}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "x", "kind": "agent", "roles": ["root"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "kind": "agent", "roles": ["operator"], "admin": true}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "kind": "agent", "roles": ["operator"],
                "scopes": [{"namespaces": ["a"], "access": "write", "kinds": ["*"]}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x'; DROP TABLE identities; --", "kind": "agent", "roles": ["operator"]}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, response) = create(body.clone()).await;
        assert_eq!(status, expected, "{body}: {response}");
        assert!(
            response["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{response}"
        );
    }
    let (status, _) = app
        .send("POST", "/api/v1/identities", Some(&admin), Some("{\"name\": "))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Suspension stops the key; reactivation restores it; rotation kills the old key.
    let me_path = format!("/api/v1/identities/{agent_id}");
    let (status, _) = app
        .send(
            "POST",
            &format!("{me_path}/suspend"),
            Some(&admin),
            Some(r#"{"reason": "investigating"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.send("GET", &me_path, Some(&agent_key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("suspended"),
        "{body}"
    );
    let (status, _) = app
        .send("POST", &format!("{me_path}/reactivate"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.send("GET", &me_path, Some(&agent_key), None).await.0,
        StatusCode::OK
    );

    let key_id = me["keys"][0]["id"].as_str().unwrap().to_owned();
    let (status, rotated) = app
        .send("POST", &format!("{me_path}/keys/{key_id}/rotate"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_key = rotated["api_key"].as_str().unwrap().to_owned();
    let (status, body) = app.send("GET", &me_path, Some(&agent_key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"), "{body}");
    assert_eq!(app.send("GET", &me_path, Some(&new_key), None).await.0, StatusCode::OK);
    let (status, _) = app
        .send("POST", &format!("{me_path}/keys/{key_id}/rotate"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a revoked key cannot be rotated again");

    // Revoking the identity ends it and its keys for good.
    let (status, _) = app.send("POST", &format!("{me_path}/revoke"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.send("GET", &me_path, Some(&new_key), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .send("POST", &format!("{me_path}/reactivate"), Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Wrong and malformed keys.
    let unknown = apikey::generate(apikey::KeyKind::Agent);
    for key in [unknown.as_str(), "dkt_agent_short", "not-a-key", ""] {
        let (status, body) = app.send("GET", "/api/v1/ledger/verify", Some(key), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key}: {body}");
    }

    // Every change is in the ledger, which verifies.
    let (_, page) = app.admin_json("/api/v1/ledger/entries?limit=100").await;
    let kinds: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ledger.initialized",
            "identity.created",
            "identity.created",
            "identity.suspended",
            "identity.reactivated",
            "key.rotated",
            "identity.revoked"
        ]
    );
    let entries = page["entries"].as_array().unwrap();
    assert!(
        !page.to_string().contains(&new_key) && !page.to_string().contains(&agent_key),
        "keys are never recorded"
    );
    assert_eq!(entries[3]["payload"]["reason"], "investigating");
    assert_eq!(
        entries[3]["actor"], entries[1]["payload"]["identity"]["id"],
        "the admin is the actor"
    );
    let (_, report) = app.admin_json("/api/v1/ledger/verify").await;
    assert_eq!(report["valid"], true, "{report}");
}

/// The OpenAPI document is served (the one `openapi::document` builds), names the spec's shapes, and every
/// operation it declares is a real route (no "no such route" and no 405 for its method). The routes and
/// their operations come from the same `routes!`; this still catches an operation declared apart from its
/// route (`/tile/{path}`) and a path that lost its `/api/v1` prefix.
#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let app = TestApp::with_entries(2).await;
    let (status, doc) = app.send("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc, serde_json::to_value(server::openapi::document()).unwrap());
    let response = &doc["components"]["schemas"]["ActionResponse"]["properties"];
    for field in [
        "action_id",
        "status",
        "risk",
        "decision",
        "ledger_entry_id",
        "event_hash",
        "chain_hash",
        "signature_verified",
        "entries",
    ] {
        assert!(response.get(field).is_some(), "ActionResponse lacks {field}");
    }
    let dry_run = &doc["components"]["schemas"]["ActionRequest"]["properties"]["dry_run"];
    assert_eq!(dry_run["type"], "boolean", "ActionRequest documents dry_run: {dry_run}");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 18, "{}", paths.len());
    for (path, operations) in paths {
        let concrete = path.replace("{id}", "x").replace("{key_id}", "y");
        for method in operations.as_object().unwrap().keys() {
            let body = (method == "post").then_some("{}");
            let (status, answer) = app
                .send(&method.to_uppercase(), &concrete, Some(&app.admin_key.clone()), body)
                .await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(
                answer["error"]["message"], "no such route",
                "{method} {path} is not routed"
            );
        }
    }
}

/// A request with a raw body and content type; the status and the body parsed as JSON (null if it is not).
async fn raw_request(
    app: &TestApp,
    method: &str,
    path: &str,
    key: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// axum's own rejections (wrong content type, unparsable body, undecodable path) and out-of-range query
/// values leave as the API's JSON error with a fitting status; /k8s path tricks are a 400 Status.
#[tokio::test]
async fn rejections_are_json_errors_and_bounds_are_enforced() {
    let app = TestApp::with_entries(2).await;
    let key = app.admin_key.clone();
    let identity = r#"{"name": "n", "kind": "agent", "roles": ["operator"]}"#;
    for (content_type, body, status, code) in [
        (
            "text/plain",
            identity,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        ("application/json", "{not json", StatusCode::BAD_REQUEST, "bad_request"),
        (
            "application/json",
            r#"{"name": "n"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let (got, answer) = raw_request(&app, "POST", "/api/v1/identities", &key, content_type, body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let (got, answer) = raw_request(&app, "POST", "/api/v1/identities/x/suspend", &key, "text/plain", "x").await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    for (path, status) in [
        ("/api/v1/actions?limit=3455743921", StatusCode::BAD_REQUEST),
        ("/api/v1/actions?limit=0", StatusCode::BAD_REQUEST),
        ("/api/v1/actions?limit=1001", StatusCode::BAD_REQUEST),
        ("/api/v1/actions?limit=1000", StatusCode::OK),
        ("/api/v1/actions?status=BOGUS", StatusCode::BAD_REQUEST),
        ("/api/v1/actions?status=COMPLETED", StatusCode::OK),
        ("/api/v1/actions/act_x?wait=61", StatusCode::BAD_REQUEST),
        ("/api/v1/ledger/entries?limit=1001", StatusCode::BAD_REQUEST),
        ("/api/v1/identities/%FF", StatusCode::BAD_REQUEST),
    ] {
        let (got, answer) = app.admin_json(path).await;
        assert_eq!(got, status, "{path}: {answer}");
        if status != StatusCode::OK {
            assert!(
                answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{path}: {answer}"
            );
        }
    }
    for trick in [
        "/k8s/api/v1/namespaces/..%2Fkube-system/pods",
        "/k8s/api/v1/namespaces/web/../kube-system/pods",
    ] {
        let (got, answer) = app.admin_json(trick).await;
        assert_eq!(
            (got, answer["kind"].as_str(), answer["code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some("Status"), Some(400)),
            "{trick}"
        );
    }
}

/// Every operation of the document states the rejections it can answer, with the error schema, and the
/// query bounds the handlers enforce.
#[tokio::test]
async fn openapi_declares_rejections_and_bounds() {
    let app = TestApp::with_entries(2).await;
    let (_, doc) = app.send("GET", "/api/v1/openapi.json", None, None).await;
    let open = ["/healthz", "/readyz", "/metrics"];
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = &operation["responses"];
            let mut expected = Vec::new();
            if !open.contains(&path.as_str()) {
                expected.push("401");
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            if path.contains('{') {
                expected.extend(["400", "404"]);
            }
            for status in expected {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    let limit = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| (p["schema"]["minimum"].as_u64(), p["schema"]["maximum"].as_u64()))
    };
    assert_eq!(limit("/api/v1/actions", "limit"), Some((Some(1), Some(1000))));
    assert_eq!(limit("/api/v1/ledger/entries", "limit"), Some((Some(1), Some(1000))));
    assert_eq!(limit("/api/v1/actions/{id}", "wait"), Some((Some(0), Some(60))));
    assert_eq!(limit("/api/v1/identities/{id}", "limit"), Some((Some(1), Some(200))));
    assert!(doc["paths"]["/api/v1/actions"]["post"]["responses"]["503"].is_object());
    assert!(doc["paths"]["/api/v1/actions"]["post"]["responses"]["403"].is_object());
}

/// /mcp answers a body that is not JSON, or not a JSON-RPC message, with a JSON-RPC error object.
#[tokio::test]
async fn mcp_refuses_malformed_json_rpc_with_json_rpc_errors() {
    let app = TestApp::with_entries(2).await;
    let key = app.admin_key.clone();
    for (body, status, code) in [
        ("{not json", StatusCode::BAD_REQUEST, -32700),
        ("[1, \"garbage\", {}]", StatusCode::BAD_REQUEST, -32600),
        ("{\"hello\": 1}", StatusCode::BAD_REQUEST, -32600),
    ] {
        let (got, answer) = raw_request(&app, "POST", "/mcp", &key, "application/json", body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["jsonrpc"], "2.0", "{body}: {answer}");
        assert!(answer["id"].is_null());
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let (got, answer) = raw_request(&app, "POST", "/mcp", &key, "text/plain", "{}").await;
    assert_eq!(
        (got, answer["error"]["code"].as_i64()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some(-32600))
    );
}

/// An operator's action body that is not JSON (a number out of range) is recorded as action.rejected with
/// its text and hash before the 400; someone who may not submit gets 403 and nothing is recorded.
#[tokio::test]
async fn unparsable_action_bodies_are_recorded_as_rejected() {
    let app = TestApp::with_entries(2).await;
    let (status, created) = app
        .send(
            "POST",
            "/api/v1/identities",
            Some(&app.admin_key.clone()),
            Some(r#"{"name": "op", "kind": "agent", "roles": ["operator"]}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let operator = created["api_key"].as_str().unwrap().to_owned();
    let body = r#"{"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment", "resource_name": "web", "parameters": {"replicas": 1e400}}"#;
    let rejected = |entries: &Value| -> Vec<Value> {
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "action.rejected")
            .cloned()
            .collect()
    };

    let (status, answer) = raw_request(
        &app,
        "POST",
        "/api/v1/actions",
        &app.admin_key.clone(),
        "application/json",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(rejected(&app.admin_json("/api/v1/ledger/entries").await.1).is_empty());

    let (status, answer) = raw_request(&app, "POST", "/api/v1/actions", &operator, "application/json", body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "{answer}"
    );
    let entries = rejected(&app.admin_json("/api/v1/ledger/entries").await.1);
    assert_eq!(entries.len(), 1);
    let payload = &entries[0]["payload"];
    assert_eq!(payload["request_text"], body);
    assert_eq!(payload["request_bytes"], body.len());
    assert_eq!(payload["field"], "body");
    use sha2::Digest as _;
    assert_eq!(
        payload["request_sha256"],
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
    );

    // A long body is kept in part (the hash covers it all); an oversized one is still 413.
    let long = format!("{{\"justification\": \"{}", "x".repeat(10_000));
    let (status, _) = raw_request(&app, "POST", "/api/v1/actions", &operator, "application/json", &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let entries = rejected(&app.admin_json("/api/v1/ledger/entries").await.1);
    assert_eq!(entries[1]["payload"]["request_text"].as_str().unwrap().len(), 4096);
    assert_eq!(entries[1]["payload"]["request_truncated"], true);
    let huge = "x".repeat(server::DEFAULT_MAX_BODY_BYTES + 1);
    let (status, answer) = raw_request(&app, "POST", "/api/v1/actions", &operator, "application/json", &huge).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
}
