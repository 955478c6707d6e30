//! The gateway's own pipeline, for the `/mcp` route of the gateway: each tool call runs as the identity that
//! authenticated the HTTP request carrying it.

use domain::ActionStatus;
use std::sync::Arc;
use std::time::Duration;

use gateway::{Caller, Pipeline};
use rmcp::model::Extensions;
use serde_json::Value;
use storage::ActionFilter;
use tracing::Instrument as _;

use crate::backend::{Backend, ToolError};

/// Tools on the gateway's [`Pipeline`], in the gateway process.
///
/// The HTTP layer in front of the MCP service authenticates every request (the same API keys and roles as
/// the REST API) and puts the [`Caller`] into the request's extensions; rmcp hands each tool call the
/// request's [`http::request::Parts`], where the tool finds it. A request without one is refused.
#[derive(Debug, Clone)]
pub struct InProcess {
    pipeline: Arc<Pipeline>,
}

impl InProcess {
    /// Tools on `pipeline`.
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline }
    }
}

impl Backend for InProcess {
    type Caller = Caller;

    fn caller(&self, extensions: &Extensions) -> Result<Caller, ToolError> {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .cloned()
            .ok_or(ToolError::Unauthenticated)
    }

    async fn submit(&self, caller: &Caller, request: Value) -> Result<Value, ToolError> {
        // In a task of its own: a client that hangs up mid-call (rmcp then drops the tool's future) must not
        // stop an action between its execution and its verification; it finishes, and get_action_status
        // shows how.
        let (pipeline, caller) = (self.pipeline.clone(), caller.clone());
        // In the tool call's span: the action's spans are its children.
        let submitted = async move { pipeline.submit(&caller, request).await };
        let response = tokio::spawn(submitted.in_current_span())
            .await
            .map_err(|e| ToolError::Gateway {
                status: 500,
                code: "internal".into(),
                message: format!("the action's task failed: {e}"),
            })??;
        Ok(serde_json::to_value(response).expect("an action response serializes"))
    }

    async fn action(&self, caller: &Caller, action_id: &str, wait: Option<Duration>) -> Result<Value, ToolError> {
        Ok(self.pipeline.get(caller, action_id, wait).await?)
    }

    async fn pending_approvals(&self, caller: &Caller) -> Result<Value, ToolError> {
        // The caller's own, whatever else its roles let it see.
        let filter = ActionFilter {
            identity_id: Some(caller.identity.id.clone()),
            status: Some(ActionStatus::PendingApproval.as_str().into()),
            namespace: None,
            before: None,
            limit: 100,
        };
        Ok(self.pipeline.list(caller, filter).await?)
    }
}
