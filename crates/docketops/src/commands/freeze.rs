//! `docketops freeze` / `docketops unfreeze`: the kill switch from a terminal, through a gateway's API with a
//! person's API key (an admin's, or an approver's where `[freeze] approvers_may_freeze`): the same role
//! checks and ledger entries as `POST`/`DELETE /api/v1/freeze`. `docketops freeze --list` shows what is
//! frozen.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::api::ApiClient;
pub use super::api::GatewayArgs;

/// What a freeze covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeKind {
    /// Every mutation on every cluster.
    All,
    /// One cluster (--cluster).
    Cluster,
    /// One namespace (--namespace; with --cluster, on that cluster only).
    Namespace,
    /// One identity (--identity).
    Identity,
    /// Every agent (people can still act).
    Agents,
}

/// The scope, from the command line.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// What to freeze.
    #[arg(long, value_enum)]
    pub scope: Option<ScopeKind>,
    /// The cluster, for --scope cluster (or to narrow --scope namespace).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The namespace, for --scope namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The identity id (agt_…, usr_…), for --scope identity.
    #[arg(long)]
    pub identity: Option<String>,
}

/// Stop every mutation in a scope until it is lifted (the kill switch).
///
/// Examples:
///   docketops freeze --scope namespace --namespace shop --reason "agent deleting ConfigMaps, incident 42"
///   docketops freeze --scope agents --reason "prompt injection suspected"
///   docketops freeze --list
#[derive(Debug, Args)]
pub struct FreezeArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Why (recorded in the ledger).
    #[arg(long, required_unless_present = "list")]
    pub reason: Option<String>,
    /// Only list the active freezes.
    #[arg(long, conflicts_with_all = ["reason", "scope"])]
    pub list: bool,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// Lift a freeze, named by its id or by the scope it covers. Never with an agent's key.
///
/// Examples:
///   docketops unfreeze --id frz_0193… --reason "incident 42 resolved"
///   docketops unfreeze --scope namespace --namespace shop --reason "incident 42 resolved"
#[derive(Debug, Args)]
pub struct UnfreezeArgs {
    /// The freeze's id (see `docketops freeze --list`).
    #[arg(long, conflicts_with = "scope")]
    pub id: Option<String>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Why (recorded in the ledger).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

impl ScopeArgs {
    /// The scope as the API spells it.
    fn to_json(&self) -> anyhow::Result<Value> {
        let need = |value: &Option<String>, flag: &str| -> anyhow::Result<String> {
            value.clone().with_context(|| format!("this scope needs {flag}"))
        };
        Ok(match self.scope.context("name a --scope")? {
            ScopeKind::All => json!({"kind": "all"}),
            ScopeKind::Agents => json!({"kind": "agents"}),
            ScopeKind::Cluster => json!({"kind": "cluster", "cluster": need(&self.cluster, "--cluster")?}),
            ScopeKind::Identity => json!({"kind": "identity", "identity_id": need(&self.identity, "--identity")?}),
            ScopeKind::Namespace => match &self.cluster {
                Some(cluster) => json!({"kind": "namespace", "namespace": need(&self.namespace, "--namespace")?,
                                        "cluster": cluster}),
                None => json!({"kind": "namespace", "namespace": need(&self.namespace, "--namespace")?}),
            },
        })
    }
}

pub async fn freeze(args: FreezeArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.gateway, "/api/v1/freeze")?;
    if args.list {
        let answer = client.send(reqwest::Method::GET, None).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let body = json!({"scope": args.scope.to_json()?, "reason": args.reason});
    let answer = client.send(reqwest::Method::POST, Some(body)).await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn unfreeze(args: UnfreezeArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.gateway, "/api/v1/freeze")?;
    let answer = match (&args.id, args.scope.scope) {
        (Some(id), None) => {
            let body = json!({"reason": args.reason});
            client
                .send_to(reqwest::Method::DELETE, &format!("/{id}"), Some(body))
                .await?
        }
        (None, Some(_)) => {
            let body = json!({"scope": args.scope.to_json()?, "reason": args.reason});
            client.send(reqwest::Method::DELETE, Some(body)).await?
        }
        _ => bail!("name the freeze to lift with --id or with --scope"),
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}
