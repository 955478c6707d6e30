//! An OPA-compatible REST server for the tests (the real OPA binary is not available here), built on
//! the embedded engine. It implements `POST /v1/data/{path}` as OPA does for the DocketOps entry point:
//! `{"result": …}` when defined, no `result` when undefined (also for any other path), `decision_id`
//! when decision logging would be on, `provenance` with `?provenance=true`, and OPA's
//! `{"code", "message"}` errors (400 for a bad body, 500 for an evaluation error).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use policy::{EmbeddedEngine, PolicyError};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Return a `decision_id` (OPA does when decision logging is enabled).
    pub decision_ids: bool,
    /// The revision of the `docketops` bundle reported in `provenance`.
    pub bundle_revision: Option<String>,
}

struct Served {
    engine: EmbeddedEngine,
    options: Options,
}

#[derive(Debug)]
pub struct FakeOpa {
    pub url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl FakeOpa {
    pub async fn start(engine: EmbeddedEngine, options: Options) -> FakeOpa {
        let state = Arc::new(Served { engine, options });
        let app = Router::new().route("/v1/data/{*path}", post(data)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        FakeOpa {
            url,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Stops listening and closes idle connections; returns once the server is gone.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.task).await.expect("server task");
    }
}

async fn data(
    State(served): State<Arc<Served>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let input = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut request)) => request.remove("input").unwrap_or(Value::Null),
            Ok(_) | Err(_) => {
                return opa_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "body must be a JSON object",
                );
            }
        }
    };
    let mut answer = serde_json::Map::new();
    if served.options.decision_ids {
        answer.insert("decision_id".into(), json!(uuid::Uuid::now_v7().to_string()));
    }
    if query.get("provenance").is_some_and(|value| value == "true") {
        let mut provenance = json!({"version": "fake-opa"});
        if let Some(revision) = &served.options.bundle_revision {
            provenance["bundles"] = json!({"docketops": {"revision": revision}});
        }
        answer.insert("provenance".into(), provenance);
    }
    // Only the DocketOps entry point is defined here; any other path is undefined.
    if path.trim_matches('/') == "docketops/policy/decision" {
        match served.engine.evaluate(&input) {
            Ok(result) => {
                answer.insert("result".into(), result);
            }
            Err(PolicyError::Undefined) => {}
            Err(error) => return opa_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &error.to_string()),
        }
    }
    (StatusCode::OK, axum::Json(Value::Object(answer))).into_response()
}

fn opa_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"code": code, "message": message}))).into_response()
}
