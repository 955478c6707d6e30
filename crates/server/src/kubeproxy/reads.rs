//! Reads through the proxy: GET and LIST (as the API server's `Table` when kubectl asks for one), LISTs
//! across all namespaces (one LIST action per namespace in the caller's read scopes), and watches (a
//! recorded LIST, then the API server's event stream through the executor for a bounded time).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Action, ActionRequest, ResourceKind};
use gateway::ActionResponse;
use gateway::kubectl::{self, CallContext, ExecError, Plan, Refusal, ResourcePath};

use super::{KubeError, Request, cluster, json_response, with_action_headers};

impl Request<'_> {
    /// Whether kubectl asks for a `Table` (`kubectl get`), not the objects (`-o json`, `describe`, …).
    fn table(&self) -> bool {
        kubectl::wants_table(self.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
    }

    pub(super) async fn get(&self, name: &str) -> Result<Response, KubeError> {
        let response = self.run(&Plan::get_as(name, self.table())).await?;
        Ok(self.object_response(StatusCode::OK, &response, None))
    }

    pub(super) async fn list(&self) -> Result<Response, KubeError> {
        if self.target.namespace.is_none() && self.target.kind.namespaced() {
            return self.list_all_namespaces().await;
        }
        let response = self.run(&kubectl::plan_list(self.query, self.table())).await?;
        let list = kubectl::list_answer(self.target, response.result.as_ref());
        Ok(with_action_headers(json_response(StatusCode::OK, &list), &response))
    }

    /// `get -A`: one LIST per namespace the caller's read scopes cover (patterns expanded against the
    /// namespaces the caller may list), answered together.
    async fn list_all_namespaces(&self) -> Result<Response, KubeError> {
        let cluster = cluster(self.state)?;
        let scopes = &self.caller.identity.scopes;
        let (kind, table) = (self.target.kind, self.table());
        let mut known = Vec::new();
        if kubectl::needs_namespace_list(scopes, cluster.name(), kind) {
            let namespaces = ResourcePath::parse("/api/v1/namespaces")?;
            let mut plan = kubectl::plan_list(&Default::default(), false);
            plan.verb = "get -A";
            let response = self.run_on(&namespaces, &plan).await?;
            known = kubectl::namespace_names(response.result.as_ref());
        }
        let mut plan = kubectl::plan_list(self.query, table);
        plan.verb = "get -A";
        // One page per namespace: a continue token names a page of one namespace's list.
        for action in &mut plan.actions {
            action.parameters.remove("continue");
        }
        let limit = plan.actions[0]
            .parameters
            .get("limit")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(u64::from(domain::action::MAX_LIST_LIMIT));
        let mut results = Vec::new();
        let mut cut_off = Vec::new();
        let mut last = None;
        for namespace in kubectl::namespaces_in_scope(scopes, cluster.name(), kind, &known)? {
            let target = ResourcePath {
                namespace: Some(namespace.clone()),
                ..self.target.clone()
            };
            let response = self.run_on(&target, &plan).await?;
            if kubectl::is_cut_off(response.result.as_ref(), limit) {
                cut_off.push(namespace);
            }
            results.push(response.result.clone());
            last = Some(response);
        }
        let answer = kubectl::merged_answer(self.target, results);
        let mut response = json_response(StatusCode::OK, &answer);
        // More objects than one page in some namespace: kubectl prints the warning.
        if let Some(warning) = kubectl::cut_off_warning(&cut_off).and_then(|w| HeaderValue::from_str(&w).ok()) {
            response.headers_mut().insert(header::WARNING, warning);
        }
        Ok(match &last {
            Some(last) => with_action_headers(response, last),
            None => response,
        })
    }

    /// `?watch=true`: the LIST is an action like any read (decided and recorded); its events then stream from
    /// the API server through the executor, as the reader account, tied to that action (its id and `Audit-ID`).
    pub(super) async fn watch(&self) -> Result<Response, KubeError> {
        if self.target.namespace.is_none() && self.target.kind.namespaced() {
            return Err(Refusal::method_not_allowed(
                "watching across all namespaces is not supported through the DocketOps proxy; watch one namespace (-n)",
            )
            .into());
        }
        if matches!(self.target.kind, ResourceKind::Secret | ResourceKind::Namespace) {
            return Err(Refusal::method_not_allowed(format!(
                "watching {} is not supported through the DocketOps proxy; list them instead",
                self.target.kind
            ))
            .into());
        }
        let plan = kubectl::plan_watch(self.query, self.table());
        let response = self.run(&plan).await?;
        let body = self.action_request(self.target, &plan.actions[0], plan.verb);
        let action = serde_json::from_value::<ActionRequest>(body)
            .ok()
            .and_then(|request| Action::from_request(&request).ok())
            .ok_or_else(|| Refusal::bad_request("the watch is not a valid LIST"))?;
        let context = CallContext {
            identity: self.caller.identity.id.clone(),
            action_id: response.action_id.clone(),
            audit_id: response.entries.first().cloned().unwrap_or_default(),
        };
        let options = kubectl::watch_options(self.query);
        let watch = cluster(self.state)?
            .watch(&context, &action, &self.caller.identity.scopes, &options)
            .await
            .map_err(|error| watch_refusal(&response, &error))?;
        let mut answer = (StatusCode::OK, Body::from_stream(watch.events)).into_response();
        let content_type = watch.content_type.as_deref().unwrap_or("application/json");
        if let Ok(value) = HeaderValue::from_str(content_type) {
            answer.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Ok(with_action_headers(answer, &response))
    }
}

/// A watch the executor could not open, after its LIST was recorded: the API server's status if it answered.
fn watch_refusal(response: &ActionResponse, error: &ExecError) -> KubeError {
    let status = match error {
        ExecError::Api { status, .. } => *status,
        ExecError::Guardrail(_) => StatusCode::FORBIDDEN.as_u16(),
        _ => StatusCode::BAD_GATEWAY.as_u16(),
    };
    Refusal::new(
        status,
        format!(
            "DocketOps: the watch of action {} could not be opened: {error}",
            response.action_id
        ),
    )
    .into()
}
