//! `/k8s/…`: enough of the Kubernetes API for `kubectl --server https://gateway/k8s --token <API key>`.
//!
//! Nothing is passed through to the API server but discovery and OpenAPI documents (read-only, fetched by the
//! executor with the gateway's own credentials). Every object request is translated into an action and runs
//! the whole pipeline (guardrails, risk, policy, approvals, execution, verification, ledger): reads become
//! GET/LIST, `/scale` becomes SCALE, a rollout-restart patch RESTART, an image-only patch SET_IMAGE, apply and
//! create APPLY, merge patches PATCH, deletes DELETE. Anything else is refused with a Kubernetes `Status`, so
//! kubectl prints every refusal readably. `dryRun=All` (kubectl's `--dry-run=server`) makes each of them a
//! dry-run action: previewed, decided and recorded, answered with the API server's dry-run object, never run.
//!
//! Reads answer with the API server's `Table` when kubectl asks for one (`kubectl get`'s columns); a LIST
//! across all namespaces (`get -A`) is one LIST per namespace in the caller's scopes; `?watch=true` is a
//! recorded LIST and then the API server's event stream for a bounded time (`reads`). `PUT` of an object
//! (`kubectl replace`) is APPLY.
//!
//! The translation is the gateway's (`gateway::kubectl`); this module reads the HTTP request, submits the
//! planned actions and writes the answers.

mod reads;

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use gateway::kubectl::{self, Plan, PlannedAction, Refusal, ResourcePath};
use gateway::{ActionResponse, Caller};
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/k8s/{*path}", any(proxy))
}

/// A refusal as kubectl reads it: a Kubernetes `Status` with the refusal's HTTP status.
#[derive(Debug)]
struct KubeError(Refusal);

impl From<Refusal> for KubeError {
    fn from(refusal: Refusal) -> Self {
        KubeError(refusal)
    }
}

impl From<ApiError> for KubeError {
    fn from(error: ApiError) -> Self {
        KubeError(Refusal::new(error.status.as_u16(), error.message))
    }
}

impl IntoResponse for KubeError {
    fn into_response(self) -> Response {
        let Refusal { code, reason, message } = self.0;
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code});
        json_response(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &body,
        )
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn proxy(
    State(state): State<AppState>,
    caller: Result<Authenticated, ApiError>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/k8s").unwrap_or(uri.path()).to_owned();
    let result = async {
        let Authenticated(caller) = caller?;
        kubectl::plain_segments(&path)?;
        if kubectl::is_discovery(&path) {
            if method != Method::GET {
                return Err(KubeError::from(Refusal::method_not_allowed(format!(
                    "{method} {path} is not supported through the DocketOps proxy (discovery is read-only)"
                ))));
            }
            return discovery(&state, &path, &headers).await;
        }
        let Query(query) =
            Query::<HashMap<String, String>>::try_from_uri(&uri).map_err(|e| Refusal::bad_request(e.body_text()))?;
        let target = ResourcePath::parse(&path)?;
        let dry_run = dry_run_requested(&method, &query, &body)?;
        let request = Request {
            state: &state,
            caller: &caller,
            headers: &headers,
            query: &query,
            target: &target,
            dry_run,
        };
        request.handle(&method, &path, &body).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The cluster the proxy serves: the gateway's default one.
fn cluster(state: &AppState) -> Result<std::sync::Arc<dyn gateway::Cluster>, KubeError> {
    state.pipeline.clusters().resolve(None).map_err(|e| match e {
        Ok(message) => Refusal::new(StatusCode::SERVICE_UNAVAILABLE.as_u16(), message).into(),
        Err(error) => KubeError::from(ApiError::from(error)),
    })
}

async fn discovery(state: &AppState, path: &str, headers: &HeaderMap) -> Result<Response, KubeError> {
    let executor = cluster(state)?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (status, body, content_type) = executor
        .discovery(path, accept)
        .await
        .map_err(|e| Refusal::new(StatusCode::BAD_GATEWAY.as_u16(), e.to_string()))?;
    let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), body).into_response();
    if let Some(value) = content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}

struct Request<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    headers: &'a HeaderMap,
    query: &'a HashMap<String, String>,
    target: &'a ResourcePath,
    /// `dryRun=All`: every mutation is a dry-run action, answered with the API server's dry-run object.
    dry_run: bool,
}

impl Request<'_> {
    async fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Result<Response, KubeError> {
        let t = self.target;
        match (method, t.name.as_deref(), t.subresource.as_deref()) {
            (&Method::GET, None, None) if kubectl::is_watch(self.query) => self.watch().await,
            (&Method::GET, None, None) => self.list().await,
            (&Method::GET, Some(name), None) if !kubectl::is_watch(self.query) => self.get(name).await,
            (&Method::PATCH | &Method::PUT, Some(name), Some("scale")) => self.scale(name, body).await,
            (&Method::PATCH, Some(name), None) => self.patch(name, body).await,
            (&Method::PUT, Some(name), None) => {
                let plan = kubectl::plan_replace(t, name, body)?;
                // Optimistic concurrency: a body read at an older resourceVersion is a conflict, not a lost
                // update (the live object is read through the pipeline, a GET action of its own).
                if !self.dry_run && kubectl::replace_resource_version(body).is_some() {
                    let live = self.read_back(name).await;
                    kubectl::check_replace_precondition(name, body, live.as_ref())?;
                }
                let response = self.run(&plan).await?;
                Ok(self.object_response_after_change(StatusCode::OK, &response, name).await)
            }
            (&Method::POST, None, None) => {
                let plan = kubectl::plan_create(t, body)?;
                let response = self.run(&plan).await?;
                let name = plan.object_name().unwrap_or_default();
                Ok(self
                    .object_response_after_change(StatusCode::CREATED, &response, name)
                    .await)
            }
            (&Method::DELETE, Some(name), None) => self.delete(name, body).await,
            _ => Err(Refusal::method_not_allowed(format!(
                "{method} {path} is not supported through the DocketOps proxy"
            ))
            .into()),
        }
    }

    async fn scale(&self, name: &str, body: &[u8]) -> Result<Response, KubeError> {
        let replicas = kubectl::requested_replicas(body)?;
        let response = self.run(&kubectl::plan_scale(name, replicas)).await?;
        if self.dry_run {
            return Ok(self.object_response(StatusCode::OK, &response, None));
        }
        let object = self.read_back(name).await;
        let scale = kubectl::scale_answer(self.target, name, replicas, object.as_ref());
        Ok(with_action_headers(json_response(StatusCode::OK, &scale), &response))
    }

    async fn patch(&self, name: &str, body: &[u8]) -> Result<Response, KubeError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let force = self.query.get("force").is_some_and(|f| f == "true");
        // `kubectl diff` names the live resourceVersion; a dry run changes nothing, so it needs no precondition.
        let body = match self.dry_run {
            true => kubectl::without_resource_version(body),
            false => body.to_vec(),
        };
        let plan = kubectl::plan_patch(name, content_type, force, &body)?;
        let mut response = self.run(&plan).await?;
        if self.dry_run {
            response.result = response
                .result
                .take()
                .map(|object| kubectl::with_planned_images(object, &plan));
        }
        Ok(self.object_response_after_change(StatusCode::OK, &response, name).await)
    }

    async fn delete(&self, name: &str, body: &[u8]) -> Result<Response, KubeError> {
        let response = self.run(&kubectl::plan_delete(name, body, self.query)?).await?;
        if self.dry_run {
            // What the API server's dry-run delete answered: the object, or a `Status`.
            return Ok(self.object_response(StatusCode::OK, &response, None));
        }
        let status = kubectl::deletion_answer(self.target, name);
        Ok(with_action_headers(json_response(StatusCode::OK, &status), &response))
    }

    /// Submits the plan's actions in turn; the answer is the last one's.
    async fn run(&self, plan: &Plan) -> Result<ActionResponse, KubeError> {
        self.run_on(self.target, plan).await
    }

    /// [`run`](Self::run) on another target than the request's (a namespace of a list across all of them).
    async fn run_on(&self, target: &ResourcePath, plan: &Plan) -> Result<ActionResponse, KubeError> {
        let mut last = None;
        for action in &plan.actions {
            last = Some(self.submit(target, action, plan.verb).await?);
        }
        last.ok_or_else(|| Refusal::bad_request("the patch changes nothing").into())
    }

    /// The action request `action` on `target` sends.
    fn action_request(&self, target: &ResourcePath, action: &PlannedAction, verb: &str) -> Value {
        let justification = self
            .headers
            .get("x-docketops-justification")
            .and_then(|v| v.to_str().ok());
        kubectl::action_request(target, action, verb, justification, self.dry_run)
    }

    /// Submits one action; anything but COMPLETED (PREVIEWED in a dry run) becomes a `Status` error.
    async fn submit(
        &self,
        target: &ResourcePath,
        action: &PlannedAction,
        verb: &str,
    ) -> Result<ActionResponse, KubeError> {
        let body = self.action_request(target, action, verb);
        let response = self
            .state
            .pipeline
            .submit(self.caller, body)
            .await
            .map_err(ApiError::from)?;
        kubectl::judge_outcome(target, action, &response)?;
        Ok(response)
    }

    /// The object after a change, read back through the pipeline (a GET action of its own).
    async fn read_back(&self, name: &str) -> Option<Value> {
        let response = self.run(&Plan::get(name)).await.ok()?;
        response.result
    }

    /// The object after a change (a dry run: the API server's dry-run object, nothing read back).
    async fn object_response_after_change(&self, code: StatusCode, response: &ActionResponse, name: &str) -> Response {
        if self.dry_run {
            return self.object_response(code, response, None);
        }
        let object = self.read_back(name).await;
        self.object_response(code, response, object)
    }

    fn object_response(&self, code: StatusCode, response: &ActionResponse, object: Option<Value>) -> Response {
        let object = kubectl::object_answer(self.target, object.or_else(|| response.result.clone()));
        with_action_headers(json_response(code, &object), response)
    }
}

fn with_action_headers(mut response: Response, action: &ActionResponse) -> Response {
    for (name, value) in [
        ("x-docketops-action", &action.action_id),
        ("x-docketops-ledger-entry", &action.ledger_entry_id),
        // Where the entry's receipt (C2SP tlog-proof) is served once a checkpoint covers it.
        ("x-docketops-receipt", &action.receipt_url),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// `dryRun=All` in the query of a PATCH, PUT, POST or DELETE, or `"dryRun": ["All"]` in a DELETE's
/// `DeleteOptions` body (where kubectl puts it). The API server knows no other value, so neither does the proxy.
fn dry_run_requested(method: &Method, query: &HashMap<String, String>, body: &[u8]) -> Result<bool, KubeError> {
    if !matches!(*method, Method::PATCH | Method::PUT | Method::POST | Method::DELETE) {
        return Ok(false);
    }
    let in_query = match query.get("dryRun").map(String::as_str) {
        None => false,
        Some("All") => true,
        Some(other) => return Err(invalid_dry_run(other)),
    };
    let options = (*method == Method::DELETE && !body.is_empty())
        .then(|| serde_json::from_slice::<Value>(body).ok())
        .flatten();
    let in_body = match options.as_ref().and_then(|o| o.get("dryRun")) {
        None | Some(Value::Null) => false,
        Some(Value::Array(values)) if values.is_empty() => false,
        Some(Value::Array(values)) if values.iter().all(|v| v == "All") => true,
        Some(other) => return Err(invalid_dry_run(&other.to_string())),
    };
    Ok(in_query || in_body)
}

fn invalid_dry_run(value: &str) -> KubeError {
    Refusal::bad_request(format!("dryRun {value:?} is not supported: the only value is \"All\"")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_is_all_or_refused() {
        let query = |value: &str| HashMap::from([("dryRun".to_owned(), value.to_owned())]);
        assert!(dry_run_requested(&Method::PATCH, &query("All"), b"{}").unwrap());
        assert!(dry_run_requested(&Method::POST, &query("All"), b"{}").unwrap());
        assert!(!dry_run_requested(&Method::PATCH, &HashMap::new(), b"{}").unwrap());
        // GET has no dryRun.
        assert!(!dry_run_requested(&Method::GET, &query("All"), b"").unwrap());
        for value in ["all", "", "None", "All,All"] {
            let error = dry_run_requested(&Method::PUT, &query(value), b"{}").unwrap_err();
            assert_eq!(error.0.code, StatusCode::BAD_REQUEST.as_u16(), "{value:?}");
        }
        // kubectl delete puts it into DeleteOptions.
        let delete = |body: Value| dry_run_requested(&Method::DELETE, &HashMap::new(), body.to_string().as_bytes());
        assert!(delete(json!({"kind": "DeleteOptions", "dryRun": ["All"]})).unwrap());
        assert!(!delete(json!({"propagationPolicy": "Background"})).unwrap());
        assert!(!delete(json!({"dryRun": []})).unwrap());
        assert!(delete(json!({"dryRun": ["Some"]})).is_err());
        assert!(delete(json!({"dryRun": "All"})).is_err());
    }

    #[test]
    fn refusals_are_kubernetes_statuses() {
        let response = KubeError::from(Refusal::unsupported_media_type("no")).into_response();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let KubeError(refusal) = KubeError::from(ApiError::new(StatusCode::CONFLICT, "conflict", "taken"));
        assert_eq!((refusal.code, refusal.reason), (409, "Conflict"));
    }
}
