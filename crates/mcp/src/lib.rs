//! The gateway's governed actions as Model Context Protocol tools, for agent hosts (built on `rmcp`, the
//! official Rust SDK).
//!
//! - [`McpServer`] (`tools`): the tools, their JSON schemas and descriptions, on any [`Backend`].
//! - [`InProcess`]: the gateway's own [`gateway::Pipeline`], behind the gateway's `/mcp` route (streamable
//!   HTTP, [`http_service`]); each request is authenticated by the server crate like any API request, and the
//!   caller reaches the tools in the request's extensions.
//! - [`Remote`]: a gateway's HTTP API with one API key, for `docketops mcp` over stdio ([`serve_stdio`]).
//!
//! Every tool call that acts goes through the same pipeline as `POST /api/v1/actions` and returns its ledger
//! ids and hashes. There is no tool that approves or rejects, on purpose: an agent must never approve its own
//! action, and anything an MCP client says (elicitation answers included) comes from the agent's side and can
//! be forged. An action that needs an approval comes back `PENDING_APPROVAL`, with how to wait for a human
//! approver's decision. Secret data is withheld from every result, whatever the gateway reveals elsewhere.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod in_process;
mod params;
mod remote;
mod results;
mod tools;

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt};

pub use backend::{Backend, ToolError};
pub use in_process::InProcess;
pub use remote::{Outgoing, Remote, RemoteError};
pub use tools::McpServer;

/// The MCP service the gateway mounts at `/mcp`: streamable HTTP, on the gateway's pipeline.
///
/// Stateless (no MCP sessions held in memory), so any replica of the gateway answers any request, as for the
/// REST API. The `Host` check against DNS rebinding is off: it protects unauthenticated local servers, while
/// every request here must carry an API key (a browser page cannot add one), and the gateway is reached under
/// names of its operator's choosing. Put an authentication layer in front of it: a request without an
/// authenticated caller in its extensions gets only errors.
pub fn http_service(
    pipeline: Arc<gateway::Pipeline>,
    max_body_bytes: usize,
) -> StreamableHttpService<McpServer<InProcess>, NeverSessionManager> {
    let server = McpServer::new(InProcess::new(pipeline));
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes);
    StreamableHttpService::new(move || Ok(server.clone()), Arc::default(), config)
}

/// Why the stdio server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The client did not start an MCP session (e.g. it closed the input before initializing).
    #[error("the MCP client did not start a session: {0}")]
    Initialize(String),
    /// The running server ended with an error.
    #[error("the MCP server task failed: {0}")]
    Task(String),
}

/// Serves `server` over this process's standard input and output until the client closes them.
pub async fn serve_stdio<S: ServerHandler>(server: S) -> Result<(), ServeError> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Initialize(e.to_string()))?;
    running.waiting().await.map_err(|e| ServeError::Task(e.to_string()))?;
    Ok(())
}

/// Whether `message` is a JSON-RPC message the MCP server accepts (a request, notification or response as
/// rmcp reads them), so the HTTP layer in front can answer anything else with a JSON-RPC error.
pub fn is_client_message(message: &serde_json::Value) -> bool {
    serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(message.clone()).is_ok()
}
