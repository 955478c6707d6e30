//! `/k8s/…`: enough of the Kubernetes API for `kubectl --server https://gateway/k8s --token <API key>`.
//!
//! Nothing is passed through to the API server but discovery and OpenAPI documents (read-only, fetched by the
//! executor with the gateway's own credentials). Every object request is translated into an action and runs
//! the whole pipeline (guardrails, risk, policy, approvals, execution, verification, ledger): reads become
//! GET/LIST, `/scale` becomes SCALE, a rollout-restart patch RESTART, an image-only patch SET_IMAGE, apply and
//! create APPLY, merge patches PATCH, deletes DELETE. Anything else is refused with a Kubernetes `Status`, so
//! kubectl prints every refusal readably. `dryRun=All` (kubectl's `--dry-run=server`) makes each of them a
//! dry-run action: previewed, decided and recorded, answered with the API server's dry-run object, never run.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use gateway::{ActionResponse, Caller};
use serde_json::{Map, Value, json};

use crate::auth::Authenticated;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/k8s/{*path}", any(proxy))
}

/// The resources the gateway governs: (API group, plural, kind, namespaced).
const RESOURCES: [(&str, &str, &str, bool); 12] = [
    ("apps", "deployments", "Deployment", true),
    ("apps", "statefulsets", "StatefulSet", true),
    ("apps", "daemonsets", "DaemonSet", true),
    ("apps", "replicasets", "ReplicaSet", true),
    ("", "pods", "Pod", true),
    ("", "services", "Service", true),
    ("", "configmaps", "ConfigMap", true),
    ("", "secrets", "Secret", true),
    ("batch", "jobs", "Job", true),
    ("batch", "cronjobs", "CronJob", true),
    ("", "namespaces", "Namespace", false),
    ("", "nodes", "Node", false),
];

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A Kubernetes `Status` error: what kubectl prints as `Error from server (<reason>): <message>`.
#[derive(Debug)]
struct KubeError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl KubeError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
    }
}

fn reason_for(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

impl From<ApiError> for KubeError {
    fn from(error: ApiError) -> Self {
        KubeError::new(error.status, reason_for(error.status), error.message)
    }
}

impl IntoResponse for KubeError {
    fn into_response(self) -> Response {
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code.as_u16()});
        json_response(self.code, &body)
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Where a request points: `/api/v1/namespaces/web/deployments/web-api/scale` and the like.
#[derive(Debug)]
struct Target {
    /// `v1` or `apps/v1`.
    api_version: String,
    kind: &'static str,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// The governed resource a path names; an error for paths no action can express.
fn parse_target(path: &str) -> Result<Target, KubeError> {
    let segments = plain_segments(path)?;
    let (group, api_version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", (*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (*group, format!("{group}/{version}"), rest),
        _ => return Err(not_available(path)),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some((*sub).to_owned())),
        _ => return Err(not_available(path)),
    };
    let &(_, _, kind, namespaced) = RESOURCES
        .iter()
        .find(|(g, p, _, _)| *g == group && *p == plural)
        .ok_or_else(|| not_available(path))?;
    if namespaced == namespace.is_none() && !(namespaced && name.is_none()) {
        return Err(not_available(path));
    }
    Ok(Target {
        api_version,
        kind,
        namespace,
        name,
        subresource,
    })
}

/// The path's segments, refusing what only a path trick needs: Kubernetes names never hold `%`, `\\` or
/// control characters, and `.`/`..` would make the path the API server resolves differ from the one judged.
fn plain_segments(path: &str) -> Result<Vec<&str>, KubeError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let trick = |s: &&&str| matches!(**s, "." | "..") || s.chars().any(|c| c == '%' || c == '\\' || c.is_control());
    if let Some(bad) = segments.iter().find(trick) {
        return Err(KubeError::bad_request(format!(
            "path segment {bad:?} is not allowed (no encoded characters, backslashes or dot segments)"
        )));
    }
    Ok(segments)
}

fn not_available(path: &str) -> KubeError {
    KubeError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "{path} is not available through DocketOps (it governs Deployments, StatefulSets, DaemonSets, ReplicaSets, Pods, Services, ConfigMaps, Secrets, Jobs, CronJobs, and reads Namespaces and Nodes)"
        ),
    )
}

fn is_discovery(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    matches!(
        segments.as_slice(),
        ["api" | "apis" | "version"] | ["api", _] | ["apis", _, _] | ["openapi", ..]
    )
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
        plain_segments(&path)?;
        if is_discovery(&path) {
            if method != Method::GET {
                return Err(KubeError::unsupported(format!(
                    "{method} {path} is not supported through the DocketOps proxy (discovery is read-only)"
                )));
            }
            return discovery(&state, &path, &headers).await;
        }
        let Query(query) =
            Query::<HashMap<String, String>>::try_from_uri(&uri).map_err(|e| KubeError::bad_request(e.body_text()))?;
        let target = parse_target(&path)?;
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

async fn discovery(state: &AppState, path: &str, headers: &HeaderMap) -> Result<Response, KubeError> {
    let executor = state.pipeline.clusters().resolve(None).map_err(|e| match e {
        Ok(message) => KubeError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message),
        Err(error) => ApiError::from(error).into(),
    })?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (status, body, content_type) = executor
        .discovery(path, accept)
        .await
        .map_err(|e| KubeError::new(StatusCode::BAD_GATEWAY, "InternalError", e.to_string()))?;
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
    target: &'a Target,
    /// `dryRun=All`: every mutation is a dry-run action, answered with the API server's dry-run object.
    dry_run: bool,
}

/// A translated request: one or more actions (an image patch for several containers is one per container).
struct Plan {
    verb: &'static str,
    actions: Vec<(&'static str, Option<String>, Map<String, Value>)>,
}

impl Request<'_> {
    async fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Result<Response, KubeError> {
        let t = self.target;
        let unsupported =
            || KubeError::unsupported(format!("{method} {path} is not supported through the DocketOps proxy"));
        match (method.as_str(), t.name.as_deref(), t.subresource.as_deref()) {
            ("GET", _, _) if self.query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                Err(KubeError::unsupported(format!(
                    "watching ({path}) is not supported through the DocketOps proxy"
                )))
            }
            ("GET", None, None) => self.list().await,
            ("GET", Some(name), None) => {
                let response = self.submit("GET", Some(name), Map::new(), "get").await?;
                Ok(self.object_response(StatusCode::OK, &response, None))
            }
            ("PATCH" | "PUT", Some(name), Some("scale")) => {
                let replicas = parse_json(body)?
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| KubeError::bad_request("a scale request needs spec.replicas"))?;
                let mut params = Map::new();
                params.insert("replicas".into(), json!(replicas));
                let response = self.submit("SCALE", Some(name), params, "scale").await?;
                if self.dry_run {
                    return Ok(self.object_response(StatusCode::OK, &response, None));
                }
                let mut scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {"name": name, "namespace": t.namespace},
                    "spec": {"replicas": replicas}, "status": {"replicas": replicas}});
                if let Some(object) = self.read_back(name).await {
                    scale["metadata"] = object["metadata"].clone();
                    scale["status"]["replicas"] = object.pointer("/status/replicas").cloned().unwrap_or(json!(0));
                }
                Ok(with_action_headers(json_response(StatusCode::OK, &scale), &response))
            }
            ("PATCH", Some(name), None) => {
                let plan = self.plan_patch(name, body)?;
                let images: Vec<Map<String, Value>> = plan.actions.iter().map(|(_, _, p)| p.clone()).collect();
                let mut last = None;
                for (action_type, name, params) in plan.actions {
                    last = Some(self.submit(action_type, name.as_deref(), params, plan.verb).await?);
                }
                let mut response = last.ok_or_else(|| KubeError::bad_request("the patch changes nothing"))?;
                if self.dry_run && plan.verb == "set image" {
                    // Each container's dry run started from the live object: show every new image at once.
                    response.result = response.result.take().map(|object| with_images(object, &images));
                }
                Ok(self.object_response_after_change(StatusCode::OK, &response, name).await)
            }
            ("POST", None, None) => {
                let mut manifest = object(parse_json(body)?)?;
                if let Some(ns) = &t.namespace {
                    let metadata = manifest.entry("metadata").or_insert_with(|| json!({}));
                    if let Some(metadata) = metadata.as_object_mut() {
                        metadata.entry("namespace").or_insert_with(|| json!(ns));
                    }
                }
                let name = manifest
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        KubeError::bad_request("the object needs metadata.name (generateName is not supported)")
                    })?
                    .to_owned();
                let mut params = Map::new();
                params.insert("manifest".into(), Value::Object(manifest));
                let response = self.submit("APPLY", Some(&name), params, "create").await?;
                Ok(self
                    .object_response_after_change(StatusCode::CREATED, &response, &name)
                    .await)
            }
            ("DELETE", Some(name), None) => {
                let options = if body.is_empty() { json!({}) } else { parse_json(body)? };
                let mut params = Map::new();
                let policy = options
                    .get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| self.query.get("propagationPolicy").cloned());
                if let Some(policy) = policy {
                    params.insert("propagation_policy".into(), json!(policy));
                }
                let grace = options
                    .get("gracePeriodSeconds")
                    .and_then(Value::as_u64)
                    .or_else(|| self.query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
                if let Some(grace) = grace {
                    params.insert("grace_period_seconds".into(), json!(grace));
                }
                let response = self.submit("DELETE", Some(name), params, "delete").await?;
                if self.dry_run {
                    // What the API server's dry-run delete answered: the object, or a `Status`.
                    return Ok(self.object_response(StatusCode::OK, &response, None));
                }
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "kind": t.kind.to_lowercase()}});
                Ok(with_action_headers(json_response(StatusCode::OK, &status), &response))
            }
            _ => Err(unsupported()),
        }
    }

    async fn list(&self) -> Result<Response, KubeError> {
        let mut params = Map::new();
        for (query, param) in [
            ("labelSelector", "label_selector"),
            ("fieldSelector", "field_selector"),
            ("continue", "continue"),
        ] {
            if let Some(value) = self.query.get(query).filter(|v| !v.is_empty()) {
                params.insert(param.into(), json!(value));
            }
        }
        if let Some(limit) = self.query.get("limit").and_then(|l| l.parse::<u64>().ok()) {
            params.insert("limit".into(), json!(limit.clamp(1, 500)));
        }
        let response = self.submit("LIST", None, params, "list").await?;
        let t = self.target;
        let items: Vec<Value> = match &response.result {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let mut item = item.clone();
                    if let Some(fields) = item.as_object_mut() {
                        fields.entry("kind").or_insert_with(|| json!(t.kind));
                        fields.entry("apiVersion").or_insert_with(|| json!(t.api_version));
                    }
                    item
                })
                .collect(),
            _ => Vec::new(),
        };
        let list = json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version,
            "metadata": {}, "items": items});
        Ok(with_action_headers(json_response(StatusCode::OK, &list), &response))
    }

    /// Which action a PATCH on an object is.
    fn plan_patch(&self, name: &str, body: &[u8]) -> Result<Plan, KubeError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let apply = |manifest: Map<String, Value>, verb: &'static str| {
            let mut params = Map::new();
            if verb == "apply --server-side" && self.query.get("force").is_some_and(|f| f == "true") {
                params.insert("force".into(), json!(true));
            }
            params.insert("manifest".into(), Value::Object(manifest));
            Plan {
                verb,
                actions: vec![("APPLY", Some(name.to_owned()), params)],
            }
        };
        match content_type.as_str() {
            "application/apply-patch+yaml" => {
                let manifest = serde_json::from_slice::<Value>(body).map_err(|_| {
                    KubeError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "UnsupportedMediaType",
                        "the DocketOps proxy takes server-side apply bodies as JSON (kubectl sends JSON)",
                    )
                })?;
                return Ok(apply(object(manifest)?, "apply --server-side"));
            }
            "application/json-patch+json" => {
                return Err(KubeError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "JSON patches are not supported through the DocketOps proxy; use a merge patch (kubectl patch --type merge)",
                ));
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {}
            other => {
                return Err(KubeError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!("patch content type {other:?} is not supported through the DocketOps proxy"),
                ));
            }
        }
        let strategic = content_type == "application/strategic-merge-patch+json";
        let patch = object(parse_json(body)?)?;

        // Client-side apply of an existing object: the annotation holds the whole new configuration.
        if let Some(applied) = patch
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(LAST_APPLIED))
            .and_then(Value::as_str)
        {
            let manifest = serde_json::from_str::<Value>(applied)
                .map_err(|e| KubeError::bad_request(format!("{LAST_APPLIED} is not JSON: {e}")))?;
            let mut manifest = object(manifest)?;
            // Keep the annotation, as kubectl's own apply does, so the next apply can diff against it.
            let metadata = manifest.entry("metadata").or_insert_with(|| json!({}));
            if let Some(metadata) = metadata.as_object_mut() {
                let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
                if let Some(annotations) = annotations.as_object_mut() {
                    annotations.insert(LAST_APPLIED.into(), json!(applied));
                }
            }
            return Ok(apply(manifest, "apply"));
        }

        let single = |key: &str, map: &Map<String, Value>| map.len() == 1 && map.contains_key(key);
        let template = patch
            .get("spec")
            .and_then(Value::as_object)
            .filter(|spec| single("template", spec))
            .and_then(|spec| spec.get("template"))
            .and_then(Value::as_object);

        // kubectl rollout restart: only the restartedAt annotation of the pod template.
        if let Some(template) = template
            && single("metadata", template)
            && let Some(meta) = template.get("metadata").and_then(Value::as_object)
            && single("annotations", meta)
            && let Some(annotations) = meta.get("annotations").and_then(Value::as_object)
            && single(RESTARTED_AT, annotations)
            && single("spec", &patch)
        {
            return Ok(Plan {
                verb: "rollout restart",
                actions: vec![("RESTART", Some(name.to_owned()), Map::new())],
            });
        }

        // kubectl set image: only container images of the pod template.
        if let Some(template) = template
            && single("spec", &patch)
            && single("spec", template)
            && let Some(pod) = template.get("spec").and_then(Value::as_object)
            // kubectl adds `$setElementOrder/containers`; the order does not change with an image.
            && pod.keys().all(|k| k == "containers" || k == "$setElementOrder/containers")
            && let Some(containers) = pod.get("containers").and_then(Value::as_array)
        {
            let mut actions = Vec::new();
            for container in containers {
                let fields = container.as_object().filter(|c| c.len() == 2);
                let (Some(cname), Some(image)) = (
                    fields.and_then(|c| c.get("name")).and_then(Value::as_str),
                    fields.and_then(|c| c.get("image")).and_then(Value::as_str),
                ) else {
                    actions.clear();
                    break;
                };
                let mut params = Map::new();
                params.insert("container".into(), json!(cname));
                params.insert("image".into(), json!(image));
                actions.push(("SET_IMAGE", Some(name.to_owned()), params));
            }
            if !actions.is_empty() {
                return Ok(Plan {
                    verb: "set image",
                    actions,
                });
            }
        }

        if strategic && !plain_merge(&Value::Object(patch.clone())) {
            return Err(KubeError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "a strategic merge patch with lists or $ directives is not supported through the DocketOps proxy; use a merge patch (kubectl patch --type merge)",
            ));
        }
        let mut params = Map::new();
        params.insert("patch".into(), Value::Object(patch));
        Ok(Plan {
            verb: "patch",
            actions: vec![("PATCH", Some(name.to_owned()), params)],
        })
    }

    /// Submits one action; anything but COMPLETED becomes a `Status` error.
    async fn submit(
        &self,
        action_type: &str,
        name: Option<&str>,
        parameters: Map<String, Value>,
        verb: &str,
    ) -> Result<ActionResponse, KubeError> {
        let t = self.target;
        let justification = self
            .headers
            .get("x-docketops-justification")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("kubectl {verb} via the DocketOps proxy"));
        let mut body = json!({"action_type": action_type, "resource_kind": t.kind, "parameters": parameters,
            "justification": justification});
        if let Some(ns) = &t.namespace {
            body["namespace"] = json!(ns);
        }
        if let Some(name) = name {
            body["resource_name"] = json!(name);
        }
        // Reads (a client-side apply's GET, the read-back) stay reads: only mutations are previewed.
        if self.dry_run && !matches!(action_type, "GET" | "LIST") {
            body["dry_run"] = json!(true);
        }
        let response = self
            .state
            .pipeline
            .submit(self.caller, body)
            .await
            .map_err(ApiError::from)?;
        let what = match (&t.namespace, name) {
            (Some(ns), Some(name)) => format!("{} {ns}/{name}", t.kind),
            (Some(ns), None) => format!("{} in {ns}", t.kind),
            (None, Some(name)) => format!("{} {name}", t.kind),
            (None, None) => t.kind.to_owned(),
        };
        let id = &response.action_id;
        match response.status.as_str() {
            "COMPLETED" | "PREVIEWED" => Ok(response),
            "DENIED" => {
                let reasons = response
                    .decision
                    .as_ref()
                    .map(|d| d.reasons.join("; "))
                    .unwrap_or_default();
                Err(KubeError::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    format!("DocketOps denied {action_type} {what}: {reasons} (action {id})"),
                ))
            }
            "PENDING_APPROVAL" => Err(KubeError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "DocketOps: action {id} ({action_type} {what}) needs an approval; it runs once approved (wait: GET /api/v1/actions/{id}?wait=60)"
                ),
            )),
            other => {
                let error = response.error.clone().unwrap_or(Value::Null);
                let code = error.get("code").and_then(Value::as_str).unwrap_or("failed");
                let status = error
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(match code {
                        "guardrail_denied" => StatusCode::FORBIDDEN,
                        "target_mismatch" => StatusCode::UNPROCESSABLE_ENTITY,
                        "timeout" => StatusCode::GATEWAY_TIMEOUT,
                        "unreachable" => StatusCode::SERVICE_UNAVAILABLE,
                        _ => StatusCode::INTERNAL_SERVER_ERROR,
                    });
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| code.to_owned(), str::to_owned);
                Err(KubeError::new(
                    status,
                    reason_for(status),
                    format!("DocketOps: {action_type} {what} {other} ({code}): {message} (action {id})"),
                ))
            }
        }
    }

    /// The object after a change, read back through the pipeline (a GET action of its own).
    async fn read_back(&self, name: &str) -> Option<Value> {
        let response = self.submit("GET", Some(name), Map::new(), "get").await.ok()?;
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
        let t = self.target;
        let mut object = object
            .or_else(|| response.result.clone())
            .unwrap_or_else(|| json!({"metadata": {"name": null, "namespace": t.namespace}}));
        if let Some(fields) = object.as_object_mut() {
            fields.entry("kind").or_insert_with(|| json!(t.kind));
            fields.entry("apiVersion").or_insert_with(|| json!(t.api_version));
        }
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
    KubeError::bad_request(format!("dryRun {value:?} is not supported: the only value is \"All\""))
}

/// The dry-run object of the last SET_IMAGE with the images of all of them (parameters `container`, `image`).
fn with_images(mut object: Value, images: &[Map<String, Value>]) -> Value {
    let Some(containers) = object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return object;
    };
    for params in images {
        if let Some(container) = containers.iter_mut().find(|c| c.get("name") == params.get("container"))
            && let Some(image) = params.get("image")
        {
            container["image"] = image.clone();
        }
    }
    object
}

fn parse_json(body: &[u8]) -> Result<Value, KubeError> {
    serde_json::from_slice(body).map_err(|e| KubeError::bad_request(format!("the request body is not JSON: {e}")))
}

fn object(value: Value) -> Result<Map<String, Value>, KubeError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(KubeError::bad_request("the request body must be a JSON object")),
    }
}

/// A strategic merge patch without lists or `$` directives means the same as a JSON merge patch.
fn plain_merge(value: &Value) -> bool {
    match value {
        Value::Array(_) => false,
        Value::Object(map) => map.iter().all(|(k, v)| !k.starts_with('$') && plain_merge(v)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_governed_kinds_only() {
        let t = parse_target("/apis/apps/v1/namespaces/web/deployments/api/scale").unwrap();
        assert_eq!(
            (
                t.kind,
                t.api_version.as_str(),
                t.namespace.as_deref(),
                t.name.as_deref()
            ),
            ("Deployment", "apps/v1", Some("web"), Some("api"))
        );
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        let t = parse_target("/api/v1/namespaces/web/configmaps").unwrap();
        assert_eq!((t.kind, t.name), ("ConfigMap", None));
        let t = parse_target("/api/v1/namespaces/web").unwrap();
        assert_eq!((t.kind, t.name.as_deref()), ("Namespace", Some("web")));
        assert!(parse_target("/api/v1/nodes").is_ok());
        assert!(parse_target("/api/v1/namespaces/web/events").is_err());
        assert!(parse_target("/apis/rbac.authorization.k8s.io/v1/clusterroles").is_err());
        assert!(
            parse_target("/api/v1/namespaces/web/deployments").is_err(),
            "wrong group"
        );
        assert!(is_discovery("/apis/apps/v1") && is_discovery("/openapi/v2") && !is_discovery("/api/v1/pods"));
        for trick in [
            "/api/v1/namespaces/..%2Fkube-system/pods",
            "/api/v1/namespaces/web%2F..%2Fkube-system/pods",
            "/api/v1/namespaces/web/../kube-system/pods",
            "/api/v1/namespaces/./web/pods",
            "/apis/apps/v1/namespaces/web/deployments/a%2e%2e",
            "/api/v1/namespaces/web\\..\\kube-system/pods",
        ] {
            let error = parse_target(trick).unwrap_err();
            assert_eq!(
                (error.code, error.reason),
                (StatusCode::BAD_REQUEST, "BadRequest"),
                "{trick}"
            );
        }
        assert!(plain_merge(&json!({"data": {"a": "b"}})));
        assert!(!plain_merge(&json!({"spec": {"containers": []}})));
        assert!(!plain_merge(&json!({"$patch": "replace"})));
    }

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
            assert_eq!(error.code, StatusCode::BAD_REQUEST, "{value:?}");
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
    fn a_set_image_dry_run_shows_every_new_image() {
        let object = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1"}, {"name": "side", "image": "side:1"}]}}}});
        let params = |c: &str, i: &str| Map::from_iter([("container".into(), json!(c)), ("image".into(), json!(i))]);
        let merged = with_images(object, &[params("web", "web:2"), params("side", "side:2")]);
        assert_eq!(merged["spec"]["template"]["spec"]["containers"][0]["image"], "web:2");
        assert_eq!(merged["spec"]["template"]["spec"]["containers"][1]["image"], "side:2");
    }
}
