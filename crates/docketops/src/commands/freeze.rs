//! `docketops freeze` / `docketops unfreeze`: the kill switch from a terminal, through a gateway's API with a
//! person's API key (an admin's, or an approver's where `[freeze] approvers_may_freeze`): the same role
//! checks and ledger entries as `POST`/`DELETE /api/v1/freeze`. `docketops freeze --list` shows what is
//! frozen.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

/// Where the gateway is and who calls it (`docketops freeze`, `unfreeze` and `mcp`).
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The gateway's base URL, e.g. https://docketops.example:8443.
    #[arg(long, env = "DOCKETOPS_URL", value_name = "URL")]
    pub url: String,
    /// The API key to call it with: a person's admin key for freeze and unfreeze, an agent's operator key for
    /// mcp. The environment variable keeps it off the command line, which other local users can see.
    #[arg(long, env = "DOCKETOPS_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub key: String,
    /// A CA certificate (PEM) to trust for the gateway's TLS certificate (a private CA).
    #[arg(long, env = "DOCKETOPS_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

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
    let client = Client::new(&args.gateway)?;
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
    let client = Client::new(&args.gateway)?;
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

/// `/api/v1/freeze` of one gateway, with one key.
struct Client {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Client {
    fn new(args: &GatewayArgs) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Client {
            http: builder.build()?,
            url: format!("{}/api/v1/freeze", args.url.trim_end_matches('/')),
            key: args.key.clone(),
        })
    }

    /// The answer's JSON; an error answer becomes an error with the gateway's message.
    async fn send(&self, method: reqwest::Method, body: Option<Value>) -> anyhow::Result<Value> {
        self.send_to(method, "", body).await
    }

    /// [`Client::send`] to a path below `/api/v1/freeze`.
    async fn send_to(&self, method: reqwest::Method, below: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{below}", self.url);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let answer: Value = response.json().await.context("the gateway's answer is not JSON")?;
        if !status.is_success() {
            let message = answer["error"]["message"].as_str().unwrap_or("no message");
            bail!("the gateway answered {status}: {message}");
        }
        Ok(answer)
    }
}
