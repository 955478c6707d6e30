//! `docketops mcp`: an MCP server on stdio for local agent hosts (Claude Desktop, Claude Code, IDEs), acting
//! through a gateway's HTTP API with one API key. The host launches this command; every tool call becomes a
//! request to the gateway, which authenticates the key and runs its pipeline as for any API client.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The gateway, and the API key the tools act with (an agent identity with the operator role).
    #[command(flatten)]
    pub gateway: super::api::GatewayArgs,
}

pub async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    // Standard output carries the protocol: logs go to standard error only (warnings unless RUST_LOG says more).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let args = args.gateway;
    let ca = match &args.ca_cert {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let remote = mcp::Remote::new(&args.url, &args.key, ca.as_deref())?;
    mcp::serve_stdio(mcp::McpServer::new(remote)).await?;
    Ok(ExitCode::SUCCESS)
}
