//! The tools, their JSON schemas and descriptions: one definition for both transports, on any [`Backend`].
//!
//! Each action tool builds the same request a REST caller sends to `POST /api/v1/actions` and submits it
//! through the whole pipeline (guardrails, risk, policy, approval, execution, outcome verification, each a
//! signed ledger entry). There is deliberately no tool that approves or rejects: see the crate docs.

use domain::ActionType;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Extensions, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Map, Value, json};

use crate::backend::{Backend, ToolError};
use crate::params::{
    ApplyParams, DeleteParams, ExplainParams, GetParams, ListParams, PatchParams, RestartParams, ScaleParams,
    SetImageParams, StatusParams,
};
use crate::results;
use gateway::telemetry::TraceContext;
use tracing::Instrument as _;

/// What an agent host shows the model about this server as a whole.
const INSTRUCTIONS: &str = "DocketOps Ledger governs every Kubernetes action: each tool call goes through \
guardrails, risk classification, policy, approval, execution and outcome verification, and every step is a \
signed, hash-chained ledger entry (the result names the entry ids and hashes). A result's status is COMPLETED, \
DENIED (final: explain_denial says why), PENDING_APPROVAL (a human approver must approve it in the DocketOps \
dashboard or API; it cannot be approved through MCP; wait with get_action_status and wait_seconds), or FAILED \
(with the error). Give every change a justification: it is recorded, and policy may deny changes without one. \
Secret values are never returned.";

/// The fields of one action request, as `POST /api/v1/actions` takes them.
struct Request<'a> {
    action_type: ActionType,
    resource_kind: &'static str,
    namespace: Option<&'a str>,
    resource_name: Option<&'a str>,
    parameters: Map<String, Value>,
    justification: Option<&'a str>,
    cluster: Option<&'a str>,
}

impl Request<'_> {
    fn into_body(self) -> Value {
        let mut body = json!({"action_type": self.action_type.as_str(), "resource_kind": self.resource_kind,
                              "parameters": self.parameters});
        for (field, value) in [
            ("namespace", self.namespace),
            ("resource_name", self.resource_name),
            ("justification", self.justification),
            ("cluster", self.cluster),
        ] {
            if let Some(value) = value {
                body[field] = json!(value);
            }
        }
        body
    }
}

/// Parameters from the pairs given, leaving out the ones not set.
fn parameters<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key.to_owned(), v)))
        .collect()
}

/// The MCP server: the tools on a backend.
#[derive(Debug)]
pub struct McpServer<B: Backend> {
    backend: Arc<B>,
    tool_router: ToolRouter<Self>,
}

impl<B: Backend> Clone for McpServer<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            tool_router: self.tool_router.clone(),
        }
    }
}

impl<B: Backend> McpServer<B> {
    /// The tools on `backend`.
    pub fn new(backend: B) -> Self {
        Self::with_shared(Arc::new(backend))
    }

    /// The tools on a backend already shared through an `Arc`.
    pub fn with_shared(backend: Arc<B>) -> Self {
        Self {
            backend,
            tool_router: Self::tool_router(),
        }
    }

    /// Runs one action request through the pipeline and shapes its answer.
    async fn act(&self, extensions: &Extensions, request: Request<'_>) -> CallToolResult {
        let secret = request.resource_kind == "Secret";
        let answer = async {
            let caller = self.backend.caller(extensions)?;
            self.backend.submit(&caller, request.into_body()).await
        }
        .await;
        match answer {
            Ok(response) => results::success(results::action_submitted(response, secret)),
            Err(error) => results::failure(&error),
        }
    }

    async fn read_action(
        &self,
        extensions: &Extensions,
        action_id: &str,
        wait: Option<Duration>,
    ) -> Result<Value, ToolError> {
        let caller = self.backend.caller(extensions)?;
        self.backend.action(&caller, action_id, wait).await
    }
}

#[tool_router]
impl<B: Backend> McpServer<B> {
    /// Read one Kubernetes object (GET) through the DocketOps gateway. Recorded in the ledger like every
    /// action; allowed only within the caller's scopes. Secrets come back as metadata only.
    #[tool(
        name = "get_resource",
        annotations(title = "Get a Kubernetes object", read_only_hint = true)
    )]
    async fn get_resource(
        &self,
        Parameters(p): Parameters<GetParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::Get,
            resource_kind: p.resource_kind.as_str(),
            namespace: p.namespace.as_deref(),
            resource_name: Some(&p.resource_name),
            parameters: Map::new(),
            justification: p.justification.as_deref(),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// List Kubernetes objects of one kind in a namespace (LIST) through the DocketOps gateway, optionally by
    /// label or field selector (at most `limit`, default 500). Recorded in the ledger; Secrets come back as
    /// metadata only.
    #[tool(
        name = "list_resources",
        annotations(title = "List Kubernetes objects", read_only_hint = true)
    )]
    async fn list_resources(
        &self,
        Parameters(p): Parameters<ListParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::List,
            resource_kind: p.resource_kind.as_str(),
            namespace: p.namespace.as_deref(),
            resource_name: None,
            parameters: parameters([
                ("label_selector", p.label_selector.map(Value::from)),
                ("field_selector", p.field_selector.map(Value::from)),
                ("limit", p.limit.map(Value::from)),
                ("continue", p.continue_token.map(Value::from)),
            ]),
            justification: p.justification.as_deref(),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// Scale a Deployment, StatefulSet or ReplicaSet to a number of replicas (SCALE), governed: guardrails,
    /// risk, policy, a human approval when the risk is HIGH (to zero, or a large change), execution and
    /// verification. Returns the status and the ledger entry ids and hashes.
    #[tool(
        name = "scale_workload",
        annotations(title = "Scale a workload", destructive_hint = false, idempotent_hint = true)
    )]
    async fn scale_workload(
        &self,
        Parameters(p): Parameters<ScaleParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::Scale,
            resource_kind: p.resource_kind.as_str(),
            namespace: Some(&p.namespace),
            resource_name: Some(&p.resource_name),
            parameters: parameters([("replicas", Some(p.replicas.into()))]),
            justification: Some(&p.justification),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// Restart a Deployment, StatefulSet or DaemonSet (RESTART: a rolling restart of its pods, like
    /// `kubectl rollout restart`), governed and recorded in the ledger.
    #[tool(
        name = "restart_workload",
        annotations(title = "Restart a workload", destructive_hint = false)
    )]
    async fn restart_workload(
        &self,
        Parameters(p): Parameters<RestartParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::Restart,
            resource_kind: p.resource_kind.as_str(),
            namespace: Some(&p.namespace),
            resource_name: Some(&p.resource_name),
            parameters: Map::new(),
            justification: Some(&p.justification),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// Change one container's image (SET_IMAGE) in a Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod or
    /// CronJob, governed and recorded in the ledger.
    #[tool(
        name = "set_image",
        annotations(title = "Set a container image", destructive_hint = false, idempotent_hint = true)
    )]
    async fn set_image(
        &self,
        Parameters(p): Parameters<SetImageParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::SetImage,
            resource_kind: p.resource_kind.as_str(),
            namespace: Some(&p.namespace),
            resource_name: Some(&p.resource_name),
            parameters: parameters([("container", Some(p.container.into())), ("image", Some(p.image.into()))]),
            justification: Some(&p.justification),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// Change an object with a JSON merge patch (PATCH), governed: the change is previewed with a server-side
    /// dry-run, classified, decided by policy, executed and verified, each step a ledger entry.
    #[tool(
        name = "patch_resource",
        annotations(title = "Patch a Kubernetes object", destructive_hint = true)
    )]
    async fn patch_resource(
        &self,
        Parameters(p): Parameters<PatchParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::Patch,
            resource_kind: p.resource_kind.as_str(),
            namespace: Some(&p.namespace),
            resource_name: Some(&p.resource_name),
            parameters: parameters([("patch", Some(Value::Object(p.patch)))]),
            justification: Some(&p.justification),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// Create or update an object from a whole manifest (APPLY, server-side apply), governed and recorded in
    /// the ledger.
    #[tool(
        name = "apply_manifest",
        annotations(title = "Apply a manifest", destructive_hint = true, idempotent_hint = true)
    )]
    async fn apply_manifest(
        &self,
        Parameters(p): Parameters<ApplyParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::Apply,
            resource_kind: p.resource_kind.as_str(),
            namespace: Some(&p.namespace),
            resource_name: p.resource_name.as_deref(),
            parameters: parameters([
                ("manifest", Some(Value::Object(p.manifest))),
                ("force", p.force.map(Value::from)),
            ]),
            justification: Some(&p.justification),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// Delete an object (DELETE). Deletions are HIGH risk: under the default policy the result is
    /// PENDING_APPROVAL until a human approver approves it in the DocketOps dashboard or API; then it runs.
    #[tool(
        name = "delete_resource",
        annotations(
            title = "Delete a Kubernetes object",
            destructive_hint = true,
            idempotent_hint = true
        )
    )]
    async fn delete_resource(
        &self,
        Parameters(p): Parameters<DeleteParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let request = Request {
            action_type: ActionType::Delete,
            resource_kind: p.resource_kind.as_str(),
            namespace: Some(&p.namespace),
            resource_name: Some(&p.resource_name),
            parameters: parameters([
                ("propagation_policy", p.propagation_policy.map(|policy| json!(policy))),
                ("grace_period_seconds", p.grace_period_seconds.map(Value::from)),
            ]),
            justification: Some(&p.justification),
            cluster: p.cluster.as_deref(),
        };
        Ok(self.act(&extensions, request).await)
    }

    /// The status of one of your actions: its decision and reasons, the outcome, and the newest ledger entry's
    /// id and hashes. With `wait_seconds`, waits (up to 60 s) for a final status, e.g. for a human approver to
    /// decide on a PENDING_APPROVAL action.
    #[tool(
        name = "get_action_status",
        annotations(title = "Action status", read_only_hint = true)
    )]
    async fn get_action_status(
        &self,
        Parameters(p): Parameters<StatusParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let wait = p.wait_seconds.map(|s| Duration::from_secs(u64::from(s.min(60))));
        Ok(match self.read_action(&extensions, &p.action_id, wait).await {
            Ok(answer) => results::success(results::action_status(&answer)),
            Err(error) => results::failure(&error),
        })
    }

    /// Your own actions that wait for a human approval (PENDING_APPROVAL), newest first. Approvals are given
    /// by human approvers in the DocketOps dashboard or API, never through MCP.
    #[tool(
        name = "list_my_pending_approvals",
        annotations(title = "My pending approvals", read_only_hint = true)
    )]
    async fn list_my_pending_approvals(&self, extensions: Extensions) -> Result<CallToolResult, ErrorData> {
        let answer = async {
            let caller = self.backend.caller(&extensions)?;
            self.backend.pending_approvals(&caller).await
        }
        .await;
        Ok(match answer {
            Ok(list) => {
                let pending: Vec<Value> = list["actions"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|a| {
                        json!({"action_id": a["action_id"], "cluster": a["cluster"], "action_type": a["action_type"],
                               "namespace": a["namespace"], "resource_kind": a["resource_kind"],
                               "resource_name": a["resource_name"], "risk": a["risk"], "created_at": a["created_at"]})
                    })
                    .collect();
                results::success(json!({
                    "pending": pending,
                    "note": "A human approver must approve these in the DocketOps dashboard or API; get_action_status \
                             with wait_seconds waits for one.",
                }))
            }
            Err(error) => results::failure(&error),
        })
    }

    /// Why an action was denied (or rejected, or expired): the guardrail rule or the policy's reasons, the risk
    /// rules that fired and the policy revision, from the action's ledger entries, with what to do instead.
    #[tool(
        name = "explain_denial",
        annotations(title = "Explain a denial", read_only_hint = true)
    )]
    async fn explain_denial(
        &self,
        Parameters(p): Parameters<ExplainParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.read_action(&extensions, &p.action_id, None).await {
            Ok(answer) => results::success(results::explanation(&answer)),
            Err(error) => results::failure(&error),
        })
    }
}

#[tool_handler]
impl<B: Backend> ServerHandler for McpServer<B> {
    /// Every tool call in a span of its own, continuing the agent's trace when the call's `_meta` carries W3C
    /// Trace Context (`traceparent`, `tracestate`: MCP's convention). The context also rides in the call's
    /// extensions, for a backend that sends it on (the remote one, as HTTP headers).
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        mut context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        // Named by the tool only when it is one of ours: a client picks the name, span names must stay few.
        let tool = match self.tool_router.has_route(&request.name) {
            true => request.name.as_ref(),
            false => "_OTHER",
        };
        let span = tracing::info_span!(
            "mcp.tools/call",
            otel.name = format!("tools/call {tool}"),
            otel.kind = "server",
            mcp.tool = tool,
        );
        // The call's own context first; else the HTTP request's headers (rmcp runs the call in a task of its own,
        // outside the request's span).
        let from_headers = || {
            let parts = context.extensions.get::<http::request::Parts>()?;
            TraceContext::from_headers(&parts.headers)
        };
        let from_meta = TraceContext::from_meta(&context.meta.0.0).filter(TraceContext::is_valid);
        if let Some(received) = from_meta.or_else(from_headers) {
            received.adopt(&span);
            context.extensions.insert(received);
        }
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        self.tool_router.call(call).instrument(span).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("docketops", env!("CARGO_PKG_VERSION")).with_title("DocketOps Ledger"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::params::{ReadableKind, ScalableKind};

    /// A gateway stand-in: keeps the requests it is sent and answers with `answer`.
    #[derive(Debug, Default)]
    struct Recorder {
        sent: Mutex<Vec<Value>>,
        answer: Value,
    }

    impl Backend for Recorder {
        type Caller = ();

        fn caller(&self, _extensions: &Extensions) -> Result<(), ToolError> {
            Ok(())
        }

        async fn submit(&self, _caller: &(), request: Value) -> Result<Value, ToolError> {
            self.sent.lock().unwrap().push(request);
            Ok(self.answer.clone())
        }

        async fn action(&self, _caller: &(), _id: &str, _wait: Option<Duration>) -> Result<Value, ToolError> {
            Err(ToolError::Gateway {
                status: 404,
                code: "not_found".into(),
                message: "no action".into(),
            })
        }

        async fn pending_approvals(&self, _caller: &()) -> Result<Value, ToolError> {
            Ok(json!({"actions": []}))
        }
    }

    #[test]
    fn no_tool_approves_and_every_tool_has_a_schema() {
        let tools = McpServer::<Recorder>::tool_router().list_all();
        assert_eq!(tools.len(), 11);
        for tool in tools {
            assert!(
                !tool.name.contains("approve") && !tool.name.contains("reject"),
                "{}",
                tool.name
            );
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")), "{}", tool.name);
            assert!(tool.description.is_some_and(|d| d.len() > 40), "{}", tool.name);
        }
    }

    #[tokio::test]
    async fn a_tool_sends_the_rest_apis_request() {
        let server = McpServer::new(Recorder {
            answer: json!({"action_id": "act_1", "status": "COMPLETED"}),
            ..Recorder::default()
        });
        let params = ScaleParams {
            namespace: "staging".into(),
            resource_name: "web-api".into(),
            replicas: 5,
            justification: "load test".into(),
            resource_kind: ScalableKind::default(),
            cluster: None,
        };
        let result = server
            .scale_workload(Parameters(params), Extensions::default())
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false));
        assert_eq!(
            server.backend.sent.lock().unwrap()[0],
            json!({"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
                   "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "load test"})
        );
        let missing = server
            .get_action_status(
                Parameters(StatusParams {
                    action_id: "act_2".into(),
                    wait_seconds: None,
                }),
                Extensions::default(),
            )
            .await
            .unwrap();
        assert_eq!(missing.is_error, Some(true), "gateway errors are tool errors");
    }

    #[tokio::test]
    async fn secret_values_never_leave_a_read() {
        let server = McpServer::new(Recorder {
            answer: json!({"action_id": "act_1", "status": "COMPLETED",
                           "result": {"kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}}),
            ..Recorder::default()
        });
        let params = GetParams {
            resource_kind: ReadableKind::Secret,
            namespace: Some("staging".into()),
            resource_name: "db".into(),
            justification: None,
            cluster: None,
        };
        let result = server
            .get_resource(Parameters(params), Extensions::default())
            .await
            .unwrap();
        let shown = serde_json::to_string(&result).unwrap();
        assert!(!shown.contains("aHVudGVyMg=="), "{shown}");
        assert_eq!(result.structured_content.unwrap()["result"]["metadata"]["name"], "db");
    }
}
