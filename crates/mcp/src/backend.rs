//! What the tools need from a gateway, and the two ways to reach one: the gateway's own pipeline
//! ([`crate::InProcess`], for `/mcp`) or its HTTP API ([`crate::Remote`], for `docketops mcp` over stdio).
//!
//! Both answer in the JSON shapes of the HTTP API (`POST /api/v1/actions`, `GET /api/v1/actions/{id}`,
//! `GET /api/v1/actions`), so the tools shape one kind of answer whichever way it came.

use std::future::Future;
use std::time::Duration;

use rmcp::model::Extensions;
use serde_json::Value;

/// A gateway the tools can act through.
pub trait Backend: Send + Sync + 'static {
    /// Who is calling: the authenticated identity of the HTTP request in process, nothing remotely (the
    /// remote backend holds its one API key).
    type Caller: Send + Sync;

    /// The caller of one tool call, from the call's extensions (where the HTTP request's parts are).
    fn caller(&self, extensions: &Extensions) -> Result<Self::Caller, ToolError>;

    /// An action request (the body of `POST /api/v1/actions`) through the whole pipeline: the response as
    /// that route answers it, for every decided action (DENIED and PENDING_APPROVAL included).
    fn submit(&self, caller: &Self::Caller, request: Value) -> impl Future<Output = Result<Value, ToolError>> + Send;

    /// One action with all its ledger entries (`GET /api/v1/actions/{id}`); with `wait`, answers as soon as
    /// the action has a final status, or when `wait` has passed.
    fn action(
        &self,
        caller: &Self::Caller,
        action_id: &str,
        wait: Option<Duration>,
    ) -> impl Future<Output = Result<Value, ToolError>> + Send;

    /// The caller's own actions that wait for an approval: `{"actions": [...]}`, newest first.
    fn pending_approvals(&self, caller: &Self::Caller) -> impl Future<Output = Result<Value, ToolError>> + Send;
}

/// Why a tool call could not be answered with a gateway result. Tools report these as tool errors
/// (`isError: true`) with the message; a denial is not one of them (it is a result with status DENIED).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The gateway refused the request; `status` is the HTTP status it answers with (400, 401, 403, 404, 409,
    /// 503, …) and `code` its error code.
    #[error("{message}")]
    Gateway {
        /// The HTTP status (500 for an internal error).
        status: u16,
        /// The gateway's error code, e.g. `forbidden`.
        code: String,
        /// The gateway's message.
        message: String,
    },
    /// No authenticated caller reached the tool (the MCP service was mounted without authentication).
    #[error("not authenticated: send Authorization: Bearer <API key>")]
    Unauthenticated,
    /// The remote gateway could not be reached or did not answer in time.
    #[error("cannot reach the gateway at {url}: {message}")]
    Unreachable {
        /// The gateway's base URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The remote gateway answered something that is not its API's JSON.
    #[error("unexpected answer from the gateway ({status}): {message}")]
    Protocol {
        /// The HTTP status of the answer.
        status: u16,
        /// What is wrong with it, or the start of its text.
        message: String,
    },
}

impl ToolError {
    /// The error as a tool result's structured content.
    pub fn to_json(&self) -> Value {
        let (status, code) = match self {
            ToolError::Gateway { status, code, .. } => (Some(*status), code.as_str()),
            ToolError::Unauthenticated => (Some(401), "unauthorized"),
            ToolError::Unreachable { .. } => (None, "unreachable"),
            ToolError::Protocol { status, .. } => (Some(*status), "protocol"),
        };
        serde_json::json!({"error": {"status": status, "code": code, "message": self.to_string()}})
    }
}

impl From<gateway::GatewayError> for ToolError {
    fn from(error: gateway::GatewayError) -> Self {
        use gateway::GatewayError as E;
        let (status, code) = match &error {
            E::BadRequest(_) => (400, "bad_request"),
            E::Unauthorized(_) => (401, "unauthorized"),
            E::Forbidden(_) => (403, "forbidden"),
            E::NotFound(_) => (404, "not_found"),
            E::Conflict(_) => (409, "conflict"),
            E::Unavailable(_) => (503, "unavailable"),
            _ => {
                // As the HTTP API does: logged in full, reported without internals.
                tracing::error!(%error, "MCP tool call failed");
                return ToolError::Gateway {
                    status: 500,
                    code: "internal".into(),
                    message: "internal error; see the gateway's log".into(),
                };
            }
        };
        ToolError::Gateway {
            status,
            code: code.into(),
            message: error.to_string(),
        }
    }
}
